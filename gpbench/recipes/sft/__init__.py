"""SFT recipe: supervised fine-tuning on a task's ``train`` split with TRL's ``SFTTrainer``.

Each training instance's decision points become chat examples (the paper's prompt, and the
reference answer in the paper's response format as the assistant turn; see
:mod:`gpbench.recipes.data`); the loss falls on the answer only. Text tasks (gp-l, virl-l) train
causal LMs; vision tasks (gp-vl, virl-vl) train vision-language models through their processor
(the card scene or street views as the image of the user turn). ``--method init`` marks the run
as the SFT initialisation that the SFT and RL series of a study start from.

Launch:
    gpbench recipes sft --task gp-l --model base/ -o ckpts/sft --preset tiny-cpu
    python -m gpbench.recipes.sft --task gp-l --model base/ -o ckpts/sft --preset tiny-cpu
    # paper settings on 8 GPUs (bf16, DeepSpeed ZeRO-3 through accelerate):
    accelerate launch --config_file zero3.yaml --num_processes 8 -m gpbench.recipes.sft \\
        --task gp-l --model tianzhechu/GP-L-Init -o ckpts/sft --preset paper
    # zero3.yaml: TRL ships one (trl/accelerate_configs/zero3.yaml); torchrun works too:
    torchrun --nproc_per_node 8 -m gpbench.recipes.sft --task gp-l --model ... --preset paper

Presets:
    ``paper``: the paper's SFT settings that transfer: full fine-tune, batch 128 (gradient
    accumulation makes it up over the processes), cosine schedule, lr 1e-6 (5e-7 for vision
    tasks), bf16, gradient checkpointing. Hardware: the paper's 11B Llama-3.2-Vision needs 8
    GPUs of 80 GB with ZeRO-3; wall time depends on the run length chosen (``--max-steps`` or
    ``--compute-budget``). Metric: the paper reports ID success rising while OOD success falls
    as SFT compute grows (GP-L ood-rule 11.5% at init to 3.4%).
    ``tiny-cpu``: the tiny Llama of :mod:`gpbench.tiny_models` (0.46M parameters) on 2 CPU
    cores: batch 16, lr 3e-3, cosine, float32, 300 steps on 2,000 gp-l hands. Measured here:
    about 1 min on a quiet machine, 5-10 min (1.1-2.2 s a step) with four other torch jobs on
    the 2 cores. The training loss
    falls from 6.2 to a plateau near 0.7 within ~50 steps (the answer format, the same cards
    every time), leaves it after about one epoch (~125 steps) and ends near 0.25: the model then
    copies the cards and their values and writes formulas with them, mostly wrong (0 of 24-30
    evaluated ``id`` hands solved in our runs of 150-400 steps; statuses ``wrong_numbers``, ``wrong_value``,
    ``illegal_formula``). The main job (``make demo``) trains batch 8 at lr 1e-3 (constant):
    past the plateau after ~200 steps; after 600 (64 s on a lightly loaded machine) it solves
    5 of 32 ``id`` hands, each with the formula ``train`` holds for it, and none on
    ``id-heldout`` or ``ood-rule``.

Every saved checkpoint (``checkpoint-N/`` and the final model) gets ``gpbench_checkpoint.json``
(:mod:`gpbench.recipes.metadata`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpbench.errors import ConfigError
from gpbench.recipes.config import (
    TrainSettings,
    check_before_run,
    check_trainer_args,
    from_preset,
    with_threads,
)
from gpbench.recipes.data import examples, sft_row
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec


@dataclass(frozen=True)
class SFTRecipeConfig(TrainSettings):
    """The SFT recipe's settings (the shared ones are documented on :class:`TrainSettings`).

    Attributes:
        method: ``sft``, or ``init`` for the SFT initialisation a study's series start from.
        max_length: longest tokenized example kept (longer ones are truncated).
    """

    method: str = "sft"
    max_length: int = 1024


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "learning_rate": 1e-6,
        "batch_size": 128,
        "per_device_batch_size": 4,
        "lr_scheduler": "cosine",
        "warmup_steps": 0,
        "bf16": True,
        "gradient_checkpointing": True,
        "train_size": 0,
        "max_steps": 1000,
        "save_steps": 100,
        "logging_steps": 10,
        "max_length": 1024,
    },
    "tiny-cpu": {
        "learning_rate": 3e-3,
        "batch_size": 16,
        "per_device_batch_size": 16,
        "lr_scheduler": "cosine",
        "warmup_steps": 10,
        "bf16": False,
        "gradient_checkpointing": False,
        "train_size": 2000,
        "max_steps": 300,
        "save_steps": 100,
        "logging_steps": 10,
        "max_length": 512,
        "use_cpu": True,
    },
}
PAPER_VISION_LEARNING_RATE = 5e-7


def resolve(preset: str, overrides: dict[str, Any] | None = None) -> SFTRecipeConfig:
    """The config of a preset with overrides; the paper preset uses 5e-7 for vision tasks."""
    config = from_preset(SFTRecipeConfig, PRESETS, preset, overrides)
    overrides = overrides or {}
    vision = get_task(config.task).modality == "vision"
    if preset == "paper" and vision and "learning_rate" not in overrides:
        config = from_preset(
            SFTRecipeConfig,
            PRESETS,
            preset,
            {**overrides, "learning_rate": PAPER_VISION_LEARNING_RATE},
        )
    if config.method not in ("sft", "init"):
        raise ConfigError(f"--method must be sft or init, got {config.method!r}")
    return config


def train_rows(task: TaskSpec, config: SFTRecipeConfig) -> list[dict[str, Any]]:
    """The SFT rows of the run: every decision point of ``train_size`` train instances."""
    size = config.train_size or task.split("train").paper_size
    instances = task.dataset("train", config.train_seed, size, config.options)
    return [sft_row(task, example) for example in examples(task, instances)]


def train(config: SFTRecipeConfig) -> Any:
    """Run the recipe; returns a :class:`gpbench.recipes.runner.RecipeResult`.

    A local ``config.model`` folder is loaded strictly (weights that do not fit are refused, see
    :func:`gpbench.recipes.runner.starting_model`); a Hub id is loaded by TRL itself.
    """
    task = get_task(config.task)
    check_before_run(config, task.modality)
    config, threads = with_threads(config)
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from gpbench.recipes.runner import common_trainer_args, run, starting_model

    check_trainer_args(config.trainer_args, list(SFTConfig.__dataclass_fields__), "SFTConfig")
    args = SFTConfig(
        **{
            **common_trainer_args(config),
            "max_length": config.max_length,
            "include_num_input_tokens_seen": "non_padding",
            "dataset_num_proc": None,
            **config.trainer_args,
        }
    )
    dataset = Dataset.from_list(train_rows(task, config))
    model = starting_model(config.model, args)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset)
    return run(trainer, config, task, config.method, threads)
