"""``gpbench regress`` output files: checked before any evaluation, written all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

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
