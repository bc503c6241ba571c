"""Writing run folders (the format is :mod:`gpbench.runs`): a complete run at once
(:func:`write_run`, for ``score`` and ``merge``), or an evaluation run episode by episode with its
in-flight turns (:class:`RunWriter`), always under the folder's writer lock
(:class:`gpbench.runs.lock.RunLock`).

Durability: every line reaches the operating system when written, so a killed process loses
nothing it wrote; files are fsynced when a run is marked complete (a power cut before then can
lose the last lines, which a resume runs again).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gpbench.errors import GpbenchError
from gpbench.harness.backends import FINISH_REASONS, Completion
from gpbench.records import Episode
from gpbench.runs.folder import EPISODES_FILE, INFLIGHT_FILE, LOCK_FILE, RUN_FILE, now
from gpbench.runs.lock import RunLock
from gpbench.runs.read import InflightTurn, RunPromise, parse_episode, read_run_spec, run_status
from gpbench.serialization import to_json

if TYPE_CHECKING:
    from gpbench.harness.loop import TurnRecord

_EPISODES_TMP = f".{EPISODES_FILE}.tmp"
_INFLIGHT_TMP = f".{INFLIGHT_FILE}.tmp"
_RUN_TMP = f".{RUN_FILE}.tmp"
_OWN_HIDDEN = frozenset({LOCK_FILE, _EPISODES_TMP, _INFLIGHT_TMP, _RUN_TMP})
_COMPACT_MIN = 4096  # dead in-flight lines tolerated before the sidecar is rewritten


def _json_bytes(payload: dict[str, Any]) -> bytes:
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from a hostile server's text): escape it
        return (json.dumps(payload, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` in one step (a temporary file, fsynced, renamed over it)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (where the platform can)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_run(
    folder: Path,
    spec: dict[str, Any],
    episodes: Iterable[Episode],
    *,
    overwrite: bool = False,
) -> int:
    """Write a complete run folder, holding its writer lock; returns the number of episodes.

    The episodes go to a temporary file first; run.json is marked ``writing`` before the
    episodes replace the old ones and ``complete`` after, so a crash at any point leaves the old
    run, a run every reader refuses (``writing``: run the command again), or the new run. An
    existing run is kept unless ``overwrite`` (a ``writing`` one is always replaced); a folder
    this call created is removed again when writing fails.
    """
    if folder.exists() and not folder.is_dir():
        raise GpbenchError(f"{folder} is a file, not a folder; choose another -o folder")
    fresh = not folder.exists()
    with RunLock(folder):
        try:
            return _replace_run(folder, spec, episodes, overwrite)
        except BaseException:
            if fresh:
                shutil.rmtree(folder, ignore_errors=True)
            raise


def _replace_run(
    folder: Path, spec: dict[str, Any], episodes: Iterable[Episode], overwrite: bool
) -> int:
    if (folder / RUN_FILE).exists():
        if not overwrite and run_status(folder) != "writing":
            raise GpbenchError(
                f"{folder} already holds a run; choose another -o folder or pass --overwrite"
            )
    elif any(p.name not in _OWN_HIDDEN for p in folder.iterdir()):
        raise GpbenchError(f"{folder} is not empty and holds no run; choose another -o folder")
    tmp = folder / _EPISODES_TMP
    try:
        count = 0
        with tmp.open("wb") as handle:
            for episode in episodes:
                handle.write((to_json(episode) + "\n").encode("utf-8"))
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        spec = {**spec, "episodes": count}
        _write_atomically(folder / RUN_FILE, _json_bytes({**spec, "status": "writing"}))
        tmp.replace(folder / EPISODES_FILE)
        (folder / INFLIGHT_FILE).unlink(missing_ok=True)
        _write_atomically(folder / RUN_FILE, _json_bytes({**spec, "status": "complete"}))
    except OSError as exc:
        raise GpbenchError(
            f"cannot write {folder}: {exc.strerror}; fix that and run the command again"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return count


class RunWriter:
    """An evaluation run being written, under the folder's writer lock.

    ``run.json`` first, then each finished episode appended to ``episodes.jsonl``
    (:meth:`append`) and each turn of an episode still in flight to ``inflight.jsonl``
    (:meth:`record_turns`), every write reaching the operating system at once.

    Opening a folder that holds a run of the same run key resumes it: episodes that are not the
    run's (another task, split, instance or sample, a malformed or repeated line, a cut-off last
    line) are dropped from the file, and :attr:`repairs` says what was dropped; :attr:`done`
    holds the ``(uid, sample)`` pairs finished, and :attr:`resume_turns` the answered turns of
    the episodes that were in flight, for the loop to replay. A folder holding another run key
    is refused; ``restart`` clears the run first.

    ``observe`` is called with every episode of the run in file order (those kept on resuming,
    then each one appended), so the caller can summarise the run without reading it back.
    """

    def __init__(
        self,
        folder: Path,
        spec: dict[str, Any],
        observe: Callable[[Episode], None] | None = None,
        *,
        restart: bool = False,
    ) -> None:
        self.folder = folder
        self.spec = spec
        self.observe = observe
        self.done: set[tuple[str, int]] = set()
        self.resume_turns: dict[tuple[str, int], list[Completion]] = {}
        self.repairs: list[str] = []
        self.episodes_written = 0
        self._promise = RunPromise.of(folder, spec)
        self._episodes_fd: int | None = None
        self._inflight_fd: int | None = None
        self._live: dict[tuple[str, int], list[bytes]] = {}  # in-flight lines per episode
        self._live_lines = self._inflight_lines = 0
        self._failed = False
        self._lock = RunLock(folder).acquire()
        self.took_over = self._lock.previous
        try:
            if restart:
                self._clear()
            else:
                self._check_previous_spec()
            self._resume_episodes()
            self._resume_inflight()
            self._write_spec("running")
            self._episodes_fd = self._open_append(EPISODES_FILE)
        except BaseException:
            self.close()
            raise

    def append(self, episode: Episode) -> None:
        """Write one finished episode (its in-flight turns are then no longer needed)."""
        self._usable()
        self._write(self._episodes_fd, (to_json(episode) + "\n").encode("utf-8"), EPISODES_FILE)
        self.episodes_written += 1
        if self._live:  # multi-turn runs only: single-turn episodes never were in flight
            dead = self._live.pop((episode.uid, episode.sample), None)
            if dead:
                self._live_lines -= len(dead)
        if self.observe is not None:
            self.observe(episode)

    def record_turns(self, records: Sequence[TurnRecord]) -> None:
        """Write the turns just answered of episodes still in flight, in one write."""
        self._usable()
        if not records:
            return
        lines = [_inflight_line(record) for record in records]
        if self._inflight_fd is None:
            self._inflight_fd = self._open_append(INFLIGHT_FILE)
        self._write(self._inflight_fd, b"".join(lines), INFLIGHT_FILE)
        for record, line in zip(records, lines, strict=True):
            self._live.setdefault((record.uid, record.sample), []).append(line)
        self._live_lines += len(lines)
        self._inflight_lines += len(lines)
        if self._inflight_lines - self._live_lines > max(self._live_lines, _COMPACT_MIN):
            self._rewrite_inflight()

    def finish(self, extra: dict[str, Any] | None = None) -> None:
        """Mark the run complete (only then does a re-run skip it).

        Refused while episodes are missing or in flight; when run.json cannot be written (a
        full disk), the run stays ``running`` with every episode kept, and resumable.
        """
        self._usable()
        expected = self._promise.count
        if (expected is not None and self.episodes_written != expected) or self._live:
            raise GpbenchError(
                f"{self.folder}: {self.episodes_written} of {expected} episodes written and "
                f"{len(self._live)} in flight, so the run is not complete; run the same command "
                f"again to finish it"
            )
        try:
            os.fsync(self._episodes_fd)  # type: ignore[arg-type]
            self._close_inflight()
            (self.folder / INFLIGHT_FILE).unlink(missing_ok=True)
        except OSError as exc:
            raise self._write_error(EPISODES_FILE, exc) from None
        self.spec = {**self.spec, **(extra or {})}
        self._write_spec("complete")

    def close(self) -> None:
        """Close the files and drop the lock without marking the run complete (resumable)."""
        for fd in (self._episodes_fd, self._inflight_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._episodes_fd = self._inflight_fd = None
        self._lock.release()

    def _usable(self) -> None:
        if self._failed or self._episodes_fd is None:
            raise GpbenchError(f"{self.folder}: the run writer is closed after a failed write")

    def _write(self, fd: int | None, data: bytes, name: str) -> None:
        assert fd is not None
        try:
            written = os.write(fd, data)
            if written < len(data):  # a short write (a full disk, a signal): write the rest
                _write_all(fd, data[written:])
        except OSError as exc:
            self._failed = True  # a partial line may be on disk: never write after it
            raise self._write_error(name, exc) from None

    def _write_error(self, name: str, exc: OSError) -> GpbenchError:
        return GpbenchError(
            f"cannot write {self.folder / name}: {exc.strerror}; the run is not complete: fix "
            f"that and run the same command again (it resumes)"
        )

    def _open_append(self, name: str) -> int:
        try:
            return os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise self._write_error(name, exc) from None

    def _close_inflight(self) -> None:
        if self._inflight_fd is not None:
            fd, self._inflight_fd = self._inflight_fd, None
            os.close(fd)

    def _write_spec(self, status: str) -> None:
        payload = {**self.spec, "status": status, "episodes": self.episodes_written}
        if status == "complete":
            payload["finished"] = now()
        try:
            _write_atomically(self.folder / RUN_FILE, _json_bytes(payload))
        except OSError as exc:
            raise self._write_error(RUN_FILE, exc) from None

    def _clear(self) -> None:
        """Remove the run's files (run.json first: a crash midway leaves no run, not half of one)."""
        try:
            for name in (RUN_FILE, EPISODES_FILE, INFLIGHT_FILE, _EPISODES_TMP, _INFLIGHT_TMP):
                (self.folder / name).unlink(missing_ok=True)
        except OSError as exc:
            raise GpbenchError(f"cannot clear {self.folder}: {exc.strerror}") from None

    def _check_previous_spec(self) -> None:
        """Refuse to resume a folder that holds another run key (a damaged run.json is redone)."""
        if not (self.folder / RUN_FILE).exists():
            return
        try:
            previous = read_run_spec(self.folder)
        except GpbenchError as exc:
            self.repairs.append(f"run.json was unreadable ({exc}) and is written anew")
            return
        ours = json.loads(json.dumps(self.spec.get("run_key")))
        theirs = previous.get("run_key")
        if theirs == ours:
            return
        if not isinstance(theirs, dict):
            what = "a run not written by gpbench eval"
        else:
            keys = sorted(k for k in {*ours, *theirs} if ours.get(k) != theirs.get(k))
            what = f"a run of another configuration (its run key differs in {', '.join(keys)})"
        raise GpbenchError(
            f"{self.folder} holds {what}; move it away, or pass --restart to replace it"
        )

    def _resume_episodes(self) -> None:
        """Keep the run's episodes (calling ``observe``), drop the rest from the file."""
        path = self.folder / EPISODES_FILE
        if not path.exists():
            return
        dropped: dict[str, list[str]] = {}
        drop: set[int] = set()
        whole = 0  # bytes up to the last complete line
        with _open_read(path) as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    break  # the line a killed writer was writing
                whole += len(raw)
                reason = self._keep(raw, number)
                if reason is not None:
                    dropped.setdefault(reason[0], []).append(reason[1])
                    drop.add(number)
        try:
            if drop:
                self._rewrite_without(path, drop)
            elif whole != path.stat().st_size:
                os.truncate(path, whole)
        except OSError as exc:
            raise self._write_error(EPISODES_FILE, exc) from None
        self.episodes_written = len(self.done)
        if dropped:
            parts = [f"{len(v)} {kind} ({v[0]})" for kind, v in dropped.items()]
            self.repairs.append(f"dropped from {EPISODES_FILE}: {', '.join(parts)}")

    def _keep(self, raw: bytes, number: int) -> tuple[str, str] | None:
        """None when the line is kept (and observed), else (kind, example) of why not."""
        if raw.isspace():
            return "blank line(s)", f"line {number}"
        try:
            episode = parse_episode(raw)
        except ValueError as exc:
            return "unreadable line(s)", f"line {number} {exc}"
        problem = self._promise.problem(episode)
        if problem is not None:
            return "episode(s) not of this run", f"line {number} {problem}"
        pair = (episode.uid, episode.sample)
        if pair in self.done:
            return "repeated episode(s)", f"line {number}"
        self.done.add(pair)
        if self.observe is not None:
            self.observe(episode)
        return None

    def _rewrite_without(self, path: Path, drop: set[int]) -> None:
        tmp = self.folder / _EPISODES_TMP
        with _open_read(path) as source, tmp.open("wb") as target:
            for number, raw in enumerate(source, start=1):
                if number not in drop and raw.endswith(b"\n"):
                    target.write(raw)
            target.flush()
            os.fsync(target.fileno())
        tmp.replace(path)

    def _resume_inflight(self) -> None:
        """Read the in-flight turns of unfinished episodes, then rewrite the sidecar to them."""
        path = self.folder / INFLIGHT_FILE
        if not path.exists():
            return
        broken: set[tuple[str, int]] = set()
        unusable = 0
        with _open_read(path) as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # the turns a killed writer was writing
                try:
                    uid, index, sample, turn, completion = _parse_inflight(raw)
                except ValueError:
                    unusable += 1
                    continue
                pair = (uid, sample)
                if pair in self.done or pair in broken:
                    continue  # finished after this turn was recorded, or already given up
                answered = self.resume_turns.setdefault(pair, [])
                if self._promise.instance_problem(uid, index, sample) or turn != len(answered):
                    broken.add(pair)
                    unusable += 1
                    continue
                answered.append(completion)
                self._live.setdefault(pair, []).append(raw)
        for pair in broken:  # those episodes start over
            self.resume_turns.pop(pair, None)
            self._live.pop(pair, None)
        self._live_lines = sum(len(lines) for lines in self._live.values())
        self._rewrite_inflight()
        if unusable:
            self.repairs.append(
                f"dropped {unusable} unusable line(s) of {INFLIGHT_FILE} (their episodes start "
                f"over)"
            )

    def _rewrite_inflight(self) -> None:
        """Rewrite the sidecar with the turns of the episodes in flight only."""
        path = self.folder / INFLIGHT_FILE
        try:
            self._close_inflight()
            if self._live:
                data = b"".join(line for lines in self._live.values() for line in lines)
                _write_atomically(path, data)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._write_error(INFLIGHT_FILE, exc) from None
        self._inflight_lines = self._live_lines


def _open_read(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise GpbenchError(f"cannot read {path}: {exc.strerror}") from None


def _inflight_line(record: TurnRecord) -> bytes:
    completion = record.completion
    return InflightTurn(
        uid=record.uid,
        index=record.index,
        sample=record.sample,
        turn=record.turn,
        text=completion.text,
        finish_reason=completion.finish_reason,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        latency_s=completion.latency_s,
    ).line()


def _parse_inflight(raw: bytes) -> tuple[str, int, int, int, Completion]:
    """``(uid, index, sample, turn, completion)`` of one ``inflight.jsonl`` line."""
    turn = InflightTurn.parse(raw)
    if turn.finish_reason not in FINISH_REASONS:
        raise ValueError(f"field finish_reason must be one of {', '.join(FINISH_REASONS)}")
    completion = Completion(
        turn.text,
        turn.finish_reason,
        turn.prompt_tokens,
        turn.completion_tokens,
        turn.latency_s,
    )
    return turn.uid, turn.index, turn.sample, turn.turn, completion
