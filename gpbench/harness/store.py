"""Run folders: ``run.json`` (provenance and settings) + ``episodes.jsonl`` (one Episode a line).

Light on purpose (no heavy imports): reports read runs through this module. Readers tolerate a
torn last line (a run killed mid-write), but a bad line anywhere else is an error naming it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import gpbench
from gpbench.errors import GpbenchError, RecordSchemaError
from gpbench.records import Episode
from gpbench.serialization import from_dict, to_json

RUN_FILE = "run.json"
EPISODES_FILE = "episodes.jsonl"
_PACKAGES = ("torch", "transformers", "vllm", "datasets", "pillow", "click")


def provenance() -> dict[str, Any]:
    """Who and what produced a run: gpbench version and commit, Python, platform, packages."""
    return {
        "gpbench_version": gpbench.__version__,
        **_git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


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


def write_run(
    folder: Path,
    spec: dict[str, Any],
    episodes: Iterable[Episode],
    *,
    overwrite: bool = False,
) -> int:
    """Write a complete run folder atomically (a temporary folder renamed into place).

    Returns the number of episodes written. An existing run folder is kept unless ``overwrite``.
    """
    if (folder / RUN_FILE).exists() and not overwrite:
        raise GpbenchError(
            f"{folder} already holds a run; choose another -o folder or pass --overwrite"
        )
    if folder.exists() and not folder.is_dir():
        raise GpbenchError(f"{folder} is a file, not a folder; choose another -o folder")
    if folder.exists() and any(folder.iterdir()) and not (folder / RUN_FILE).exists():
        raise GpbenchError(f"{folder} is not empty and holds no run; choose another -o folder")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GpbenchError(f"cannot create {folder.parent}: {exc.strerror}") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        count = 0
        with (tmp / EPISODES_FILE).open("w", encoding="utf-8", newline="\n") as handle:
            for episode in episodes:
                handle.write(to_json(episode) + "\n")
                count += 1
        (tmp / RUN_FILE).write_text(
            json.dumps({**spec, "episodes": count}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        tmp.chmod(0o755 & ~_umask())
        old = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        if old.exists():
            shutil.rmtree(old)
        return count
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_run_spec(folder: Path) -> dict[str, Any]:
    """The ``run.json`` of a run folder."""
    path = folder / RUN_FILE
    if not path.is_file():
        raise GpbenchError(f"{folder} is not a run folder (no {RUN_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordSchemaError(str(path), exc.lineno, f"not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise RecordSchemaError(str(path), 1, "expected a JSON object")
    return data


def read_episodes(folder: Path) -> Iterator[Episode]:
    """Episodes of a run; a torn final line (killed writer) is skipped, other bad lines raise."""
    path = folder / EPISODES_FILE
    if not path.is_file():
        return
    with path.open("r", encoding="utf-8") as handle:
        lines = handle.readlines()
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if number == len(lines) and not text.endswith("\n"):
                return  # torn last line of an interrupted run: the episode was not finished
            raise RecordSchemaError(str(path), number, f"not valid JSON ({exc.msg})") from None
        yield from_dict(Episode, data, path=str(path), line=number)


class RunWriter:
    """An evaluation run being written: ``run.json`` first, then one episode line at a time.

    Each finished episode is appended and flushed, so a killed run loses at most the episodes in
    flight. Opening a folder that holds an interrupted run of the same configuration resumes it:
    a torn last line is cut off first (so the next line starts clean), and the ``(uid, sample)``
    pairs already finished are reported by :attr:`done` so the caller skips them.

    ``observe`` is called with every episode of the run in file order (those found on resuming,
    then each one appended), so the caller can summarise the run as it goes, without keeping the
    episodes or reading them back.
    """

    def __init__(
        self,
        folder: Path,
        spec: dict[str, Any],
        observe: Callable[[Episode], None] | None = None,
    ) -> None:
        self.folder = folder
        self.spec = spec
        self.observe = observe
        self.done: set[tuple[str, int]] = set()
        self.episodes_written = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GpbenchError(f"cannot create run folder {folder}: {exc.strerror}") from None
        path = folder / EPISODES_FILE
        if path.exists():
            _cut_torn_tail(path)
            for episode in read_episodes(folder):
                self.done.add((episode.uid, episode.sample))
                if observe is not None:
                    observe(episode)
        self.episodes_written = len(self.done)
        self._write_spec(status="running")
        self._handle = path.open("a", encoding="utf-8", newline="\n")

    def append(self, episode: Episode) -> None:
        """Write one finished episode and flush it to the operating system."""
        self._handle.write(to_json(episode) + "\n")
        self._handle.flush()
        self.episodes_written += 1
        if self.observe is not None:
            self.observe(episode)

    def finish(self, extra: dict[str, Any] | None = None) -> None:
        """Mark the run complete (only then does a re-run skip it)."""
        self._handle.close()
        self.spec = {**self.spec, **(extra or {})}
        self._write_spec(status="complete")

    def close(self) -> None:
        """Close without marking the run complete (it can be resumed)."""
        if not self._handle.closed:
            self._handle.close()

    def _write_spec(self, status: str) -> None:
        payload = {**self.spec, "status": status, "episodes": self.episodes_written}
        if status == "complete":
            payload["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            )
        path = self.folder / RUN_FILE
        tmp = path.with_name(f".{RUN_FILE}.tmp")
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)


def _cut_torn_tail(path: Path) -> None:
    """Drop a final line without its newline (an episode that was being written when killed)."""
    with path.open("rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def run_status(folder: Path) -> str | None:
    """``complete``, ``running`` (interrupted or in progress) or None when there is no run."""
    try:
        return str(read_run_spec(folder).get("status", "complete"))
    except GpbenchError:
        return None
