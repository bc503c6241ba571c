"""The data behind every report figure, as plain records (figures draw these and nothing else).

Each function takes the report's groups (:mod:`gpbench.reports.groups`) and returns one record
per figure, so tests assert on exactly what a plot shows and ``report/figures/*.json`` keep it.

- :func:`success_curves`: per task, ID and OOD success against x, a line per series with 95%
  intervals (the paper's figure). The shared initial checkpoint starts every series' line.
- :func:`ood_change`: per task, each series' OOD change from its first checkpoint to its last
  (the paper's "RL +3.5 vs SFT -8.1"), with the exact McNemar test when both were run on the same
  instances.
- :func:`success_by_attempt`: success within k attempts, k = 1 .. budget (the verification budget).
- :func:`recognition_vs_success`: gp-vl card recognition against success, per checkpoint x split.
- :func:`memorization_shares`: the share of OOD failed attempts flagged ``train_rule_answer``,
  ``verbatim_training_formula`` or ``train_vocabulary_action``, along each series.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpbench.reports.groups import SUCCESS, Group, Rate
from gpbench.runs.summary import rate_with_interval
from gpbench.stats import mcnemar_exact_p, wilson_interval

METRIC_LABELS = {
    "success": "success",
    "per_step_accuracy": "per-step accuracy",
}


@dataclass(frozen=True)
class Point:
    """A rate at a checkpoint: ``k`` of ``n`` with its 95% interval ``[low, high]``."""

    x: float
    rate: float
    low: float
    high: float
    k: int
    n: int
    checkpoint: str
    init: bool = False


@dataclass(frozen=True)
class Line:
    """A series' points in x order."""

    series: str
    points: list[Point]


@dataclass(frozen=True)
class Panel:
    """One split's lines (``metric`` names the rate: success or per-step accuracy)."""

    split: str
    metric: str
    lines: list[Line]


@dataclass(frozen=True)
class CurveFigure:
    """ID and OOD curves of one task version: a panel per split."""

    name: str
    task: str
    x_axis: str
    panels: list[Panel]


@dataclass(frozen=True)
class Change:
    """A series' change on one OOD split from its first checkpoint to its last.

    ``delta`` is ``final.rate - initial.rate``; ``path`` the change at every checkpoint as
    ``(x, rate - initial.rate)``. ``p_value`` is the exact McNemar test of initial against final
    on the same instances, with ``initial_only``/``final_only`` the instances only one of them
    solved; all three are None when the instances differ, when there are several samples per
    instance (the pairs would not be independent) or when the metric is per-step.
    """

    split: str
    series: str
    metric: str
    initial: Point
    final: Point
    delta: float
    path: list[tuple[float, float]]
    p_value: float | None = None
    initial_only: int | None = None
    final_only: int | None = None


@dataclass(frozen=True)
class ChangeFigure:
    """OOD change from the initial checkpoint, per split and series, for one task version."""

    name: str
    task: str
    x_axis: str
    changes: list[Change]


@dataclass(frozen=True)
class AttemptPoint:
    """Success within ``k`` attempts, with its 95% interval."""

    k: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class AttemptCurve:
    """One checkpoint's success by attempt on one split."""

    series: str
    checkpoint: str
    x: float | None
    init: bool
    points: list[AttemptPoint]


@dataclass(frozen=True)
class AttemptPanel:
    """One split's curves, a curve per checkpoint."""

    split: str
    curves: list[AttemptCurve]


@dataclass(frozen=True)
class AttemptFigure:
    """Success by attempt k (the verification budget) for one task version."""

    name: str
    task: str
    panels: list[AttemptPanel]


@dataclass(frozen=True)
class RecognitionPoint:
    """A checkpoint's card recognition accuracy and success on one split."""

    series: str
    checkpoint: str
    split: str
    x: float | None
    recognition: float
    success: float
    low: float
    high: float


@dataclass(frozen=True)
class RecognitionFigure:
    """Recognition accuracy against success (gp-vl): perception failures against reasoning."""

    name: str
    task: str
    points: list[RecognitionPoint]


@dataclass(frozen=True)
class MemorizationPanel:
    """The share of failed attempts carrying ``flag`` on ``split``, a line per series.

    In each point, ``k`` is the flagged failed attempts and ``n`` all failed attempts.
    """

    flag: str
    split: str
    lines: list[Line]


@dataclass(frozen=True)
class MemorizationFigure:
    """Memorization made visible: flagged shares of OOD failures along each series."""

    name: str
    task: str
    x_axis: str
    panels: list[MemorizationPanel] = field(default_factory=list)


FigureData = CurveFigure | ChangeFigure | AttemptFigure | RecognitionFigure | MemorizationFigure


def all_figure_data(groups: Sequence[Group], x_axis: str) -> list[FigureData]:
    """Every figure the report draws, in report order (a figure with nothing to show is left out)."""
    figures: list[FigureData] = []
    figures.extend(success_curves(groups, x_axis))
    figures.extend(ood_change(groups, x_axis))
    figures.extend(success_by_attempt(groups))
    figures.extend(recognition_vs_success(groups))
    figures.extend(memorization_shares(groups, x_axis))
    return figures


def figure_json(figure: FigureData) -> dict[str, Any]:
    """A figure's data as JSON-able dicts, tagged with its kind (``report/figures/NAME.json``)."""
    return {"kind": type(figure).__name__, **dataclasses.asdict(figure)}


def success_curves(groups: Sequence[Group], x_axis: str) -> list[CurveFigure]:
    """Per task version, the headline metric against x: a panel per split, a line per series."""
    figures = []
    for (task, version), task_groups in _by_task(groups).items():
        panels = []
        for split, split_groups in _by_split(task_groups).items():
            lines = [
                Line(series, [_point(g, g.headline()) for g in members])
                for series, members in _series_lines(split_groups)
            ]
            if lines:
                panels.append(Panel(split, split_groups[0].metric, lines))
        if panels:
            figures.append(CurveFigure(f"success-{task}-v{version}", task, x_axis, panels))
    return figures


def ood_change(groups: Sequence[Group], x_axis: str) -> list[ChangeFigure]:
    """Per task version, each series' change on each OOD split from its first checkpoint."""
    figures = []
    for (task, version), task_groups in _by_task(groups).items():
        changes = []
        for split, split_groups in _by_split(task_groups).items():
            if not split.startswith("ood"):
                continue
            for series, members in _series_lines(split_groups):
                if len(members) < 2:
                    continue
                changes.append(_change(split, series, members))
        if changes:
            figures.append(ChangeFigure(f"ood-change-{task}-v{version}", task, x_axis, changes))
    return figures


def _change(split: str, series: str, members: list[Group]) -> Change:
    first, last = members[0], members[-1]
    initial, final = _point(first, first.headline()), _point(last, last.headline())
    path = [(g.x or 0.0, g.headline().rate - initial.rate) for g in members]
    change = Change(split, series, first.metric, initial, final, final.rate - initial.rate, path)
    if first.metric != SUCCESS:
        return change
    # McNemar pairs must be independent: one sample per instance, the same instances.
    before = {e.uid: e.correct for e in first.episodes}
    after = {e.uid: e.correct for e in last.episodes}
    if (
        before.keys() != after.keys()
        or len(before) != len(first.episodes)
        or len(after) != len(last.episodes)
    ):
        return change
    initial_only = sum(1 for uid, ok in before.items() if ok and not after[uid])
    final_only = sum(1 for uid, ok in before.items() if not ok and after[uid])
    return Change(
        split,
        series,
        first.metric,
        initial,
        final,
        final.rate - initial.rate,
        path,
        mcnemar_exact_p(initial_only, final_only),
        initial_only,
        final_only,
    )


def success_by_attempt(groups: Sequence[Group]) -> list[AttemptFigure]:
    """Per task version with one decision per episode, success within k attempts per checkpoint."""
    figures = []
    for (task, version), task_groups in _by_task(groups).items():
        if task_groups[0].multi_decision:
            continue  # budgets apply per decision point: success by attempt is not defined
        panels = [
            AttemptPanel(split, [_attempt_curve(g) for g in split_groups])
            for split, split_groups in _by_split(task_groups).items()
        ]
        figures.append(AttemptFigure(f"by-attempt-{task}-v{version}", task, panels))
    return figures


def _attempt_curve(g: Group) -> AttemptCurve:
    budget = max(e.budget for e in g.episodes)
    solved_at: dict[str, list[int | None]] = {}
    for e in g.episodes:
        first = next((i for i, t in enumerate(e.turns) if t["verdict"]["correct"]), None)
        solved_at.setdefault(e.uid, []).append(first)
    points = []
    for k in range(1, budget + 1):
        outcomes = {
            uid: [s is not None and s < k for s in samples] for uid, samples in solved_at.items()
        }
        rate = Rate.from_summary(rate_with_interval(outcomes))
        points.append(AttemptPoint(k, rate.rate, rate.low, rate.high))
    return AttemptCurve(g.series, g.checkpoint.name, g.x, g.init, points)


def recognition_vs_success(groups: Sequence[Group]) -> list[RecognitionFigure]:
    """Per task version that scores card recognition, a point per checkpoint x split."""
    figures = []
    for (task, version), task_groups in _by_task(groups).items():
        points = [
            RecognitionPoint(
                g.series,
                g.checkpoint.name,
                g.split,
                g.x,
                float(g.summary["recognition_accuracy"]),
                rate.rate,
                rate.low,
                rate.high,
            )
            for g in task_groups
            if g.recognition
            for rate in [g.headline()]
        ]
        if points:
            figures.append(RecognitionFigure(f"recognition-{task}-v{version}", task, points))
    return figures


def memorization_shares(groups: Sequence[Group], x_axis: str) -> list[MemorizationFigure]:
    """Per task version, the flagged share of failed attempts on the splits each flag concerns."""
    figures = []
    for (task, version), task_groups in _by_task(groups).items():
        panels = []
        splits = _by_split(task_groups)
        for flag, flag_splits in task_groups[0].memorization_flags.items():
            for split in flag_splits:
                if split not in splits:
                    continue
                lines = []
                for series, members in _series_lines(splits[split]):
                    points = [p for g in members if (p := _flag_point(g, flag)) is not None]
                    if points:
                        lines.append(Line(series, points))
                if lines:
                    panels.append(MemorizationPanel(flag, split, lines))
        if panels:
            name = f"memorization-{task}-v{version}"
            figures.append(MemorizationFigure(name, task, x_axis, panels))
    return figures


def _flag_point(g: Group, flag: str) -> Point | None:
    failed = flagged = 0
    for e in g.episodes:
        for t in e.turns:
            verdict = t["verdict"]
            if not verdict["correct"]:
                failed += 1
                flagged += flag in verdict.get("flags", [])
    if not failed:
        return None  # no failures: the share is undefined
    low, high = wilson_interval(flagged, failed)
    return Point(
        g.x or 0.0, flagged / failed, low, high, flagged, failed, g.checkpoint.name, g.init
    )


def _point(g: Group, rate: Rate) -> Point:
    return Point(
        g.x or 0.0, rate.rate, rate.low, rate.high, rate.k, rate.n, g.checkpoint.name, g.init
    )


def _by_task(groups: Sequence[Group]) -> dict[tuple[str, int], list[Group]]:
    out: dict[tuple[str, int], list[Group]] = {}
    for g in groups:
        out.setdefault((g.task, g.task_version), []).append(g)
    return out


def _by_split(groups: Sequence[Group]) -> dict[str, list[Group]]:
    out: dict[str, list[Group]] = {}
    for g in groups:
        out.setdefault(g.split, []).append(g)
    return out


def _series_lines(groups: Sequence[Group]) -> list[tuple[str, list[Group]]]:
    """Each series' groups in x order, started by the initial checkpoint (groups without x drop).

    The initial checkpoint (series or method ``init``) starts every other series whose first
    point lies after it; with no other series it is a line of its own.
    """
    placed = [g for g in groups if g.x is not None]
    init = sorted((g for g in placed if g.init), key=lambda g: g.x or 0.0)
    series: dict[str, list[Group]] = {}
    for g in placed:
        if not g.init:
            series.setdefault(g.series, []).append(g)
    if not series:
        return [(init[0].series, init)] if init else []
    lines = []
    for name, members in series.items():
        members = sorted(members, key=lambda g: g.x or 0.0)
        start = [g for g in init if (g.x or 0.0) < (members[0].x or 0.0)]
        lines.append((name, start + members))
    return lines
