"""Reading run folders: every reader checks a run against its run.json (gpbench.runs.read)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from run_fixtures import edited, episode_lines, eval_run, write_episode_lines

from gpbench.errors import RecordSchemaError
from gpbench.runs.folder import INFLIGHT_FILE
from gpbench.runs.read import RunIntegrityError, read_episodes, read_run_spec, run_status


def test_a_complete_run_reads_back_whole(run: Path) -> None:
    assert len(list(read_episodes(run))) == 20
    assert (run / ".lock").is_file() and not (run / INFLIGHT_FILE).exists()


def test_a_complete_run_whose_last_line_is_torn_is_an_error_not_19_episodes(run: Path) -> None:
    lines = episode_lines(run)
    write_episode_lines(run, [*lines[:-1], lines[-1][:30]])
    with pytest.raises(RunIntegrityError, match=r"episodes\.jsonl:20: is cut off"):
        list(read_episodes(run))


def test_a_missing_episode_is_an_error(run: Path) -> None:
    write_episode_lines(run, episode_lines(run)[:-1])
    with pytest.raises(RunIntegrityError, match=r"holds 19 episodes but its run\.json promises 20"):
        list(read_episodes(run))


def test_a_repeated_episode_is_an_error(run: Path) -> None:
    lines = episode_lines(run)
    write_episode_lines(run, [*lines, lines[3]])
    with pytest.raises(RunIntegrityError, match=r":21: repeats the episode of instance \d+"):
        list(read_episodes(run))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"split": "id"}, "is an episode of split 'id', not 'ood-rule'"),
        ({"task": "virl-l"}, "is an episode of virl-l@1, not gp-l@1"),
        ({"task_version": 2}, "is an episode of gp-l@2, not gp-l@1"),
        ({"seed": 7}, "is an episode of instance seed 7, not 42"),
        ({"budget": 1}, "ran under budget 1, not the run's 5"),
        ({"index": 20}, r"is on instance 20, not one of the run's \(n=20\)"),
        ({"sample": 1}, "is sample 1, but the run takes 1 per instance"),
        ({"uid": "0123456789abcdef"}, "has uid '0123456789abcdef', which is not the uid"),
    ],
)
def test_an_episode_of_another_run_is_an_error(
    run: Path, change: dict[str, Any], message: str
) -> None:
    lines = episode_lines(run)
    lines[4] = edited(lines[4], **change)
    write_episode_lines(run, lines)
    with pytest.raises(RunIntegrityError, match=rf"episodes\.jsonl:5: {message}"):
        list(read_episodes(run))


def test_an_episode_of_another_shard_is_an_error(tmp_path: Path) -> None:
    folder = eval_run(tmp_path, shard=(1, 3), n=9)
    lines = episode_lines(folder)
    lines[0] = edited(lines[0], index=0)
    write_episode_lines(folder, lines)
    with pytest.raises(RunIntegrityError, match=r"not one of the run's \(n=9, shard 1/3\)"):
        list(read_episodes(folder))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"uid": "\xff\xfe"}\n', r"not valid UTF-8 \(byte 0xff"),
        (
            b"[" * 100_000 + b"]" * 100_000 + b"\n",
            r"not valid JSON \(nested too deeply to decode\)",
        ),
        (
            b'{"uid": 1' + b"0" * 5000 + b"}\n",
            r"not valid JSON \(an integer with too many digits\)",
        ),
        (b"[1, 2]\n", "the line must be a JSON object, found a list"),
    ],
)
def test_undecodable_lines_are_one_line_errors(run: Path, line: bytes, message: str) -> None:
    with (run / "episodes.jsonl").open("ab") as handle:
        handle.write(line)
    with pytest.raises(RunIntegrityError, match=rf"episodes\.jsonl:21: {message}") as info:
        list(read_episodes(run))
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def _turn_edit(line: str, **changes: Any) -> str:
    data = json.loads(line)
    data["turns"][0].update(changes)
    return json.dumps(data) + "\n"


def _verdict_edit(line: str, **changes: Any) -> str:
    data = json.loads(line)
    data["turns"][0]["verdict"].update(changes)
    return json.dumps(data) + "\n"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: edited(s, turns={"a": 1}), "field turns must be a list, found an object"),
        (lambda s: edited(s, correct="yes"), "field correct must be true or false, found a string"),
        (lambda s: s.replace('"return":', '"return":NaN,"x":'), "NaN is not a number JSON allows"),
        (
            lambda s: s.replace('"return":', '"return":1e999,"x":'),
            "field return must be a finite number, found the number inf",
        ),
        (lambda s: edited(s, attempts_used=9), "says attempts_used 9 but holds"),
        (lambda s: edited(s, stop_reason="gave_up"), "field stop_reason must be one of"),
        (lambda s: edited(s, index=-1), "field index must be an integer >= 0, found the number -1"),
        (
            lambda s: edited(s, budget=True),
            "field budget must be an integer >= 1, found the boolean",
        ),
        (lambda s: _turn_edit(s, response=None), r"field turns\[0\]\.response must be a string"),
        (lambda s: _turn_edit(s, latency_s="slow"), r"turns\[0\]\.latency_s must be a finite"),
        (lambda s: _verdict_edit(s, status=3), r"turns\[0\]\.verdict\.status must be a string"),
        (lambda s: _verdict_edit(s, flags="x"), r"verdict\.flags must be a list of strings"),
        (lambda s: _verdict_edit(s, extracted=[]), r"verdict\.extracted must be a JSON object"),
        (
            lambda s: _verdict_edit(s, extracted={"detection": {"landmarks_named": "2"}}),
            r"detection\.intersection_correct",
        ),
        (lambda s: edited(s, uid=None), "field uid must be a string, found null"),
        (lambda s: edited(json.dumps({"uid": "x"})), "has no field turns"),
    ],
)
def test_malformed_episode_fields_are_one_line_errors(
    run: Path, edit: Callable[[str], str], message: str
) -> None:
    lines = episode_lines(run)
    lines[0] = edit(lines[0])
    write_episode_lines(run, lines)
    with pytest.raises(RunIntegrityError, match=rf"episodes\.jsonl:1: .*{message}") as info:
        list(read_episodes(run))
    assert "\n" not in str(info.value)
    assert "run its gpbench eval command again" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"status": "\xff"}', "not valid UTF-8"),
        (b"[" * 100_000, r"not valid JSON \(nested too deeply to decode\)"),
        (b'{"status": "done"}', "field status must be one of running, complete, writing"),
        (b'{"episodes": "20"}', "field episodes must be an integer >= 0, found a string"),
        (b'{"run_key": {"task": "gp-l"}}', "field run_key.task must be TASK@VERSION"),
        (
            b'{"run_key": {"task": "gp-l@1", "split": "id", "seed": 1, "n": 4, "samples": 1,'
            b' "budget": 1, "shard": [2, 2]}}',
            r"field run_key\.shard must be \[i, N\] with 0 <= i < N, found a list",
        ),
        (b'{"seeds": [1.5]}', "field seeds must be a list of integers"),
        (b'"text"', "the file must be a JSON object, found a string"),
    ],
)
def test_a_damaged_run_json_is_a_one_line_error(run: Path, text: bytes, message: str) -> None:
    (run / "run.json").write_bytes(text)
    with pytest.raises(RecordSchemaError, match=rf"run\.json: {message}") as info:
        read_run_spec(run)
    assert "\n" not in str(info.value)
    assert run_status(run) is None


def test_a_run_json_that_promises_another_count_than_its_key_is_an_error(run: Path) -> None:
    spec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**spec, "episodes": 40}))
    with pytest.raises(RunIntegrityError, match="says 40 episodes but its run key promises 20"):
        list(read_episodes(run))


def test_a_running_run_may_end_in_a_torn_line_but_not_repeat_one(run: Path) -> None:
    spec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**spec, "status": "running"}))
    lines = episode_lines(run)
    write_episode_lines(run, [*lines[:5], lines[5][:20]])
    assert len(list(read_episodes(run))) == 5
    write_episode_lines(run, [*lines[:5], lines[0]])
    with pytest.raises(RunIntegrityError, match=":6: repeats"):
        list(read_episodes(run))
