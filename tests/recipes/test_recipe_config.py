"""Recipe configs: presets, overrides, and one-line errors from the CLI (no TRL import)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.errors import ConfigError
from gpbench.harness.threads import default_threads
from gpbench.recipes import rl, sft
from gpbench.recipes.config import gradient_accumulation, with_overrides, with_threads


def test_presets_and_overrides() -> None:
    tiny = sft.resolve("tiny-cpu")
    assert (tiny.learning_rate, tiny.batch_size, tiny.bf16, tiny.use_cpu) == (3e-3, 16, False, True)
    paper = sft.resolve("paper", {"task": "gp-l"})
    assert (paper.learning_rate, paper.batch_size, paper.lr_scheduler) == (1e-6, 128, "cosine")
    assert sft.resolve("paper", {"task": "gp-vl"}).learning_rate == 5e-7
    assert sft.resolve("paper", {"task": "gp-vl", "learning_rate": "1e-5"}).learning_rate == 1e-5
    config = rl.resolve("paper")
    assert (config.beta, config.epsilon, config.num_iterations, config.temperature) == (
        0.0,
        0.1,
        4,
        0.2,
    )
    assert config.max_grad_norm == 0.01
    shaped = rl.resolve("tiny-cpu", {"shaping": "format:0.5", "max_steps": "7"})
    assert shaped.shaping == {"format": 0.5} and shaped.max_steps == 7
    assert shaped.preset == "tiny-cpu"


def test_threads_are_a_recipe_setting_applied_and_recorded_at_train_time() -> None:
    assert sft.resolve("tiny-cpu").threads == 0  # 0: gpbench's default, resolved by train()
    assert sft.resolve("tiny-cpu", {"threads": 2}).threads == 2
    assert rl.resolve("tiny-cpu", {"threads": "3"}).threads == 3  # --set threads=3
    config, threads = with_threads(sft.resolve("tiny-cpu", {"threads": 1}))
    assert config.threads == threads.count == 1 and threads.source == "--threads"
    config, threads = with_threads(sft.resolve("tiny-cpu"))
    assert config.threads == threads.count == default_threads().count


def test_set_names_that_are_not_fields_go_to_the_trainer() -> None:
    config = with_overrides(sft.resolve("tiny-cpu"), {"disable_tqdm": "true", "beta2": "0.95"})
    assert config.trainer_args == {"disable_tqdm": True, "beta2": 0.95}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_steps": "ten"}, "--set max_steps expects a number"),
        ({"max_steps": "1.5"}, "--set max_steps expects an integer"),
        ({"bf16": "maybe"}, "--set bf16 expects true or false"),
        ({"compute_budget": "lots"}, "--set compute_budget expects a number"),
        ({"method": "ppo"}, "--method must be sft or init"),
    ],
)
def test_bad_values_are_config_errors(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sft.resolve("tiny-cpu", overrides)


def test_batches_must_divide() -> None:
    with pytest.raises(ConfigError, match="not a multiple of num_generations 4"):
        rl.resolve("tiny-cpu", {"batch_size": "10"})
    config = sft.resolve("paper")
    assert gradient_accumulation(config) == 32
    with pytest.raises(ConfigError, match="not a multiple of per_device_batch_size"):
        gradient_accumulation(sft.resolve("paper", {"per_device_batch_size": "5"}))


def test_unknown_preset_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'tiny-cpu'"):
        sft.resolve("tiny_cpu")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recipes", "sft", "-o", "out"], "no starting checkpoint: pass --model FOLDER"),
        (["recipes", "rl", "--model", "m"], "no output folder: pass -o FOLDER"),
        (["recipes", "sft", "--model", "m", "-o", "o", "--set", "oops"], "is not NAME=VALUE"),
        (
            ["recipes", "rl", "--task", "gp-vl", "--model", "m", "-o", "o", "--budget", "3"],
            "multi-turn rollouts run on text models only here",
        ),
        (["recipes", "sft", "--task", "gp-x", "--model", "m", "-o", "o"], "unknown task 'gp-x'"),
        (
            ["recipes", "sft", "--model", "m", "-o", "o", "--set", "learning_rat=1"],
            "did you mean 'learning_rate'",
        ),
        (["recipes", "rl", "--model", "m", "-o", "o", "--set", "threads=-1"], "at least 1"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_bad_thread_setting_in_the_environment_is_one_line() -> None:
    runner = CliRunner(env={"GPBENCH_THREADS": "lots"})
    result = runner.invoke(cli, ["recipes", "sft", "--model", "m", "-o", "o"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip() == (
        "Error: GPBENCH_THREADS='lots' is not a positive whole number of threads; set it to 1, "
        "2, ... or unset it (default: the CPUs this process may use)"
    )


def test_recipes_help_does_not_import_trl() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom gpbench.cli import cli\n"
        "r = CliRunner().invoke(cli, ['recipes', 'sft', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert '--compute-budget' in r.output\n"
        "print(sorted(m for m in ('trl', 'torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
