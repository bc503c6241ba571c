"""Helpers for the regress tests: small manifests written to a temporary folder.

A module of its own (not conftest.py): test modules import it by a name no other test folder
uses, so running tests/regress together with other folders imports the right helpers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpbench.regress.manifest import TABLE_BEGIN, TABLE_END, dump_block

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS_MD = REPO / "checkpoints.md"

ManifestWriter = Callable[..., Path]


def scripted_entry(
    name: str = "scripted", policy: str = "reference:0.3", **check: Any
) -> dict[str, Any]:
    """A checkpoint entry on the scripted backend (no model: milliseconds per episode)."""
    base = {
        "task": "gp-l",
        "split": "id",
        "n": 60,
        "seed": 42,
        "decoding": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 64},
        "budget": 1,
        "expect": {"success": {"rate": 0.7, "tol": 0.05}},
    }
    base.update(check)
    return {
        "name": name,
        "policy": policy,
        "licence": "n/a",
        "architecture": "scripted policy",
        "backend": "scripted",
        "checks": [base],
    }


def manifest_text(
    entries: list[dict[str, Any]], *, alpha: float = 0.01, table: list[str] | None = None
) -> str:
    """A checkpoints.md with prose, the table (rendered unless given) and the block."""
    from gpbench.regress.manifest import parse_block, render_table

    block = dump_block({"version": 1, "alpha": alpha, "checkpoints": copy.deepcopy(entries)})
    if table is None:
        parsed, _ = parse_block(block, 1, "m")
        table = render_table(parsed)
    return "\n".join(
        [
            "# Checkpoints",
            "",
            "Prose that --update must keep.",
            "",
            TABLE_BEGIN,
            *table,
            TABLE_END,
            "",
            "```json gpbench-regress",
            block,
            "```",
            "",
            "Closing prose.",
            "",
        ]
    )
