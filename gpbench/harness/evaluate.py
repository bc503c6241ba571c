"""The Python API behind ``gpbench eval``: plan runs, skip or resume them, roll out, summarise.

One run is one checkpoint x task x split. Its folder name carries a hash of everything that
makes two runs identical (checkpoint fingerprint, task version, split, seed, n, options,
decoding, budget, verifier mode, samples, shard, backend), so re-running the same command skips
complete runs and resumes interrupted ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpbench.errors import ConfigError
from gpbench.harness.backends import Backend, Sampling, create_backend
from gpbench.harness.loop import LoopProgress, rollout
from gpbench.harness.writer import RunWriter
from gpbench.records import Episode
from gpbench.runs.folder import provenance
from gpbench.runs.read import RunIntegrityError, read_episodes, read_run_spec, run_status
from gpbench.runs.summary import SummaryBuilder, summarize
from gpbench.tasks.registry import all_tasks, get_task
from gpbench.tasks.spec import TaskSpec


@dataclass(frozen=True)
class EvalConfig:
    """Everything ``gpbench eval`` takes (the CLI is a thin layer over this).

    Attributes:
        model: a checkpoint folder, a hub id, a glob of checkpoint folders (a series), or for the
            scripted backend a policy such as ``reference`` or ``reference:0.3`` (error rate).
        base_model: for PEFT adapter folders, the base checkpoint to evaluate them over instead
            of the one their ``adapter_config.json`` names (``--base-model``); it is part of
            the adapter's fingerprint, so of the run key.
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
    base_model: str | None = None
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
"""The episode-count callback: ``(label, episodes done, episodes in the run)``."""

logger = logging.getLogger("gpbench")

MAX_NAME_CHARS = 80
"""The checkpoint-name part of a run folder's name (the folder also holds task, split, digest)."""


@dataclass(frozen=True)
class RunProgress:
    """Where one run stands: reported when it starts and before and after every backend call.

    Attributes:
        label: which run, e.g. ``[1/3] checkpoint-100 gp-l ood-rule``.
        episodes_done: finished episodes of the run (those found on resuming included).
        episodes_total: the episodes of the complete run.
        turn: the rollout's current turn, 1-based (0: no backend call yet).
        requests_done: requests of this turn answered so far.
        requests_total: requests this turn sends.
        tokens: tokens generated for the run by this process (0 where the backend counts none).
        elapsed_s: seconds since this process started the run's rollout.
        eta_s: estimated seconds left, or None while there is no basis for an estimate.
        eta_is_bound: ``eta_s`` is an upper bound (every episode may use its whole budget) at the
            rate so far, not an estimate.
    """

    label: str
    episodes_done: int
    episodes_total: int
    turn: int = 0
    requests_done: int = 0
    requests_total: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    eta_is_bound: bool = False


ProgressCallback = Callable[[RunProgress], None]


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
    config: EvalConfig,
    progress: Progress | None = None,
    *,
    on_progress: ProgressCallback | None = None,
) -> tuple[list[RunResult], list[Skipped]]:
    """Evaluate every checkpoint the config names; returns run results and skipped pairs.

    ``progress`` hears the episode count of each run; ``on_progress`` hears every
    :class:`RunProgress` (turns, requests, tokens, an estimate of the time left).
    """
    report = _Reporter(progress, on_progress)
    if config.samples < 1:
        raise ConfigError("--samples must be >= 1")
    index, count = config.shard
    if not 0 <= index < count:
        raise ConfigError(f"--shard {index}/{count}: need 0 <= i < N")
    results: list[RunResult] = []
    skipped_all: list[Skipped] = []
    series = checkpoints(config.model, config.backend)
    for position, checkpoint in enumerate(series, start=1):
        backend = create_backend(
            config.backend, checkpoint, base_model=config.base_model, **config.backend_settings
        )
        try:
            pairs, skipped = plan(config, backend)
            skipped_all.extend(skipped)
            identity = _checkpoint_identity(checkpoint, backend, config)
            for task, split in pairs:
                label = f"[{position}/{len(series)}] {Path(checkpoint).name} {task.id} {split}"
                results.append(_run_one(config, backend, identity, task, split, label, report))
        finally:
            backend.close()
    return results, skipped_all


# The describe() fields that change what an in-process backend answers (batch size and
# retries do not, beyond the floating-point noise the README documents).
def answer_identity(backend: Backend) -> dict[str, Any]:
    """What decides ``backend``'s answers beyond the checkpoint fingerprint, for the run key.

    Every backend names it (``Backend.identity``): an OpenAI-compatible server its normalised
    base URL, the served model's card and the server version; an in-process backend its dtype,
    device kind, chat template and context length; the scripted one its policy, error rate and
    seed. A backend without it is refused: a run key that misses what decides the answers
    would reuse another configuration's run.
    """
    identity = getattr(backend, "identity", None)
    if not callable(identity):
        raise ConfigError(
            f"backend {type(backend).__name__} has no identity() (what decides its answers, "
            "for the run key); a wrapper must forward it"
        )
    found = identity()
    if not isinstance(found, dict):
        raise ConfigError(
            f"backend {type(backend).__name__}.identity() returned {found!r}, not a dict"
        )
    return found


def _checkpoint_identity(checkpoint: str, backend: Backend, config: EvalConfig) -> dict[str, Any]:
    if config.backend == "scripted" or not Path(checkpoint).is_dir():
        fingerprint = hashlib.sha256(checkpoint.encode()).hexdigest()
        metadata: dict[str, Any] = {"path": checkpoint, **config.meta}
    else:
        from gpbench.harness.checkpoints import checkpoint_metadata
        from gpbench.harness.checkpoints import fingerprint as fp

        fingerprint = fp(Path(checkpoint), config.base_model)
        metadata = checkpoint_metadata(Path(checkpoint), config.meta, config.base_model)
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
    report: _Reporter,
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
        # What decides the backend's answers beyond the checkpoint: a run made at another dtype,
        # with another chat template, or by another server is another run, never a reused one.
        "backend_identity": answer_identity(backend),
        "samples": config.samples,
        "shard": list(config.shard),
        "backend": backend.name,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(identity["checkpoint"]).name or "model")
    # The digest tells runs apart; the name is for people, and file systems cap a name at 255
    # bytes (a scripted constant:<long text> policy would not fit).
    name = name[:MAX_NAME_CHARS]
    folder = config.runs_dir / f"{name}__{task.id}__{split}__{digest}"
    if config.resume and run_status(folder) == "complete":
        reused = _reuse(identity, task, split, folder, key)
        if reused is not None:
            return reused
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
    summary = SummaryBuilder(recognition=task.reports_recognition, per_step=task.multi_decision)
    shard_index, shard_count = config.shard
    positions = range(shard_index, n, shard_count)  # this shard's instance indices
    tally = _Tally(label, len(positions) * config.samples, budget, report)
    observe = summary.add
    if task.multi_decision:  # their estimate of the time left needs the turns per episode

        def observe(episode: Episode) -> None:
            summary.add(episode)
            tally.turns += len(episode.turns)

    # The summary is counted as episodes are written (resumed ones first), never kept in memory.
    writer = RunWriter(folder, run_spec, observe=observe, restart=not config.resume)
    tally.writer = writer
    try:
        _note_resume(writer)
        # Generated lazily: the loop pulls instances as episodes finish, so memory stays flat.
        work = (
            (instance, sample)
            for instance in task.dataset(split, seed, n, options).select(positions)
            for sample in range(config.samples)
            if (instance.uid, sample) not in writer.done
        )
        tally.start()
        stats = rollout(
            task,
            work,
            backend,
            config.sampling,
            budget=budget,
            mode=config.mode,
            run_seed=config.sampling_seed,
            on_episode=writer.append,
            on_turns=writer.record_turns,
            resume=writer.resume_turns,
            on_progress=tally.loop,
        )
        # run.json carries the summary, so a script reads the result without gpbench.
        writer.finish({"loop": asdict(stats), "summary": summary.summary()})
    finally:
        writer.close()
    # Summarised from the records as they were written (in file order), not read back: reading
    # them again cost a fifth of a scripted run.
    return RunResult(identity["checkpoint"], task.id, split, folder, summary.summary(), False)


def _reuse(
    identity: dict[str, Any], task: TaskSpec, split: str, folder: Path, key: dict[str, Any]
) -> RunResult | None:
    """The result of a complete run of this key, checked; None when it must be resumed.

    A run that fails the check (a torn or missing line, a repeated or foreign episode) is
    resumed, with a one-line warning; a folder of another run key is left to the writer, which
    refuses it.
    """
    spec = read_run_spec(folder)
    if spec.get("run_key") != json.loads(json.dumps(key)):
        return None
    try:
        summary = summarize(
            read_episodes(folder, spec),
            recognition=task.reports_recognition,
            per_step=task.multi_decision,
        )
    except RunIntegrityError as exc:
        where = f"{exc.path}:{exc.line}" if exc.line else exc.path
        logger.warning("warning: %s %s; resuming the run to repair it", where, exc.problem)
        return None
    return RunResult(identity["checkpoint"], task.id, split, folder, summary, True)


def _note_resume(writer: RunWriter) -> None:
    """One line each for what resuming a run changed: a lock taken over, lines dropped."""
    if writer.took_over is not None:
        logger.warning(
            "note: %s: took over the lock of %s, which no longer runs",
            writer.folder,
            writer.took_over.describe(),
        )
    for repair in writer.repairs:
        logger.warning("warning: %s: %s", writer.folder, repair)


class _Reporter:
    """Both progress callbacks of :func:`evaluate`, either of them optional."""

    def __init__(self, progress: Progress | None, on_progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.on_progress = on_progress

    def __call__(self, event: RunProgress) -> None:
        if self.progress is not None:
            self.progress(event.label, event.episodes_done, event.episodes_total)
        if self.on_progress is not None:
            self.on_progress(event)


class _Tally:
    """One run's progress events, from its writer's count of episodes written."""

    def __init__(self, label: str, total: int, budget: int, report: _Reporter) -> None:
        self.label, self.total, self.budget = label, total, budget
        self.report = report
        self.writer: RunWriter | None = None
        self.turns = 0  # turns of the episodes written (counted for multi-decision tasks only)

    @property
    def episodes(self) -> int:
        return self.writer.episodes_written if self.writer is not None else 0

    def start(self) -> None:
        self.report(RunProgress(self.label, self.episodes, self.total))

    def loop(self, state: LoopProgress) -> None:
        eta, bound = self._eta(state)
        self.report(
            RunProgress(
                self.label,
                self.episodes,
                self.total,
                state.turn,
                state.requests_done,
                state.requests_total,
                state.tokens,
                state.elapsed_s,
                eta,
                bound,
            )
        )

    def _eta(self, state: LoopProgress) -> tuple[float | None, bool]:
        """Seconds left at the rate so far: a bound for one-decision tasks (each episode may use
        its whole budget), else from the mean turns of the episodes finished so far."""
        if not state.requests_answered:
            return None, False
        per_request = state.elapsed_s / state.requests_answered
        unstarted = max(0, self.total - self.episodes - state.episodes_live)
        if state.attempts_left is not None:
            return (state.attempts_left + unstarted * self.budget) * per_request, True
        if not self.episodes:
            return None, False
        mean = self.turns / self.episodes
        left = (unstarted + state.episodes_live) * mean - state.turns_in_flight
        return max(0.0, left) * per_request, False


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4"`` -> ``(1, 4)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or int(match.group(2)) < 1 or int(match.group(1)) >= int(match.group(2)):
        raise ConfigError(f"--shard expects i/N with 0 <= i < N, got {text!r}")
    return int(match.group(1)), int(match.group(2))
