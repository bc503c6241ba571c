"""Finding and reading run folders: the only input of every report (never a model).

A run folder holds ``run.json`` and ``episodes.jsonl`` (see :mod:`gpbench.runs`).
Arguments may name run folders or folders that hold them at any depth (``runs/``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import GpbenchError
from gpbench.records import Episode
from gpbench.runs.folder import RUN_FILE
from gpbench.runs.read import read_episodes, read_run_spec, run_spec_status


@dataclass(frozen=True)
class Run:
    """One run folder, read into memory.

    Attributes:
        folder: the run folder, as found from the user's argument.
        spec: its ``run.json``.
        episodes: its episodes, in file order, checked against ``spec``; empty for a run that is
            not complete (no report counts an unfinished run).
    """

    folder: Path
    spec: dict[str, Any]
    episodes: list[Episode]


@dataclass(frozen=True)
class LeftOut:
    """A run folder a report did not use, and why."""

    folder: Path
    reason: str


def find_run_folders(paths: Sequence[Path]) -> list[Path]:
    """The run folders that ``paths`` name, in argument order then path order, each once.

    Hidden folders (the temporary and old folders of an atomic write) are not searched.
    """
    found: dict[Path, Path] = {}
    for path in paths:
        if not path.exists():
            raise GpbenchError(f"{path} does not exist; pass run folders or folders holding them")
        if (path / RUN_FILE).is_file():
            found.setdefault(path.resolve(), path)
            continue
        if not path.is_dir():
            raise GpbenchError(f"{path} is a file; pass run folders or folders holding them")
        for spec in sorted(path.rglob(RUN_FILE)):
            relative = spec.parent.relative_to(path)
            if any(part.startswith(".") for part in relative.parts):
                continue
            found.setdefault(spec.parent.resolve(), spec.parent)
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise GpbenchError(
            f"no run folders (with {RUN_FILE}) in {names}; write them with `gpbench eval` "
            f"or `gpbench score`"
        )
    return list(found.values())


def load_run(folder: Path) -> Run:
    """Read one run folder: its ``run.json`` and, when complete, every episode.

    The episodes are checked against the run.json (:func:`gpbench.runs.read.read_episodes`):
    a malformed, foreign or repeated episode, or a complete run that holds other than the
    episodes it promises, is a one-line :class:`~gpbench.runs.read.RunIntegrityError`.
    """
    spec = read_run_spec(folder)
    if run_spec_status(spec) != "complete":
        return Run(folder, spec, [])
    return Run(folder, spec, list(read_episodes(folder, spec)))


def load_runs(
    folders: Sequence[Path], progress: Callable[[int, int], None] | None = None
) -> tuple[list[Run], list[LeftOut]]:
    """Read run folders; unfinished runs and runs without episodes are left out with a reason."""
    runs: list[Run] = []
    left_out: list[LeftOut] = []
    for number, folder in enumerate(folders, start=1):
        run = load_run(folder)
        status = run_spec_status(run.spec)
        if status != "complete":
            left_out.append(LeftOut(folder, _unfinished(status)))
        elif not run.episodes:
            left_out.append(LeftOut(folder, "run holds no episodes"))
        else:
            runs.append(run)
        if progress is not None:
            progress(number, len(folders))
    return runs, left_out


def _unfinished(status: str) -> str:
    if status == "writing":
        return "run is writing: its writer stopped midway (run the command that wrote it again)"
    return f"run is {status} (re-run its gpbench eval command to finish it)"
