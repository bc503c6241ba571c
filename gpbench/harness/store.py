"""Run folders: ``run.json`` (provenance and settings) + ``episodes.jsonl`` (one Episode a line).

Light on purpose (no heavy imports): reports read runs through this module.

The files of a run folder:

- ``run.json``: settings and provenance, ``status`` (``running``; ``complete``; ``writing``
  while :func:`write_run` replaces the folder's run) and ``episodes`` (the count, once complete).
- ``episodes.jsonl``: one finished episode a line, appended and flushed as each one finishes.
- ``inflight.jsonl``: while ``gpbench eval`` runs, the answered turns of the episodes still in
  flight, appended after every backend call. A resume replays them, so a killed run loses at
  most the turn in progress. Compacted as episodes finish, removed before the run is complete.
- ``.lock``: the writer lock.

**One writer at a time.** Every writer (:class:`RunWriter`, :func:`write_run`) holds the folder's
:class:`RunLock`: an exclusive ``flock`` on ``.lock``, which the kernel drops when its process
dies (``kill -9`` included), and a JSON record of the holder (host, pid, start time) for the
refusal message. What that guarantees:

- one host, local file systems: never two writers at once; a dead writer's lock is taken over.
- NFS: Linux clients pass ``flock`` to the server as an NFS lock (NFSv4, or NFSv3 with lockd),
  so writers on different hosts exclude each other as well; a crashed client's lock is freed
  when the server's lease for it ends (NFSv4: about 90 s). Mounted with ``local_lock=flock``,
  ``local_lock=all`` or ``nolock``, locks stay local to each host: only writers on the same
  host are excluded there.
- where ``flock`` fails (ENOLCK, EOPNOTSUPP: e.g. Lustre mounted without ``-o flock``), the
  record alone decides: a live process on this host, or any holder on another host (whose
  process cannot be checked from here), is refused, and the message says to delete ``.lock``
  once that process is known to be gone.
- a record naming a live process on this host is refused even where ``flock`` succeeded (a file
  system that accepts ``flock`` without enforcing it). Pids are matched with their start time
  (Linux ``/proc``), so a reused pid is not mistaken for the old writer.

**Every reader checks a run against its run.json** (:func:`read_episodes`): each line is a
well-formed episode of the run's task version, split, seed and budget, on one of its instances
(index range, shard, sample, and the uid its instance key gives), each ``(uid, sample)`` occurs
once, and a complete run holds exactly the episodes it promises, with no cut-off line. A
mismatch is a one-line :class:`RunIntegrityError` naming the file, what is wrong and how to fix
it; ``gpbench eval`` resuming the run repairs it instead (:class:`RunWriter`). A run still being
written may end in a cut-off line (a killed writer): readers stop before it.

Durability: every line reaches the operating system when written, so a killed process loses
nothing it wrote; files are fsynced when a run is marked complete (a power cut before then can
lose the last lines, which a resume runs again).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import math
import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import gpbench
from gpbench.errors import GpbenchError, RecordSchemaError
from gpbench.harness.backends import FINISH_REASONS, Completion
from gpbench.records import STOP_REASONS, Episode
from gpbench.serialization import JsonLimitError, parse_json, to_json

if TYPE_CHECKING:
    from gpbench.harness.loop import TurnRecord

try:
    import fcntl
except ImportError:  # not on Windows: the lock record alone decides there
    fcntl = None  # type: ignore[assignment]

RUN_FILE = "run.json"
EPISODES_FILE = "episodes.jsonl"
INFLIGHT_FILE = "inflight.jsonl"
LOCK_FILE = ".lock"
STATUSES = ("running", "complete", "writing")
_EPISODES_TMP = f".{EPISODES_FILE}.tmp"
_INFLIGHT_TMP = f".{INFLIGHT_FILE}.tmp"
_RUN_TMP = f".{RUN_FILE}.tmp"
_OWN_HIDDEN = frozenset({LOCK_FILE, _EPISODES_TMP, _INFLIGHT_TMP, _RUN_TMP})
_PACKAGES = ("torch", "transformers", "vllm", "datasets", "pillow", "click")
_RUN_FILE_LIMIT = 16 << 20  # a run.json is a few kB: anything this large is not one
_COMPACT_MIN = 4096  # dead in-flight lines tolerated before the sidecar is rewritten


def provenance() -> dict[str, Any]:
    """Who and what produced a run: gpbench version and commit, Python, platform, packages."""
    return {
        "gpbench_version": gpbench.__version__,
        **_git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "created": _now(),
    }


def _now() -> str:
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


# --- the writer lock -------------------------------------------------------------------------


class RunLockedError(GpbenchError):
    """Another process holds the run folder's writer lock."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a run folder's writer lock.

    Attributes:
        host: the holder's host name.
        pid: its process id on that host.
        started: when it took the lock (UTC, ISO 8601).
        boot_id: the host's boot id (Linux), to tell a pid of an earlier boot apart.
        start_ticks: the process's start time in clock ticks since boot (Linux), to tell a
            reused pid apart.
    """

    host: str
    pid: int
    started: str
    boot_id: str | None = None
    start_ticks: int | None = None

    def describe(self) -> str:
        """``pid 123 on node7, since 2025-01-01T10:00:00+00:00``."""
        return f"pid {self.pid} on {self.host}, since {self.started}"

    def on_this_host(self) -> bool:
        """Whether the holder's host is this one."""
        return self.host == socket.gethostname()

    def alive(self) -> bool:
        """Whether the holder's process runs on this host now (False for other hosts)."""
        if not self.on_this_host():
            return False
        boot = _boot_id()
        if self.boot_id and boot and self.boot_id != boot:
            return False  # recorded before this host last booted
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, and another user's
        except OSError:
            return False
        if self.start_ticks is not None:
            ticks = _start_ticks(self.pid)
            if ticks is not None and ticks != self.start_ticks:
                return False  # the pid now belongs to a newer process
        return True

    def is_this_process(self) -> bool:
        """Whether the record names the calling process."""
        pid = os.getpid()
        return self.on_this_host() and self.pid == pid and self.start_ticks == _start_ticks(pid)


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time), or None where there is no ``/proc``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(text.rsplit(")", 1)[1].split()[19])  # fields after "(comm)" start at 3
    except (IndexError, ValueError):
        return None


def _this_holder() -> LockHolder:
    pid = os.getpid()
    return LockHolder(socket.gethostname(), pid, _now(), _boot_id(), _start_ticks(pid))


class RunLock:
    """The writer lock of one run folder (see the module docstring for what it guarantees).

    ``acquire`` creates the folder when needed and raises :class:`RunLockedError` (one line,
    naming the holder's host and pid) when another process holds it. A lock left by a dead
    process is taken over; :attr:`previous` then names that process. Usable as a context
    manager.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_FILE
        self.previous: LockHolder | None = None
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunLockedError`."""
        if self._fd is not None:
            raise RuntimeError(f"the lock of {self.folder} is already held by this object")
        for _ in range(8):
            fd = self._open()
            try:
                taken = self._take(fd)
            except BaseException:
                os.close(fd)
                raise
            if taken:
                self._fd = fd
                return self
            os.close(fd)
        raise GpbenchError(
            f"cannot lock {self.path}: it keeps being replaced; is something deleting it?"
        )

    def release(self) -> None:
        """Drop the lock (a clean exit leaves an empty record, so no holder is named)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the file drops the flock

    def _open(self) -> int:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise GpbenchError(
                f"cannot write to {self.folder}: {exc.strerror}; choose a folder you can write to"
            ) from None

    def _take(self, fd: int) -> bool:
        """Lock ``fd``; False when the lock file was replaced meanwhile (try the new one)."""
        enforced = self._flock(fd)
        if not _same_file(fd, self.path):
            return False
        holder = _read_holder(fd)
        if holder is not None and not holder.is_this_process():
            here = holder.on_this_host()
            if (here and holder.alive()) or (not enforced and not here):
                raise RunLockedError(self._message(holder, enforced))
            self.previous = holder
        _write_holder(fd, _this_holder())
        return True

    def _flock(self, fd: int) -> bool:
        """Take the kernel lock; False where the file system has none."""
        if fcntl is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(self._message(_read_holder(fd), True)) from None
        except OSError as exc:
            if exc.errno in _NO_LOCKS:
                return False
            raise GpbenchError(f"cannot lock {self.path}: {exc.strerror}") from None
        return True

    def _message(self, holder: LockHolder | None, enforced: bool) -> str:
        who = holder.describe() if holder else "its lock record is empty"
        if enforced:
            return (
                f"{self.folder} is being written by another gpbench process ({who}); a run "
                f"folder takes one writer at a time: wait for it to finish, or stop it and run "
                f"this command again (it resumes)"
            )
        return (
            f"{self.folder} is being written by another gpbench process ({who}) and this file "
            f"system cannot lock files; once that process has stopped, delete {self.path} and "
            f"run this command again"
        )


_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS})
"""``flock`` errors that mean the file system has no locks (not that the lock is held)."""


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


def _read_holder(fd: int) -> LockHolder | None:
    """The lock record, or None when it is empty or unreadable (someone else's junk included)."""
    try:
        data = parse_json(os.pread(fd, 4096, 0).decode("utf-8"))
        holder = LockHolder(
            str(data["host"]),
            int(data["pid"]),
            str(data["started"]),
            data.get("boot_id"),
            data.get("start_ticks"),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if holder.pid <= 0 or not isinstance(holder.start_ticks, (int, type(None))):
        return None
    if not isinstance(holder.boot_id, (str, type(None))):
        return None
    return holder


def _write_holder(fd: int, holder: LockHolder) -> None:
    data = json.dumps(
        {
            "host": holder.host,
            "pid": holder.pid,
            "started": holder.started,
            "boot_id": holder.boot_id,
            "start_ticks": holder.start_ticks,
        }
    ).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    with contextlib.suppress(OSError):
        os.fsync(fd)


# --- reading and checking runs ---------------------------------------------------------------


class RunIntegrityError(RecordSchemaError):
    """A run folder whose files do not hold what its run.json promises.

    Attributes:
        problem: what is wrong, without the advice.
        fix: how to repair the run.
    """

    def __init__(self, path: str, line: int, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(path, line, f"{problem}; {fix}")


def read_run_spec(folder: Path) -> dict[str, Any]:
    """The ``run.json`` of a run folder, its fields checked (a bad one is a one-line error)."""
    path = folder / RUN_FILE
    if not path.is_file():
        raise GpbenchError(f"{folder} is not a run folder (no {RUN_FILE})")
    try:
        with path.open("rb") as handle:
            raw = handle.read(_RUN_FILE_LIMIT + 1)
    except OSError as exc:
        raise GpbenchError(f"cannot read {path}: {exc.strerror}") from None
    fix = "the file is damaged: run the command that wrote the run again"
    if len(raw) > _RUN_FILE_LIMIT:
        raise RecordSchemaError(str(path), 0, f"over {_RUN_FILE_LIMIT >> 20} MB: {fix}")
    try:
        data = _decode(raw, allow_nan=True)  # checkpoint metadata may hold NaN
        _check_spec(data)
    except ValueError as exc:
        raise RecordSchemaError(str(path), 0, f"{exc}; {fix}") from None
    result: dict[str, Any] = data
    return result


def run_status(folder: Path) -> str | None:
    """``complete``, ``running`` (interrupted or in progress), ``writing`` or None (no run)."""
    try:
        return run_spec_status(read_run_spec(folder))
    except GpbenchError:
        return None


def run_spec_status(spec: dict[str, Any]) -> str:
    """The status a run.json records (runs written before statuses existed are complete)."""
    return str(spec.get("status", "complete"))


def read_episodes(folder: Path, spec: dict[str, Any] | None = None) -> Iterator[Episode]:
    """The episodes of a run, in file order, each checked against the run (``spec``: its run.json,
    read when not given).

    Raises :class:`RunIntegrityError` at the first line that is not a well-formed episode of the
    run or repeats one, and, after the last line of a complete run, when the run holds other
    than the episodes it promises. A run still being written may end in a cut-off line (its
    writer was killed while writing it): that line is skipped.
    """
    spec = read_run_spec(folder) if spec is None else spec
    promise = RunPromise.of(folder, spec)
    complete = run_spec_status(spec) == "complete"
    path = folder / EPISODES_FILE
    seen: set[tuple[str, int]] = set()
    if path.is_file():
        yield from _checked_lines(path, promise, complete, seen)
    if complete and promise.count is not None and len(seen) != promise.count:
        where = f"holds {len(seen)} episodes" if path.is_file() else f"has no {EPISODES_FILE}"
        raise promise.error(folder, 0, f"{where} but its run.json promises {promise.count}")


def _checked_lines(
    path: Path, promise: RunPromise, complete: bool, seen: set[tuple[str, int]]
) -> Iterator[Episode]:
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    if complete:
                        raise promise.error(path, number, "is cut off (no end of line)")
                    return  # the line a killed writer was writing: the episode was not finished
                if raw.isspace():
                    continue
                try:
                    episode = parse_episode(raw)
                except ValueError as exc:
                    raise promise.error(path, number, str(exc)) from None
                problem = promise.problem(episode)
                if problem is not None:
                    raise promise.error(path, number, problem)
                pair = (episode.uid, episode.sample)
                if pair in seen:
                    raise promise.error(
                        path,
                        number,
                        f"repeats the episode of instance {episode.index} sample {episode.sample}",
                    )
                seen.add(pair)
                yield episode
    except OSError as exc:
        raise promise.error(path, 0, f"cannot be read ({exc.strerror})") from None


@dataclass(frozen=True)
class RunPromise:
    """What a run's run.json says its episodes are (None: not recorded, so not checked).

    Attributes:
        tasks: the (task, version) pairs episodes may be of.
        splits, seeds: the splits and instance seeds episodes may be of.
        budget: the verification budget every episode ran under.
        n, shard: episodes are on instance indices ``range(shard[0], n, shard[1])``.
        samples: samples per instance.
        count: the number of episodes of the complete run.
        uid_prefix: the instance keys' common start (a uid is the hash of it plus the index).
        fix: how to repair the run, for error messages.
    """

    tasks: frozenset[tuple[str, int]] | None
    splits: frozenset[str] | None
    seeds: frozenset[int] | None
    budget: int | None
    n: int | None
    shard: tuple[int, int]
    samples: int | None
    count: int | None
    uid_prefix: str | None
    fix: str

    @classmethod
    def of(cls, folder: Path, spec: dict[str, Any]) -> RunPromise:
        """The promise of a run.json (checked by :func:`read_run_spec`)."""
        key = spec.get("run_key")
        if isinstance(key, dict):
            return cls._of_eval(folder, spec, key)
        tasks = spec.get("tasks")
        return cls(
            tasks=frozenset(tasks.items()) if isinstance(tasks, dict) else None,
            splits=frozenset(spec["splits"]) if "splits" in spec else None,
            seeds=frozenset(spec["seeds"]) if "seeds" in spec else None,
            budget=spec.get("max_attempts"),
            n=None,
            shard=(0, 1),
            samples=None,
            count=spec.get("episodes"),
            uid_prefix=None,
            fix=_fix(spec),
        )

    @classmethod
    def _of_eval(cls, folder: Path, spec: dict[str, Any], key: dict[str, Any]) -> RunPromise:
        task_id, _, version = key["task"].partition("@")
        shard = (key["shard"][0], key["shard"][1])
        count = len(range(shard[0], key["n"], shard[1])) * key["samples"]
        fix = _fix(spec)
        recorded = spec.get("episodes")
        if run_spec_status(spec) == "complete" and recorded is not None and recorded != count:
            raise RunIntegrityError(
                str(folder / RUN_FILE),
                0,
                f"says {recorded} episodes but its run key promises {count}",
                fix,
            )
        return cls(
            tasks=frozenset({(task_id, int(version))}),
            splits=frozenset({key["split"]}),
            seeds=frozenset({key["seed"]}),
            budget=key["budget"],
            n=key["n"],
            shard=shard,
            samples=key["samples"],
            count=count,
            uid_prefix=_uid_prefix(key),
            fix=fix,
        )

    def problem(self, episode: Episode) -> str | None:
        """Why ``episode`` is not one of the run's, or None."""
        if self.tasks is not None and (episode.task, episode.task_version) not in self.tasks:
            runs = ", ".join(f"{t}@{v}" for t, v in sorted(self.tasks))
            return f"is an episode of {episode.task}@{episode.task_version}, not {runs}"
        if self.splits is not None and episode.split not in self.splits:
            return f"is an episode of split {episode.split!r}, not {_names(self.splits)}"
        if self.seeds is not None and episode.seed not in self.seeds:
            return f"is an episode of instance seed {episode.seed}, not {_names(self.seeds)}"
        if self.budget is not None and episode.budget != self.budget:
            return f"ran under budget {episode.budget}, not the run's {self.budget}"
        return self.instance_problem(episode.uid, episode.index, episode.sample)

    def instance_problem(self, uid: str, index: int, sample: int) -> str | None:
        """Why ``(uid, index, sample)`` is not one of the run's instances and samples, or None."""
        first, step = self.shard
        if self.n is not None and not (index < self.n and index % step == first):
            shard = f", shard {first}/{step}" if step > 1 else ""
            return f"is on instance {index}, not one of the run's (n={self.n}{shard})"
        if self.samples is not None and sample >= self.samples:
            return f"is sample {sample}, but the run takes {self.samples} per instance"
        if self.uid_prefix is not None:
            from gpbench.generators.rng import content_hash

            if uid != content_hash(f"{self.uid_prefix}{index}"):
                return f"has uid {uid!r}, which is not the uid of the run's instance {index}"
        return None

    def error(self, path: Path, line: int, problem: str) -> RunIntegrityError:
        """The one-line error for ``problem`` at ``path:line`` (line 0: the whole file)."""
        return RunIntegrityError(str(path), line, problem, self.fix)


def _names(values: Iterable[Any]) -> str:
    return " or ".join(repr(v) for v in sorted(values))


def _fix(spec: dict[str, Any]) -> str:
    if "merged_from" in spec:
        return "run its gpbench merge command again with --overwrite"
    if "run_key" in spec:
        return "run its gpbench eval command again: it repairs the run and runs what is missing"
    return "run the command that wrote it again (gpbench score ... --overwrite)"


def _uid_prefix(key: dict[str, Any]) -> str | None:
    """The instance keys' common start for a run key, or None where it cannot be recomputed
    (a task version this gpbench does not know, options it does not take)."""
    from gpbench.tasks.registry import get_task

    try:
        task = get_task(key["task"])
    except GpbenchError:
        return None
    options = key["options"]
    if not set(options) <= set(task.options):
        return None
    defaults = {name: option.default for name, option in task.options.items()}
    try:
        return task.key_prefix(key["split"], key["seed"], {**defaults, **options})
    except (TypeError, ValueError, KeyError):  # option values of a kind the task never makes
        return None


# --- decoding untrusted lines ----------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _decode(raw: bytes, *, allow_nan: bool = False) -> Any:
    """One JSON document from untrusted bytes (:func:`gpbench.serialization.parse_json`, so
    absurd nesting and huge integers are refused too); ValueError with a short reason otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        if allow_nan:
            return parse_json(text)
        return parse_json(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = "" if isinstance(exc, JsonLimitError) else f" at column {exc.colno}"
        raise ValueError(f"not valid JSON ({exc.msg}{where})") from None
    except ValueError as exc:  # a NaN refused by _reject_constant
        raise ValueError(f"not valid JSON ({exc})") from None


_MISSING: Any = object()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else "an object"


def _get(data: dict[str, Any], key: str, where: str, default: Any) -> Any:
    value = data.get(key, default)
    if value is _MISSING:
        raise ValueError(f"has no field {where}{key}")
    return value


def _wrong(where: str, key: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"field {where}{key} must be {expected}, found {_kind(value)}")


def _string(data: dict[str, Any], key: str, where: str = "", default: Any = _MISSING) -> str:
    value = _get(data, key, where, default)
    if not isinstance(value, str):
        raise _wrong(where, key, "a string", value)
    return value


def _integer(
    data: dict[str, Any],
    key: str,
    where: str = "",
    minimum: int | None = 0,
    default: Any = _MISSING,
) -> int:
    value = _get(data, key, where, default)
    if type(value) is not int or (minimum is not None and value < minimum):
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise _wrong(where, key, expected, value)
    return value


def _optional_integer(data: dict[str, Any], key: str, where: str = "") -> int | None:
    value = data.get(key)
    return None if value is None else _integer(data, key, where)


def _boolean(data: dict[str, Any], key: str, where: str = "", default: Any = _MISSING) -> bool:
    value = _get(data, key, where, default)
    if not isinstance(value, bool):
        raise _wrong(where, key, "true or false", value)
    return value


def _finite(data: dict[str, Any], key: str, where: str = "", default: Any = _MISSING) -> float:
    value = _get(data, key, where, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _wrong(where, key, "a finite number", value)
    return value


def _optional_finite(data: dict[str, Any], key: str, where: str = "") -> float | None:
    value = data.get(key)
    return None if value is None else _finite(data, key, where)


def _strings(data: dict[str, Any], key: str, where: str = "", default: Any = _MISSING) -> list[str]:
    value = _get(data, key, where, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(where, key, "a list of strings", value)
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, found {_kind(value)}")
    return value


def parse_episode(raw: bytes) -> Episode:
    """An Episode from one line of ``episodes.jsonl``, every field checked.

    Raises ValueError naming the first field that is missing, of the wrong type, or
    inconsistent with the others (``attempts_used`` against the turns, ``correct`` against the
    stop reason), so no reader counts a malformed record.
    """
    data = _mapping(_decode(raw), "the line")
    turns = _get(data, "turns", "", _MISSING)
    if not isinstance(turns, list):
        raise _wrong("", "turns", "a list", turns)
    for position, turn in enumerate(turns):
        _check_turn(turn, f"turns[{position}].")
    stop = _string(data, "stop_reason")
    if stop not in STOP_REASONS:
        raise ValueError(f"field stop_reason must be one of {', '.join(STOP_REASONS)}")
    correct = _boolean(data, "correct")
    attempts = _integer(data, "attempts_used")
    first_try = _boolean(data, "first_try_correct")
    if attempts != len(turns):
        raise ValueError(f"says attempts_used {attempts} but holds {len(turns)} turns")
    if correct != (stop == "solved") or (first_try and not correct):
        raise ValueError(f"says correct {str(correct).lower()} but stopped as {stop}")
    if correct and not turns[-1]["verdict"]["correct"]:
        raise ValueError("is solved but its last attempt was not correct")
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise _wrong("", "error", "a string or null", error)
    return Episode(
        uid=_string(data, "uid"),
        task=_string(data, "task"),
        task_version=_integer(data, "task_version"),
        split=_string(data, "split"),
        seed=_integer(data, "seed", minimum=None),
        index=_integer(data, "index"),
        sample=_integer(data, "sample"),
        turns=turns,
        correct=correct,
        return_=_finite(data, "return"),
        attempts_used=attempts,
        first_try_correct=first_try,
        stop_reason=stop,
        budget=_integer(data, "budget", minimum=1),
        flags=_strings(data, "flags", default=[]),
        error=error,
    )


def _check_turn(value: Any, where: str) -> None:
    turn = _mapping(value, f"field {where[:-1]}")
    _integer(turn, "attempt", where, minimum=1)
    _string(turn, "response", where)
    _boolean(turn, "output_truncated", where, default=False)
    _optional_integer(turn, "prompt_tokens", where)
    _optional_integer(turn, "completion_tokens", where)
    _optional_finite(turn, "latency_s", where)
    _integer(turn, "decision_point", where, default=0)
    _finite(turn, "reward", where, default=0.0)
    verdict = _mapping(_get(turn, "verdict", where, _MISSING), f"field {where}verdict")
    inner = f"{where}verdict."
    _boolean(verdict, "correct", inner)
    _string(verdict, "status", inner)
    _strings(verdict, "statuses", inner)
    _finite(verdict, "reward", inner)
    _string(verdict, "feedback", inner)
    _strings(verdict, "flags", inner, default=[])
    extracted = _mapping(verdict.get("extracted", {}), f"field {inner}extracted")
    detection = extracted.get("detection")
    if detection is not None:
        found = _mapping(detection, f"field {inner}extracted.detection")
        _boolean(found, "intersection_correct", f"{inner}extracted.detection.")
        _integer(found, "landmarks_visible", f"{inner}extracted.detection.")
        _integer(found, "landmarks_named", f"{inner}extracted.detection.")


def _check_spec(data: Any) -> None:
    """The run.json fields gpbench's readers rely on have their types (ValueError otherwise)."""
    spec = _mapping(data, "the file")
    if "status" in spec and spec["status"] not in STATUSES:
        raise ValueError(f"field status must be one of {', '.join(STATUSES)}")
    if "episodes" in spec:
        _integer(spec, "episodes")
    if "max_attempts" in spec:
        _integer(spec, "max_attempts", minimum=1)
    if "splits" in spec:
        _strings(spec, "splits")
    seeds = spec.get("seeds", [])
    if not isinstance(seeds, list) or not all(type(s) is int for s in seeds):
        raise _wrong("", "seeds", "a list of integers", seeds)
    tasks = spec.get("tasks", {})
    if not isinstance(tasks, dict) or not all(type(v) is int for v in tasks.values()):
        raise _wrong("", "tasks", "an object of task versions", tasks)
    if "run_key" in spec:
        _check_run_key(_mapping(spec["run_key"], "field run_key"))


def _check_run_key(key: dict[str, Any]) -> None:
    task = _string(key, "task", "run_key.")
    name, _, version = task.partition("@")
    if not name or not version.isdigit():
        raise ValueError(f"field run_key.task must be TASK@VERSION, found {task!r}")
    _string(key, "split", "run_key.")
    _integer(key, "seed", "run_key.", minimum=None)
    _integer(key, "n", "run_key.")
    _integer(key, "samples", "run_key.", minimum=1)
    _integer(key, "budget", "run_key.", minimum=1)
    _mapping(key.get("options", {}), "field run_key.options")
    shard = key.get("shard")
    if (
        not isinstance(shard, list)
        or len(shard) != 2
        or not all(type(s) is int for s in shard)
        or not 0 <= shard[0] < shard[1]
    ):
        raise _wrong("run_key.", "shard", "[i, N] with 0 <= i < N", shard)


def _inflight_line(record: TurnRecord) -> bytes:
    completion = record.completion
    payload = {
        "uid": record.uid,
        "index": record.index,
        "sample": record.sample,
        "turn": record.turn,
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "latency_s": completion.latency_s,
    }
    return (to_json(payload) + "\n").encode("utf-8")


def _parse_inflight(raw: bytes) -> tuple[str, int, int, int, Completion]:
    """``(uid, index, sample, turn, completion)`` of one ``inflight.jsonl`` line."""
    data = _mapping(_decode(raw), "the line")
    reason = _string(data, "finish_reason")
    if reason not in FINISH_REASONS:
        raise ValueError(f"field finish_reason must be one of {', '.join(FINISH_REASONS)}")
    completion = Completion(
        _string(data, "text"),
        reason,
        _optional_integer(data, "prompt_tokens"),
        _optional_integer(data, "completion_tokens"),
        _optional_finite(data, "latency_s"),
    )
    return (
        _string(data, "uid"),
        _integer(data, "index"),
        _integer(data, "sample"),
        _integer(data, "turn"),
        completion,
    )


# --- writing ---------------------------------------------------------------------------------


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
            payload["finished"] = _now()
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
