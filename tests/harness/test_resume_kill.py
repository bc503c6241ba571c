"""kill -9 in the middle of a multi-turn run loses at most the turn in progress.

After every backend call the answered turns of the episodes still in flight are on disk
(``inflight.jsonl``); the same command then resumes: finished episodes are kept, unfinished ones
replay their recorded answers and go on from the next turn with the same request seeds, so the
run ends equal to an uninterrupted one (exactly for the scripted backend, and for ``hf`` greedy
decoding at batch size 1 on one machine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gpbench.runs.folder import INFLIGHT_FILE
from gpbench.runs.read import read_episodes, read_run_spec

# `gpbench eval` whose model hangs at its HANG_AT-th call: the test kills it there, in the middle
# of a turn, with the turns before it on disk. Only the hang is patched; answers are untouched.
_HANGING = """
import os, sys, time
from gpbench.harness.backends.scripted import ScriptedBackend
from gpbench.cli import main

answer = ScriptedBackend.generate
calls = []

def hanging(self, requests, sampling):
    calls.append(len(requests))
    if len(calls) == int(os.environ["HANG_AT"]):
        open(os.environ["HANG_FLAG"], "w").close()
        time.sleep(3600)
    return answer(self, requests, sampling)

ScriptedBackend.generate = hanging
sys.argv = ["gpbench", *sys.argv[1:]]
main()
"""


def _gpbench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpbench", *args], capture_output=True, text=True, env=env
    )


def _folder(runs: Path) -> Path:
    [folder] = list(runs.iterdir())
    return folder


def _durable(folder: Path) -> tuple[int, int]:
    """(turns of finished episodes, recorded turns of unfinished ones) on disk now."""
    episodes = list(read_episodes(folder))
    done = {(e.uid, e.sample) for e in episodes}
    path = folder / INFLIGHT_FILE
    lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
    records = [json.loads(line) for line in lines if line.endswith("\n")]
    in_flight = sum((r["uid"], r["sample"]) not in done for r in records)
    return sum(len(e.turns) for e in episodes), in_flight


def _outcomes(folder: Path) -> dict[tuple[str, int], Any]:
    """Each episode's answers, verdicts and rewards (latency, a wall time, left out)."""
    return {
        (e.uid, e.sample): (
            [(t["response"], t["verdict"], t["reward"], t["output_truncated"]) for t in e.turns],
            e.correct,
            e.return_,
            e.stop_reason,
        )
        for e in read_episodes(folder)
    }


def test_a_scripted_run_killed_mid_turn_resumes_to_the_uninterrupted_run(tmp_path: Path) -> None:
    args = ["eval", "--model", "reference:0.7", "--backend", "scripted", "--task", "gp-l"]
    args += ["--split", "ood-rule", "-n", "40", "--samples", "2"]
    script = tmp_path / "hanging.py"
    script.write_text(_HANGING)
    flag = tmp_path / "hanging-now"
    env = {**os.environ, "HANG_AT": "3", "HANG_FLAG": str(flag)}
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, str(script), *args, "--runs-dir", str(runs)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)  # in the middle of turn 3
    finally:
        process.kill()
        process.wait()
    folder = _folder(runs)
    finished, in_flight = _durable(folder)
    assert in_flight and read_run_spec(folder)["status"] == "running"
    resumed = _gpbench(*args, "--runs-dir", str(runs))
    assert resumed.returncode == 0, resumed.stderr
    whole = _gpbench(*args, "--runs-dir", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    reference = _folder(tmp_path / "whole")
    assert _outcomes(folder) == _outcomes(reference)
    # Nothing on disk was asked again: the resumed process sent only the turns not recorded.
    total = read_run_spec(reference)["loop"]["requests"]
    assert read_run_spec(folder)["loop"]["requests"] == total - finished - in_flight
    assert not (folder / INFLIGHT_FILE).exists()
    assert len((folder / "episodes.jsonl").read_text().splitlines()) == 80


@pytest.mark.slow
def test_an_hf_run_killed_after_its_first_turn_resumes_to_the_uninterrupted_run(
    tiny_llama: Path, tmp_path: Path
) -> None:
    """A real kill -9 of a multi-turn hf run (greedy, batch size 1) once turn 1 is durable."""
    args = ["eval", "--backend", "hf", "--model", str(tiny_llama), "--task", "gp-l"]
    args += ["--split", "ood-rule", "-n", "6", "--max-tokens", "24", "--max-attempts", "4"]
    args += ["--batch-size", "1"]
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "gpbench", *args, "--runs-dir", str(runs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            sidecars = list(runs.glob(f"*/{INFLIGHT_FILE}")) if runs.is_dir() else []
            if sidecars and sidecars[0].read_bytes().count(b"\n"):
                os.kill(process.pid, signal.SIGKILL)
                break
            assert process.poll() is None, "the run ended before its first turn was on disk"
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        process.kill()
        process.wait()
    folder = _folder(runs)
    finished, in_flight = _durable(folder)
    assert in_flight and read_run_spec(folder)["status"] == "running"
    resumed = _gpbench(*args, "--runs-dir", str(runs))
    assert resumed.returncode == 0, resumed.stderr
    whole = _gpbench(*args, "--runs-dir", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    reference = _folder(tmp_path / "whole")
    ours, theirs = _outcomes(folder), _outcomes(reference)
    assert len(ours) == 6 and ours == theirs
    total = read_run_spec(reference)["loop"]["requests"]
    assert read_run_spec(folder)["loop"]["requests"] == total - finished - in_flight
    # The turns replayed from disk kept what the backend reported for them.
    replayed = [json.loads(line) for line in (folder / "episodes.jsonl").read_text().splitlines()]
    assert all(t["completion_tokens"] for e in replayed for t in e["turns"])
