"""``gpbench report`` output: all or nothing (a failure leaves the old report or none), refused
for folders holding anything else, and one line for every bad input or write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from report_fixtures import run_named

from gpbench.cli import cli
from gpbench.errors import GpbenchError
from gpbench.reports import build
from gpbench.reports.build import ReportConfig, build_report


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def _error_line(result: Result) -> str:
    """The error of a command that failed cleanly (progress lines may come before it)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # nothing escaped
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert not [line for line in lines[:-1] if "Error" in line], result.stderr
    return lines[-1]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def two_runs(study: Path, tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for name in ("init__gp-l__id", "sft-100__gp-l__id"):
        shutil.copytree(run_named(study, name), runs / name)
    return runs


@pytest.mark.parametrize("previous", [True, False])
def test_a_report_that_fails_midway_leaves_the_old_report_or_none(
    two_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, previous: bool
) -> None:
    out = tmp_path / "report"
    if previous:
        build_report(
            ReportConfig(runs=(run_named(two_runs, "init__gp-l__id"),), out=out, gallery=0)
        )
    before = _snapshot(out) if previous else None

    def interrupted(page: object) -> str:
        raise KeyboardInterrupt  # Ctrl-C after summary.csv and the figures were written

    monkeypatch.setattr(build, "render_page", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_report(ReportConfig(runs=(two_runs,), out=out, gallery=0))
    if previous:
        assert _snapshot(out) == before  # not a new summary.csv beside the old report.html
    else:
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["runs", "report"] if previous else ["runs"]
    )  # no temporary or old folder left


def test_a_new_report_replaces_the_old_one_whole(two_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    build_report(ReportConfig(runs=(two_runs,), out=out, gallery=0))
    (out / "figures" / "success-gp-l-v9.png").write_bytes(b"a figure of an older report")
    result = build_report(ReportConfig(runs=(run_named(two_runs, "init__gp-l__id"),), out=out))
    assert not (out / "figures" / "success-gp-l-v9.png").exists()
    assert (out / "summary.csv").read_text().count("\n") == 2
    assert all(path.is_file() for path in (result.csv, result.html, *result.figures))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "runs"]


def test_a_folder_holding_other_files_is_refused_and_kept(two_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "notes"
    (out / "figures").mkdir(parents=True)
    (out / "summary.csv").write_text("mine\n")
    (out / "figures" / "sketch.png").write_bytes(b"mine")
    (out / "todo.txt").write_text("mine\n")
    before = _snapshot(out)
    error = _error_line(_invoke("report", two_runs, "-o", out))
    assert "holds files that are not part of a gpbench report (figures/sketch.png, todo.txt)" in (
        error
    )
    assert _snapshot(out) == before
    error = _error_line(_invoke("report", two_runs, "-o", tmp_path))
    assert f"-o {tmp_path} holds files that are not part of a gpbench report" in error


def test_the_current_folder_is_never_replaced(
    two_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    error = _error_line(_invoke("report", two_runs, "-o", "."))
    assert "holds the current folder" in error
    assert empty.is_dir() and list(empty.iterdir()) == []


def test_an_unwritable_output_is_one_line_and_leaves_nothing(
    two_runs: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    error = _error_line(_invoke("report", two_runs, "-o", blocker / "report"))
    assert error.startswith(f"Error: cannot write the report to {blocker / 'report'}: ")
    assert blocker.read_text() == "x"


_FULL_DISK = """
import resource, signal, sys
from gpbench.cli import cli
# A file-size limit makes the kernel refuse writes past it (EFBIG), as a full disk does (ENOSPC).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
cli.main(sys.argv[1:], prog_name="gpbench")
"""


def test_a_full_disk_keeps_the_old_report(two_runs: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    build_report(ReportConfig(runs=(run_named(two_runs, "init__gp-l__id"),), out=out, gallery=0))
    before = _snapshot(out)
    result = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, "report", str(two_runs), "-o", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot write the report to {out}: File too large"
    )
    assert "Traceback" not in result.stderr
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "runs"]


def test_surrogates_in_names_and_answers_are_reported(two_runs: Path, tmp_path: Path) -> None:
    # "\ud800" is valid JSON: a run.json or an answer may hold one, and every report file is UTF-8.
    spec_path = two_runs / "sft-100__gp-l__id" / "run.json"
    spec = json.loads(spec_path.read_text())
    spec["checkpoint"]["checkpoint"] = "/ckpts/sft-\udcff"
    spec["checkpoint"]["metadata"]["method"] = "sft\ud800"
    spec_path.write_text(json.dumps(spec))
    out = tmp_path / "report"
    result = _invoke("report", two_runs, "-o", out, "--gallery", "4")
    assert result.exit_code == 0, result.output
    csv_text = (out / "summary.csv").read_bytes().decode("utf-8")
    assert "sft\\ud800,sft-\\udcff," in csv_text
    assert "sft\\ud800" in (out / "report.html").read_bytes().decode("utf-8")
    figure = json.loads((out / "figures" / "success-gp-l-v1.json").read_text())
    assert "sft\\ud800" in [line["series"] for line in figure["panels"][0]["lines"]]


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("run.json", b"[" * 100_000),
        ("run.json", b'{"status": "complete", "kind": "gpbench-run\xff"}'),
        ("episodes.jsonl", b"\xff\xfe\n"),
    ],
)
def test_unreadable_run_files_are_one_line(
    two_runs: Path, tmp_path: Path, file: str, content: bytes
) -> None:
    (two_runs / "sft-100__gp-l__id" / file).write_bytes(content)
    error = _error_line(_invoke("report", two_runs, "-o", tmp_path / "report"))
    assert error.startswith("Error: ")
    assert not (tmp_path / "report").exists()


def test_errors_before_writing_leave_the_folder_untouched(two_runs: Path, tmp_path: Path) -> None:
    with pytest.raises(GpbenchError, match="is a file"):
        (tmp_path / "f").write_text("x")
        build_report(ReportConfig(runs=(two_runs,), out=tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "x"
