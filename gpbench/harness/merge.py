"""Joining the shard runs of one evaluation (``--shard i/N``) into a single run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpbench.errors import GpbenchError
from gpbench.harness.writer import write_run
from gpbench.records import Episode
from gpbench.runs.read import read_episodes, read_run_spec
from gpbench.runs.summary import summarize
from gpbench.tasks.registry import get_task


def merge_runs(folders: list[Path], out: Path, *, overwrite: bool = False) -> int:
    """Merge complete shard runs that belong together; returns the number of episodes.

    Shards belong together when their run keys are equal apart from the shard, and together
    they are exactly ``0/N .. N-1/N``. Each shard is checked against its run.json as it is read
    (every episode its own, once, and all of them: a one-line error otherwise), so the merged
    run holds each instance and sample of the whole run exactly once. Episodes are ordered by
    instance index and sample, as an unsharded run would list them after sorting.
    """
    if not folders:
        raise GpbenchError("give the shard run folders to merge")
    specs = [read_run_spec(folder) for folder in folders]
    for folder, spec in zip(folders, specs, strict=True):
        if spec.get("status") != "complete":
            raise GpbenchError(f"{folder} is not complete; finish it (re-run its command) first")
        if "run_key" not in spec:
            raise GpbenchError(f"{folder} is not a `gpbench eval` run (no run_key)")
    base = _without_shard(specs[0]["run_key"])
    for folder, spec in zip(folders, specs, strict=True):
        if _without_shard(spec["run_key"]) != base:
            differing = sorted(k for k in base if base[k] != _without_shard(spec["run_key"]).get(k))
            raise GpbenchError(
                f"{folder} does not belong with {folders[0]}: they differ in {', '.join(differing)}"
            )
    shards = sorted(tuple(spec["run_key"]["shard"]) for spec in specs)
    count = shards[0][1]
    if shards != [(i, count) for i in range(count)]:
        found = ", ".join(f"{i}/{n}" for i, n in shards)
        raise GpbenchError(f"shards {found} are not exactly 0/{count} .. {count - 1}/{count}")
    episodes: list[Episode] = [
        e for folder, spec in zip(folders, specs, strict=True) for e in read_episodes(folder, spec)
    ]
    episodes.sort(key=lambda e: (e.index, e.sample))
    merged: dict[str, Any] = {
        **specs[0],
        "run_key": {**specs[0]["run_key"], "shard": [0, 1]},
        "shard": [0, 1],
        "merged_from": [str(f) for f in folders],
        "status": "complete",
    }
    merged.pop("loop", None)
    [(task_id, version)] = specs[0]["tasks"].items()
    task = get_task(f"{task_id}@{version}")
    merged["summary"] = summarize(
        episodes, recognition=task.reports_recognition, per_step=task.multi_decision
    )
    return write_run(out, merged, episodes, overwrite=overwrite)


def _without_shard(key: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in key.items() if k != "shard"}
