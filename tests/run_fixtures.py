"""A complete scripted run folder to read, damage and resume, and its episode lines: shared by
the tests of the run-folder readers (tests/runs) and writers (tests/harness), whose fixtures
``pristine`` and ``run`` are in tests/conftest.py.

A module of its own, under a name no test folder reuses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpbench.harness.evaluate import EvalConfig, evaluate


def eval_run(root: Path, **kw: Any) -> Path:
    """A complete 20-episode `gpbench eval` run (scripted, multi-turn)."""
    base: dict[str, Any] = {
        "model": "reference:0.5",
        "backend": "scripted",
        "tasks": ("gp-l",),
        "splits": ("ood-rule",),
        "n": 20,
        "runs_dir": root,
    }
    base.update(kw)
    [result], _ = evaluate(EvalConfig(**base))
    return result.folder


def episode_lines(folder: Path) -> list[str]:
    return (folder / "episodes.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def write_episode_lines(folder: Path, lines: list[str]) -> None:
    (folder / "episodes.jsonl").write_text("".join(lines), encoding="utf-8")


def edited(line: str, **changes: Any) -> str:
    """An episode line with ``changes`` applied."""
    return json.dumps({**json.loads(line), **changes}) + "\n"
