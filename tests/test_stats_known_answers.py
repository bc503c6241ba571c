"""Known answers for the statistics every report rests on (values worked out by hand)."""

from __future__ import annotations

import math

import pytest

from gpbench.stats import (
    binomial_two_sided_p,
    mcnemar_exact_p,
    paired_difference_interval,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # p = 1/2: centre 1/2, half-width z*sqrt(1/40 + z^2/400) / (1 + z^2/10).
        (5, 10, 0.236593, 0.763407),
        # k = 0: the upper end is z^2 / (n + z^2) = 3.841459 / 13.841459.
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        # p = 9/10 (the module's doctest, to more places).
        (9, 10, 0.595850, 0.982124),
        (0, 0, 0.0, 1.0),
    ],
)
def test_wilson_interval_known_values(k: int, n: int, low: float, high: float) -> None:
    got_low, got_high = wilson_interval(k, n)
    assert got_low == pytest.approx(low, abs=1e-6)
    assert got_high == pytest.approx(high, abs=1e-6)


def test_wilson_upper_end_at_zero_successes_is_z_squared_over_n_plus_z_squared() -> None:
    z2 = 1.959963984540054**2
    for n in (1, 7, 50, 1000):
        assert wilson_interval(0, n)[1] == pytest.approx(z2 / (n + z2), rel=1e-12)


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (1, 9, 22 / 1024),  # 2 * (C(10,0) + C(10,1)) / 2^10
        (0, 5, 2 / 32),  # 2 * C(5,0) / 2^5
        (2, 8, 112 / 1024),  # 2 * (1 + 10 + 45) / 2^10
        (8, 2, 112 / 1024),  # symmetric in b and c
        (3, 3, 1.0),  # 2 * P(X <= 3 | n=6) = 2 * 42/64 > 1: capped at 1
        (0, 0, 1.0),  # no discordant pairs: no evidence either way
        (0, 1, 1.0),  # 2 * 1/2
        (0, 10, 2 / 1024),
    ],
)
def test_mcnemar_exact_known_values(b: int, c: int, p: float) -> None:
    assert mcnemar_exact_p(b, c) == pytest.approx(p, rel=1e-12)


def test_mcnemar_equals_the_exact_binomial_test_at_one_half() -> None:
    for b in range(0, 30, 3):
        for c in range(0, 30, 4):
            if b + c:
                assert mcnemar_exact_p(b, c) == pytest.approx(
                    binomial_two_sided_p(b, b + c, 0.5), rel=1e-9
                )


def test_mcnemar_stays_exact_for_large_counts() -> None:
    # Integer arithmetic: no underflow where 0.5**n would vanish in floating point.
    p = mcnemar_exact_p(400, 700)
    assert 0 < p < 1e-15
    assert math.isfinite(p)
    assert mcnemar_exact_p(1000, 1000) == 1.0


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="discordant counts"):
        mcnemar_exact_p(-1, 3)


@pytest.mark.parametrize("n", [1, 7, 100, 12_345])
def test_wilson_bounds_at_the_edges_are_exact(n: int) -> None:
    assert wilson_interval(0, n)[0] == 0.0
    assert wilson_interval(n, n)[1] == 1.0


def test_binomial_test_handles_large_n_and_degenerate_p() -> None:
    # math.comb(n, k) as a float overflows beyond n ~ 1,030; the log-space pmf does not.
    assert binomial_two_sided_p(5_000, 10_000, 0.5) == pytest.approx(1.0)
    assert binomial_two_sided_p(4_700, 10_000, 0.5) < 1e-8
    assert binomial_two_sided_p(0, 50, 0.0) == 1.0 and binomial_two_sided_p(1, 50, 0.0) == 0.0
    assert binomial_two_sided_p(50, 50, 1.0) == 1.0
    # Small n agrees with the direct sum over the pmf.
    direct = sum(
        math.comb(20, k) * 0.3**k * 0.7 ** (20 - k)
        for k in range(21)
        if math.comb(20, k) * 0.3**k * 0.7 ** (20 - k)
        <= math.comb(20, 11) * 0.3**11 * 0.7**9 * (1 + 1e-7)
    )
    assert binomial_two_sided_p(11, 20, 0.3) == pytest.approx(direct, rel=1e-12)


def test_paired_difference_interval_matches_newcombes_worked_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:2635, the worked example: 36 pairs where both
    # succeed, 12 only the second, 2 only the first, none neither; method 10 gives 0.0569-0.3404.
    low, high = paired_difference_interval(36, 2, 12, 0)
    assert (round(low, 4), round(high, 4)) == (0.0569, 0.3404)


def test_paired_difference_interval_is_antisymmetric_and_holds_the_estimate() -> None:
    for counts in [(5, 3, 9, 20), (0, 0, 7, 3), (0, 4, 0, 0), (10, 10, 10, 10)]:
        both, only_a, only_b, neither = counts
        low, high = paired_difference_interval(*counts)
        swapped = paired_difference_interval(both, only_b, only_a, neither)
        assert swapped == pytest.approx((-high, -low))
        estimate = (only_b - only_a) / sum(counts)
        assert -1.0 <= low <= estimate <= high <= 1.0
    with pytest.raises(ValueError):
        paired_difference_interval(0, 0, 0, 0)
