"""Writing run folders: writers never lose or double an episode, and resume what was cut off
(gpbench.harness.writer)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from run_fixtures import edited, episode_lines, write_episode_lines

from gpbench.errors import GpbenchError
from gpbench.harness import writer as run_writer
from gpbench.harness.backends import Completion
from gpbench.harness.loop import TurnRecord
from gpbench.harness.writer import RunWriter, write_run
from gpbench.records import Episode
from gpbench.runs.folder import INFLIGHT_FILE
from gpbench.runs.lock import RunLock, RunLockedError
from gpbench.runs.read import read_episodes, read_run_spec, run_status

# --- write_run --------------------------------------------------------------------------------


def _score_spec() -> dict[str, Any]:
    return {"kind": "gpbench-run", "tasks": {"gp-l": 1}, "splits": ["ood-rule"], "seeds": [42]}


def _episodes(source: Path) -> list[Episode]:
    return list(read_episodes(source))


def test_write_run_refuses_while_another_writer_holds_the_folder(
    pristine: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    with RunLock(target), pytest.raises(RunLockedError, match=r"being written by .* \(pid \d+ on"):
        write_run(target, _score_spec(), _episodes(pristine))
    assert write_run(target, _score_spec(), _episodes(pristine)) == 20


def test_a_crash_between_the_steps_of_write_run_leaves_a_refused_run_that_a_rerun_replaces(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out"
    write_run(target, _score_spec(), _episodes(pristine)[:5])
    original = Path.replace

    def crash(self: Path, other: Any) -> Any:
        if self.name == ".episodes.jsonl.tmp":
            raise KeyboardInterrupt  # killed after run.json was marked, before the episodes moved
        return original(self, other)

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_run(target, _score_spec(), _episodes(pristine), overwrite=True)
    monkeypatch.setattr(Path, "replace", original)
    assert run_status(target) == "writing"
    assert len(episode_lines(target)) == 5  # the old episodes, under a run.json no reader accepts
    # No --overwrite needed to finish an interrupted write.
    assert write_run(target, _score_spec(), _episodes(pristine)) == 20
    assert run_status(target) == "complete" and len(list(read_episodes(target))) == 20
    assert sorted(p.name for p in target.iterdir()) == [".lock", "episodes.jsonl", "run.json"]


def test_write_run_keeps_a_complete_run_and_removes_a_folder_it_failed_to_fill(
    pristine: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    write_run(target, _score_spec(), _episodes(pristine))
    with pytest.raises(GpbenchError, match="already holds a run; choose another -o folder"):
        write_run(target, _score_spec(), [])

    def failing() -> Any:
        yield _episodes(pristine)[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_run(tmp_path / "fresh", _score_spec(), failing())
    assert not (tmp_path / "fresh").exists()


# --- RunWriter --------------------------------------------------------------------------------


def _spec_of(folder: Path) -> dict[str, Any]:
    spec = read_run_spec(folder)
    return {k: v for k, v in spec.items() if k not in ("status", "episodes", "finished", "loop")}


def test_finish_on_a_full_disk_leaves_the_run_running_and_resumable(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "run"
    episodes = _episodes(pristine)
    writer = RunWriter(folder, _spec_of(pristine))
    for episode in episodes:
        writer.append(episode)
    original = run_writer._write_atomically

    def full(path: Path, data: bytes) -> None:
        if b'"complete"' in data:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(path, data)

    monkeypatch.setattr(run_writer, "_write_atomically", full)
    with pytest.raises(GpbenchError, match=r"run\.json: No space left on device; the run is not"):
        writer.finish()
    writer.close()
    monkeypatch.setattr(run_writer, "_write_atomically", original)
    assert run_status(folder) == "running" and len(episode_lines(folder)) == 20
    resumed = RunWriter(folder, _spec_of(pristine))
    assert len(resumed.done) == 20 and not resumed.repairs
    resumed.finish()
    resumed.close()
    assert run_status(folder) == "complete" and len(list(read_episodes(folder))) == 20


def test_finish_refuses_a_run_with_episodes_missing(pristine: Path, tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run", _spec_of(pristine))
    writer.append(_episodes(pristine)[0])
    with pytest.raises(GpbenchError, match="1 of 20 episodes written and 0 in flight"):
        writer.finish()
    writer.close()
    assert run_status(tmp_path / "run") == "running"


def test_a_disk_that_fills_mid_line_stops_the_writer_and_the_resume_cuts_the_line(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "run"
    writer = RunWriter(folder, _spec_of(pristine))
    episodes = _episodes(pristine)
    writer.append(episodes[0])
    write = os.write
    calls: list[int] = []

    def filling(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return write(fd, bytes(data)[:10])  # a short write: part of the line is on disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_writer.os, "write", filling)
    with pytest.raises(GpbenchError, match=r"episodes\.jsonl: No space left on device"):
        writer.append(episodes[1])
    monkeypatch.undo()
    with pytest.raises(GpbenchError, match="closed after a failed write"):
        writer.append(episodes[2])
    writer.close()
    assert not episode_lines(folder)[-1].endswith("\n")
    resumed = RunWriter(folder, _spec_of(pristine))
    assert resumed.done == {(episodes[0].uid, 0)} and len(episode_lines(folder)) == 1
    resumed.close()


def test_resuming_drops_what_is_not_the_runs_and_says_so(pristine: Path, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(pristine, tmp_path / "run"))
    lines = episode_lines(folder)
    damaged = [*lines[:10], lines[2], edited(lines[11], split="id"), "{oops\n", *lines[12:]]
    write_episode_lines(folder, [*damaged, lines[10][:25]])
    seen: list[Episode] = []
    writer = RunWriter(folder, _spec_of(pristine), observe=seen.append)
    [repair] = writer.repairs
    assert "1 repeated episode(s) (line 11)" in repair
    assert "1 episode(s) not of this run (line 12 is an episode of split 'id'" in repair
    assert "1 unreadable line(s) (line 13 not valid JSON" in repair
    kept = [*lines[:10], *lines[12:]]
    assert episode_lines(folder) == kept and len(seen) == len(writer.done) == 18
    writer.close()


def test_resuming_refuses_a_folder_of_another_run_key(pristine: Path, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(pristine, tmp_path / "run"))
    spec = _spec_of(pristine)
    spec["run_key"] = {**spec["run_key"], "budget": 2}
    with pytest.raises(GpbenchError, match=r"holds a run of another configuration .* budget"):
        RunWriter(folder, spec)
    restarted = RunWriter(folder, spec, restart=True)
    assert not restarted.done and not (folder / "episodes.jsonl").read_bytes()
    restarted.close()


def _record(episode: Episode, turn: int) -> TurnRecord:
    text = episode.turns[turn]["response"]
    return TurnRecord(episode.uid, episode.index, episode.sample, turn, Completion(text, "stop"))


def test_the_in_flight_sidecar_holds_only_live_turns_and_is_gone_when_complete(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_writer, "_COMPACT_MIN", 4)
    episodes = _episodes(pristine)
    folder = tmp_path / "run"
    writer = RunWriter(folder, _spec_of(pristine))
    for episode in episodes:
        writer.record_turns([_record(episode, 0)])
        writer.append(episode)
        # Compacted as dead lines pile up: never more than the live ones plus a margin.
        assert len((folder / INFLIGHT_FILE).read_bytes().splitlines()) <= 5
    writer.record_turns([_record(episodes[0], 0)])  # a line of an episode already finished
    writer._live.clear()
    writer._live_lines = 0
    writer.finish()
    writer.close()
    assert not (folder / INFLIGHT_FILE).exists()


def test_resuming_hands_over_the_recorded_turns_of_unfinished_episodes(
    pristine: Path, tmp_path: Path
) -> None:
    episodes = [e for e in _episodes(pristine) if len(e.turns) >= 2]
    first, second = episodes[0], episodes[1]
    folder = tmp_path / "run"
    writer = RunWriter(folder, _spec_of(pristine))
    writer.record_turns([_record(first, 0), _record(second, 0)])
    writer.record_turns([_record(first, 1)])
    writer.close()  # killed here: two episodes in flight
    with (folder / INFLIGHT_FILE).open("ab") as handle:
        handle.write(b'{"uid": "torn')
    resumed = RunWriter(folder, _spec_of(pristine))
    assert resumed.resume_turns == {
        (first.uid, 0): [Completion(first.turns[i]["response"], "stop") for i in (0, 1)],
        (second.uid, 0): [Completion(second.turns[0]["response"], "stop")],
    }
    assert not resumed.repairs  # a torn last line is what a kill leaves: nothing to report
    resumed.close()
    # A record out of turn order (or of another instance) is dropped with its episode.
    with (folder / INFLIGHT_FILE).open("ab") as handle:
        handle.write(run_writer._inflight_line(_record(second, 1)))
        handle.write(run_writer._inflight_line(_record(second, 1)))
    again = RunWriter(folder, _spec_of(pristine))
    assert list(again.resume_turns) == [(first.uid, 0)]
    assert again.repairs == [
        "dropped 1 unusable line(s) of inflight.jsonl (their episodes start over)"
    ]
    again.close()
