"""``gpbench eval`` habits users bring from lm-eval and inspect: ``--limit``, ``--json``, seeds
named for what they do, a hint for a scripted policy given without ``--backend scripted``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gpbench.cli import cli


def _invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli,
        ["eval", "--task", "gp-l", "--split", "id", "--runs-dir", str(tmp_path / "runs"), *args],
    )
    return result.exit_code, result.stdout, result.stderr


def test_limit_is_n(tmp_path: Path) -> None:
    code, out, _ = _invoke(
        tmp_path, "--backend", "scripted", "--model", "reference", "--limit", "3"
    )
    assert code == 0, out
    [folder] = (tmp_path / "runs").iterdir()
    assert json.loads((folder / "run.json").read_text())["n"] == 3


def test_json_puts_only_the_summaries_on_stdout(tmp_path: Path) -> None:
    args = ("--backend", "scripted", "--model", "reference:0.5", "-n", "6", "--json")
    code, out, err = _invoke(tmp_path, *args)
    assert code == 0, err
    document = json.loads(out)  # nothing but JSON on stdout
    [run] = document["runs"]
    assert (run["task"], run["split"], run["reused"]) == ("gp-l", "id", False)
    assert run["summary"]["episodes"] == 6
    assert Path(run["folder"]).is_dir()
    assert document["skipped"] == []
    # run.json carries the same summary, for scripts that read run folders without gpbench
    assert json.loads((Path(run["folder"]) / "run.json").read_text())["summary"] == run["summary"]
    assert "success % [95% CI]" in err and "run " in err  # the human table went to stderr
    _, again, _ = _invoke(tmp_path, *args)
    assert json.loads(again)["runs"][0]["reused"] is True


def test_the_summary_says_which_seed_did_what(tmp_path: Path) -> None:
    code, out, _ = _invoke(
        tmp_path, "--backend", "scripted", "--model", "reference", "-n", "2", "--seed", "7"
    )
    assert code == 0, out
    assert "seeds: instances drawn with --seed 7; decoding greedy, --sampling-seed 0" in out
    assert "--sampling-seed" in CliRunner().invoke(cli, ["eval", "--help"]).output


def test_a_scripted_policy_without_the_scripted_backend_gets_a_hint(tmp_path: Path) -> None:
    code, _, err = _invoke(tmp_path, "--model", "reference:0.3")
    assert code != 0
    assert err.strip().splitlines()[-1] == (
        "Error: --model reference:0.3 is a scripted policy, not a checkpoint; "
        "add --backend scripted"
    )
    assert not (tmp_path / "runs").exists()
