"""What the main job found, read from its run folders: the controls' separation, the study's direction.

- :func:`controls_separation`: the memorizer against the rule-follower on each split (paired
  on the same instances: both rates with Wilson intervals, the exact McNemar test) and the
  share of ``ood-rule`` episodes with an answer flagged ``train_rule_answer`` (right only if
  J/Q/K were 10). The controls are *separated* when, on ``id-heldout`` and ``ood-rule``, the
  rule-follower's interval lies wholly above the memorizer's, and the memorizer's flag share
  interval lies wholly above the rule-follower's: what a benchmark that tells memorization from
  generalization must show.
- :func:`study_direction`: per split, the init, the last SFT and the last RL checkpoint; each
  series' change from the init (McNemar, init against it), and RL's change minus SFT's, which
  from one shared init is RL's last rate minus SFT's last rate on the same instances: Newcombe's
  paired interval and the exact McNemar test between the two.

Only complete runs are read (:func:`gpbench.reports.inputs.load_runs`); a run a reading needs
that is missing is a one-line error, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import GpbenchError
from gpbench.records import Episode
from gpbench.reports.inputs import Run, find_run_folders, load_runs
from gpbench.stats import mcnemar_exact_p, paired_difference_interval, percent, wilson_interval

SHIFT_FLAG = "train_rule_answer"
"""The flag of an answer that is right only under the training rule (J/Q/K = 10)."""


@dataclass(frozen=True)
class Rate:
    """Successes of ``n`` episodes with their Wilson 95% interval."""

    successes: int
    n: int
    low: float
    high: float

    @classmethod
    def of(cls, hits: int, n: int) -> Rate:
        """The rate of ``hits`` in ``n`` with its interval."""
        low, high = wilson_interval(hits, n)
        return cls(hits, n, low, high)

    @property
    def rate(self) -> float:
        """The success rate."""
        return self.successes / self.n

    def text(self) -> str:
        """``25.0% [17.5, 34.3]``."""
        return f"{percent(self.rate)} [{percent(self.low, sign='')}, {percent(self.high, sign='')}]"


@dataclass(frozen=True)
class Paired:
    """B against A on the same instances: B's rate minus A's, its interval and the McNemar p."""

    difference: float
    low: float
    high: float
    a_only: int
    b_only: int
    p_value: float


def paired(a: Sequence[Episode], b: Sequence[Episode]) -> Paired:
    """Pair two runs' episodes by instance; refuses runs of different instances."""
    by_a, by_b = _by_uid(a), _by_uid(b)
    if by_a.keys() != by_b.keys():
        raise GpbenchError(
            "a paired reading needs runs of the same instances (same split, seed and -n)"
        )
    both = sum(by_a[u] and by_b[u] for u in by_a)
    a_only = sum(by_a[u] and not by_b[u] for u in by_a)
    b_only = sum(by_b[u] and not by_a[u] for u in by_a)
    neither = len(by_a) - both - a_only - b_only
    low, high = paired_difference_interval(both, a_only, b_only, neither)
    return Paired(
        (b_only - a_only) / len(by_a), low, high, a_only, b_only, mcnemar_exact_p(a_only, b_only)
    )


def _by_uid(episodes: Sequence[Episode]) -> dict[str, bool]:
    found = {e.uid: e.correct for e in episodes}
    if len(found) != len(episodes):
        raise GpbenchError("a paired reading needs one sample per instance")
    return found


def _success(episodes: Sequence[Episode]) -> Rate:
    return Rate.of(sum(e.correct for e in episodes), len(episodes))


def _flagged(episodes: Sequence[Episode], flag: str) -> Rate:
    hits = sum(any(flag in t["verdict"].get("flags", ()) for t in e.turns) for e in episodes)
    return Rate.of(hits, len(episodes))


def _runs(runs_dir: Path) -> list[Run]:
    runs, _ = load_runs(find_run_folders([runs_dir]))
    if not runs:
        raise GpbenchError(f"no complete run folder under {runs_dir}")
    return runs


def _metadata(run: Run) -> dict[str, Any]:
    meta = run.spec.get("checkpoint", {}).get("metadata") or {}
    return meta if isinstance(meta, dict) else {}


def _split_of(run: Run) -> str:
    splits = run.spec.get("splits") or []
    if len(splits) != 1:
        raise GpbenchError(f"{run.folder} is not a run of one split")
    return str(splits[0])


def _pick(found: dict[tuple[str, str], Run], key: tuple[str, str], what: str) -> Run:
    if key not in found:
        raise GpbenchError(f"no complete run of {what} on {key[1]}; run the main job again")
    return found[key]


@dataclass(frozen=True)
class ControlSplit:
    """The two controls on one split."""

    split: str
    memorizer: Rate
    rule_follower: Rate
    comparison: Paired
    memorizer_flagged: Rate
    rule_follower_flagged: Rate


@dataclass(frozen=True)
class Separation:
    """The controls on every split, and whether the benchmark told them apart (with why not)."""

    splits: list[ControlSplit]
    separated: bool
    failures: list[str]

    def to_json(self) -> dict[str, Any]:
        """JSON-able data."""
        return asdict(self)


def controls_separation(runs_dir: Path, splits: Iterable[str]) -> Separation:
    """Read the controls' runs under ``runs_dir`` (named by ``gpbench eval --meta control=NAME``)."""
    found: dict[tuple[str, str], Run] = {}
    for run in _runs(runs_dir):
        name = _metadata(run).get("control")
        if name in ("memorizer", "rule-follower"):
            found[(name, _split_of(run))] = run
    rows, failures = [], []
    for split in splits:
        mem = _pick(found, ("memorizer", split), "the memorizer").episodes
        rule = _pick(found, ("rule-follower", split), "the rule-follower").episodes
        row = ControlSplit(
            split,
            _success(mem),
            _success(rule),
            paired(mem, rule),
            _flagged(mem, SHIFT_FLAG),
            _flagged(rule, SHIFT_FLAG),
        )
        rows.append(row)
        if split == "id":
            continue
        if not row.rule_follower.low > row.memorizer.high:
            failures.append(
                f"{split}: the rule-follower's success {row.rule_follower.text()} does not lie "
                f"above the memorizer's {row.memorizer.text()}"
            )
        if split.startswith("ood-rule") and not (
            row.memorizer_flagged.low > row.rule_follower_flagged.high
        ):
            failures.append(
                f"{split}: the memorizer's {SHIFT_FLAG} share {row.memorizer_flagged.text()} "
                f"does not lie above the rule-follower's {row.rule_follower_flagged.text()}"
            )
    return Separation(rows, not failures, failures)


def format_separation(s: Separation) -> str:
    """The controls' table, one line per split, then the verdict."""
    lines = [
        f"{'split':<11} {'memorizer':<22} {'rule-follower':<22} {'McNemar p':>9}  "
        f"{SHIFT_FLAG} (memorizer / rule-follower)"
    ]
    for r in s.splits:
        lines.append(
            f"{r.split:<11} {r.memorizer.text():<22} {r.rule_follower.text():<22} "
            f"{r.comparison.p_value:9.2g}  {r.memorizer_flagged.text()} / "
            f"{r.rule_follower_flagged.text()}"
        )
    n = s.splits[0].memorizer.n if s.splits else 0
    if s.separated:
        lines.append(f"controls separated (n={n} per split): intervals disjoint, flags apart")
    else:
        lines += ["CONTROLS NOT SEPARATED:", *(f"  {f}" for f in s.failures)]
    return "\n".join(lines)


@dataclass(frozen=True)
class StudySplit:
    """The study on one split: where each series started and ended, and their difference."""

    split: str
    init: Rate
    sft: Rate
    rl: Rate
    sft_change: Paired
    rl_change: Paired
    rl_minus_sft: Paired


@dataclass(frozen=True)
class Direction:
    """The study's reading on every split."""

    splits: list[StudySplit]
    sft_step: int
    rl_step: int

    def to_json(self) -> dict[str, Any]:
        """JSON-able data."""
        return asdict(self)


def study_direction(runs_dir: Path, splits: Iterable[str]) -> Direction:
    """Read the study's runs under ``runs_dir``: checkpoint metadata ``method`` init, sft, rl
    (the last saved step of each series)."""
    found: dict[tuple[str, str], Run] = {}
    steps: dict[tuple[str, str], int] = {}
    for run in _runs(runs_dir):
        meta = _metadata(run)
        method, step = meta.get("method"), int(meta.get("step") or 0)
        if method in ("init", "sft", "rl"):
            key = (str(method), _split_of(run))
            if key not in steps or step > steps[key]:
                found[key], steps[key] = run, step
    rows = []
    for split in splits:
        init = _pick(found, ("init", split), "the init").episodes
        sft = _pick(found, ("sft", split), "the SFT series").episodes
        rl = _pick(found, ("rl", split), "the RL series").episodes
        rows.append(
            StudySplit(
                split,
                _success(init),
                _success(sft),
                _success(rl),
                paired(init, sft),
                paired(init, rl),
                paired(sft, rl),
            )
        )
    split_names = [r.split for r in rows]
    return Direction(
        rows,
        max(steps.get(("sft", s), 0) for s in split_names),
        max(steps.get(("rl", s), 0) for s in split_names),
    )


def _points(p: Paired) -> str:
    return (
        f"{100 * p.difference:+.1f} [{100 * p.low:+.1f}, {100 * p.high:+.1f}] (p={p.p_value:.2g})"
    )


def format_direction(d: Direction) -> str:
    """The study's table (success with intervals; changes in points with paired intervals and
    McNemar p) and one sentence per OOD split stating the direction found."""
    lines = [
        f"{'split':<11} {'init':<22} {'SFT (last)':<22} {'RL (last)':<22} "
        "SFT change / RL change / RL-SFT, points [95% CI] (McNemar p)"
    ]
    for r in d.splits:
        lines.append(
            f"{r.split:<11} {r.init.text():<22} {r.sft.text():<22} {r.rl.text():<22} "
            f"{_points(r.sft_change)} / {_points(r.rl_change)} / {_points(r.rl_minus_sft)}"
        )
    for r in d.splits:
        if not r.split.startswith("ood"):
            continue
        diff = r.rl_minus_sft
        if diff.p_value >= 0.05:
            reading = f"no significant difference at n={r.init.n}"
        elif diff.difference > 0:
            reading = "RL ends higher than SFT"
        else:
            reading = "SFT ends higher than RL"
        lines.append(
            f"direction on {r.split}: RL's change minus SFT's = {_points(diff)}: {reading}"
        )
    return "\n".join(lines)
