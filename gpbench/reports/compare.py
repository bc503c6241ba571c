"""Paired comparison of two runs on identical instances (``gpbench compare``).

Episodes are paired by ``(uid, sample)``. The exact McNemar test looks only at the discordant
pairs (one run solved the instance, the other did not), which is what makes a paired
comparison more sensitive than two separate intervals. Runs of different task versions, or on
different instances, are refused: their difference would mix the models with the items.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import GpbenchError
from gpbench.records import Episode
from gpbench.reports.inputs import Run, load_run
from gpbench.stats import mcnemar_exact_p, percent, wilson_interval

_SETTINGS = ("max_attempts", "verifier_mode", "sampling", "samples", "options")


@dataclass(frozen=True)
class PairDiff:
    """One instance (and sample) in both runs."""

    uid: str
    index: int
    sample: int
    a_correct: bool
    b_correct: bool
    a_statuses: list[str]
    b_statuses: list[str]


@dataclass(frozen=True)
class Comparison:
    """Run A against run B on the same instances.

    Attributes:
        run_a, run_b: the run folders.
        task, task_version, splits: what both evaluated.
        pairs: paired episodes.
        a_success, b_success: successes in A and in B.
        a_ci95, b_ci95: their Wilson 95% intervals (episodes treated as independent).
        difference: B's success rate minus A's.
        a_only, b_only: discordant pairs, solved only by A / only by B.
        p_value: the exact two-sided McNemar test (approximate with several samples per
            instance: the samples of one instance are not independent pairs).
        samples_per_instance: the most samples any instance has.
        settings_differ: run settings that differ (budget, verifier mode, decoding, ...).
        diffs: every pair, in instance order.
    """

    run_a: str
    run_b: str
    task: str
    task_version: int
    splits: list[str]
    pairs: int
    a_success: int
    b_success: int
    a_ci95: tuple[float, float]
    b_ci95: tuple[float, float]
    difference: float
    a_only: int
    b_only: int
    p_value: float
    samples_per_instance: int
    settings_differ: dict[str, list[Any]]
    diffs: list[PairDiff]

    def to_json(self) -> dict[str, Any]:
        """The comparison as JSON-able data."""
        return asdict(self)


def compare_runs(folder_a: Path, folder_b: Path) -> Comparison:
    """Compare two complete runs of the same task version on the same instances."""
    a, b = load_run(folder_a), load_run(folder_b)
    for run in (a, b):
        status = run.spec.get("status", "complete")
        if status != "complete":
            raise GpbenchError(f"{run.folder} is {status}; finish it before comparing")
        if not run.episodes:
            raise GpbenchError(f"{run.folder} holds no episodes")
    task_a, task_b = _task(a), _task(b)
    if task_a != task_b:
        raise GpbenchError(
            f"cannot compare {folder_a} ({task_a[0]}@{task_a[1]}) with {folder_b} "
            f"({task_b[0]}@{task_b[1]}): a paired comparison needs one task version"
        )
    by_a, by_b = _pairs(a), _pairs(b)
    if by_a.keys() != by_b.keys():
        only_a, only_b = len(by_a.keys() - by_b.keys()), len(by_b.keys() - by_a.keys())
        raise GpbenchError(
            f"{folder_a} and {folder_b} hold different instances ({only_a} only in A, "
            f"{only_b} only in B); compare runs of the same split, seed, -n and --samples"
        )
    keys = sorted(by_a, key=lambda k: (by_a[k].index, k[1], k[0]))
    diffs = [_diff(by_a[k], by_b[k]) for k in keys]
    n = len(diffs)
    a_ok = sum(d.a_correct for d in diffs)
    b_ok = sum(d.b_correct for d in diffs)
    a_only = sum(d.a_correct and not d.b_correct for d in diffs)
    b_only = sum(d.b_correct and not d.a_correct for d in diffs)
    return Comparison(
        run_a=str(folder_a),
        run_b=str(folder_b),
        task=task_a[0],
        task_version=task_a[1],
        splits=sorted({e.split for e in a.episodes}),
        pairs=n,
        a_success=a_ok,
        b_success=b_ok,
        a_ci95=wilson_interval(a_ok, n),
        b_ci95=wilson_interval(b_ok, n),
        difference=(b_ok - a_ok) / n,
        a_only=a_only,
        b_only=b_only,
        p_value=mcnemar_exact_p(a_only, b_only),
        samples_per_instance=max(d.sample for d in diffs) + 1,
        settings_differ={
            key: [a.spec.get(key), b.spec.get(key)]
            for key in _SETTINGS
            if a.spec.get(key) != b.spec.get(key)
        },
        diffs=diffs,
    )


def _task(run: Run) -> tuple[str, int]:
    found = {(e.task, e.task_version) for e in run.episodes}
    if len(found) != 1:
        names = ", ".join(f"{t}@{v}" for t, v in sorted(found))
        raise GpbenchError(f"{run.folder} mixes tasks ({names}); compare runs of one task")
    return found.pop()


def _pairs(run: Run) -> dict[tuple[str, int], Episode]:
    pairs: dict[tuple[str, int], Episode] = {}
    for e in run.episodes:
        if (e.uid, e.sample) in pairs:
            raise GpbenchError(
                f"{run.folder} holds instance {e.index} sample {e.sample} twice; it is not one run"
            )
        pairs[(e.uid, e.sample)] = e
    return pairs


def _diff(a: Episode, b: Episode) -> PairDiff:
    return PairDiff(
        a.uid,
        a.index,
        a.sample,
        a.correct,
        b.correct,
        [t["verdict"]["status"] for t in a.turns],
        [t["verdict"]["status"] for t in b.turns],
    )


def format_comparison(c: Comparison, *, every_pair: bool = False) -> str:
    """A terminal report: the test, then the discordant pairs (or every pair)."""
    n = c.pairs
    a_low, a_high = (percent(x) for x in c.a_ci95)
    b_low, b_high = (percent(x) for x in c.b_ci95)
    lines = [
        f"{c.task}@{c.task_version} {', '.join(c.splits)}: {n} paired episodes",
        f"  A {c.run_a}",
        f"    success {percent(c.a_success / n)}  95% CI [{a_low}, {a_high}]  ({c.a_success}/{n})",
        f"  B {c.run_b}",
        f"    success {percent(c.b_success / n)}  95% CI [{b_low}, {b_high}]  ({c.b_success}/{n})",
        f"  B - A     {100 * c.difference:+.1f} points",
        f"  discordant: {c.a_only} solved only by A, {c.b_only} solved only by B",
        f"  exact McNemar p = {c.p_value:.4g} (two-sided)",
    ]
    if c.samples_per_instance > 1:
        lines.append(
            f"  note: {c.samples_per_instance} samples per instance are paired as if independent; "
            "read p as approximate"
        )
    for key, (value_a, value_b) in c.settings_differ.items():
        lines.append(f"  note: {key} differs (A {value_a}, B {value_b})")
    shown = c.diffs if every_pair else [d for d in c.diffs if d.a_correct != d.b_correct]
    if shown:
        lines.append("")
        lines.append(f"{'index':>5} {'sample':>6}  {'A':<3} {'B':<3} uid / A statuses / B statuses")
        for d in shown:
            lines.append(
                f"{d.index:>5} {d.sample:>6}  {_mark(d.a_correct):<3} {_mark(d.b_correct):<3} "
                f"{d.uid}  A: {','.join(d.a_statuses)}  B: {','.join(d.b_statuses)}"
            )
    elif not every_pair:
        lines.append("  no discordant pairs")
    return "\n".join(lines)


def _mark(correct: bool) -> str:
    return "ok" if correct else "x"
