"""What both recipes do around a TRL trainer: its arguments, metadata callbacks, training, saving.

Imports transformers (through the callbacks); the recipes import this module only when they run.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import ModelLoadError
from gpbench.harness.folders import is_hub_id
from gpbench.harness.threads import ThreadCount, describe
from gpbench.recipes.callbacks import CheckpointMetadataCallback, ComputeBudgetCallback
from gpbench.recipes.config import TrainSettings, gradient_accumulation
from gpbench.recipes.metadata import MetadataRecorder, base_checkpoint, write_metadata
from gpbench.tasks.spec import TaskSpec


@dataclass(frozen=True)
class RecipeResult:
    """What a recipe run produced.

    Attributes:
        output_dir: the final model's folder (with its ``gpbench_checkpoint.json``).
        checkpoints: the ``checkpoint-N`` folders saved during training, in order.
        steps: optimizer steps run.
        tokens_seen: training tokens of this run.
        compute: the final model's ``compute`` (FLOPs, cumulative over the recipe chain).
        seconds: wall time of training and saving.
        metadata: the final model's ``gpbench_checkpoint.json`` contents.
    """

    output_dir: Path
    checkpoints: list[Path]
    steps: int
    tokens_seen: int
    compute: float
    seconds: float
    metadata: dict[str, Any]


def common_trainer_args(settings: TrainSettings) -> dict[str, Any]:
    """Trainer arguments both recipes derive from the shared settings.

    With a compute budget, checkpoints come from :class:`ComputeBudgetCallback`; ``save_steps``
    is then ``max_steps`` so the last step is saved if the budget outlasts it.
    """
    budgeted = settings.compute_budget is not None
    return {
        "output_dir": settings.output_dir,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.per_device_batch_size,
        "gradient_accumulation_steps": gradient_accumulation(settings),
        "learning_rate": settings.learning_rate,
        "lr_scheduler_type": settings.lr_scheduler,
        "warmup_steps": settings.warmup_steps,
        "weight_decay": settings.weight_decay,
        "max_grad_norm": settings.max_grad_norm,
        "bf16": settings.bf16,
        "gradient_checkpointing": settings.gradient_checkpointing,
        "seed": settings.seed,
        "logging_steps": settings.logging_steps,
        "save_strategy": "steps",
        "save_steps": settings.max_steps if budgeted else settings.save_steps,
        "save_only_model": True,
        "report_to": "none",
        "use_cpu": settings.use_cpu,
        "model_init_kwargs": {"dtype": "bfloat16" if settings.bf16 else "float32"},
        **settings.trainer_args,
    }


def starting_model(model: str, args: Any) -> Any:
    """What the trainer starts from: a local folder loaded strictly, a Hub id left to TRL.

    A local folder is loaded with :func:`gpbench.harness.weights.load_pretrained`, so a
    checkpoint whose weights do not fit its architecture (missing or unexpected keys, a
    ``module.`` prefix) is refused in one line instead of training from random weights. It is
    loaded as TRL would (the trainer config's ``model_init_kwargs``, a dtype named as text, the
    same device map) and ``args.model_init_kwargs`` is then cleared: TRL ignores it for a model
    object, and GRPO builds its reference model like the policy without it. TRL loads the
    tokenizer or processor from the model's folder either way.

    A Hub id is returned as is: TRL downloads and loads it with its own (non-strict) loading.

    Raises:
        ModelLoadError: neither a folder nor a hub id; the folder's weights are missing, broken
            or do not fit the model.
    """
    folder = Path(model).expanduser()
    if not folder.exists() and is_hub_id(model):
        return model
    if not folder.is_dir():
        raise ModelLoadError(
            f"model folder not found: {model}; pass a local checkpoint folder or a hub id"
        )
    import torch
    import transformers
    from accelerate import PartialState

    from gpbench.harness.backends.chat import is_vision_language
    from gpbench.harness.weights import load_pretrained

    kwargs = dict(args.model_init_kwargs or {})
    kwargs.setdefault("trust_remote_code", args.trust_remote_code)
    dtype = kwargs.get("dtype", "float32")
    if dtype in ("bfloat16", "float16", "float32"):
        kwargs["dtype"] = getattr(torch, dtype)
    # As TRL: several processes need device_map=None, and "auto" would put a CPU run on the GPU.
    if args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
        kwargs["device_map"] = None
    if "device_map" not in kwargs:
        on_cpu = args.use_cpu or PartialState().device.type in ("cpu", "mps")
        kwargs["device_map"] = None if on_cpu else "auto"
    config = transformers.AutoConfig.from_pretrained(
        folder, trust_remote_code=kwargs["trust_remote_code"]
    )
    auto_class = (
        transformers.AutoModelForImageTextToText
        if is_vision_language(config, transformers)
        else transformers.AutoModelForCausalLM
    )
    loaded = load_pretrained(auto_class, folder, **kwargs)
    args.model_init_kwargs = None
    return loaded


def parameter_count(model: Any) -> int:
    """N for the compute formula: every parameter of the model (shared ones once)."""
    return int(sum(p.numel() for p in model.parameters()))


def run(
    trainer: Any, settings: TrainSettings, task: TaskSpec, method: str, threads: ThreadCount
) -> RecipeResult:
    """Attach the metadata callbacks, train, save the final model beside its metadata.

    ``threads``: the count the run gave torch (:func:`gpbench.recipes.config.with_threads`),
    recorded with torch's actual settings in every checkpoint's metadata.
    """
    start = time.perf_counter()
    recorder = MetadataRecorder(
        method=method,
        parameter_count=parameter_count(trainer.model),
        base=base_checkpoint(settings.model),
        config=dataclasses.asdict(settings),
        task=f"{task.id}@{task.version}",
        rl_lambda=task.rl_lambda,
        threads=describe(threads),
    )
    saver = CheckpointMetadataCallback(recorder)
    trainer.add_callback(saver)
    if settings.compute_budget is not None:
        trainer.add_callback(
            ComputeBudgetCallback(recorder, settings.compute_budget, settings.save_points)
        )
    trainer.train()
    output = Path(settings.output_dir)
    trainer.save_model(str(output))
    state = trainer.state
    record = recorder.record(step=state.global_step, tokens_seen=state.num_input_tokens_seen)
    if trainer.args.should_save:
        write_metadata(output, record)
    return RecipeResult(
        output,
        list(saver.saved),
        int(state.global_step),
        int(state.num_input_tokens_seen),
        float(record["compute"]),
        time.perf_counter() - start,
        record,
    )
