"""The reference checkpoint of ``gpbench regress``: fixed bytes, shipped with gpbench.

What it is:
    The tiny Llama of :mod:`gpbench.tiny_models` (random weights under a fixed seed), fine-tuned by
    gpbench's SFT recipe (``python -m gpbench.recipes.sft --preset tiny-cpu``) on gp-l ``train``
    for :attr:`ReferenceConfig.max_steps` steps with the settings pinned below. An untrained model
    answers gibberish, so every first answer is ``illegal_formula`` and no rate could move:
    nothing to detect. Past about one epoch (~125 steps of 16) the model breaks out of a loss
    plateau near 0.7 and learns to copy the cards and write formulas, mostly wrong; after 300
    steps its answers spread over the statuses (``wrong_numbers``, ``wrong_value``,
    ``illegal_formula``), which gives the checks something to see.

Why it is shipped rather than built on each machine:
    Training is not reproducible across machines: the floating point of another CPU (other
    vector kernels, another thread count) sends 300 steps of training somewhere else, and the
    retrained model scores other rates. Expectations recorded on one machine then fail on
    another, with nothing wrong. So the checkpoint is built once and its files (~2 MB) live in
    the package (:data:`FOLDER`), with ``gpbench_reference.json`` recording the config, the
    command, the packages and a sha256 of every file: every machine evaluates the same bytes,
    and only the evaluation stack (what ``gpbench regress`` exists to check) can move its rates.
    Greedy decoding of fixed weights still differs in the last bits between CPUs; the tolerance
    bands of ``checkpoints.md`` absorb that.

Rebuild (a change of the reference itself, not of the stack under test):
    ``python scripts/build_reference_checkpoint.py --rebuild`` trains it afresh (one thread, so
    one machine repeats it exactly; 1-10 min on 2 CPU cores) and replaces :data:`FOLDER`; then
    ``gpbench regress --only tiny-cpu-reference --update`` re-records its expectations. Needs
    the ``hf`` and ``recipes`` extras.

>>> check_reference() == FOLDER
True
"""

from __future__ import annotations

import datetime
import importlib.util
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gpbench
from gpbench.errors import CheckpointError, ConfigError, GpbenchError
from gpbench.harness.backends.chat import package_version
from gpbench.harness.shipped import file_digests, first_mismatch, install_folder

NAME = "tiny-cpu-reference"
FOLDER = Path(__file__).resolve().parent / "data" / NAME
"""The shipped reference checkpoint."""
PROVENANCE_FILE = "gpbench_reference.json"
_PACKAGES = ("torch", "transformers", "tokenizers", "trl", "accelerate", "datasets")


@dataclass(frozen=True)
class ReferenceConfig:
    """The recipe run that makes the reference checkpoint.

    Attributes:
        task: the task whose ``train`` split is the fine-tuning data.
        preset: the SFT recipe's preset the run starts from.
        max_steps: optimizer steps.
        batch_size: sequences per optimizer step.
        learning_rate: peak learning rate (the preset's cosine schedule).
        warmup_steps: linear warm-up steps.
        train_size: gp-l ``train`` instances drawn.
        seed: training seed (data order).
        threads: CPU threads of the run (one: the same machine then repeats it bit for bit).
    """

    task: str = "gp-l"
    preset: str = "tiny-cpu"
    max_steps: int = 300
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 10
    train_size: int = 2000
    seed: int = 0
    threads: int = 1


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
        "--threads",
        str(config.threads),
        "--set",
        f"warmup_steps={config.warmup_steps}",
        "--set",
        f"save_steps={config.max_steps}",  # no intermediate checkpoints
        "--set",
        "logging_steps=50",
        "--set",
        "disable_tqdm=true",  # one line per 50 steps in CI logs, not a progress bar
    ]


def check_reference(folder: Path = FOLDER) -> Path:
    """``folder`` after checking every file against the digests of its ``gpbench_reference.json``.

    Raises:
        CheckpointError: the folder or its record is missing, a file is missing, changed or
            not in the record (say which, and how to restore it).
    """
    found = first_mismatch(folder, PROVENANCE_FILE)
    if found is None:
        return folder
    path, kind = found
    if kind == "unreadable":
        raise CheckpointError(
            f"{path} is missing or unreadable: the reference checkpoint is incomplete; "
            f"restore it from the repository (git checkout -- {folder})"
        )
    problem = {
        "unrecorded": "is not part of it",
        "missing": "is missing",
        "changed": "differs from the recorded sha256",
    }[kind]
    raise CheckpointError(
        f"{path} {problem}: the reference checkpoint must be the shipped bytes; restore it "
        f"(git checkout -- {folder}) or rebuild it (scripts/build_reference_checkpoint.py "
        f"--rebuild)"
    )


def build_reference(workdir: Path, config: ReferenceConfig, *, quiet: bool = False) -> Path:
    """Build the tiny Llama in ``workdir/base`` and fine-tune it into ``workdir/sft``.

    Raises:
        ConfigError: torch, transformers or trl is not installed.
        GpbenchError: the recipe failed (its output is shown above the message, or its last
            line in it when ``quiet``).
    """
    for package in ("torch", "transformers", "trl"):
        if importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"building the reference checkpoint needs {package}; "
                f"run: pip install 'gpbench[hf,recipes]'"
            )
    from gpbench.harness.threads import apply_threads, thread_env
    from gpbench.tiny_models import build_tiny_llama

    apply_threads(config.threads)
    base = build_tiny_llama(workdir / "base")
    output = workdir / "sft"
    env = {**thread_env(config.threads), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
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
    if not (output / "config.json").is_file():
        raise GpbenchError(f"the SFT recipe left no model in {output}")
    return output


def provenance_record(folder: Path, config: ReferenceConfig) -> dict[str, Any]:
    """The ``gpbench_reference.json`` of a built folder: how it was made, and its files' sha256."""
    return {
        "name": NAME,
        "config": asdict(config),
        "command": ["python", *recipe_command(config, Path("BASE"), Path("OUT"))[1:]],
        "base": "gpbench.tiny_models.build_tiny_llama (torch seed 0)",
        "gpbench_version": gpbench.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "packages": {name: package_version(name) for name in _PACKAGES},
        "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "files": file_digests(folder, PROVENANCE_FILE),
    }


def install_reference(built: Path, config: ReferenceConfig, target: Path = FOLDER) -> list[str]:
    """Replace ``target`` with the shippable files of ``built`` and their record; returns the
    names of the files left out (``training_args.bin``: a pickle, never shipped).

    The new folder is assembled beside ``target`` and swapped in at the end, so an interrupted
    call leaves the old reference whole.
    """
    return install_folder(
        built, target, PROVENANCE_FILE, lambda staged: provenance_record(staged, config)
    )
