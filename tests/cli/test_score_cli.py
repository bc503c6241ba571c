from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gpbench.cli import cli
from gpbench.errors import RecordSchemaError
from gpbench.runs.read import read_episodes, read_run_spec
from gpbench.tasks.registry import get_task

TASK = get_task("gp-l")


@pytest.fixture
def instances(tmp_path: Path) -> Path:
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "gp-l",
            "--split",
            "ood-rule",
            "-n",
            "12",
            "--seed",
            "42",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "gp-l" / "ood-rule.jsonl"


def _uids(path: Path) -> list[str]:
    return [json.loads(line)["uid"] for line in path.read_text().splitlines()]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _score(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["score", "gp-l", *args])
    return result.exit_code, result.output


def test_scores_single_and_multi_turn_answers(instances: Path, tmp_path: Path) -> None:
    uids = _uids(instances)
    ds = TASK.dataset("ood-rule", 42, 12)
    right = [TASK.reference_answer(i) for i in ds]
    rows: list[dict[str, object]] = [
        {"uid": uids[0], "response": right[0]},
        {"uid": uids[1], "responses": ['{"formula": "1+1"}', right[1]]},
        {"uid": uids[2], "responses": ["nope"] * 7},
        {"uid": uids[3], "responses": ["nope", "nope"], "output_truncated": [True, False]},
    ]
    responses = _write(tmp_path / "resp.jsonl", rows)
    run = tmp_path / "runs" / "mine"
    code, out = _score(
        "--instances",
        str(instances),
        "--responses",
        str(responses),
        "-o",
        str(run),
        "--summary-json",
        "-",
    )
    assert code == 0, out
    episodes = {e.uid: e for e in read_episodes(run)}
    assert len(episodes) == 4
    first, second, third, fourth = (episodes[u] for u in uids[:4])
    assert first.correct and first.first_try_correct and first.return_ == 5.0
    assert second.correct and not second.first_try_correct
    assert second.return_ == -4.0 + 5.0 and second.attempts_used == 2
    assert third.attempts_used == 5 and third.stop_reason == "budget_exhausted"
    assert third.return_ == 5 * -3.0 - 1.0  # the budget penalty is added once
    assert fourth.stop_reason == "responses_ended" and fourth.return_ == -6.0
    assert fourth.turns[0]["output_truncated"] and "output_truncated" in fourth.flags
    spec = read_run_spec(run)
    assert spec["backend"] == {"name": "external"} and spec["tasks"] == {"gp-l": 1}
    assert spec["episodes"] == 4 and spec["max_attempts"] == 5
    assert "gpbench_version" in spec and "git_commit" in spec
    summary = json.loads(out[out.index("{") :])
    assert summary["success"]["k"] == 2 and summary["success"]["n"] == 4
    assert summary["success_by_attempt"]["1"] == 0.25
    assert summary["success_by_attempt"]["2"] == 0.5
    assert "95% CI" in out and "not scored        8 instances" in out
    assert spec["summary"] == {k: v for k, v in summary.items() if k not in ("task", "splits")}


def test_max_attempts_and_reference_mode(instances: Path, tmp_path: Path) -> None:
    uid = _uids(instances)[0]
    responses = _write(tmp_path / "r.jsonl", [{"uid": uid, "responses": ["x", "y"]}])
    run = tmp_path / "run"
    code, out = _score(
        "--instances",
        str(instances),
        "--responses",
        str(responses),
        "-o",
        str(run),
        "--max-attempts",
        "1",
        "--mode",
        "reference",
    )
    assert code == 0, out
    [episode] = list(read_episodes(run))
    assert episode.attempts_used == 1 and episode.return_ == -4.0
    assert read_run_spec(run)["verifier_mode"] == "reference"


@pytest.mark.parametrize(
    ("mode", "reward", "feedback"),
    [
        ("gpbench", 5.0, ""),
        ("reference", -3.0, "You failed this trial because illegal characters."),
    ],
)
def test_one_answer_scored_both_ways(
    instances: Path, tmp_path: Path, mode: str, reward: float, feedback: str
) -> None:
    """A correct formula written with spaces: right for gpbench, illegal for the paper's code."""
    inst = json.loads(instances.read_text().splitlines()[0])
    spaced = re.sub(r"([-+*/()=])", r" \1 ", inst["reference"]["formula"])
    answer = json.dumps({"formula": spaced})
    responses = _write(tmp_path / "r.jsonl", [{"uid": inst["uid"], "responses": [answer]}])
    run = tmp_path / "run"
    args = ("--responses", str(responses), "-o", str(run), "--max-attempts", "1")
    code, out = _score("--instances", str(instances), *args, "--mode", mode)
    assert code == 0, out
    [episode] = list(read_episodes(run))
    [turn] = episode.turns
    assert (turn["verdict"]["reward"], turn["verdict"]["feedback"]) == (reward, feedback)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"uid": "nope", "response": "1"}'],
            "r.jsonl:1: uid 'nope' is not in the instances file",
        ),
        (["{not json"], "r.jsonl:1: not valid JSON"),
        (['{"response": "1"}'], 'r.jsonl:1: each line needs "uid"'),
        (['{"uid": "U", "answer": "1"}'], 'needs "response" (a string) or "responses"'),
        (['{"uid": "U", "response": "1"}', '{"uid": "U", "response": "2"}'], "r.jsonl:2: uid"),
        (
            [
                '{"uid": "U", "response": "1", "output_truncated": [true, false]}',
            ],
            "one boolean per response",
        ),
        ([], "holds no responses"),
        (['{"uid": "U", "response": "1", "responses": ["2"]}'], "not both"),
        (['{"uid": "U", "response": "1"}', "[" * 100_000], "r.jsonl:2: not valid JSON (nested"),
    ],
)
def test_bad_responses_are_one_line_errors_and_write_nothing(
    instances: Path, tmp_path: Path, lines: list[str], message: str
) -> None:
    uid = _uids(instances)[0]
    responses = tmp_path / "r.jsonl"
    responses.write_text("".join(line.replace('"U"', json.dumps(uid)) + "\n" for line in lines))
    run = tmp_path / "run"
    code, out = _score("--instances", str(instances), "--responses", str(responses), "-o", str(run))
    assert code != 0
    assert message in out, out
    assert "Traceback" not in out
    assert not run.exists()


def _one_line_error(result: Result) -> str:
    """The message of a command that failed cleanly: exit 1, one line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught error
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def _score_result(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["score", "gp-l", *(str(a) for a in args)])


def _edited(instances: Path, tmp_path: Path, edit: Any) -> Path:
    rows = [json.loads(line) for line in instances.read_text().splitlines()]
    edit(rows)
    return _write(tmp_path / "edited.jsonl", rows)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[3]["problem"]["cards"].__setitem__(0, "X"), r"edited\.jsonl:4: "
         r"instance 3 is not what gp-l@1 generates for its key \(ood-rule, seed 42, index 3\): "
         r"problem\.cards\[0\] holds \"X\", the task gives \"\w+\""),
        (lambda rows: rows[1]["reference"].update(formula="1+1"), r"edited\.jsonl:2: .*"
         r"reference\.formula holds \"1\+1\""),
        (lambda rows: rows[0].update(index=5), r"edited\.jsonl:1: instance 5 is not .* problem\.cards\[0\]"),
        (lambda rows: rows[2]["params"].update(target=24.0), r"edited\.jsonl:3: .*params\.target "
         r"holds 24\.0, the task gives 24"),
        (lambda rows: rows[2]["params"].update(target=100000), r"edited\.jsonl:3: its key cannot be "
         r"generated: no 4-card hand"),
        (lambda rows: rows[0]["messages"].append({"role": "user"}), r"edited\.jsonl:1: .*"
         r"messages\[1\] holds an object of 1 keys, the task gives nothing"),
        (lambda rows: rows[0].update(seed="42"), r'edited\.jsonl:1: "seed" must be an integer'),
        (lambda rows: rows.append(rows[0]), r"edited\.jsonl:13: instance 0 appears twice \(also "
         r"line 1\)"),
    ],
)  # fmt: skip
def test_instances_that_are_not_what_the_task_generates_are_refused(
    instances: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    edited = _edited(instances, tmp_path, edit)
    responses = _write(tmp_path / "r.jsonl", [{"uid": _uids(instances)[0], "response": "x"}])
    error = _one_line_error(
        _score_result("--instances", edited, "--responses", responses, "-o", tmp_path / "run")
    )
    assert re.search(message, error), error
    assert not (tmp_path / "run").exists()


def test_a_lone_surrogate_in_an_answer_is_scored_and_stored(
    instances: Path, tmp_path: Path
) -> None:
    # "\ud800" is valid JSON; the run writer used to crash on it, and a rerun met it again.
    uids = _uids(instances)
    responses = tmp_path / "r.jsonl"
    responses.write_text(
        f'{{"uid": "{uids[0]}", "response": "\\ud800 {{\\"formula\\": \\"1\\udfff+1\\"}}"}}\n'
        f'{{"uid": "{uids[1]}", "responses": ["\\udcff", "ok"]}}\n'
    )
    run = tmp_path / "run"
    result = _score_result("--instances", instances, "--responses", responses, "-o", run)
    assert result.exit_code == 0, result.output
    episodes = {e.uid: e for e in read_episodes(run)}
    assert episodes[uids[0]].turns[0]["response"] == '\ud800 {"formula": "1\udfff+1"}'
    assert [t["response"] for t in episodes[uids[1]].turns] == ["\udcff", "ok"]
    (run / "episodes.jsonl").read_bytes().decode("utf-8")  # valid UTF-8 on disk


def test_summary_json_to_stdout_prints_only_json(instances: Path, tmp_path: Path) -> None:
    responses = _write(tmp_path / "r.jsonl", [{"uid": _uids(instances)[0], "response": "x"}])
    args = ("--instances", instances, "--responses", responses, "-o", tmp_path / "run")
    result = _score_result(*args, "--summary-json", "-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["episodes"] == 1  # stdout is one JSON document
    assert "wrote" in result.stderr and "success" in result.stderr


def test_an_unwritable_summary_json_fails_before_anything_is_written(
    instances: Path, tmp_path: Path
) -> None:
    responses = _write(tmp_path / "r.jsonl", [{"uid": _uids(instances)[0], "response": "x"}])
    run = tmp_path / "run"
    args = ("--instances", instances, "--responses", responses, "-o", run)
    (tmp_path / "file").write_text("x")
    under_a_file = _score_result(*args, "--summary-json", tmp_path / "file" / "no" / "s.json")
    assert f"{tmp_path / 'file'} is a file, not a folder" in _one_line_error(under_a_file)
    folder = _score_result(*args, "--summary-json", tmp_path)
    assert folder.exit_code == 2 and "is a directory" in folder.stderr  # click's own check
    assert not run.exists()
    assert _score_result(*args, "--summary-json", tmp_path / "new" / "s.json").exit_code == 0
    assert json.loads((tmp_path / "new" / "s.json").read_text())["episodes"] == 1


def test_non_utf8_input_is_a_one_line_error(instances: Path, tmp_path: Path) -> None:
    responses = tmp_path / "r.jsonl"
    responses.write_bytes(b'{"uid": "x", "response": "caf\xe9"}\n')
    error = _one_line_error(
        _score_result("--instances", instances, "--responses", responses, "-o", tmp_path / "run")
    )
    assert (
        error
        == f"Error: {responses}:1: not UTF-8 text (byte 0xe9 at column 30); save the file as UTF-8"
    )
    bad_instances = tmp_path / "i.jsonl"
    bad_instances.write_bytes(instances.read_bytes() + b"\xff\n")
    error = _one_line_error(
        _score_result("--instances", bad_instances, "--responses", responses, "-o", tmp_path / "r")
    )
    assert f"{bad_instances}:13: not UTF-8 text" in error


_FULL_DISK = """
import resource, signal, sys
from gpbench.cli import cli
# A file-size limit makes the kernel refuse writes past it (EFBIG), as a full disk does (ENOSPC).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
cli.main(sys.argv[1:], prog_name="gpbench")
"""


def test_a_full_disk_is_one_line_and_leaves_no_half_written_run(
    instances: Path, tmp_path: Path
) -> None:
    rows = [{"uid": u, "responses": ["nope"] * 5} for u in _uids(instances)]
    responses = _write(tmp_path / "r.jsonl", rows)
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, "score", "gp-l", "--instances", str(instances),
         "--responses", str(responses), "-o", str(out / "run"), "--summary-json", str(out / "s")],
        capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: cannot write ") and f"{out / 'run'}: File too large" in line
    assert list(out.iterdir()) == []  # no run folder, no temporary folder, no summary


def test_missing_files_and_wrong_task(instances: Path, tmp_path: Path) -> None:
    code, out = _score(
        "--instances",
        str(tmp_path / "none.jsonl"),
        "--responses",
        str(tmp_path / "none.jsonl"),
        "-o",
        str(tmp_path / "run"),
    )
    assert code != 0 and "none.jsonl: file not found" in out
    bad = tmp_path / "other.jsonl"
    line = json.loads(instances.read_text().splitlines()[0])
    bad.write_text(json.dumps({**line, "task_version": 7}) + "\n")
    code, out = _score("--instances", str(bad), "--responses", str(bad), "-o", str(tmp_path / "r"))
    assert code != 0 and "score it with gp-l@7" in out


def test_existing_run_is_kept_unless_overwrite(instances: Path, tmp_path: Path) -> None:
    uid = _uids(instances)[0]
    responses = _write(tmp_path / "r.jsonl", [{"uid": uid, "response": "x"}])
    run = tmp_path / "run"
    args = ["--instances", str(instances), "--responses", str(responses), "-o", str(run)]
    assert _score(*args)[0] == 0
    code, out = _score(*args)
    assert code != 0 and "already holds a run" in out
    assert _score(*args, "--overwrite")[0] == 0


def test_a_torn_line_of_a_complete_run_is_an_error_wherever_it_is(
    instances: Path, tmp_path: Path
) -> None:
    uids = _uids(instances)
    responses = _write(tmp_path / "r.jsonl", [{"uid": u, "response": "x"} for u in uids[:3]])
    run = tmp_path / "run"
    assert (
        _score("--instances", str(instances), "--responses", str(responses), "-o", str(run))[0] == 0
    )
    path = run / "episodes.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][:40])
    # A complete run promises three episodes: a cut-off last one is an error, never 2 of 3.
    with pytest.raises(RecordSchemaError, match=r"episodes\.jsonl:3: is cut off"):
        list(read_episodes(run))
    path.write_text(lines[0][:40] + "\n" + "".join(lines[1:]))
    with pytest.raises(RecordSchemaError, match=r"episodes\.jsonl:1"):
        list(read_episodes(run))


def test_scores_navigation_episodes_with_per_step_accuracy(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["generate", "virl-l", "--split", "ood-rule", "-n", "4", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    task = get_task("virl-l")
    path = tmp_path / "virl-l" / "ood-rule.jsonl"
    instances = list(task.dataset("ood-rule", 12, 4))
    perfect = task.reference_answers(instances[0])
    one_retry = task.reference_answers(instances[1])
    one_retry = [one_retry[0], '{"action": "stop()"}', *one_retry[1:]]
    rows: list[dict[str, object]] = [
        {"uid": instances[0].uid, "responses": perfect},
        {"uid": instances[1].uid, "responses": one_retry},
        {"uid": instances[2].uid, "responses": ['{"action": "forward()"}'] * 3},
    ]
    responses = _write(tmp_path / "r.jsonl", rows)
    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "score",
            "virl-l",
            "--instances",
            str(path),
            "--responses",
            str(responses),
            "-o",
            str(run),
            "--summary-json",
            "-",
        ],
    )
    assert result.exit_code == 0, result.output
    episodes = {e.uid: e for e in read_episodes(run)}
    assert episodes[instances[0].uid].correct and episodes[instances[0].uid].first_try_correct
    retry = episodes[instances[1].uid]
    assert retry.correct and not retry.first_try_correct
    assert retry.attempts_used == len(one_retry)
    assert retry.return_ == (len(one_retry) - 1) * 1.0 - 1.0
    failed = episodes[instances[2].uid]
    assert failed.stop_reason == "budget_exhausted" and failed.attempts_used == 2
    assert failed.return_ == -1.0 - 1.0 - 1.0
    summary = json.loads(result.output[result.output.index("{") :])
    attempts = len(perfect) + len(one_retry) + 2
    assert summary["per_step_accuracy"]["n"] == attempts
    assert summary["per_step_accuracy"]["k"] == len(perfect) + len(one_retry) - 1
    assert summary["success"]["k"] == 2
    assert "per-step accuracy" in result.output
