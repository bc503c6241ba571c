"""The evaluation loop, run store and resume, driven by the scripted backend."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.errors import ConfigError, GpbenchError, UnknownSplitError
from gpbench.harness import writer
from gpbench.harness.evaluate import EvalConfig, RunProgress, evaluate
from gpbench.runs import lock, read
from gpbench.runs.read import read_episodes, read_run_spec


def _config(tmp_path: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = {
        "model": "reference:0.4",
        "backend": "scripted",
        "tasks": ("gp-l",),
        "splits": ("ood-rule",),
        "n": 30,
        "runs_dir": tmp_path / "runs",
    }
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


def _episodes(folder: Path) -> dict[tuple[str, int], str]:
    return {(e.uid, e.sample): json.dumps(e.turns, sort_keys=True) for e in read_episodes(folder)}


def test_multi_turn_run_writes_a_complete_run_folder(tmp_path: Path) -> None:
    [result], skipped = evaluate(_config(tmp_path))
    assert not skipped and not result.reused
    spec = read_run_spec(result.folder)
    assert spec["status"] == "complete" and spec["episodes"] == 30
    assert spec["tasks"] == {"gp-l": 1} and spec["max_attempts"] == 5
    episodes = list(read_episodes(result.folder))
    assert len(episodes) == 30
    # With a 40% error rate some episodes need revisions, each judged with feedback.
    assert any(len(e.turns) > 1 for e in episodes)
    assert result.summary["success"]["n"] == 30
    # One backend call per turn, not per episode x turn.
    loop = spec["loop"]
    assert loop["backend_calls"] == max(len(e.turns) for e in episodes)
    assert loop["requests"] == sum(len(e.turns) for e in episodes)


def test_identical_run_is_skipped_and_a_different_one_is_not(tmp_path: Path) -> None:
    [first], _ = evaluate(_config(tmp_path))
    [again], _ = evaluate(_config(tmp_path))
    assert again.reused and again.folder == first.folder
    [other], _ = evaluate(_config(tmp_path, max_attempts=1))
    assert not other.reused and other.folder != first.folder


def test_resume_after_a_kill_loses_nothing_and_doubles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [reference], _ = evaluate(_config(tmp_path / "a"))
    original = writer.RunWriter.append
    calls = {"n": 0}

    def dying(self: writer.RunWriter, episode: object) -> None:
        calls["n"] += 1
        if calls["n"] == 12:
            # A kill in the middle of writing a line: half a line reaches the file.
            with (self.folder / "episodes.jsonl").open("ab") as handle:
                handle.write(b'{"uid": "torn')
            raise KeyboardInterrupt
        original(self, episode)  # type: ignore[arg-type]

    monkeypatch.setattr(writer.RunWriter, "append", dying)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_config(tmp_path / "b"))
    monkeypatch.setattr(writer.RunWriter, "append", original)
    [folder] = list((tmp_path / "b" / "runs").iterdir())
    assert read_run_spec(folder)["status"] == "running"
    assert len(list(read_episodes(folder))) == 11
    [resumed], _ = evaluate(_config(tmp_path / "b"))
    assert not resumed.reused
    assert _episodes(resumed.folder) == _episodes(reference.folder)
    # The summary counts the episodes found on resuming as well as the new ones.
    assert resumed.summary == reference.summary
    lines = (resumed.folder / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 30 and all(line.startswith("{") for line in lines)


def test_shards_partition_the_instances(tmp_path: Path) -> None:
    [whole], _ = evaluate(_config(tmp_path))
    parts: dict[tuple[str, int], str] = {}
    for i in range(3):
        [part], _ = evaluate(_config(tmp_path, shard=(i, 3)))
        episodes = _episodes(part.folder)
        assert not parts.keys() & episodes.keys()
        parts.update(episodes)
    assert parts == _episodes(whole.folder)


def test_all_tasks_with_the_split_run_without_task(tmp_path: Path) -> None:
    results, skipped = evaluate(_config(tmp_path, tasks=(), splits=("ood-spatial",), n=2))
    assert [r.task for r in results] == ["virl-l", "virl-vl"]
    assert {s.task for s in skipped} == {"gp-l", "gp-vl"}
    assert all("has no split ood-spatial" in s.reason for s in skipped)
    for r in results:
        assert "per_step_accuracy" in r.summary


def test_samples_use_distinct_request_seeds(tmp_path: Path) -> None:
    [result], _ = evaluate(_config(tmp_path, samples=3, n=10))
    episodes = list(read_episodes(result.folder))
    assert len(episodes) == 30 and {e.sample for e in episodes} == {0, 1, 2}
    assert result.summary["success"]["ci_method"] == "clustered-bootstrap"


def test_bad_requests_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownSplitError, match=r"did you mean .ood-rule."):
        evaluate(_config(tmp_path, splits=("ood_rule",)))
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        evaluate(_config(tmp_path, tasks=(), splits=("nope",)))


def test_cli_prints_a_table_with_intervals(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "--model",
            "reference:0.2",
            "--backend",
            "scripted",
            "--split",
            "ood-rule",
            "--task",
            "gp-l",
            "--task",
            "virl-l",
            "-n",
            "8",
            "--runs-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "success % [95% CI]" in result.output
    assert "gp-l" in result.output and "virl-l" in result.output
    assert result.output.count("run ") == 2
    bad = CliRunner().invoke(
        cli,
        [
            "eval",
            "--model",
            "x",
            "--backend",
            "scripted",
            "--shard",
            "3/2",
            "--runs-dir",
            str(tmp_path),
        ],
    )
    assert bad.exit_code != 0 and "--shard expects i/N" in bad.output


def test_merged_shards_equal_the_unsharded_run(tmp_path: Path) -> None:
    [whole], _ = evaluate(_config(tmp_path / "whole"))
    folders = [evaluate(_config(tmp_path / "parts", shard=(i, 3)))[0][0].folder for i in range(3)]
    out = tmp_path / "merged"
    result = CliRunner().invoke(cli, ["merge", *map(str, folders), "-o", str(out)])
    assert result.exit_code == 0, result.output
    merged = list(read_episodes(out))
    expected = sorted(read_episodes(whole.folder), key=lambda e: (e.index, e.sample))
    assert merged == expected
    assert read_run_spec(out)["shard"] == [0, 1]
    # Shards of another configuration, or an incomplete set, are refused.
    [other] = evaluate(_config(tmp_path / "other", shard=(2, 3), max_attempts=1))[0]
    bad = CliRunner().invoke(
        cli,
        ["merge", str(folders[0]), str(folders[1]), str(other.folder), "-o", str(tmp_path / "bad")],
    )
    assert bad.exit_code != 0 and "differ in budget" in bad.output
    missing = CliRunner().invoke(
        cli, ["merge", str(folders[0]), str(folders[1]), "-o", str(tmp_path / "bad")]
    )
    assert missing.exit_code != 0 and "are not exactly 0/3 .. 2/3" in missing.output
    assert not (tmp_path / "bad").exists()


def test_kill_minus_nine_then_resume(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    n, samples = 400, 2
    args = [
        sys.executable,
        "-m",
        "gpbench",
        "eval",
        "--model",
        "reference:0.4",
        "--backend",
        "scripted",
        "--task",
        "virl-l",
        "--split",
        "id",
        "-n",
        str(n),
        "--samples",
        str(samples),
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    killed_at = []
    for wanted in (100, 400):
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        lines = 0
        while process.poll() is None and time.monotonic() < deadline:
            files = list((tmp_path / "runs").glob("*/episodes.jsonl"))
            lines = files[0].read_bytes().count(b"\n") if files else 0
            if lines >= wanted:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
        process.wait()
        killed_at.append(lines)
    [folder] = list((tmp_path / "runs").iterdir())
    assert read_run_spec(folder)["status"] == "running"  # killed before it could finish
    assert killed_at[0] >= 100 and killed_at[1] >= 400
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert read_run_spec(folder)["status"] == "complete"
    [reference], _ = evaluate(
        _config(tmp_path / "ref", tasks=("virl-l",), splits=("id",), n=n, samples=samples)
    )
    assert _episodes(folder) == _episodes(reference.folder)
    assert len((folder / "episodes.jsonl").read_text().splitlines()) == n * samples


def test_runs_labelled_with_different_metadata_are_not_reused(tmp_path: Path) -> None:
    [first], _ = evaluate(_config(tmp_path, meta={"method": "sft", "step": "1"}))
    [again], _ = evaluate(_config(tmp_path, meta={"method": "sft", "step": "1"}))
    [other], _ = evaluate(_config(tmp_path, meta={"method": "rl", "step": "1"}))
    assert again.reused and again.folder == first.folder
    assert not other.reused and other.folder != first.folder
    assert read_run_spec(other.folder)["checkpoint"]["metadata"]["method"] == "rl"


def test_progress_reports_turns_requests_and_a_bound_on_the_time_left(tmp_path: Path) -> None:
    events: list[RunProgress] = []
    counts: list[tuple[str, int, int]] = []
    [result], _ = evaluate(
        _config(tmp_path), lambda *a: counts.append(a), on_progress=events.append
    )
    turns = read_run_spec(result.folder)["loop"]["backend_calls"]
    assert events[0] == RunProgress(events[0].label, 0, 30)  # before the first call
    assert [e.turn for e in events[1:]] == [t for t in range(1, turns + 1) for _ in (0, 1)]
    first_answered = events[2]
    assert (first_answered.requests_done, first_answered.requests_total) == (30, 30)
    assert first_answered.eta_is_bound and first_answered.eta_s is not None
    last = events[-1]
    assert (last.episodes_done, last.episodes_total) == (30, 30) and last.eta_s == 0.0
    assert counts[-1] == (last.label, 30, 30) and len(counts) == len(events)


def test_cli_progress_goes_to_stderr_unless_quiet(tmp_path: Path) -> None:
    args = ["eval", "--model", "reference:0.4", "--backend", "scripted", "--task", "gp-l"]
    args += ["--split", "ood-rule", "-n", "5", "--runs-dir", str(tmp_path)]
    shown = CliRunner().invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    assert re.search(r"gp-l ood-rule: 0/5 episodes\n", shown.stderr)
    assert re.search(r"turn \d+, (\d+)/\1 requests, 5/5 episodes, \d+:\d\d elapsed\n", shown.stderr)
    quiet = CliRunner().invoke(cli, [*args, "-q", "--restart"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_eval_repairs_a_complete_run_that_lost_its_last_line(tmp_path: Path) -> None:
    [reference], _ = evaluate(_config(tmp_path / "a"))
    [damaged], _ = evaluate(_config(tmp_path / "b"))
    path = damaged.folder / "episodes.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:40])  # complete, but 29 of 30 whole
    [again], _ = evaluate(_config(tmp_path / "b"))
    assert not again.reused and again.summary == reference.summary
    assert _episodes(again.folder) == _episodes(reference.folder)
    assert len(path.read_text().splitlines()) == 30


def test_eval_drops_the_doubled_episodes_of_two_writers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    [reference], _ = evaluate(_config(tmp_path / "a"))
    [doubled], _ = evaluate(_config(tmp_path / "b"))
    path = doubled.folder / "episodes.jsonl"
    path.write_text(path.read_text() * 2)  # what two writers on one folder produced
    with pytest.raises(read.RunIntegrityError, match="repeats the episode"):
        list(read_episodes(doubled.folder))
    [again], _ = evaluate(_config(tmp_path / "b"))
    assert not again.reused and again.summary == reference.summary
    assert len(path.read_text().splitlines()) == 30
    assert "dropped from episodes.jsonl: 30 repeated episode(s)" in caplog.text
    [third], _ = evaluate(_config(tmp_path / "b"))
    assert third.reused


def test_restart_waits_for_no_one_but_never_clears_a_folder_in_use(tmp_path: Path) -> None:
    [first], _ = evaluate(_config(tmp_path))
    with lock.RunLock(first.folder), pytest.raises(lock.RunLockedError):
        evaluate(_config(tmp_path, resume=False))
    assert len(list(read_episodes(first.folder))) == 30
    [again], _ = evaluate(_config(tmp_path, resume=False))
    assert not again.reused and again.folder == first.folder


def test_a_folder_holding_another_run_key_is_refused(tmp_path: Path) -> None:
    [first], _ = evaluate(_config(tmp_path))
    spec = json.loads((first.folder / "run.json").read_text())
    spec["run_key"]["budget"] = 1
    (first.folder / "run.json").write_text(json.dumps(spec))
    with pytest.raises(GpbenchError, match=r"holds a run of another configuration .*budget"):
        evaluate(_config(tmp_path))


def test_another_server_or_dtype_is_another_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run key holds what decides the backend's answers: pointing the same command at
    another server (or another dtype) must evaluate afresh, never reuse the first run."""
    from gpbench.harness import evaluate as evaluate_module
    from gpbench.harness.backends import create_backend

    server = {"base_url": "http://a:8000/v1", "model_card": {"id": "m", "root": "/a"}}

    def with_identity(name: str, model: str, **settings: object) -> object:
        backend = create_backend(name, model, **settings)
        backend.identity = lambda: dict(server)  # type: ignore[attr-defined]
        return backend

    monkeypatch.setattr(evaluate_module, "create_backend", with_identity)
    first, _ = evaluate(_config(tmp_path))
    again, _ = evaluate(_config(tmp_path))
    assert [r.reused for r in again] == [True] * len(again)
    server["base_url"] = "http://b:8000/v1"
    other, _ = evaluate(_config(tmp_path))
    assert [r.reused for r in other] == [False] * len(other)
    assert {r.folder for r in other}.isdisjoint(r.folder for r in first)


def test_in_process_identity_keeps_what_changes_answers() -> None:
    from gpbench.harness.backends import in_process_identity

    described = {"dtype": "bfloat16", "device": "cuda:1", "batch_size": 8, "backend": "hf"}
    assert in_process_identity(described) == {"dtype": "bfloat16", "device": "cuda"}


def test_a_backend_without_identity_is_refused() -> None:
    """A wrapper that forgets identity() would key its runs without what decides the answers
    (and reuse another configuration's run): refused, naming the fix."""
    from gpbench.harness.evaluate import answer_identity

    class Wrapper:
        def describe(self) -> dict[str, object]:
            return {"dtype": "bfloat16"}

    with pytest.raises(ConfigError, match=r"Wrapper has no identity.*forward it"):
        answer_identity(Wrapper())  # type: ignore[arg-type]


def test_scripted_runs_with_other_error_rates_are_other_runs(tmp_path: Path) -> None:
    """The scripted backend's error rate decides its answers: a run at 0.5 is never reused for
    0.2 (it was, when the run key held only in-process fields), while a rerun at 0.2 is."""

    def run(*extra: str) -> str:
        result = CliRunner().invoke(
            cli,
            [
                *("eval", "--backend", "scripted", "--task", "gp-l"),
                *("--split", "id", "-n", "4", "--runs-dir", str(tmp_path), *extra),
            ],
        )
        assert result.exit_code == 0, result.output
        return result.output

    run("--model", "reference", "--backend-opt", "error_rate=0.5")
    assert "reused" not in run("--model", "reference", "--backend-opt", "error_rate=0.2")
    assert len(list(tmp_path.iterdir())) == 2
    assert "reused" in run("--model", "reference", "--backend-opt", "error_rate=0.2")


def test_a_long_model_name_still_makes_a_run_folder(tmp_path: Path) -> None:
    """A scripted constant policy of 3,000 characters made a folder name beyond the file
    system's 255 bytes ("File name too long"); the name part is capped, the digest keeps runs
    apart."""
    policy = "constant:" + "x" * 3000
    result = CliRunner().invoke(
        cli,
        [
            *("eval", "--backend", "scripted", "--model", policy, "--task", "gp-l"),
            *("--split", "id", "-n", "2", "--runs-dir", str(tmp_path), "-q"),
        ],
    )
    assert result.exit_code == 0, result.output
    [folder] = tmp_path.iterdir()
    assert len(folder.name) < 255 and folder.name.startswith("constant-xxx")
