"""Reading run folders for reports: every run is checked against its run.json first.

A damaged run (a torn, repeated, foreign or malformed episode, undecodable bytes) is a one-line
error in every reader (``report``, ``compare``, ``merge``), never a traceback or a wrong count.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gpbench.cli import cli
from gpbench.harness.evaluate import EvalConfig, evaluate
from gpbench.reports.inputs import load_run, load_runs
from gpbench.runs.read import RunIntegrityError


def _run(root: Path, **kw: object) -> Path:
    config = {
        "model": "reference:0.5",
        "backend": "scripted",
        "tasks": ("gp-l",),
        "splits": ("ood-rule",),
        "n": 20,
        "runs_dir": root,
        **kw,
    }
    [result], _ = evaluate(EvalConfig(**config))  # type: ignore[arg-type]
    return result.folder


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("runs"))


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "runs" / "damaged"))


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def _error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ") and not any(
        line.startswith("Error: ") for line in lines[:-1]
    ), result.output
    return lines[-1]


def _episodes_file(folder: Path) -> Path:
    return folder / "episodes.jsonl"


def _rewrite(folder: Path, edit: Callable[[bytes], bytes]) -> None:
    path = _episodes_file(folder)
    path.write_bytes(edit(path.read_bytes()))


def _first_line(edit: Callable[[dict[str, object]], object]) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        first, rest = data.split(b"\n", 1)
        record = json.loads(first)
        edit(record)
        return json.dumps(record, allow_nan=True).encode() + b"\n" + rest

    return apply


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "torn last line": (lambda d: d[:-20], r"episodes\.jsonl:20: is cut off"),
    "doubled": (lambda d: d + d, r"episodes\.jsonl:21: repeats the episode"),
    "missing": (lambda d: d[: d.index(b"\n") + 1], "holds 1 episodes but its run.json promises 20"),
    "non-UTF-8": (lambda d: b'{"uid": "\xc3\x28"}\n' + d, r":1: not valid UTF-8"),
    "nested 100k deep": (lambda d: b"[" * 100_000 + b"]" * 100_000 + b"\n" + d, "too deeply"),
    "turns not a list": (
        _first_line(lambda r: r.update(turns="none")),
        "field turns must be a list, found a string",
    ),
    "correct a string": (
        _first_line(lambda r: r.update(correct="true")),
        "field correct must be true or false, found a string",
    ),
    "return NaN": (
        _first_line(lambda r: r.update({"return": float("nan")})),
        "NaN is not a number JSON allows",
    ),
    "another split": (
        _first_line(lambda r: r.update(split="id")),
        "is an episode of split 'id', not 'ood-rule'",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_every_reader_refuses_a_damaged_run_in_one_line(
    damage: str, copy: Path, pristine: Path, tmp_path: Path
) -> None:
    edit, message = DAMAGE[damage]
    _rewrite(copy, edit)
    with pytest.raises(RunIntegrityError, match=message):
        load_run(copy)
    report = _error_line(_invoke("report", copy, "-o", tmp_path / "report"))
    assert str(copy) in report and "run its gpbench eval command again" in report
    compare = _error_line(_invoke("compare", pristine, copy))
    assert str(copy) in compare
    merged = _error_line(_invoke("merge", copy, "-o", tmp_path / "merged"))
    assert str(copy) in merged
    assert not (tmp_path / "merged").exists() and not (tmp_path / "report").exists()


def test_merge_refuses_shards_that_hold_doubled_episodes(tmp_path: Path) -> None:
    """The issue's case: merge wrote 30 episodes for n=20."""
    shards = [_run(tmp_path / "parts", shard=(i, 2)) for i in range(2)]
    path = _episodes_file(shards[0])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines + lines))
    error = _error_line(_invoke("merge", *shards, "-o", tmp_path / "merged"))
    assert f"{path}:{len(lines) + 1}: repeats the episode" in error
    assert not (tmp_path / "merged").exists()


def test_runs_being_written_or_interrupted_are_left_out_unread(copy: Path, tmp_path: Path) -> None:
    spec = json.loads((copy / "run.json").read_text())
    _rewrite(copy, lambda d: d + d)  # would be an error if it were read
    for status, reason in [
        ("writing", "run is writing: its writer stopped midway"),
        ("running", "run is running (re-run its gpbench eval command"),
    ]:
        (copy / "run.json").write_text(json.dumps({**spec, "status": status}))
        runs, [left_out] = load_runs([copy])
        assert not runs and left_out.reason.startswith(reason)
        assert load_run(copy).episodes == []
