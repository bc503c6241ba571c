"""Summaries of episodes: success with intervals, first-try success, per-status and flag counts."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from gpbench.records import Episode
from gpbench.stats import clustered_bootstrap_interval, wilson_interval


def rate_with_interval(
    outcomes_by_instance: dict[str, list[bool]],
) -> dict[str, Any]:
    """A rate with its 95% interval: Wilson for one sample per instance, else clustered bootstrap."""
    clusters = list(outcomes_by_instance.values())
    n = sum(len(c) for c in clusters)
    k = sum(sum(c) for c in clusters)
    if all(len(c) <= 1 for c in clusters):
        low, high = wilson_interval(k, n)
        method = "wilson"
    else:
        low, high = clustered_bootstrap_interval(clusters)
        method = "clustered-bootstrap"
    return {"k": k, "n": n, "rate": k / n if n else 0.0, "ci95": [low, high], "ci_method": method}


def summarize(
    episodes: Sequence[Episode], *, recognition: bool = False, per_step: bool = False
) -> dict[str, Any]:
    """Headline numbers of a set of episodes (one task and split, typically).

    ``per_step`` (multi-decision tasks such as V-IRL): adds per-step accuracy, the share of
    attempts that were correct, retries counted, as in the paper's curves; success is then route
    success, and success by attempt k is left out (budgets apply per decision point).
    """
    success: dict[str, list[bool]] = collections.defaultdict(list)
    first: dict[str, list[bool]] = collections.defaultdict(list)
    statuses: collections.Counter[str] = collections.Counter()
    flags: collections.Counter[str] = collections.Counter()
    stop_reasons: collections.Counter[str] = collections.Counter()
    attempts = truncated = recognised = correct_attempts = 0
    intersections_right = landmarks_visible = landmarks_named = detected_attempts = 0
    max_budget = max((e.budget for e in episodes), default=0)
    by_attempt = [0] * max_budget
    total_return = 0.0
    for episode in episodes:
        success[episode.uid].append(episode.correct)
        first[episode.uid].append(episode.first_try_correct)
        stop_reasons[episode.stop_reason] += 1
        total_return += episode.return_
        for turn in episode.turns:
            verdict = turn["verdict"]
            attempts += 1
            statuses[verdict["status"]] += 1
            flags.update(verdict.get("flags", []))
            truncated += bool(turn.get("output_truncated"))
            correct_attempts += bool(verdict["correct"])
            detection = verdict.get("extracted", {}).get("detection")
            if detection is not None:
                detected_attempts += 1
                intersections_right += bool(detection["intersection_correct"])
                landmarks_visible += int(detection["landmarks_visible"])
                landmarks_named += int(detection["landmarks_named"])
            recognised += verdict["status"] != "misrecognized_cards"
        solved_at = next((i for i, t in enumerate(episode.turns) if t["verdict"]["correct"]), None)
        if solved_at is not None:
            for k in range(solved_at, max_budget):
                by_attempt[k] += 1
    n = len(episodes)
    summary: dict[str, Any] = {
        "episodes": n,
        "instances": len(success),
        "success": rate_with_interval(success),
        "first_try_success": rate_with_interval(first),
        "success_by_attempt": {str(k + 1): (c / n if n else 0.0) for k, c in enumerate(by_attempt)},
        "mean_return": total_return / n if n else 0.0,
        "attempts": attempts,
        "statuses": dict(sorted(statuses.items())),
        "flags": dict(sorted(flags.items())),
        "stop_reasons": dict(sorted(stop_reasons.items())),
        "truncation_rate": truncated / attempts if attempts else 0.0,
    }
    if recognition:
        summary["recognition_accuracy"] = recognised / attempts if attempts else 0.0
    if detected_attempts:
        summary["detection"] = {
            "intersection_accuracy": intersections_right / detected_attempts,
            "landmark_recall": landmarks_named / landmarks_visible if landmarks_visible else None,
        }
    if per_step:
        del summary["success_by_attempt"]
        low, high = wilson_interval(correct_attempts, attempts)
        summary["per_step_accuracy"] = {
            "k": correct_attempts,
            "n": attempts,
            "rate": correct_attempts / attempts if attempts else 0.0,
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
