"""The one statistics module: intervals and tests used by score, eval, report and regress.

>>> low, high = wilson_interval(9, 10)
>>> round(low, 3), round(high, 3)
(0.596, 0.982)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

Z_95 = 1.959963984540054


def percent(rate: float | None, width: int = 0, sign: str = "%") -> str:
    """A rate as a percentage with one decimal (``-`` for none), right-aligned in ``width``.

    >>> percent(0.1234), percent(None), percent(0.5, width=6, sign="")
    ('12.3%', '-', '  50.0')
    """
    text = "-" if rate is None else f"{100 * rate:.1f}{sign}"
    return text.rjust(width)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial rate (95% by default); ``(0, 1)`` when ``n == 0``."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At k = 0 and k = n one bound is exactly 0 or 1 in real arithmetic; floating point leaves
    # residue such as 0.9999999999999999 there, so those bounds are set exactly.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def binomial_two_sided_p(successes: int, n: int, p: float) -> float:
    """Exact two-sided binomial test: P(outcomes at most as likely as the observed one)."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if p in (0.0, 1.0):  # a degenerate distribution: the observation is certain or impossible
        return 1.0 if successes == (0 if p == 0.0 else n) else 0.0
    # The pmf in log space: math.comb(n, k) overflows a float beyond n ~ 1,030.
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    log_pmf = [
        log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
        for k in range(n + 1)
    ]
    # Relative tolerance as in R's binom.test, so ties in floating point count as equal.
    bound = log_pmf[successes] + math.log1p(1e-7)
    return min(1.0, math.fsum(math.exp(v) for v in log_pmf if v <= bound))


def mcnemar_exact_p(b: int, c: int) -> float:
    """Exact two-sided McNemar test for paired outcomes, from the discordant pair counts.

    ``b`` pairs where only A succeeded, ``c`` where only B did. Under the null hypothesis each
    discordant pair goes either way with probability 1/2, so the p-value is the two-sided exact
    binomial test of ``b`` in ``b + c`` at 1/2, computed in exact integer arithmetic.

    >>> mcnemar_exact_p(1, 9), mcnemar_exact_p(0, 0)
    (0.021484375, 1.0)
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def paired_difference_interval(
    both: int, only_a: int, only_b: int, neither: int, z: float = Z_95
) -> tuple[float, float]:
    """Interval of B's success rate minus A's on paired outcomes (Newcombe 1998, method 10).

    The counts are the four kinds of pair: both solved, only A, only B, neither. Each rate gets
    its Wilson interval, and the two are combined with the correlation of the pairs (phi, taken
    as 0 when a margin is empty), so the interval shrinks when A and B agree on most instances,
    as a paired design should, and stays inside [-1, 1].

    >>> low, high = paired_difference_interval(10, 0, 10, 10)
    >>> round(low, 3), round(high, 3)
    (0.154, 0.474)
    """
    counts = (both, only_a, only_b, neither)
    if min(counts) < 0 or sum(counts) == 0:
        raise ValueError(f"need counts >= 0 and at least one pair, got {counts}")
    n = sum(counts)
    rate_a, rate_b = (both + only_a) / n, (both + only_b) / n
    low_a, high_a = wilson_interval(both + only_a, n, z)
    low_b, high_b = wilson_interval(both + only_b, n, z)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins else 0.0
    difference = rate_b - rate_a
    below = _newcombe_half(rate_b - low_b, high_a - rate_a, phi)
    above = _newcombe_half(high_b - rate_b, rate_a - low_a, phi)
    return max(-1.0, difference - below), min(1.0, difference + above)


def _newcombe_half(b_side: float, a_side: float, phi: float) -> float:
    """One side of Newcombe's interval: the two rates' opposite interval arms combined with the
    pairs' correlation (floored at 0 against rounding)."""
    return math.sqrt(max(0.0, b_side**2 - 2 * phi * b_side * a_side + a_side**2))


def clustered_bootstrap_interval(
    clusters: list[list[bool]],
    *,
    resamples: int = 2000,
    key: str = "gpbench/bootstrap",
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a success rate, resampling instances (clusters).

    With k samples per instance, the samples of one instance are not independent, so whole
    instances are resampled. The random stream is keyed, so the interval is reproducible, and
    the clusters' order does not matter (see :func:`clustered_bootstrap_from_counts`).
    """
    counts = [(sum(c), len(c)) for c in clusters]
    return clustered_bootstrap_from_counts(
        counts, resamples=resamples, key=key, confidence=confidence
    )


def clustered_bootstrap_from_counts(
    counts: Sequence[tuple[int, int]],
    *,
    resamples: int = 2000,
    key: str = "gpbench/bootstrap",
    confidence: float = 0.95,
) -> tuple[float, float]:
    """:func:`clustered_bootstrap_interval` from ``(successes, samples)`` per instance.

    The bootstrap only needs each cluster's counts, so streaming summaries keep just those. The
    counts are sorted before resampling: the keyed stream picks positions, so without a fixed
    order the same episodes read in another order (a resumed run, merged shards, a file
    rewritten) would give another interval. Sorted, the interval depends only on the counts.
    """
    from gpbench.generators.rng import KeyedRng

    kept = sorted((k, n) for k, n in counts if n)
    if not kept:
        return 0.0, 1.0
    rng = KeyedRng(key)
    sums = [k for k, _ in kept]
    sizes = [n for _, n in kept]
    m = len(kept)
    rates = []
    for _ in range(resamples):
        picks = [rng.below(m) for _ in range(m)]
        rates.append(sum(sums[i] for i in picks) / sum(sizes[i] for i in picks))
    rates.sort()
    tail = (1 - confidence) / 2
    low = rates[math.floor(tail * (resamples - 1))]
    high = rates[math.ceil((1 - tail) * (resamples - 1))]
    return low, high
