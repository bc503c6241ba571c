"""The files of a run folder, the statuses its run.json records, and what a run records about
the software that made it (see :mod:`gpbench.runs`)."""

from __future__ import annotations

import datetime
import math
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import gpbench

RUN_FILE = "run.json"
EPISODES_FILE = "episodes.jsonl"
INFLIGHT_FILE = "inflight.jsonl"
LOCK_FILE = ".lock"
STATUSES = ("running", "complete", "writing")
_PACKAGES = ("torch", "transformers", "vllm", "datasets", "pillow", "click")


def provenance() -> dict[str, Any]:
    """Who and what produced a run: gpbench version and commit, Python, platform, packages."""
    return {
        "gpbench_version": gpbench.__version__,
        **_git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "created": now(),
    }


def now() -> str:
    """The current UTC time, as run.json and the lock record write it."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_state() -> dict[str, Any]:
    source = Path(gpbench.__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return {"git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": bool(dirty)}


def parse_meta_value(text: str) -> Any:
    """A ``--meta`` value: an int or a finite float when it reads as one, else the text.

    >>> parse_meta_value("500"), parse_meta_value("1.5e9"), parse_meta_value("sft")
    (500, 1500000000.0, 'sft')
    """
    if not isinstance(text, str):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text
