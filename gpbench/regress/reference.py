"""The reference checkpoint of ``gpbench regress``: the ``tiny-cpu`` SFT recipe at a fixed CI size.

What it is:
    The tiny Llama of :mod:`gpbench.tiny_models` (random weights under a fixed seed), fine-tuned by
    gpbench's SFT recipe (``python -m gpbench.recipes.sft --preset tiny-cpu``) on gp-l ``train``
    for :attr:`ReferenceConfig.max_steps` steps with the settings pinned below (so a change of the
    preset's defaults does not silently change the reference). An untrained model answers
    gibberish, so every first answer is ``illegal_formula`` and no rate could move: nothing to
    detect. Past about one epoch (~125 steps of 16) the model breaks out of a loss plateau near
    0.7 and learns to copy the cards and write formulas, mostly wrong; 300 steps leave a wide
    margin, and its answers spread over the statuses (``wrong_numbers``, ``wrong_value``,
    ``illegal_formula``, now and then ``correct``), which gives the checks something to see.

Build and cache:
    :func:`ensure_reference` builds it into ``CACHE/tiny-cpu-reference`` (CACHE defaults to
    ``.cache/gpbench/reference-ckpt``; ``GPBENCH_REFERENCE_DIR`` overrides it) and keeps it while
    the cache key holds: a sha256 of the config below and the recipe command it makes, the source
    of the SFT recipe's code (``gpbench/recipes`` but its RL and demo modules, its CLI,
    :mod:`gpbench.tiny_models`), the task version and the versions of torch, transformers,
    tokenizers, trl, accelerate and datasets.
    ``scripts/build_reference_checkpoint.py`` is the command line; CI caches the folder.

Cost: 300 steps of 16 on 2 CPU cores, ~1-2 s a step (5-10 min on a busy machine), once per key;
~2 MB on disk. Needs the ``hf`` and ``recipes`` extras.

>>> len(cache_key(ReferenceConfig()))
64
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import gpbench
from gpbench.errors import ConfigError, GpbenchError

NAME = "tiny-cpu-reference"
DEFAULT_CACHE = Path(".cache/gpbench/reference-ckpt")
CACHE_ENV = "GPBENCH_REFERENCE_DIR"
KEY_FILE = "gpbench_reference.json"
_PACKAGES = ("torch", "transformers", "tokenizers", "trl", "accelerate", "datasets")
# Recipe modules an SFT run never imports (RL, its rollouts and rewards, the demo, overlap checks).
_NOT_SFT = frozenset({"rl.py", "rollout.py", "rewards.py", "demo.py", "overlap.py"})


@dataclass(frozen=True)
class ReferenceConfig:
    """The recipe run that makes the reference checkpoint (every field is in the cache key).

    Attributes:
        task: the task whose ``train`` split is the fine-tuning data.
        preset: the SFT recipe's preset the run starts from.
        max_steps: optimizer steps.
        batch_size: sequences per optimizer step.
        learning_rate: peak learning rate (the preset's cosine schedule).
        warmup_steps: linear warm-up steps.
        train_size: gp-l ``train`` instances drawn.
        seed: training seed (data order).
    """

    task: str = "gp-l"
    preset: str = "tiny-cpu"
    max_steps: int = 300
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 10
    train_size: int = 2000
    seed: int = 0


def default_cache() -> Path:
    """``$GPBENCH_REFERENCE_DIR`` or ``.cache/gpbench/reference-ckpt``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def recipe_command(config: ReferenceConfig, base: Path, output: Path) -> list[str]:
    """The ``python -m gpbench.recipes.sft`` command line of the reference run."""
    return [
        sys.executable,
        "-m",
        "gpbench.recipes.sft",
        "--task",
        config.task,
        "--model",
        str(base),
        "-o",
        str(output),
        "--preset",
        config.preset,
        "--max-steps",
        str(config.max_steps),
        "--batch-size",
        str(config.batch_size),
        "--learning-rate",
        repr(config.learning_rate),
        "--train-size",
        str(config.train_size),
        "--seed",
        str(config.seed),
        "--set",
        f"warmup_steps={config.warmup_steps}",
        "--set",
        f"save_steps={config.max_steps}",  # no intermediate checkpoints
        "--set",
        "logging_steps=50",
        "--set",
        "disable_tqdm=true",  # one line per 50 steps in CI logs, not a progress bar
    ]


def cache_key(config: ReferenceConfig) -> str:
    """sha256 of what decides the checkpoint: config, recipe code, task version, packages."""
    from gpbench.tasks.registry import get_task

    package = Path(gpbench.__file__).parent
    sources = [
        *sorted(
            path
            for path in (package / "recipes").glob("*.py")
            if path.name not in _NOT_SFT  # editing the RL recipe or the demo keeps the cache
        ),
        package / "cli" / "recipes.py",
        package / "tiny_models.py",
    ]
    digest = hashlib.sha256(b"gpbench-reference-ckpt-v1\n")
    # The command line stands for this module: editing its prose does not force a rebuild.
    command = recipe_command(config, Path("BASE"), Path("OUT"))[1:]
    digest.update(json.dumps([asdict(config), command], sort_keys=True).encode() + b"\n")
    for path in sources:
        if path.is_file():
            name = path.relative_to(package).as_posix()
            digest.update(f"{name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    digest.update(f"{config.task}@{get_task(config.task).version}\n".encode())
    for name in _PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "missing"
        digest.update(f"{name} {version}\n".encode())
    return digest.hexdigest()


def ensure_reference(
    cache: Path | None = None, config: ReferenceConfig | None = None, *, quiet: bool = False
) -> tuple[Path, bool]:
    """The reference checkpoint folder, built unless the cache holds it: ``(folder, built)``.

    Raises:
        ConfigError: torch, transformers or trl is not installed.
        GpbenchError: the recipe failed (its output is shown above the message).
    """
    config = config or ReferenceConfig()
    cache = cache or default_cache()
    folder = cache / NAME
    key = cache_key(config)
    if cached_key(folder) == key:
        return folder, False
    for package in ("torch", "transformers", "trl"):
        if importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"building the reference checkpoint needs {package}; "
                f"run: pip install 'gpbench[hf,recipes]'"
            )
    cache.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(cache)
    building = cache / f".building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    try:
        output = build_reference(building, config, quiet=quiet)
        (output / KEY_FILE).write_text(
            json.dumps({"cache_key": key, "config": asdict(config)}, indent=2) + "\n"
        )
        if folder.exists():
            shutil.rmtree(folder)
        output.rename(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder, True


def build_reference(workdir: Path, config: ReferenceConfig, *, quiet: bool = False) -> Path:
    """Build the tiny Llama in ``workdir/base`` and fine-tune it into ``workdir/sft``."""
    from gpbench.tiny_models import build_tiny_llama

    base = build_tiny_llama(workdir / "base")
    output = workdir / "sft"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        recipe_command(config, base, output),
        env=env,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT if quiet else None,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stdout or "").strip().splitlines()[-1:] if quiet else []
        raise GpbenchError(
            f"the SFT recipe failed (exit {done.returncode}) building the reference checkpoint"
            + (f": {tail[0]}" if tail else "; its output is above")
        )
    for leftover in output.glob("checkpoint-*"):
        shutil.rmtree(leftover)  # the final model is in output itself
    if not (output / "config.json").is_file():
        raise GpbenchError(f"the SFT recipe left no model in {output}")
    return output


def cached_key(folder: Path) -> str | None:
    """The cache key recorded in a reference folder, or None when there is no usable one."""
    try:
        data = json.loads((folder / KEY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (folder / "config.json").is_file() or not isinstance(data, dict):
        return None
    key = data.get("cache_key")
    return key if isinstance(key, str) else None


def _remove_stale_builds(cache: Path) -> None:
    # A build killed before its cleanup leaves .building-<pid>; remove those of dead processes.
    for leftover in cache.glob(".building-*"):
        pid = leftover.name.removeprefix(".building-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
