"""Summaries of episodes: success with intervals, first-try success, per-status and flag counts."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any

from gpbench.records import Episode
from gpbench.stats import clustered_bootstrap_from_counts, wilson_interval


def rate_with_interval(
    outcomes_by_instance: dict[str, list[bool]],
) -> dict[str, Any]:
    """A rate with its 95% interval: Wilson for one sample per instance, else clustered bootstrap."""
    return rate_from_counts([(sum(c), len(c)) for c in outcomes_by_instance.values()])


def rate_from_counts(counts: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """:func:`rate_with_interval` from ``(successes, samples)`` per instance, in any order."""
    n = sum(size for _, size in counts)
    k = sum(hits for hits, _ in counts)
    if all(size <= 1 for _, size in counts):
        low, high = wilson_interval(k, n)
        method = "wilson"
    else:
        low, high = clustered_bootstrap_from_counts(counts)
        method = "clustered-bootstrap"
    return {"k": k, "n": n, "rate": k / n if n else 0.0, "ci95": [low, high], "ci_method": method}


def summarize(
    episodes: Iterable[Episode], *, recognition: bool = False, per_step: bool = False
) -> dict[str, Any]:
    """Headline numbers of a set of episodes (one task and split, typically).

    ``per_step`` (multi-decision tasks such as V-IRL): adds per-step accuracy, the share of
    attempts that were correct, retries counted, as in the paper's curves; success is then route
    success, and success by attempt k is left out (budgets apply per decision point).
    """
    builder = SummaryBuilder(recognition=recognition, per_step=per_step)
    for episode in episodes:
        builder.add(episode)
    return builder.summary()


class SummaryBuilder:
    """:func:`summarize`, one episode at a time: nothing but counts is kept.

    The harness feeds it each episode as it is written, so a run's summary needs neither the
    episodes in memory (a large run's records made the garbage collector's full passes cost a
    third of a scripted run) nor a second read of the file.
    """

    def __init__(self, *, recognition: bool = False, per_step: bool = False) -> None:
        self.recognition = recognition
        self.per_step = per_step
        # uid -> (successes, first-try successes, episodes); the bootstrap sorts the counts, so
        # the order episodes arrive in (resumed, merged, shuffled) never changes an interval.
        self._instances: dict[str, tuple[int, int, int]] = {}
        self._statuses: collections.Counter[str] = collections.Counter()
        self._flags: collections.Counter[str] = collections.Counter()
        self._stop_reasons: collections.Counter[str] = collections.Counter()
        self._solved_at: collections.Counter[int] = collections.Counter()  # first correct turn
        self._episodes = self._max_budget = 0
        self._attempts = self._truncated = self._recognised = self._correct_attempts = 0
        self._intersections_right = self._landmarks_visible = self._landmarks_named = 0
        self._detected_attempts = 0
        self._total_return = 0.0

    def add(self, episode: Episode) -> None:
        """Count one episode in."""
        self._episodes += 1
        self._max_budget = max(self._max_budget, episode.budget)
        hits, first_hits, size = self._instances.get(episode.uid, (0, 0, 0))
        self._instances[episode.uid] = (
            hits + episode.correct,
            first_hits + episode.first_try_correct,
            size + 1,
        )
        self._stop_reasons[episode.stop_reason] += 1
        self._total_return += episode.return_
        solved_at = None
        for position, turn in enumerate(episode.turns):
            verdict = turn["verdict"]
            self._attempts += 1
            self._statuses[verdict["status"]] += 1
            flags = verdict.get("flags")
            if flags:
                self._flags.update(flags)
            if turn.get("output_truncated"):
                self._truncated += 1
            if verdict["correct"]:
                self._correct_attempts += 1
                if solved_at is None:
                    solved_at = position
            extracted = verdict.get("extracted")
            detection = extracted.get("detection") if extracted else None
            if detection is not None:
                self._detected_attempts += 1
                self._intersections_right += bool(detection["intersection_correct"])
                self._landmarks_visible += int(detection["landmarks_visible"])
                self._landmarks_named += int(detection["landmarks_named"])
            self._recognised += verdict["status"] != "misrecognized_cards"
        if solved_at is not None:
            self._solved_at[solved_at] += 1

    def summary(self) -> dict[str, Any]:
        """The summary of the episodes added so far (see :func:`summarize`)."""
        n, attempts = self._episodes, self._attempts
        # Episodes solved by attempt k: those whose first correct turn is at index < k.
        by_attempt = [
            sum(count for at, count in self._solved_at.items() if at <= k)
            for k in range(self._max_budget)
        ]
        instances = list(self._instances.values())
        summary: dict[str, Any] = {
            "episodes": n,
            "instances": len(instances),
            "success": rate_from_counts([(hits, size) for hits, _, size in instances]),
            "first_try_success": rate_from_counts([(first, size) for _, first, size in instances]),
            "success_by_attempt": {
                str(k + 1): (c / n if n else 0.0) for k, c in enumerate(by_attempt)
            },
            "mean_return": self._total_return / n if n else 0.0,
            "attempts": attempts,
            "statuses": dict(sorted(self._statuses.items())),
            "flags": dict(sorted(self._flags.items())),
            "stop_reasons": dict(sorted(self._stop_reasons.items())),
            "truncation_rate": self._truncated / attempts if attempts else 0.0,
        }
        if self.recognition:
            summary["recognition_accuracy"] = self._recognised / attempts if attempts else 0.0
        if self._detected_attempts:
            summary["detection"] = {
                "intersection_accuracy": self._intersections_right / self._detected_attempts,
                "landmark_recall": (
                    self._landmarks_named / self._landmarks_visible
                    if self._landmarks_visible
                    else None
                ),
            }
        if self.per_step:
            del summary["success_by_attempt"]
            low, high = wilson_interval(self._correct_attempts, attempts)
            summary["per_step_accuracy"] = {
                "k": self._correct_attempts,
                "n": attempts,
                "rate": self._correct_attempts / attempts if attempts else 0.0,
                "ci95": [low, high],
                "ci_method": "wilson (attempts treated as independent)",
            }
        return summary


def format_summary(title: str, summary: dict[str, Any]) -> str:
    """A short human-readable block for the terminal."""
    s = summary["success"]
    f = summary["first_try_success"]
    lines = [
        title,
        f"  episodes          {summary['episodes']} on {summary['instances']} instances",
        f"  success           {_pct(s['rate'])}  95% CI [{_pct(s['ci95'][0])}, {_pct(s['ci95'][1])}]"
        f"  ({s['k']}/{s['n']}, {s['ci_method']})",
        f"  first-try success {_pct(f['rate'])}  95% CI [{_pct(f['ci95'][0])}, {_pct(f['ci95'][1])}]",
        f"  mean return       {summary['mean_return']:.3f}",
        f"  attempts          {summary['attempts']}  (output truncated: {_pct(summary['truncation_rate'])})",
        "  statuses          " + _counts(summary["statuses"]),
        "  flags             " + (_counts(summary["flags"]) or "none"),
        "  stop reasons      " + _counts(summary["stop_reasons"]),
    ]
    if "success_by_attempt" in summary:
        lines.insert(
            4,
            "  success by attempt "
            + "  ".join(f"{k}:{_pct(v)}" for k, v in summary["success_by_attempt"].items()),
        )
    if "per_step_accuracy" in summary:
        p = summary["per_step_accuracy"]
        lines.insert(
            3,
            f"  per-step accuracy {_pct(p['rate'])}  95% CI [{_pct(p['ci95'][0])}, "
            f"{_pct(p['ci95'][1])}]  ({p['k']}/{p['n']} attempts)",
        )
    if "detection" in summary:
        d = summary["detection"]
        recall = "n/a" if d["landmark_recall"] is None else _pct(d["landmark_recall"])
        lines.append(
            f"  detection         intersections {_pct(d['intersection_accuracy'])}, "
            f"landmarks named {recall}"
        )
    if "recognition_accuracy" in summary:
        lines.append(f"  card recognition  {_pct(summary['recognition_accuracy'])}")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())
