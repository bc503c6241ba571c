"""Compare a run with a checkpoint's expectations: the metrics, the tests, and what a regression is.

Metrics (rates in [0, 1]; one observation per episode unless said otherwise):
    ``success``             the episode was solved at some attempt (V-IRL: route success).
    ``first_try_success``   the first attempt was correct.
    ``parse_rate``          the verifier found an answer in the first attempt (GeneralPoints: a
                            formula, GP-VL also cards; V-IRL: an action from the action space).
    ``truncation_rate``     the first attempt was cut off at the token limit.
    ``status:<name>``       the first attempt's status was ``<name>`` (``illegal_formula``, ...).
    ``per_step_accuracy``   V-IRL only: share of attempts that were correct, retries counted;
                            one observation per attempt, so always clustered by instance.
    First attempts only, because their prompt is the same in every run: later attempts depend on
    what the model said before, so one early change would ripple through the rest of an episode.
    Where success is near zero (an untrained or tiny model) its test has no power downwards, and
    the status rates, parse rate and truncation rate carry the signal.

The test (one per expected metric):
    The expectation is a rate ``e`` and a tolerance ``t``: the band ``[e - t, e + t]`` (clipped to
    [0, 1]) holds the rates that are acceptable, however they arise (another machine's floating
    point, another sample of hands). The null hypothesis is that the checkpoint's true rate lies in
    the band. An observed rate inside the band passes. Outside it, the p-value is that of the
    nearest edge ``b``: the exact two-sided binomial test of ``k`` successes in ``n`` at ``b``
    (:func:`gpbench.stats.binomial_two_sided_p`) with one observation per instance, else the
    clustered bootstrap (instances resampled, a fixed key; the p-value is twice the smaller share
    of resampled rates on either side of ``b``, with the +1 correction). Its one-sided tail is at
    most this p, so under the null a check fails with probability at most alpha.
    The p-values of one checkpoint's checks are adjusted by Holm's step-down method (valid under
    any dependence; status rates are dependent, they add up to 1), so alpha is the family-wise
    false-alarm rate per checkpoint.

Verdicts:
    ``pass``          observed rate inside the band.
    ``regression``    outside the band and Holm-adjusted p < alpha: a real change, not noise.
    ``inconclusive``  outside the band but p >= alpha: could be noise; more instances decide.
    ``info``          a paper figure shown for comparison, not tested.
    A regression is a significant departure in either direction: a score that jumps up is as much
    a sign that the stack changed (a lenient verifier, a leaked answer) as one that drops.

>>> obs = Observation("success", [[True]] * 1 + [[False]] * 199)
>>> [c.verdict for c in holm([compare(obs, Expectation("success", 0.115, 0.05), key="k")], 0.01)]
['regression']
>>> [c.verdict for c in holm([compare(obs, Expectation("success", 0.02, 0.02), key="k")], 0.01)]
['pass']
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gpbench.generators.rng import KeyedRng
from gpbench.records import Episode
from gpbench.regress.manifest import Expectation
from gpbench.stats import binomial_two_sided_p

BOOTSTRAP_RESAMPLES = 4000
# Below this expected success, --update also records status, parse and truncation rates.
NEAR_ZERO_SUCCESS = 0.05
_ANSWER_FIELDS = ("formula", "cards", "action")


@dataclass(frozen=True)
class Observation:
    """Outcomes of one metric, grouped by instance (one list per instance, in run order)."""

    metric: str
    clusters: list[list[bool]]

    @property
    def k(self) -> int:
        """Observations that count (successes, truncated answers, ...)."""
        return sum(sum(c) for c in self.clusters)

    @property
    def n(self) -> int:
        """All observations."""
        return sum(len(c) for c in self.clusters)

    @property
    def rate(self) -> float:
        """``k / n`` (0 when there is nothing)."""
        return self.k / self.n if self.n else 0.0

    @property
    def clustered(self) -> bool:
        """Some instance holds several observations (samples, or attempts for per-step)."""
        return any(len(c) > 1 for c in self.clusters)


@dataclass(frozen=True)
class Comparison:
    """One metric of one check compared with its expectation.

    Attributes:
        metric: the metric's name.
        expected, tol: the expectation (None for a paper figure shown for information).
        observed: the observed rate; ``k``, ``n``, ``instances`` behind it.
        method: ``exact binomial``, ``clustered bootstrap`` or ``-`` (not tested).
        p: the test's p-value against the nearest band edge (None inside the band or untested).
        p_adjusted: Holm-adjusted p (None when ``p`` is).
        verdict: ``pass``, ``regression``, ``inconclusive`` or ``info``.
        direction: ``above`` or ``below`` the band, or ``""``.
    """

    metric: str
    expected: float | None
    tol: float | None
    observed: float
    k: int
    n: int
    instances: int
    method: str
    p: float | None
    p_adjusted: float | None
    verdict: str
    direction: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict of the fields."""
        return {
            "metric": self.metric,
            "expected": self.expected,
            "tol": self.tol,
            "observed": self.observed,
            "k": self.k,
            "n": self.n,
            "instances": self.instances,
            "method": self.method,
            "p": self.p,
            "p_adjusted": self.p_adjusted,
            "verdict": self.verdict,
            "direction": self.direction,
        }


def observe(episodes: Sequence[Episode], metric: str) -> Observation:
    """The outcomes of ``metric`` in ``episodes``, clustered by instance uid."""
    clusters: dict[str, list[bool]] = collections.defaultdict(list)
    status = metric.removeprefix("status:") if metric.startswith("status:") else None
    for episode in episodes:
        cluster = clusters[episode.uid]
        if metric == "per_step_accuracy":
            cluster.extend(bool(t["verdict"]["correct"]) for t in episode.turns)
            continue
        if metric == "success":
            cluster.append(episode.correct)
            continue
        if metric == "first_try_success":
            cluster.append(episode.first_try_correct)
            continue
        first = episode.turns[0] if episode.turns else None
        if metric == "parse_rate":
            cluster.append(first is not None and _answer_found(first))
        elif metric == "truncation_rate":
            cluster.append(first is not None and bool(first.get("output_truncated")))
        elif status is not None:
            cluster.append(_first_status(episode) == status)
        else:
            raise ValueError(f"unknown metric {metric!r}")
    return Observation(metric, [c for c in clusters.values() if c])


def first_statuses(episodes: Iterable[Episode]) -> list[str]:
    """The distinct statuses of first attempts (``none`` for an episode without attempts)."""
    return sorted({_first_status(e) for e in episodes})


def compare(obs: Observation, expectation: Expectation, *, key: str) -> Comparison:
    """Test ``obs`` against ``expectation`` (before the Holm adjustment; see :func:`holm`)."""
    if obs.n == 0:
        raise ValueError(f"no observations of {obs.metric}: the run holds no episodes")
    low = max(0.0, expectation.rate - expectation.tol)
    high = min(1.0, expectation.rate + expectation.tol)
    rate = obs.rate
    base = Comparison(
        metric=obs.metric,
        expected=expectation.rate,
        tol=expectation.tol,
        observed=rate,
        k=obs.k,
        n=obs.n,
        instances=len(obs.clusters),
        method="clustered bootstrap" if obs.clustered else "exact binomial",
        p=None,
        p_adjusted=None,
        verdict="pass",
        direction="",
    )
    if low <= rate <= high:
        return base
    edge, direction = (high, "above") if rate > high else (low, "below")
    return replace(base, p=p_value(obs, edge, key=key), verdict="outside", direction=direction)


def information(obs: Observation, paper_rate: float) -> Comparison:
    """A paper figure shown beside the observed rate, not tested."""
    return Comparison(
        metric=obs.metric,
        expected=paper_rate,
        tol=None,
        observed=obs.rate,
        k=obs.k,
        n=obs.n,
        instances=len(obs.clusters),
        method="-",
        p=None,
        p_adjusted=None,
        verdict="info",
        direction="",
    )


def holm(comparisons: Sequence[Comparison], alpha: float) -> list[Comparison]:
    """Holm-adjust the p-values of one checkpoint's tested comparisons and give the verdicts.

    Comparisons inside their band count in the family with p = 1 (they are never rejected);
    ``info`` comparisons are not tests and are returned unchanged.

    >>> c = Comparison("m", 0.5, 0.0, 0.9, 9, 10, 10, "exact binomial", 0.02, None, "outside", "above")
    >>> [x.verdict for x in holm([c], 0.05)], [x.verdict for x in holm([c, c, c], 0.05)]
    (['regression'], ['inconclusive', 'inconclusive', 'inconclusive'])
    """
    tested = [i for i, c in enumerate(comparisons) if c.verdict != "info"]

    def p_of(index: int) -> float:
        p = comparisons[index].p
        return 1.0 if p is None else p

    order = sorted(tested, key=p_of)
    m = len(order)
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_of(index)))
        adjusted[index] = running
    out = []
    for index, comparison in enumerate(comparisons):
        if comparison.verdict != "outside":
            out.append(comparison)
            continue
        p_adjusted = adjusted[index]
        verdict = "regression" if p_adjusted < alpha else "inconclusive"
        out.append(replace(comparison, p_adjusted=p_adjusted, verdict=verdict))
    return out


def p_value(obs: Observation, edge: float, *, key: str) -> float:
    """Two-sided p-value of ``obs`` against the rate ``edge``.

    One observation per instance: the exact binomial test. Several: the clustered bootstrap; when
    every instance has the same rate the bootstrap has no spread to measure, and the exact test
    counting each instance once (the most conservative reading of within-instance dependence)
    is used instead.
    """
    if not obs.clustered:
        return binomial_two_sided_p(obs.k, obs.n, edge)
    rates = {sum(c) / len(c) for c in obs.clusters}
    if len(rates) == 1:
        m = len(obs.clusters)
        return binomial_two_sided_p(round(rates.pop() * m), m, edge)
    return bootstrap_p_value(obs.clusters, edge, key=key)


def bootstrap_p_value(
    clusters: list[list[bool]], value: float, *, key: str, resamples: int = BOOTSTRAP_RESAMPLES
) -> float:
    """Two-sided percentile-bootstrap p-value of a clustered rate against ``value``.

    Instances are resampled with replacement from a stream keyed by ``key`` (the scheme of
    :func:`gpbench.stats.clustered_bootstrap_interval`), so the p-value is reproducible.
    ``p = min(1, 2 (min(#{r* <= value}, #{r* >= value}) + 1) / (B + 1))``. The clusters are
    sorted first, so the p-value does not depend on the order the episodes were written in (a
    resumed or merged run gives the same p as an uninterrupted one).
    """
    counts = sorted((sum(c), len(c)) for c in clusters)
    sums = [n for n, _ in counts]
    sizes = [size for _, size in counts]
    below = above = 0
    for picks in _resamples(len(clusters), resamples, key):
        rate = sum(sums[i] for i in picks) / sum(sizes[i] for i in picks)
        below += rate <= value
        above += rate >= value
    return min(1.0, 2 * (min(below, above) + 1) / (resamples + 1))


@functools.lru_cache(maxsize=8)
def _resamples(m: int, resamples: int, key: str) -> tuple[tuple[int, ...], ...]:
    # Shared by the metrics of one check (same instances, same key): drawn once.
    rng = KeyedRng(key)
    return tuple(tuple(rng.below(m) for _ in range(m)) for _ in range(resamples))


def _first_status(episode: Episode) -> str:
    return str(episode.turns[0]["verdict"]["status"]) if episode.turns else "none"


def _answer_found(turn: dict[str, Any]) -> bool:
    extracted = turn["verdict"].get("extracted") or {}
    return any(extracted.get(name) is not None for name in _ANSWER_FIELDS)
