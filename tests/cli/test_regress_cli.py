"""``gpbench regress`` output files: checked before any evaluation, written all or nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import gpbench
from gpbench.cli import cli
from gpbench.regress.manifest import TABLE_BEGIN, TABLE_END, dump_block, parse_block, render_table

ENTRY = {
    "name": "scripted",
    "policy": "reference:0.3",
    "licence": "n/a",
    "architecture": "scripted policy",
    "backend": "scripted",
    "checks": [
        {
            "task": "gp-l",
            "split": "id",
            "n": 20,
            "seed": 42,
            "decoding": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 64},
            "budget": 1,
            "expect": {"success": {"rate": 0.7, "tol": 0.3}},
        }
    ],
}


def _manifest(tmp_path: Path) -> Path:
    block = dump_block({"version": 1, "alpha": 0.01, "checkpoints": [ENTRY]})
    entries, _ = parse_block(block, 1, "m")
    text = "\n".join(
        ["# Checkpoints", TABLE_BEGIN, *render_table(entries), TABLE_END, "",
         "```json gpbench-regress", block, "```", ""]
    )  # fmt: skip
    path = tmp_path / "checkpoints.md"
    path.write_text(text, encoding="utf-8")
    return path


def _regress(tmp_path: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(
        cli,
        ["regress", "--manifest", str(_manifest(tmp_path)), "--runs-dir", str(tmp_path / "runs"),
         *(str(a) for a in args)],
    )  # fmt: skip


def test_an_unwritable_json_summary_fails_before_any_evaluation(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = _regress(tmp_path, "--json", tmp_path / "file" / "summary.json")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        f"Error: --json {tmp_path / 'file' / 'summary.json'}: {tmp_path / 'file'} is a file, "
        "not a folder"
    ]
    assert not (tmp_path / "runs").exists()  # nothing was evaluated


def test_the_json_summary_goes_into_a_new_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "new" / "summary.json"
    result = _regress(tmp_path, "--json", target)
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["checkpoints"][0]["name"] == "scripted"
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.json"]


def test_the_default_manifest_is_the_packaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From a folder with no checkpoints.md (an installed gpbench, not a checkout).
    from gpbench.regress.run import packaged_manifest

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["regress", "--write-table"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"{packaged_manifest().resolve()}: already up to date"]


def test_a_linked_manifest_is_written_through_the_link(tmp_path: Path) -> None:
    real = _manifest(tmp_path)
    text = real.read_text(encoding="utf-8")
    begin, end = text.index(TABLE_BEGIN) + len(TABLE_BEGIN), text.index(TABLE_END)
    real.write_text(text[:begin] + "\n| stale |\n" + text[end:], encoding="utf-8")
    link = tmp_path / "link" / "checkpoints.md"
    link.parent.mkdir()
    link.symlink_to(real)
    result = CliRunner().invoke(cli, ["regress", "--manifest", str(link), "--write-table", "-y"])
    assert result.exit_code == 0, result.output
    assert link.is_symlink()  # still a link, not a copy
    assert real.read_text(encoding="utf-8") == text


@pytest.mark.slow
def test_regress_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    # Built from a copy of the package (no build folders in the shared checkout), installed
    # into a plain folder put first on PYTHONPATH, run from a folder with no checkpoints.md:
    # only what the wheel ships can serve. This venv provides the dependencies.
    repo = Path(gpbench.__file__).resolve().parents[1]
    source = tmp_path / "source"
    shutil.copytree(
        repo / "gpbench", source / "gpbench", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel")]
    subprocess.run([*build, str(source)], check=True)
    (wheel,) = (tmp_path / "wheel").glob("gpbench-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True
        )

    where = run("-c", "import gpbench; print(gpbench.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(site), where.stderr
    shown = run("-m", "gpbench", "regress", "--help")
    assert shown.returncode == 0 and "--manifest" in shown.stdout, shown.stderr
    done = run("-m", "gpbench", "regress", "--runs-dir", "runs", "--json", "summary.json")
    # Whether the figures pass is another test's business (floating point differs by machine);
    # here the packaged manifest must be read and the packaged reference reached and evaluated.
    assert done.returncode in (0, 3), done.stdout + done.stderr
    summary = json.loads((cwd / "summary.json").read_text())
    assert Path(summary["manifest"]) == site / "gpbench" / "regress" / "data" / "checkpoints.md"
    reference = site / "gpbench" / "regress" / "data" / "tiny-cpu-reference"
    assert [(c["name"], c["model"], c["status"], c["error"]) for c in summary["checkpoints"]] == [
        ("tiny-cpu-reference", str(reference), "checked", None)
    ]
