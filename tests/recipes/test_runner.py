"""The recipes' starting model: a local folder whose weights do not fit is refused before training
(gpbench.recipes.runner.starting_model, through the real `gpbench recipes sft|rl`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpbench.cli import cli


def _prefixed(source: Path, target: Path) -> Path:
    """A copy of ``source`` whose weight keys carry DataParallel's ``module.`` prefix."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    state = load_file(source / "model.safetensors")
    renamed = {f"module.{name}": tensor for name, tensor in state.items()}
    save_file(renamed, target / "model.safetensors", metadata={"format": "pt"})
    return target


@pytest.mark.parametrize("recipe", ["sft", "rl"])
def test_weights_that_do_not_fit_stop_the_recipe_in_one_line(
    recipe: str, tiny_llama: Path, tmp_path: Path
) -> None:
    broken = _prefixed(tiny_llama, tmp_path / "broken")
    output = tmp_path / "out"
    args = ["recipes", recipe, "--model", str(broken), "-o", str(output), "--max-steps", "1"]
    result = CliRunner().invoke(
        cli, [*args, "--train-size", "4", "--batch-size", "4", "--set", "per_device_batch_size=4"]
    )
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "'module.' prefix" in errors[0] and "module.lm_head.weight" in errors[0]
    assert not output.exists() or not any(output.glob("checkpoint-*"))


def test_a_missing_model_folder_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    args = ["--model", str(tmp_path / "nothing"), "-o", str(tmp_path / "out"), "--max-steps", "1"]
    result = CliRunner().invoke(cli, ["recipes", "sft", *args])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"Error: model folder not found: {tmp_path / 'nothing'}" in result.output
