"""The summary table: one row per checkpoint x task x split, written as ``summary.csv``.

Columns (rates are fractions in [0, 1]; intervals are 95%):

- ``series``, ``checkpoint``, ``method``, ``step``, ``compute``, ``x``: the checkpoint and where it
  sits on the report's x axis; ``task``, ``task_version``, ``split``, ``runs`` (run folders).
- ``episodes``, ``instances``, ``budget``; ``success`` with ``success_low``/``success_high`` and
  ``ci_method`` (Wilson with one sample per instance, else a seeded clustered bootstrap);
  ``first_try_success`` with its interval; ``mean_return``; ``attempts``.
- ``truncation_rate``: share of attempts cut off at the token limit.
- ``recognition_accuracy`` (gp-vl: share of attempts whose cards were recognised) and
  ``per_step_accuracy`` with its interval (V-IRL): empty where they do not apply.
- ``status_<name>``: share of attempts whose first failure (or ``correct``) is ``<name>``;
  ``flag_<name>``: share of attempts carrying a memorization flag (each task declares its own). Empty for
  tasks that never produce that status or flag.

Text cells come from run folders and the command line (checkpoint paths, series names, metadata),
so a spreadsheet must not run them: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return is written with a leading ``'`` (the usual formula-injection escape), unless
it is a plain number (``-5``, ``+1.5e3``), which stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gpbench.reports.flags import memorization_flags
from gpbench.reports.groups import Group

Cell = str | int | float | None

_FIXED = (
    "series",
    "checkpoint",
    "method",
    "step",
    "compute",
    "x",
    "task",
    "task_version",
    "split",
    "runs",
    "episodes",
    "instances",
    "budget",
    "success",
    "success_low",
    "success_high",
    "ci_method",
    "first_try_success",
    "first_try_low",
    "first_try_high",
    "mean_return",
    "attempts",
    "truncation_rate",
    "recognition_accuracy",
    "per_step_accuracy",
    "per_step_low",
    "per_step_high",
)


def summary_rows(groups: Sequence[Group]) -> tuple[list[str], list[dict[str, Cell]]]:
    """The table's columns and one row per group (``None`` where a value does not apply)."""
    statuses_by_task: dict[str, set[str]] = {}
    flags_by_task: dict[str, set[str]] = {}
    # Report order: the registered tasks' flags, then those of older task versions.
    order = list(
        dict.fromkeys([*memorization_flags(), *(f for g in groups for f in g.memorization_flags)])
    )
    for g in groups:
        statuses_by_task.setdefault(g.task, set()).update(g.summary["statuses"])
        known = flags_by_task.setdefault(g.task, set(g.memorization_flags))
        known.update(f for f in g.summary["flags"] if f in order)
    statuses = sorted(set().union(*statuses_by_task.values())) if groups else []
    flags = [f for f in order if any(f in s for s in flags_by_task.values())]
    columns = [*_FIXED, *(f"status_{s}" for s in statuses), *(f"flag_{f}" for f in flags)]
    rows = []
    for g in groups:
        row = _fixed_row(g)
        attempts = g.summary["attempts"]
        for status in statuses:
            applies = status in statuses_by_task[g.task]
            count = g.summary["statuses"].get(status, 0)
            row[f"status_{status}"] = count / attempts if applies and attempts else None
        for flag in flags:
            applies = flag in flags_by_task[g.task]
            count = g.summary["flags"].get(flag, 0)
            row[f"flag_{flag}"] = count / attempts if applies and attempts else None
        rows.append(row)
    return columns, rows


def _fixed_row(g: Group) -> dict[str, Cell]:
    s = g.summary
    success, first = s["success"], s["first_try_success"]
    per_step = s.get("per_step_accuracy")
    metadata = g.checkpoint.metadata
    return {
        "series": g.series,
        "checkpoint": g.checkpoint.name,
        "method": g.checkpoint.method,
        "step": _scalar(metadata.get("step")),
        "compute": _scalar(metadata.get("compute")),
        "x": g.x,
        "task": g.task,
        "task_version": g.task_version,
        "split": g.split,
        "runs": ";".join(str(f) for f in g.folders),
        "episodes": s["episodes"],
        "instances": s["instances"],
        "budget": max(e.budget for e in g.episodes),
        "success": success["rate"],
        "success_low": success["ci95"][0],
        "success_high": success["ci95"][1],
        "ci_method": success["ci_method"],
        "first_try_success": first["rate"],
        "first_try_low": first["ci95"][0],
        "first_try_high": first["ci95"][1],
        "mean_return": s["mean_return"],
        "attempts": s["attempts"],
        "truncation_rate": s["truncation_rate"],
        "recognition_accuracy": s.get("recognition_accuracy"),
        "per_step_accuracy": per_step["rate"] if per_step else None,
        "per_step_low": per_step["ci95"][0] if per_step else None,
        "per_step_high": per_step["ci95"][1] if per_step else None,
    }


def _scalar(value: Any) -> Cell:
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def to_csv(columns: Sequence[str], rows: Sequence[dict[str, Cell]]) -> str:
    """CSV text: floats with 6 decimals (stable across runs), empty cells for ``None``."""
    lines = [_csv_line(columns)]
    lines.extend(_csv_line([_cell(row.get(c)) for c in columns]) for row in rows)
    return "".join(lines)


def _csv_line(cells: Sequence[str]) -> str:
    return ",".join(_quoted(cell) for cell in cells) + "\n"


def _quoted(text: str) -> str:
    """RFC 4180 quoting where a field needs it: a comma, a quote or a line break.

    Done here rather than by ``csv.writer``, which with ``\\n`` line ends leaves a carriage
    return unquoted, and a reader then splits the row there.
    """
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6f}".rstrip("0").rstrip(".")
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text  # a spreadsheet would run it as a formula
    return text
