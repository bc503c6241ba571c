"""Episodes grouped by checkpoint x task x split: the unit of every row, point and gallery pick.

A point is a checkpoint as one run recorded it: its fingerprint *and* its metadata (step,
compute, method ...), so one checkpoint evaluated with ``--meta step=200`` and with
``--meta step=300`` is two points, each placed by its own run's metadata. Runs of one point on
one task split are joined (unmerged shards, say) as long as no ``(uid, sample)`` pair appears
twice; two runs that both hold a pair are refused, because counting an instance twice would
shrink the intervals.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import GpbenchError
from gpbench.records import Episode
from gpbench.reports.inputs import Run
from gpbench.reports.series import (
    Checkpoint,
    SeriesRule,
    checkpoint_of,
    is_init,
    series_of,
    x_value,
)
from gpbench.runs.summary import summarize
from gpbench.serialization import escape_surrogates
from gpbench.tasks.registry import get_task, task_ids

SUCCESS = "success"


@dataclass(frozen=True)
class Rate:
    """A rate with its 95% interval (``k`` of ``n``)."""

    k: int
    n: int
    rate: float
    low: float
    high: float

    @classmethod
    def from_summary(cls, entry: dict[str, Any]) -> Rate:
        """From a :func:`~gpbench.runs.summary.summarize` rate entry."""
        low, high = entry["ci95"]
        return cls(int(entry["k"]), int(entry["n"]), float(entry["rate"]), low, high)


@dataclass(frozen=True)
class Group:
    """The episodes of one checkpoint on one task split, with their summary.

    Attributes:
        series: the series the checkpoint belongs to.
        checkpoint: the checkpoint.
        task, task_version, split: what was evaluated.
        init: the checkpoint is the shared initial point of every series.
        x: its position on the report's x axis (None when its metadata cannot say).
        multi_decision: the task has several decision points (V-IRL).
        metric: the paper's headline metric on this task split (``success`` or
            ``per_step_accuracy``: the task's ``headline_metric``).
        recognition: the task scores card recognition (gp-vl).
        memorization_flags: the task's memorization flags, each with the splits it counts on.
        folders: the run folders the episodes came from.
        options: the task options the runs recorded (None when a run did not record them).
        episodes: the episodes.
        summary: :func:`~gpbench.runs.summary.summarize` of the episodes.
    """

    series: str
    checkpoint: Checkpoint
    task: str
    task_version: int
    split: str
    init: bool
    x: float | None
    multi_decision: bool
    metric: str
    recognition: bool
    memorization_flags: Mapping[str, tuple[str, ...]]
    folders: list[Path]
    options: dict[str, Any] | None
    episodes: list[Episode]
    summary: dict[str, Any]

    @property
    def ood(self) -> bool:
        """The split is an out-of-distribution split (``ood-*``)."""
        return self.split.startswith("ood")

    def headline(self) -> Rate:
        """The headline metric's value with its interval."""
        return Rate.from_summary(self.summary[self.metric])


def build_groups(runs: Sequence[Run], rules: Sequence[SeriesRule], axis: str) -> list[Group]:
    """Group the episodes of ``runs`` by series x checkpoint x task x split, in report order."""
    checkpoints = _unique_names([checkpoint_of(run) for run in runs])
    # Keyed by the point (fingerprint and metadata), never by the fingerprint alone: a run's own
    # metadata decides where its episodes are plotted.
    parts: dict[tuple[str, str, str, str, int, str], list[tuple[Run, list[Episode]]]] = {}
    points: dict[tuple[str, str], Checkpoint] = {}
    for run, checkpoint in zip(runs, checkpoints, strict=True):
        series = series_of(run, checkpoint, rules)
        point = (checkpoint.key, _metadata_key(checkpoint.metadata))
        points.setdefault(point, checkpoint)
        by_split: dict[tuple[str, int, str], list[Episode]] = {}
        for episode in run.episodes:
            key = (episode.task, episode.task_version, episode.split)
            by_split.setdefault(key, []).append(episode)
        for (task, version, split), episodes in by_split.items():
            parts.setdefault((series, *point, task, version, split), []).append((run, episodes))
    groups = [
        _group(series, points[key, metadata], task, version, split, members, axis)
        for (series, key, metadata, task, version, split), members in parts.items()
    ]
    return sorted(groups, key=_order([rule.name for rule in rules]))


def _metadata_key(metadata: dict[str, Any]) -> str:
    """Metadata as canonical text: equal metadata, equal key (key order does not count)."""
    return json.dumps(metadata, sort_keys=True, default=str)


def _group(
    series: str,
    checkpoint: Checkpoint,
    task_id: str,
    version: int,
    split: str,
    members: list[tuple[Run, list[Episode]]],
    axis: str,
) -> Group:
    task = get_task(f"{task_id}@{version}")
    seen: dict[tuple[str, int], Path] = {}
    episodes: list[Episode] = []
    for run, run_episodes in members:
        for episode in run_episodes:
            pair = (episode.uid, episode.sample)
            if pair in seen and seen[pair] != run.folder:
                raise GpbenchError(
                    f"runs {seen[pair]} and {run.folder} both hold {checkpoint.name} on "
                    f"{task_id} {split} instance {episode.index} sample {episode.sample}; "
                    f"pass only one of them"
                )
            seen[pair] = run.folder
            episodes.append(episode)
    recognition = task.reports_recognition
    init = is_init(series, checkpoint)
    options = members[0][0].spec.get("options")
    return Group(
        series=series,
        checkpoint=checkpoint,
        task=task_id,
        task_version=version,
        split=split,
        init=init,
        x=x_value(checkpoint, axis, init=init, rl_lambda=task.rl_lambda),
        multi_decision=task.multi_decision,
        metric=task.headline_metric(split),
        recognition=recognition,
        memorization_flags=task.memorization_flags,
        folders=[run.folder for run, _ in members],
        options=dict(options) if isinstance(options, dict) else None,
        episodes=episodes,
        summary=summarize(episodes, recognition=recognition, per_step=task.multi_decision),
    )


def _unique_names(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    """Checkpoints whose names tell different checkpoints apart (``sft/checkpoint-100``)."""
    keys_by_name: dict[str, set[str]] = {}
    for c in checkpoints:
        keys_by_name.setdefault(c.name, set()).add(c.key)
    renamed = []
    for c in checkpoints:
        name = c.name
        if len(keys_by_name[name]) > 1:
            name = escape_surrogates("/".join(Path(c.path).parts[-2:])) or c.name
            clashes = {o.key for o in checkpoints if "/".join(Path(o.path).parts[-2:]) == name}
            if len(clashes) > 1:
                name = f"{name} ({c.key[:8]})"
        renamed.append(dataclasses.replace(c, name=name))
    return renamed


def _order(rule_names: list[str]) -> Any:
    ids = task_ids()

    def key(g: Group) -> tuple[Any, ...]:
        splits = list(get_task(f"{g.task}@{g.task_version}").splits)
        if g.init:
            series_rank = -1
        elif g.series in rule_names:
            series_rank = rule_names.index(g.series)
        else:
            series_rank = len(rule_names)
        return (
            ids.index(g.task) if g.task in ids else len(ids),
            g.task,
            g.task_version,
            splits.index(g.split) if g.split in splits else len(splits),
            g.split,
            series_rank,
            g.series,
            g.x is None,
            g.x or 0.0,
            g.checkpoint.name,
        )

    return key
