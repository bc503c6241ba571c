"""One writer per run folder: a live writer is refused in one line, a dead one's lock taken over."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gpbench.errors import GpbenchError
from gpbench.harness.evaluate import EvalConfig, evaluate
from gpbench.runs import lock as run_lock
from gpbench.runs.folder import LOCK_FILE
from gpbench.runs.lock import RunLock, RunLockedError
from gpbench.runs.read import read_episodes, read_run_spec


def _record(folder: Path, **fields: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"host": socket.gethostname(), "started": "2025-01-01T00:00:00+00:00", **fields}
    (folder / LOCK_FILE).write_text(json.dumps(holder))


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_writer_is_refused_naming_host_and_pid(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError) as info:
            RunLock(tmp_path / "run").acquire()
        message = str(info.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}, since " in message
        assert "\n" not in message and "wait for it to finish" in message
    # Released: the next writer gets it, and a clean exit leaves no holder to name.
    with RunLock(tmp_path / "run") as lock:
        assert lock.previous is None


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    pid = _dead_pid()
    _record(tmp_path / "run", pid=pid)
    with RunLock(tmp_path / "run") as lock:
        assert lock.previous is not None and lock.previous.pid == pid


def test_a_live_process_named_by_the_record_is_refused_where_flock_does_not_enforce(
    tmp_path: Path,
) -> None:
    """A file system that accepts flock without enforcing it: the record still protects."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ticks = run_lock._start_ticks(sleeper.pid)
        _record(tmp_path / "run", pid=sleeper.pid, start_ticks=ticks)
        with pytest.raises(RunLockedError, match=rf"pid {sleeper.pid} on "):
            RunLock(tmp_path / "run").acquire()
        if ticks is not None:  # a reused pid (another start time) is not the old writer
            _record(tmp_path / "run", pid=sleeper.pid, start_ticks=ticks + 1)
            with RunLock(tmp_path / "run") as lock:
                assert lock.previous is not None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_without_file_locks_a_holder_on_another_host_is_refused_with_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_locks)
    folder = tmp_path / "run"
    _record(folder, pid=4242, host="elsewhere")
    with pytest.raises(RunLockedError, match=r"pid 4242 on elsewhere.*cannot lock files") as info:
        RunLock(folder).acquire()
    assert f"delete {folder / LOCK_FILE}" in str(info.value)
    _record(folder, pid=_dead_pid())  # a dead process of this host: taken over
    with RunLock(folder) as lock:
        assert lock.previous is not None


def test_an_unreadable_lock_record_does_not_stop_a_writer(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_FILE).write_bytes(b"\xff[[[")
    with RunLock(folder) as lock:
        assert lock.previous is None


def test_a_folder_that_cannot_be_written_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(GpbenchError, match=r"cannot write to .*file/run"):
        RunLock(tmp_path / "file" / "run").acquire()


# --- two real processes -----------------------------------------------------------------------

# A `gpbench eval` process whose model answers the first turn, then hangs (a slow model): the
# test can act while it holds the run folder, then kill it. Only the waiting is patched.
_HANGING = """
import sys, time
from gpbench.harness.backends.scripted import ScriptedBackend
from gpbench.cli import main

answer = ScriptedBackend.generate
calls = []

def hanging(self, requests, sampling):
    if calls:
        time.sleep(3600)
    calls.append(len(requests))
    return answer(self, requests, sampling)

ScriptedBackend.generate = hanging
sys.argv = ["gpbench", *sys.argv[1:]]
main()
"""

N = 24
ARGS = (
    "eval",
    "--model",
    "reference:0.6",
    "--backend",
    "scripted",
    "--task",
    "gp-l",
    "--split",
    "ood-rule",
    "-n",
    str(N),
)


def _wait_for_lines(path: Path, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_bytes().count(b"\n"):
            return
        assert process.poll() is None, "the writer ended before its first turn was on disk"
        time.sleep(0.02)
    raise AssertionError(f"{path} stayed empty")


def test_two_processes_on_one_run_folder_never_double_an_episode(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    script = tmp_path / "hanging.py"
    script.write_text(_HANGING)
    command = [*ARGS, "--runs-dir", str(runs)]
    first = subprocess.Popen([sys.executable, str(script), *command], stderr=subprocess.DEVNULL)
    try:
        _wait_for_lines(runs.joinpath(*_only(runs), "inflight.jsonl"), first)
        second = subprocess.run(
            [sys.executable, "-m", "gpbench", *command], capture_output=True, text=True
        )
        assert second.returncode != 0
        [line] = second.stderr.strip().splitlines()
        assert f"pid {first.pid} on {socket.gethostname()}" in line, line
        assert line.startswith("Error: ") and "being written by another gpbench process" in line
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    [folder] = [runs / name for name in _only(runs)]
    assert read_run_spec(folder)["status"] == "running"
    third = subprocess.run(
        [sys.executable, "-m", "gpbench", *command], capture_output=True, text=True
    )
    assert third.returncode == 0, third.stderr
    assert f"took over the lock of pid {first.pid}" in third.stderr
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == N and read_run_spec(folder)["status"] == "complete"
    episodes = list(read_episodes(folder))
    assert len({(e.uid, e.sample) for e in episodes}) == N
    [reference], _ = evaluate(
        EvalConfig(
            model="reference:0.6",
            backend="scripted",
            tasks=("gp-l",),
            splits=("ood-rule",),
            n=N,
            runs_dir=tmp_path / "reference",
        )
    )
    expected = {(e.uid, e.sample): e.turns for e in read_episodes(reference.folder)}
    assert {(e.uid, e.sample): e.turns for e in episodes} == expected


def _only(runs: Path, timeout: float = 120) -> tuple[str]:
    """The name of the one run folder under ``runs`` (waiting for it to appear)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = [p.name for p in runs.iterdir()] if runs.is_dir() else []
        if names:
            [name] = names
            return (name,)
        time.sleep(0.02)
    raise AssertionError(f"no run folder appeared in {runs}")
