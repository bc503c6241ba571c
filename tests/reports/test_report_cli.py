"""``gpbench report``: files written, notes, errors as one line, no heavy imports at start-up."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from report_fixtures import (
    INIT_TOKENS,
    PARAMETERS,
    TOKENS_PER_STEP,
    run_named,
)

from gpbench.cli import cli


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result: Result) -> str:
    """The error line of a failed command (progress lines may come before it)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert errors == lines[-1:], result.output
    return errors[0]


def test_report_writes_csv_figures_and_html(study: Path, mixed_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = invoke("report", study, mixed_runs, "-o", out, "--gallery", "6")
    assert result.exit_code == 0, result.output
    assert "read 13 runs" in result.output
    assert "reading runs: 13" in result.output and "drawing figures" in result.output
    assert (out / "summary.csv").read_text().count("\n") == 14
    figures = sorted(p.name for p in (out / "figures").iterdir())
    stems = sorted({name.rsplit(".", 1)[0] for name in figures})
    assert stems == [
        "by-attempt-gp-l-v1",
        "by-attempt-gp-vl-v1",
        "memorization-gp-l-v1",
        "memorization-virl-l-v1",
        "ood-change-gp-l-v1",
        "recognition-gp-vl-v1",
        "success-gp-l-v1",
        "success-gp-vl-v1",
        "success-virl-l-v1",
        "success-virl-vl-v1",
    ]
    for stem in stems:
        assert (out / "figures" / f"{stem}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        svg = (out / "figures" / f"{stem}.svg").read_text()
        assert svg.startswith("<?xml") and "<svg" in svg
        assert json.loads((out / "figures" / f"{stem}.json").read_text())["name"] == stem
    page = (out / "report.html").read_text()
    [data] = re.findall(
        r'<script type="application/json" id="gallery-data"[^>]*>(.*?)</script>', page
    )
    episodes = json.loads(data)
    # Every episode is listed; --gallery 6 bounds the scenes (text GeneralPoints has none).
    rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    assert len(episodes) == sum(int(row["episodes"]) for row in rows) > 6
    assert all(e["images"] or e["task"] == "gp-l" for e in episodes[:6])
    assert not any(e["images"] for e in episodes[6:])
    assert page.count('<figure class="plot"') == len(stems)


@pytest.mark.slow
def test_the_same_runs_give_the_same_files(study: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert invoke("report", study, "-o", tmp_path / name, "--gallery", "3").exit_code == 0
    for path in ("summary.csv", "report.html", "figures/success-gp-l-v1.svg"):
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes(), path


def test_compute_axis_writes_the_formula_into_the_table(study: Path, tmp_path: Path) -> None:
    result = invoke("report", study, "-o", tmp_path / "r", "--x", "compute", "--gallery", "0")
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output  # init_tokens and parameter_count are recorded
    data = json.loads((tmp_path / "r" / "figures" / "success-gp-l-v1.json").read_text())
    sft = next(line for line in data["panels"][0]["lines"] if line["series"] == "sft")
    tokens = 200 * TOKENS_PER_STEP
    assert sft["points"][-1]["x"] == 6 * PARAMETERS * (INIT_TOKENS + tokens)
    assert data["x_axis"] == "compute"


def test_checkpoints_without_a_step_are_left_out_of_the_curves_with_a_note(
    study: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(run_named(study, "sft-100__gp-l__id"), runs / "nostep")
    spec_path = runs / "nostep" / "run.json"
    spec = json.loads(spec_path.read_text())
    spec["checkpoint"] = {"checkpoint": "/ckpts/other/final", "metadata": {"method": "sft"}}
    spec_path.write_text(json.dumps(spec))
    shutil.copytree(run_named(study, "init__gp-l__id"), runs / "init")
    result = invoke("report", runs, "-o", tmp_path / "r", "--gallery", "0")
    assert result.exit_code == 0, result.output
    assert "note: 1 checkpoint(s) have no step and are left out of the curves (final)" in (
        result.output
    )
    data = json.loads((tmp_path / "r" / "figures" / "success-gp-l-v1.json").read_text())
    [line] = data["panels"][0]["lines"]
    assert [p["checkpoint"] for p in line["points"]] == ["init"]
    assert "final" in (tmp_path / "r" / "summary.csv").read_text()


def test_interrupted_runs_are_left_out_and_reported(study: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(run_named(study, "init__gp-l__id"), runs / "done")
    shutil.copytree(run_named(study, "rl-100__gp-l__id"), runs / "killed")
    spec_path = runs / "killed" / "run.json"
    spec_path.write_text(json.dumps({**json.loads(spec_path.read_text()), "status": "running"}))
    result = invoke("report", runs, "-o", tmp_path / "r", "--gallery", "0")
    assert result.exit_code == 0, result.output
    assert f"note: left out {runs / 'killed'}: run is running" in result.output
    assert "rl-100" not in (tmp_path / "r" / "summary.csv").read_text()
    (runs / "done" / "run.json").write_text(spec_path.read_text())
    error = one_line_error(invoke("report", runs, "-o", tmp_path / "r2"))
    assert "no complete run with episodes to report on" in error


def test_two_runs_holding_the_same_episodes_are_refused(study: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(run_named(study, "init__gp-l__id"), runs / "a")
    shutil.copytree(run_named(study, "init__gp-l__id"), runs / "b")
    error = one_line_error(invoke("report", runs, "-o", tmp_path / "r"))
    assert re.search(
        r"both hold init on gp-l id instance \d+ sample 0; pass only one of them", error
    )


def test_user_errors_are_one_line(tmp_path: Path, study: Path) -> None:
    missing = one_line_error(invoke("report", tmp_path / "nowhere", "-o", tmp_path / "r"))
    assert "does not exist" in missing
    (tmp_path / "empty").mkdir()
    empty = one_line_error(invoke("report", tmp_path / "empty", "-o", tmp_path / "r"))
    assert "no run folders (with run.json)" in empty and "gpbench eval" in empty
    bad = one_line_error(invoke("report", study, "-o", tmp_path / "r", "--series", "SFT"))
    assert "is not NAME=GLOB" in bad
    (tmp_path / "file").write_text("x")
    not_dir = invoke("report", study, "-o", tmp_path / "file")
    assert not_dir.exit_code == 2 and "Traceback" not in not_dir.output


def test_help_shows_examples() -> None:
    result = invoke("report", "--help")
    assert result.exit_code == 0
    assert "gpbench report runs/ -o report/ --series SFT='runs/sft-*'" in result.output
    assert "--x [step|compute]" in result.output


def test_starting_the_cli_imports_no_plotting_library() -> None:
    code = (
        "import sys, gpbench.cli, gpbench.reports.build, gpbench.reports.compare\n"
        "print(','.join(m for m in ('matplotlib', 'pandas', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_hostile_model_output_is_escaped_in_the_gallery(tmp_path: Path) -> None:
    # Model output is hostile data: markup in an answer must show as text, never run.
    payload = '</pre><script>alert(1)</script><img src=x onerror="alert(2)">'
    runs = tmp_path / "runs"
    eval_result = invoke(
        "eval", "--model", f"constant:{payload}", "--backend", "scripted", "--task", "gp-l",
        "--split", "id", "-n", "3", "--max-attempts", "2", "--runs-dir", runs,
    )  # fmt: skip
    assert eval_result.exit_code == 0, eval_result.output
    out = tmp_path / "report"
    result = invoke("report", runs, "-o", out)
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page and 'onerror="alert(2)"' not in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page  # inert JSON, shown as text
