"""Run summaries: counted one episode at a time, equal to the counts over the whole list."""

from __future__ import annotations

from typing import Any

from gpbench.records import Episode
from gpbench.runs.summary import SummaryBuilder, rate_with_interval, summarize
from gpbench.stats import clustered_bootstrap_interval, wilson_interval


def _turn(status: str, flags: tuple[str, ...] = (), truncated: bool = False) -> dict[str, Any]:
    verdict = {"correct": status == "correct", "status": status, "flags": list(flags)}
    return {"verdict": verdict, "output_truncated": truncated}


def _episode(uid: str, sample: int, statuses: list[str], budget: int = 3) -> Episode:
    turns = [_turn(s, ("train_rule_answer",) if s == "wrong_value" else ()) for s in statuses]
    correct = any(t["verdict"]["correct"] for t in turns)
    return Episode(
        uid=uid,
        task="gp-l",
        task_version=1,
        split="ood-rule",
        seed=0,
        index=0,
        sample=sample,
        turns=turns,
        correct=correct,
        return_=10.0 if correct else -1.0,
        attempts_used=len(turns),
        first_try_correct=turns[0]["verdict"]["correct"],
        stop_reason="correct" if correct else "budget",
        budget=budget,
    )


EPISODES = [
    _episode("a", 0, ["correct"]),
    _episode("b", 0, ["wrong_value", "correct"]),
    _episode("a", 1, ["illegal_formula", "wrong_value", "correct"]),
    _episode("c", 0, ["wrong_value", "wrong_value", "wrong_value"]),
    _episode("b", 1, ["correct"]),
    _episode("c", 1, ["illegal_formula", "correct"], budget=5),
]


def test_counts_match_the_episodes() -> None:
    summary = summarize(EPISODES)
    assert summary["episodes"] == 6 and summary["instances"] == 3
    assert summary["attempts"] == 12
    assert summary["statuses"] == {"correct": 5, "illegal_formula": 2, "wrong_value": 5}
    assert summary["flags"] == {"train_rule_answer": 5}
    # Solved at attempts 1, 2, 3, never, 1, 2; the largest budget (5) sets the columns.
    assert summary["success_by_attempt"] == {
        "1": 2 / 6,
        "2": 4 / 6,
        "3": 5 / 6,
        "4": 5 / 6,
        "5": 5 / 6,
    }
    assert summary["mean_return"] == (5 * 10.0 - 1.0) / 6


def test_intervals_are_the_clustered_bootstrap_over_instances() -> None:
    summary = summarize(EPISODES)
    clusters = [[True, True], [True, True], [False, True]]  # a, b, c
    assert summary["success"]["ci95"] == list(clustered_bootstrap_interval(clusters))
    assert summary["success"]["ci_method"] == "clustered-bootstrap"
    first = [[True, False], [False, True], [False, False]]
    assert summary["first_try_success"]["ci95"] == list(clustered_bootstrap_interval(first))
    assert summary["success"] == rate_with_interval(
        {"a": [True, True], "b": [True, True], "c": [False, True]}
    )


def test_one_sample_per_instance_uses_wilson() -> None:
    summary = summarize(EPISODES[:2] + EPISODES[3:4])
    assert summary["success"]["ci_method"] == "wilson"
    assert summary["success"]["ci95"] == list(wilson_interval(2, 3))


def test_the_builder_gives_each_prefix_its_summary() -> None:
    builder = SummaryBuilder(recognition=True)
    for count, episode in enumerate(EPISODES, start=1):
        builder.add(episode)
        assert builder.summary() == summarize(EPISODES[:count], recognition=True)
    assert builder.summary()["recognition_accuracy"] == 1.0


def test_per_step_counts_attempts_and_drops_attempt_columns() -> None:
    summary = summarize(EPISODES, per_step=True)
    assert "success_by_attempt" not in summary
    assert summary["per_step_accuracy"]["k"] == 5 and summary["per_step_accuracy"]["n"] == 12


def test_no_episodes() -> None:
    summary = summarize([])
    assert summary["episodes"] == 0 and summary["success"]["n"] == 0
    assert summary["success_by_attempt"] == {}


def _varied_episodes() -> list[Episode]:
    """12 instances x 3 samples with every success count from 0 to 3 (so order could matter)."""
    episodes = []
    for i in range(12):
        for sample in range(3):
            solved = sample < i % 4
            statuses = ["correct"] if solved else ["wrong_value", "illegal_formula", "wrong_value"]
            if solved and sample == 1:
                statuses = ["wrong_value", "correct"]
            episodes.append(_episode(f"uid-{i:02d}", sample, statuses))
    return episodes


def test_intervals_do_not_depend_on_the_order_of_episodes() -> None:
    # A resumed or merged run holds the same episodes in another order: same interval.
    episodes = _varied_episodes()
    orders = [
        episodes,
        list(reversed(episodes)),
        sorted(episodes, key=lambda e: (e.sample, e.uid[::-1])),
        episodes[17:] + episodes[:17],
    ]
    summaries = [summarize(order) for order in orders]
    assert summaries[0]["success"]["ci_method"] == "clustered-bootstrap"
    for summary in summaries[1:]:
        assert summary["success"] == summaries[0]["success"]
        assert summary["first_try_success"] == summaries[0]["first_try_success"]
    by_uid: dict[str, list[bool]] = {}
    for e in episodes:
        by_uid.setdefault(e.uid, []).append(e.correct)
    clusters = list(by_uid.values())
    assert clustered_bootstrap_interval(clusters) == clustered_bootstrap_interval(clusters[::-1])
    assert rate_with_interval(dict(reversed(by_uid.items()))) == rate_with_interval(by_uid)
