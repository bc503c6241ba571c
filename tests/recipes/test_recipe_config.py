"""Recipe configs: presets, overrides, and one-line errors from the CLI (no TRL import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.errors import ConfigError
from gpbench.harness.threads import default_threads
from gpbench.recipes import rl, sft
from gpbench.recipes.config import (
    gradient_accumulation,
    nearest_multiples,
    with_overrides,
    with_threads,
)
from gpbench.regress.run import packaged_data

TEXT_MODEL = str(packaged_data() / "tiny-cpu-reference")  # a real text-only model folder


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
    with pytest.raises(ConfigError, match="not a multiple of --num-generations 4"):
        rl.resolve("tiny-cpu", {"batch_size": "10"})
    config = sft.resolve("paper")
    assert gradient_accumulation(config) == 32
    with pytest.raises(ConfigError, match="not a multiple of per_device_batch_size"):
        gradient_accumulation(sft.resolve("paper", {"per_device_batch_size": "5"}))


def test_a_batch_error_names_the_flags_and_sizes_that_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    # tiny-cpu RL: 4 generations, 16 per device, so only multiples of 16 pass both checks.
    with pytest.raises(ConfigError) as caught:
        rl.resolve("tiny-cpu", {"batch_size": 2})
    assert str(caught.value) == (
        "--batch-size 2 is not a multiple of --num-generations 4 (each prompt's rollouts must "
        "fit in one batch); use --batch-size 16 or 32"
    )
    with pytest.raises(ConfigError) as caught:
        gradient_accumulation(sft.resolve("tiny-cpu", {"batch_size": 12}))
    assert str(caught.value) == (
        "--batch-size 12 is not a multiple of per_device_batch_size 16 x 1 process(es); use "
        "--batch-size 16 or 32, or --set per_device_batch_size=4"
    )
    for size in (16, 32):  # the sizes suggested are accepted
        assert gradient_accumulation(rl.resolve("tiny-cpu", {"batch_size": size})) == size // 16
    assert (
        gradient_accumulation(
            sft.resolve("tiny-cpu", {"batch_size": 12, "per_device_batch_size": 4})
        )
        == 3
    )
    assert nearest_multiples(2, 4) == (4, 8) and nearest_multiples(33, 16) == (32, 48)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_steps": 0}, "--max-steps must be at least 1, got 0"),
        ({"per_device_batch_size": "0"}, "--set per_device_batch_size must be at least 1, got 0"),
        ({"save_steps": "-1"}, "--set save_steps must be at least 1, got -1"),
        ({"num_generations": "1"}, "--num-generations must be at least 2"),
    ],
)
def test_counts_below_one_are_refused_before_the_trainer(
    overrides: dict[str, object], message: str
) -> None:
    # --set skips the flags' own range checks; a zero would divide by zero in the trainer.
    with pytest.raises(ConfigError, match=message):
        rl.resolve("tiny-cpu", overrides)


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
        (
            ["recipes", "rl", "--model", "m", "-o", "o", "--batch-size", "2"],
            "--batch-size 2 is not a multiple of --num-generations 4",
        ),
        (
            ["recipes", "rl", "--model", "m", "-o", "o", "--set", "num_generations=1"],
            "--num-generations must be at least 2",
        ),
        (
            ["recipes", "sft", "--model", "m", "-o", "o", "--set", "max_steps=0"],
            "--max-steps must be at least 1, got 0",
        ),
        (
            ["recipes", "sft", "--task", "gp-vl", "--model", TEXT_MODEL, "-o", "o"],
            f"--task gp-vl shows images, and --model {TEXT_MODEL} is a text-only model "
            "(LlamaForCausalLM)",
        ),
        (
            ["recipes", "rl", "--task", "gp-vl", "--model", TEXT_MODEL, "-o", "o", "--budget", "1"],
            "is a text-only model (LlamaForCausalLM); start from a vision-language checkpoint",
        ),
    ],
)
def test_cli_errors_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["sft", "rl"])
@pytest.mark.parametrize("held", ["checkpoint-10", "gpbench_checkpoint.json"])
def test_an_output_folder_holding_a_checkpoint_is_refused(
    tmp_path: Path, command: str, held: str
) -> None:
    # Training into it would overwrite some checkpoints and keep others: two runs in one series.
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("a user's own file is no checkpoint")
    if held.endswith(".json"):
        (out / held).write_text("{}")
    else:
        (out / held).mkdir()
    result = CliRunner().invoke(cli, ["recipes", command, "--model", "m", "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.strip() == (
        f"Error: -o {out} already holds a checkpoint ({held}); pass a new folder, or remove "
        "that one first"
    )


def test_bf16_on_a_machine_without_a_gpu_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = CliRunner().invoke(
        cli, ["recipes", "sft", "--preset", "paper", "--model", "m", "-o", "o"]
    )
    assert result.exit_code == 1, result.output
    assert result.output.strip() == (
        "Error: preset 'paper' trains in bf16 on a GPU and no CUDA GPU is visible; on a CPU use "
        "--preset tiny-cpu, or --set bf16=false --set use_cpu=true"
    )


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
