"""The typed settings both recipes share, presets, and ``--set NAME=VALUE`` overrides.

A recipe's config is a frozen dataclass (its own fields on top of :class:`TrainSettings`); a
preset is a dict of field values applied over the dataclass defaults; ``--set`` pairs are
applied last. A ``--set`` name that is not a config field goes to the TRL trainer config
(``SFTConfig`` / ``GRPOConfig``) unchanged, and is checked against it when the recipe starts.

>>> settings = with_overrides(TrainSettings(), {"learning_rate": "1e-4", "report_to": "tensorboard"})
>>> settings.learning_rate, settings.trainer_args
(0.0001, {'report_to': 'tensorboard'})
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gpbench.errors import ConfigError, did_you_mean
from gpbench.harness.threads import ThreadCount, apply_threads
from gpbench.runs.folder import parse_meta_value

C = TypeVar("C", bound="TrainSettings")


@dataclass(frozen=True)
class TrainSettings:
    """Settings every recipe takes.

    Attributes:
        task: task id (``gp-l``, ``virl-l``, ``gp-vl``; ``gp-l@1`` pins a version).
        model: the starting checkpoint (a folder, or a hub id where a hub is reachable).
        output_dir: where checkpoints go (``checkpoint-N/`` folders and the final model).
        preset: the preset the config started from (recorded; see each recipe's PRESETS).
        options: task options (``-O NAME=VALUE``), as for ``gpbench generate``.
        train_seed: instance seed of the ``train`` split.
        train_size: training instances drawn (V-IRL: each gives one item per decision point).
        learning_rate: peak learning rate.
        batch_size: sequences per optimizer step, over all processes (the paper's SFT: 128).
        per_device_batch_size: sequences per process per forward pass; gradient accumulation
            makes up the rest of ``batch_size``.
        max_steps: optimizer steps (an upper bound when ``compute_budget`` is set).
        compute_budget: FLOPs of this run by the paper's formula; training stops once it is
            spent (so SFT and RL runs can be matched on compute). None: run ``max_steps``.
        save_steps: save a checkpoint every this many steps (without ``compute_budget``).
        save_points: with ``compute_budget``: checkpoints at 1/k, 2/k, ... k/k of the budget.
        lr_scheduler: transformers scheduler name (``cosine``, ``constant``, ...).
        warmup_steps: linear warm-up steps.
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient clipping norm.
        bf16: train in bfloat16 (GPUs; on CPU it is several times slower than float32).
        gradient_checkpointing: trade compute for memory (large models).
        seed: training seed (data order, sampling).
        logging_steps: log every this many steps.
        use_cpu: train on the CPU even where a GPU is present.
        threads: CPU threads for torch and the tokenizers (``--threads``); 0: gpbench's
            default (:func:`gpbench.harness.threads.default_threads`). A run records the count
            it used here, and where it came from in its checkpoints' metadata.
        trainer_args: further TRL/transformers trainer settings (``--set name=value``).
    """

    task: str = "gp-l"
    model: str = ""
    output_dir: str = ""
    preset: str = "tiny-cpu"
    options: dict[str, str] = field(default_factory=dict)
    train_seed: int = 0
    train_size: int = 2000
    learning_rate: float = 1e-6
    batch_size: int = 128
    per_device_batch_size: int = 4
    max_steps: int = 1000
    compute_budget: float | None = None
    save_steps: int = 100
    save_points: int = 4
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool = False
    gradient_checkpointing: bool = False
    seed: int = 0
    logging_steps: int = 10
    use_cpu: bool = False
    threads: int = 0
    trainer_args: dict[str, Any] = field(default_factory=dict)


def field_names(cls: type) -> list[str]:
    """The config fields of a settings dataclass."""
    return [f.name for f in dataclasses.fields(cls)]


def _convert(name: str, default: Any, text: Any) -> Any:
    """A ``--set`` value converted to the type of the field's default."""
    if not isinstance(text, str):
        return text
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {name} expects true or false, got {text!r}")
    if isinstance(default, dict):
        return parse_mapping(name, text)
    if default is None or isinstance(default, (int, float)):
        if default is None and text.strip().lower() in ("none", ""):
            return None
        value = parse_meta_value(text)
        if isinstance(value, str):
            raise ConfigError(f"--set {name} expects a number, got {text!r}")
        if isinstance(default, int) and not isinstance(value, int):
            if float(value).is_integer():
                return int(value)
            raise ConfigError(f"--set {name} expects an integer, got {text!r}")
        return float(value) if isinstance(default, float) or default is None else value
    return text


def parse_mapping(name: str, text: str) -> dict[str, Any]:
    """``"a:1,b:0.5"`` -> ``{"a": 1, "b": 0.5}`` (``name`` only for the error message)."""
    result: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise ConfigError(
                f"--set {name} expects KEY:VALUE pairs joined by commas, got {text!r}"
            )
        result[key.strip()] = parse_meta_value(value.strip())
    return result


def with_overrides(config: C, overrides: Mapping[str, Any]) -> C:
    """``config`` with fields replaced by ``overrides`` (strings are converted to each field's
    type); names that are not fields go into ``trainer_args``."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    extra = dict(config.trainer_args)
    for name, value in overrides.items():
        if name in fields and name != "trainer_args":
            changes[name] = _convert(name, fields[name], value)
        else:
            extra[name] = loose_value(value)
    return dataclasses.replace(config, **changes, trainer_args=extra)


def loose_value(value: Any) -> Any:
    """A ``--set`` value for a trainer field: true/false, none, a number, or the text.

    >>> loose_value("true"), loose_value("none"), loose_value("3"), loose_value("cosine")
    (True, None, 3, 'cosine')
    """
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    return parse_meta_value(value)


def from_preset(
    cls: type[C],
    presets: Mapping[str, Mapping[str, Any]],
    preset: str,
    overrides: Mapping[str, Any] | None = None,
) -> C:
    """A config: the dataclass defaults, then the preset's values, then ``overrides``."""
    if preset not in presets:
        raise ConfigError(
            f"unknown preset {preset!r}{did_you_mean(preset, presets)} "
            f"(choices: {', '.join(presets)})"
        )
    base = dataclasses.replace(cls(), **presets[preset], preset=preset)
    config = with_overrides(base, overrides or {})
    check_counts(config)
    return config


FLAGS = {
    "task": "--task",
    "model": "--model",
    "output_dir": "-o",
    "max_steps": "--max-steps",
    "compute_budget": "--compute-budget",
    "learning_rate": "--learning-rate",
    "batch_size": "--batch-size",
    "train_size": "--train-size",
    "seed": "--seed",
    "threads": "--threads",
    "budget": "--budget",
    "num_generations": "--num-generations",
    "method": "--method",
}
"""The command-line flag of each setting that has one; the others are ``--set NAME=VALUE``."""


def flag(name: str) -> str:
    """How a user sets ``name`` on the command line, for error messages."""
    return FLAGS.get(name, f"--set {name}")


_COUNTS = ("batch_size", "per_device_batch_size", "max_steps", "save_steps", "save_points")
"""Settings that must be at least 1 (``--set`` bypasses the flags' own range checks)."""


def check_counts(settings: TrainSettings) -> None:
    """Refuse a count below 1 (a zero batch or step count fails deep inside the trainer)."""
    for name in _COUNTS:
        value = getattr(settings, name)
        if value < 1:
            raise ConfigError(f"{flag(name)} must be at least 1, got {value}")


def nearest_multiples(value: int, step: int) -> tuple[int, int]:
    """The two multiples of ``step`` (at least ``step``) nearest ``value``, for suggestions.

    >>> nearest_multiples(2, 4), nearest_multiples(10, 4), nearest_multiples(8, 16)
    ((4, 8), (8, 12), (16, 32))
    """
    low = max(step, value // step * step)
    return low, low + step


def check_trainer_args(extra: Mapping[str, Any], allowed: list[str], trainer: str) -> None:
    """Refuse a ``--set`` name that is neither a recipe field nor a field of the TRL config."""
    for name in extra:
        if name not in allowed:
            raise ConfigError(
                f"--set {name}: not a recipe setting nor a {trainer} field"
                f"{did_you_mean(name, allowed)}"
            )


def gradient_accumulation(settings: TrainSettings) -> int:
    """Accumulation steps that make ``batch_size`` from the per-device batch and the world size."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_device, batch = settings.per_device_batch_size, settings.batch_size
    per_step = per_device * world
    if batch % per_step:
        low, high = nearest_multiples(batch, per_step)
        smaller = math.gcd(batch // world, per_device) if batch % world == 0 else 0
        other = f", or --set per_device_batch_size={smaller}" if smaller else ""
        raise ConfigError(
            f"--batch-size {batch} is not a multiple of per_device_batch_size {per_device} x "
            f"{world} process(es); use --batch-size {low} or {high}{other}"
        )
    return batch // per_step


def check_required(settings: TrainSettings) -> None:
    """The fields no preset can supply: the starting model and the output folder."""
    if not settings.model:
        raise ConfigError("no starting checkpoint: pass --model FOLDER")
    if not settings.output_dir:
        raise ConfigError("no output folder: pass -o FOLDER")


_CHECKPOINT_FOLDER = re.compile(r"checkpoint-\d+")


def check_output_dir(settings: TrainSettings) -> None:
    """Refuse an output folder that already holds a run's checkpoints.

    The trainer would write over some of them and leave the others, so the folder would mix
    two runs (a checkpoint series that is not one run's).
    """
    out = Path(settings.output_dir).expanduser()
    if not out.is_dir():
        return
    held = sorted(p.name for p in out.iterdir() if _CHECKPOINT_FOLDER.fullmatch(p.name))
    if (out / "gpbench_checkpoint.json").is_file():
        held.insert(0, "gpbench_checkpoint.json")
    if held:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise ConfigError(
            f"-o {settings.output_dir} already holds a checkpoint ({shown}); pass a new folder, "
            "or remove that one first"
        )


def check_device(settings: TrainSettings) -> None:
    """Refuse bf16 training on a machine with no GPU before transformers does (in a traceback)."""
    if not settings.bf16 or settings.use_cpu:
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"preset {settings.preset!r} trains in bf16 on a GPU and no CUDA GPU is visible; "
            "on a CPU use --preset tiny-cpu, or --set bf16=false --set use_cpu=true"
        )


def check_model_fits_task(settings: TrainSettings, modality: str) -> None:
    """Refuse a text-only starting model for a vision task (TRL fails late, or deep inside).

    Only a local folder is checked (its config.json); a hub id is left to the trainer.
    """
    folder = Path(settings.model).expanduser()
    if modality != "vision" or not (folder / "config.json").is_file():
        return
    import transformers

    from gpbench.harness.backends.chat import is_vision_language

    try:
        config = transformers.AutoConfig.from_pretrained(folder)
    except (OSError, ValueError):
        return  # the model loader reports a broken folder in its own words
    if not is_vision_language(config, transformers):
        kind = ", ".join(getattr(config, "architectures", None) or [config.model_type])
        raise ConfigError(
            f"--task {settings.task} shows images, and --model {settings.model} is a text-only "
            f"model ({kind}); start from a vision-language checkpoint, or train the text "
            "variant (--task gp-l or virl-l)"
        )


def check_before_run(settings: TrainSettings, modality: str) -> None:
    """Every check a recipe makes before it loads anything heavy, in the order a user fixes them."""
    check_required(settings)
    check_output_dir(settings)
    check_device(settings)
    check_model_fits_task(settings, modality)


def with_threads(settings: C) -> tuple[C, ThreadCount]:
    """Give the run's thread count to torch and the tokenizers, before the trainer loads the
    model; returns the settings with the count used (so the recorded config holds it) and the
    count with its source."""
    threads = apply_threads(settings.threads or None)
    return dataclasses.replace(settings, threads=threads.count), threads
