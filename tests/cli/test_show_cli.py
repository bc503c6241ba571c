from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from gpbench.cli import cli


def test_show_writes_the_scene_and_prints_the_hand(tmp_path: Path) -> None:
    out = tmp_path / "card.png"
    result = CliRunner().invoke(
        cli,
        ["show", "gp-vl", "--split", "ood-color", "--seed", "42", "--index", "3", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "gp-vl ood-color seed=42 index=3" in result.output
    with Image.open(out) as image:
        assert image.size == (1200, 1200)


def test_show_text_task_prints_the_prompt() -> None:
    result = CliRunner().invoke(cli, ["show", "gp-l", "--split", "ood-rule"])
    assert result.exit_code == 0, result.output
    assert "[Task Description]" in result.output and "Cards: " in result.output


def test_show_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["show", "gp-vl", "--split", "ood-colour"])
    assert result.exit_code != 0 and "did you mean 'ood-color'" in result.output
    result = CliRunner().invoke(
        cli, ["show", "gp-l", "--split", "id", "-o", str(tmp_path / "x.png")]
    )
    assert result.exit_code != 0 and "text task" in result.output
