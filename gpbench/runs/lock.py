"""The writer lock of a run folder: one writer at a time.

Every writer (:class:`gpbench.harness.writer.RunWriter`,
:func:`gpbench.harness.writer.write_run`) holds the folder's :class:`RunLock`: an exclusive
``flock`` on ``.lock``, which the kernel drops when its process dies (``kill -9`` included), and
a JSON record of the holder (host, pid, start time) for the refusal message. What that guarantees:

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
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from gpbench.errors import GpbenchError
from gpbench.runs.folder import LOCK_FILE, now
from gpbench.serialization import parse_json

try:
    import fcntl
except ImportError:  # not on Windows: the lock record alone decides there
    fcntl = None  # type: ignore[assignment]

_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS})


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
    return LockHolder(socket.gethostname(), pid, now(), _boot_id(), _start_ticks(pid))


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
