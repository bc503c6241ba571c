"""inspect logs of gpbench's tasks read back as gpbench's Episode records.

Every sample scored by gpbench's inspect scorer carries its episode record in the score's
metadata (the same record ``gpbench eval`` writes), with inspect's epoch as the sample number
(``--epochs 4`` gives samples 0-3 of each instance). A sample that failed in inspect (a model
error) has no score: it becomes an episode stopped by ``error``, with no turns and inspect's
error message.
"""

from __future__ import annotations

from pathlib import Path

from gpbench.errors import ConfigError, MissingDependencyError
from gpbench.records import Episode
from gpbench.serialization import from_dict
from gpbench.tasks.registry import get_task

try:
    from inspect_ai.log import EvalSample, read_eval_log
except ImportError:
    raise MissingDependencyError("inspect_ai", "inspect", "reading inspect logs") from None


def episodes_from_log(path: Path | str) -> list[Episode]:
    """The episode of every sample in the inspect log at ``path`` (``.eval`` or ``.json``)."""
    log = read_eval_log(str(path))
    if log.samples is None:
        raise ConfigError(f"{path} holds no samples (a header-only log?); pass the full log file")
    budget = log.eval.task_args.get("budget")
    return [_episode(sample, str(path), budget) for sample in log.samples]


def _episode(sample: EvalSample, path: str, budget: int | None) -> Episode:
    score = (sample.scores or {}).get("gpbench")
    if score is not None and score.metadata and "episode" in score.metadata:
        return from_dict(Episode, score.metadata["episode"], path=path)
    meta = sample.metadata
    if sample.error is None or "task" not in meta:
        raise ConfigError(
            f"{path}: sample {sample.id} has no gpbench score; read logs of gpbench's inspect "
            "tasks (inspect eval gpbench/...)"
        )
    task = get_task(str(meta["task"]))
    return Episode(
        uid=str(meta["uid"]),
        task=task.id,
        task_version=task.version,
        split=str(meta["split"]),
        seed=int(meta["seed"]),
        index=int(meta["index"]),
        sample=sample.epoch - 1,
        turns=[],
        correct=False,
        return_=0.0,
        attempts_used=0,
        first_try_correct=False,
        stop_reason="error",
        budget=budget or task.max_attempts,
        error=sample.error.message,
    )
