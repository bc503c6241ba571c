"""The statistics of a regression: band, exact binomial at the edge, bootstrap, Holm, metrics."""

from __future__ import annotations

from typing import Any

import pytest

from gpbench.generators.rng import KeyedRng
from gpbench.records import Episode
from gpbench.regress.checks import (
    Observation,
    bootstrap_p_value,
    compare,
    first_statuses,
    holm,
    information,
    observe,
    p_value,
)
from gpbench.regress.manifest import Expectation
from gpbench.stats import binomial_two_sided_p


def _obs(k: int, n: int, metric: str = "success") -> Observation:
    return Observation(metric, [[True]] * k + [[False]] * (n - k))


def _verdict(obs: Observation, rate: float, tol: float, alpha: float = 0.01) -> Any:
    [result] = holm([compare(obs, Expectation(obs.metric, rate, tol), key="t")], alpha)
    return result


def test_inside_the_band_passes_without_a_test() -> None:
    for k in (10, 12, 15):  # 10%..15% against 12% ± 3 points
        result = _verdict(_obs(k, 100), 0.12, 0.03)
        assert result.verdict == "pass" and result.p is None and result.direction == ""


def test_outside_the_band_tests_against_the_nearest_edge_with_the_exact_binomial() -> None:
    result = _verdict(_obs(25, 100), 0.12, 0.03)
    assert result.method == "exact binomial" and result.direction == "above"
    assert result.p == binomial_two_sided_p(25, 100, 0.15)  # the edge, not the expectation
    assert result.verdict == "regression"
    low = _verdict(_obs(2, 100), 0.12, 0.03)
    assert low.direction == "below" and low.p == binomial_two_sided_p(2, 100, 0.09)
    assert low.verdict == "regression"


def test_just_outside_the_band_with_few_instances_is_inconclusive() -> None:
    result = _verdict(_obs(4, 20), 0.12, 0.03)  # 20% against a band up to 15%, n=20
    assert result.verdict == "inconclusive" and result.p is not None and result.p >= 0.01


def test_band_is_clipped_to_zero_and_one() -> None:
    assert _verdict(_obs(0, 100), 0.02, 0.05).verdict == "pass"
    assert _verdict(_obs(100, 100), 0.98, 0.05).verdict == "pass"
    assert _verdict(_obs(0, 100), 1.0, 0.0).verdict == "regression"


def test_noise_alone_rarely_flags_and_a_real_shift_usually_does() -> None:
    """Monte Carlo at the band edge (the worst case of the null) and at a shift of 3 tolerances."""
    rng = KeyedRng("tests/regress/power")
    n, trials, alpha = 200, 300, 0.05

    def draw(rate: float) -> int:
        return sum(rng.below(1_000_000) < rate * 1_000_000 for _ in range(n))

    at_edge = [_verdict(_obs(draw(0.35), n), 0.30, 0.05, alpha).verdict for _ in range(trials)]
    false_alarms = at_edge.count("regression") / trials
    assert false_alarms <= alpha  # the two-sided p at the edge bounds the one-sided tail
    shifted = [_verdict(_obs(draw(0.45), n), 0.30, 0.05, alpha).verdict for _ in range(trials)]
    assert shifted.count("regression") / trials >= 0.8


def test_holm_adjusts_within_a_checkpoint() -> None:
    raw = [0.01, 0.04, 0.03]
    comparisons = [
        compare(_obs(90, 100, f"m{i}"), Expectation(f"m{i}", 0.5, 0.0), key="t") for i in range(3)
    ]
    comparisons = [
        c.__class__(**{**c.__dict__, "p": p}) for c, p in zip(comparisons, raw, strict=True)
    ]
    adjusted = [c.p_adjusted for c in holm(comparisons, 0.05)]
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])
    assert [c.verdict for c in holm(comparisons, 0.05)] == [
        "regression",
        "inconclusive",
        "inconclusive",
    ]
    # A passing comparison still counts in the family; information rows do not.
    passing = compare(_obs(50, 100, "ok"), Expectation("ok", 0.5, 0.1), key="t")
    info = information(_obs(1, 100, "paper"), 0.5)
    out = holm([comparisons[0], passing, info], 0.05)
    assert out[0].p_adjusted == pytest.approx(0.02) and out[1].verdict == "pass"
    assert out[2].verdict == "info" and out[2].p is None


def test_several_samples_per_instance_use_the_clustered_bootstrap() -> None:
    # 60 instances x 4 samples; half the instances always solved, half never: 50%, but only
    # 60 independent units. Against a band ending at 30%, the bootstrap decides.
    clusters = [[True] * 4] * 30 + [[False] * 4] * 30
    obs = Observation("success", clusters)
    result = _verdict(obs, 0.25, 0.05)
    assert result.method == "clustered bootstrap" and result.verdict == "regression"
    p = p_value(obs, 0.30, key="t")
    assert p == bootstrap_p_value(clusters, 0.30, key="t")  # keyed: reproducible
    # Treating the 160 samples as independent would overstate the evidence.
    assert binomial_two_sided_p(120, 240, 0.30) < p
    # Independent-looking samples near the edge: not significant.
    mixed = Observation(
        "success", [[True, False, False, False]] * 10 + [[True, True, False, False]] * 10
    )
    assert _verdict(mixed, 0.30, 0.05).verdict in ("pass", "inconclusive")


def test_the_bootstrap_p_value_does_not_depend_on_the_order_of_episodes() -> None:
    clusters = (
        [[True, False, True]] * 7 + [[False] * 3] * 9 + [[True] * 3] * 5 + [[True, False]] * 4
    )
    shuffled = clusters[::2] + clusters[1::2]
    forward = bootstrap_p_value(clusters, 0.35, key="t")
    assert bootstrap_p_value(list(reversed(clusters)), 0.35, key="t") == forward
    assert bootstrap_p_value(shuffled, 0.35, key="t") == forward


def test_degenerate_clusters_fall_back_to_one_trial_per_instance() -> None:
    obs = Observation("truncation_rate", [[True, True]] * 30)  # every resample is 100%
    assert p_value(obs, 0.9, key="t") == binomial_two_sided_p(30, 30, 0.9)
    assert bootstrap_p_value(obs.clusters, 0.9, key="t") < p_value(obs, 0.9, key="t")


def _episode(uid: str, turns: list[tuple[str, bool, Any]], budget: int = 2) -> Episode:
    records = []
    for attempt, (status, truncated, formula) in enumerate(turns, start=1):
        records.append(
            {
                "attempt": attempt,
                "response": "",
                "verdict": {
                    "correct": status == "correct",
                    "status": status,
                    "statuses": [status],
                    "reward": 0.0,
                    "feedback": "",
                    "extracted": {"formula": formula},
                    "flags": [],
                },
                "output_truncated": truncated,
            }
        )
    correct = any(t[0] == "correct" for t in turns)
    return Episode(
        uid=uid,
        task="gp-l",
        task_version=1,
        split="id",
        seed=42,
        index=0,
        sample=0,
        turns=records,
        correct=correct,
        return_=0.0,
        attempts_used=len(turns),
        first_try_correct=bool(turns) and turns[0][0] == "correct",
        stop_reason="solved" if correct else "budget_exhausted",
        budget=budget,
    )


def test_metrics_read_first_attempts_and_episodes() -> None:
    episodes = [
        _episode("a", [("illegal_formula", True, None), ("correct", False, "1+2")]),
        _episode("b", [("wrong_value", False, "1+1"), ("wrong_numbers", False, "2")]),
        _episode("c", [("correct", False, "3*8")]),
        _episode("d", []),  # an episode that errored before any attempt
    ]
    rates = {
        m: observe(episodes, m)
        for m in (
            "success",
            "first_try_success",
            "parse_rate",
            "truncation_rate",
            "status:illegal_formula",
            "status:wrong_numbers",
            "status:none",
        )
    }
    assert (rates["success"].k, rates["success"].n) == (2, 4)
    assert rates["first_try_success"].k == 1
    assert rates["parse_rate"].k == 2  # a and d found no answer at the first attempt
    assert rates["truncation_rate"].k == 1
    assert rates["status:illegal_formula"].k == 1
    assert rates["status:wrong_numbers"].k == 0  # only at a second attempt
    assert rates["status:none"].k == 1
    assert first_statuses(episodes) == ["correct", "illegal_formula", "none", "wrong_value"]
    per_step = observe(episodes, "per_step_accuracy")
    assert (per_step.k, per_step.n, per_step.clustered) == (2, 5, True)
    with pytest.raises(ValueError, match="unknown metric"):
        observe(episodes, "accuracy")


def test_samples_of_one_instance_form_one_cluster() -> None:
    episodes = [
        _episode("a", [("correct", False, "x")]),
        _episode("a", [("wrong_value", False, "y")]),
    ]
    obs = observe(episodes, "success")
    assert obs.clusters == [[True, False]] and obs.clustered
