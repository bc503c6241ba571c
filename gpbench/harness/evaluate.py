"""The Python API behind ``gpbench eval``: plan runs, skip or resume them, roll out, summarise.

One run is one checkpoint x task x split. Its folder name carries a hash of everything that
makes two runs identical (checkpoint fingerprint, task version, split, seed, n, options,
decoding, budget, verifier mode, samples, shard, backend), so re-running the same command skips
complete runs and resumes interrupted ones.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpbench.errors import ConfigError
from gpbench.harness.backends import Backend, Sampling, create_backend
from gpbench.harness.loop import rollout
from gpbench.harness.store import RunWriter, provenance, read_episodes, run_status
from gpbench.reports.summary import SummaryBuilder, summarize
from gpbench.tasks.registry import all_tasks, get_task
from gpbench.tasks.spec import TaskSpec


@dataclass(frozen=True)
class EvalConfig:
    """Everything ``gpbench eval`` takes (the CLI is a thin layer over this).

    Attributes:
        model: a checkpoint folder, a hub id, a glob of checkpoint folders (a series), or for the
            scripted backend a policy such as ``reference`` or ``reference:0.3`` (error rate).
        backend: ``auto``, ``hf`` or ``scripted``.
        tasks: task ids (``gp-l``, ``gp-l@1``); empty means every task that has the splits and
            that the model can take.
        splits: split names; empty means every evaluation split (all but ``train``).
        n: instances per split (default: the split's paper size).
        seed: instance seed (default: the split's paper seed).
        samples: samples per instance.
        sampling: decoding settings.
        sampling_seed: seeds decoding (request seeds derive from it).
        max_attempts: verification budget (default: the task's).
        mode: verifier mode.
        runs_dir: where run folders go.
        shard: ``(i, n)``: evaluate instances whose index % n == i.
        meta: checkpoint metadata overrides (``--meta KEY=VAL``).
        backend_settings: passed to the backend factory (batch size, dtype, device, ...).
        options: task options (``-O NAME=VALUE``).
        resume: skip complete identical runs and resume interrupted ones (else start afresh).
    """

    model: str
    backend: str = "auto"
    tasks: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    n: int | None = None
    seed: int | None = None
    samples: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    sampling_seed: int = 0
    max_attempts: int | None = None
    mode: str = "gpbench"
    runs_dir: Path = Path("runs")
    shard: tuple[int, int] = (0, 1)
    meta: dict[str, str] = field(default_factory=dict)
    backend_settings: dict[str, Any] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    resume: bool = True


@dataclass(frozen=True)
class Skipped:
    """A task x split not run, and why."""

    task: str
    split: str
    reason: str


@dataclass(frozen=True)
class RunResult:
    """A finished (or already complete) run and its summary."""

    checkpoint: str
    task: str
    split: str
    folder: Path
    summary: dict[str, Any]
    reused: bool


Progress = Callable[[str, int, int], None]


def checkpoints(model: str, backend: str) -> list[str]:
    """The checkpoints a ``--model`` value names: a glob gives a series in step order."""
    if backend == "scripted":
        return [model]
    if any(ch in model for ch in "*?["):
        from gpbench.harness.checkpoints import discover_series

        return [str(p) for p in discover_series(model)]
    return [model]


def plan(config: EvalConfig, backend: Backend) -> tuple[list[tuple[TaskSpec, str]], list[Skipped]]:
    """Task x split pairs to run for this model, and those skipped with a reason."""
    explicit = bool(config.tasks)
    tasks = [get_task(name) for name in config.tasks] if explicit else all_tasks()
    chosen: list[tuple[TaskSpec, str]] = []
    skipped: list[Skipped] = []
    for task in tasks:
        splits = list(config.splits) or [s for s in task.splits if s != "train"]
        for split in splits:
            if split not in task.splits:
                if explicit:
                    task.split(split)  # raises with a did-you-mean hint
                skipped.append(Skipped(task.id, split, f"{task.id} has no split {split}"))
                continue
            if task.modality == "vision" and not backend.supports_images:
                reason = f"{task.id} needs images and this model is text-only"
                if explicit:
                    raise ConfigError(f"{reason}; drop --task {task.id} or use a vision model")
                skipped.append(Skipped(task.id, split, reason))
                continue
            chosen.append((task, split))
    if not chosen:
        known = sorted({s for t in tasks for s in t.splits})
        raise ConfigError(
            f"nothing to evaluate: no task has split(s) {', '.join(config.splits)} that this model "
            f"can take (splits: {', '.join(known)})"
        )
    return chosen, skipped


def evaluate(
    config: EvalConfig, progress: Progress | None = None
) -> tuple[list[RunResult], list[Skipped]]:
    """Evaluate every checkpoint the config names; returns run results and skipped pairs."""
    if config.samples < 1:
        raise ConfigError("--samples must be >= 1")
    index, count = config.shard
    if not 0 <= index < count:
        raise ConfigError(f"--shard {index}/{count}: need 0 <= i < N")
    results: list[RunResult] = []
    skipped_all: list[Skipped] = []
    series = checkpoints(config.model, config.backend)
    for position, checkpoint in enumerate(series, start=1):
        backend = create_backend(config.backend, checkpoint, **config.backend_settings)
        try:
            pairs, skipped = plan(config, backend)
            skipped_all.extend(skipped)
            identity = _checkpoint_identity(checkpoint, backend, config)
            for task, split in pairs:
                label = f"[{position}/{len(series)}] {Path(checkpoint).name} {task.id} {split}"
                results.append(_run_one(config, backend, identity, task, split, label, progress))
        finally:
            backend.close()
    return results, skipped_all


def _checkpoint_identity(checkpoint: str, backend: Backend, config: EvalConfig) -> dict[str, Any]:
    if config.backend == "scripted" or not Path(checkpoint).is_dir():
        fingerprint = hashlib.sha256(checkpoint.encode()).hexdigest()
        metadata: dict[str, Any] = {"path": checkpoint, **config.meta}
    else:
        from gpbench.harness.checkpoints import checkpoint_metadata
        from gpbench.harness.checkpoints import fingerprint as fp

        fingerprint = fp(Path(checkpoint))
        metadata = checkpoint_metadata(Path(checkpoint), config.meta)
    return {
        "checkpoint": checkpoint,
        "fingerprint": fingerprint,
        "metadata": metadata,
        "backend": {"name": backend.name, **backend.describe()},
    }


def _run_one(
    config: EvalConfig,
    backend: Backend,
    identity: dict[str, Any],
    task: TaskSpec,
    split: str,
    label: str,
    progress: Progress | None,
) -> RunResult:
    spec = task.split(split)
    seed = spec.paper_seed if config.seed is None else config.seed
    n = spec.paper_size if config.n is None else config.n
    budget = config.max_attempts or task.max_attempts
    options = task.resolve_options(config.options)
    key = {
        "fingerprint": identity["fingerprint"],
        # The checkpoint's metadata places the run in a series (method, step): two runs of one
        # policy labelled differently (--meta) are different runs, not a reusable one.
        "metadata": identity["metadata"],
        "task": f"{task.id}@{task.version}",
        "split": split,
        "seed": seed,
        "n": n,
        "options": options,
        "sampling": asdict(config.sampling),
        "sampling_seed": config.sampling_seed,
        "budget": budget,
        "mode": config.mode,
        "samples": config.samples,
        "shard": list(config.shard),
        "backend": backend.name,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(identity["checkpoint"]).name or "model")
    folder = config.runs_dir / f"{name}__{task.id}__{split}__{digest}"
    if config.resume and run_status(folder) == "complete":
        return _result(identity, task, split, folder, reused=True)
    if not config.resume and folder.exists():
        import shutil

        shutil.rmtree(folder)
    run_spec = {
        "kind": "gpbench-run",
        "run_key": key,
        "checkpoint": {k: identity[k] for k in ("checkpoint", "fingerprint", "metadata")},
        "backend": identity["backend"],
        "tasks": {task.id: task.version},
        "splits": [split],
        "seeds": [seed],
        "n": n,
        "samples": config.samples,
        "sampling": asdict(config.sampling),
        "sampling_seed": config.sampling_seed,
        "max_attempts": budget,
        "verifier_mode": config.mode,
        "shard": list(config.shard),
        "options": options,
        **provenance(),
    }
    summary = SummaryBuilder(
        recognition=getattr(task, "checks_cards", False), per_step=task.multi_decision
    )
    # The summary is counted as episodes are written (resumed ones first), never kept in memory.
    writer = RunWriter(folder, run_spec, observe=summary.add)
    try:
        shard_index, shard_count = config.shard
        positions = range(shard_index, n, shard_count)  # this shard's instance indices
        total = len(positions) * config.samples
        # Generated lazily: the loop pulls instances as episodes finish, so memory stays flat.
        work = (
            (instance, sample)
            for instance in task.dataset(split, seed, n, options).select(positions)
            for sample in range(config.samples)
            if (instance.uid, sample) not in writer.done
        )
        if progress is not None:
            progress(label, len(writer.done), total)

        def report(done: int) -> None:
            if progress is not None:
                progress(label, len(writer.done) + done, total)

        stats = rollout(
            task,
            work,
            backend,
            config.sampling,
            budget=budget,
            mode=config.mode,
            run_seed=config.sampling_seed,
            on_episode=writer.append,
            on_progress=report,
        )
        writer.finish({"loop": asdict(stats)})
    except BaseException:
        writer.close()
        raise
    # Summarised from the records as they were written (in file order), not read back: reading
    # them again cost a fifth of a scripted run.
    return RunResult(identity["checkpoint"], task.id, split, folder, summary.summary(), False)


def _result(
    identity: dict[str, Any], task: TaskSpec, split: str, folder: Path, *, reused: bool
) -> RunResult:
    summary = summarize(
        read_episodes(folder),
        recognition=getattr(task, "checks_cards", False),
        per_step=task.multi_decision,
    )
    return RunResult(identity["checkpoint"], task.id, split, folder, summary, reused)


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4"`` -> ``(1, 4)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or int(match.group(2)) < 1 or int(match.group(1)) >= int(match.group(2)):
        raise ConfigError(f"--shard expects i/N with 0 <= i < N, got {text!r}")
    return int(match.group(1)), int(match.group(2))
