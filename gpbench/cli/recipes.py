"""``gpbench recipes sft|rl``: train on a task with TRL (imported only when a command runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from gpbench.cli.options import parse_options, parse_pairs, task_option
from gpbench.errors import GpbenchError, MissingDependencyError
from gpbench.harness.threads import threads_option


class _RecipeCommand(click.Command):
    """Also run standalone (``python -m gpbench.recipes.sft``, whose ``__main__`` module imports
    this one; the recipes never import the CLI): gpbench errors stay one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GpbenchError as exc:
            raise click.ClickException(str(exc)) from None


def _common(command: Callable[..., None]) -> Callable[..., None]:
    """The options both recipes take."""
    options = [
        click.option("--task", default=None, help="Task id (default: gp-l)."),
        click.option(
            "--model", default=None, help="Starting checkpoint folder (a hub id where reachable)."
        ),
        click.option(
            "-o", "--output", "output_dir", default=None, help="Folder for the checkpoints."
        ),
        click.option(
            "--preset",
            type=click.Choice(["tiny-cpu", "paper"]),
            default="tiny-cpu",
            show_default=True,
            help="Settings to start from (see the recipe's docstring); flags and --set override.",
        ),
        click.option("--max-steps", type=click.IntRange(min=1), default=None),
        click.option(
            "--compute-budget",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="FLOPs of this run by the paper's formula; stops once spent, saving at "
            "1/k..k/k of it (k = --set save_points=K).",
        ),
        click.option("--learning-rate", type=float, default=None),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=None,
            help="Sequences per optimizer step over all processes.",
        ),
        click.option("--train-size", type=click.IntRange(min=0), default=None),
        click.option("--seed", type=int, default=None, help="Training seed."),
        task_option(),
        click.option(
            "--set",
            "set_pairs",
            multiple=True,
            metavar="NAME=VALUE",
            help="Any recipe setting, or a field of TRL's trainer config (repeatable).",
        ),
    ]
    command = threads_option(command)  # listed last in --help
    for option in reversed(options):
        command = option(command)
    return command


def _overrides(kw: dict[str, Any], flags: tuple[str, ...]) -> dict[str, Any]:
    """Config overrides from the flags given, the task options and ``--set`` pairs."""
    overrides: dict[str, Any] = {name: kw[name] for name in flags if kw.get(name) is not None}
    if kw["option_pairs"]:
        overrides["options"] = parse_options(kw["option_pairs"])
    overrides.update(parse_pairs(kw["set_pairs"], "--set", "--set warmup_steps=10"))
    return overrides


_FLAGS = (
    "task",
    "model",
    "output_dir",
    "max_steps",
    "compute_budget",
    "learning_rate",
    "batch_size",
    "train_size",
    "seed",
    "threads",
)


def _require_trl() -> None:
    try:
        import trl  # noqa: F401
    except ImportError:
        raise MissingDependencyError("trl", "recipes", "gpbench recipes") from None


def _report(result: Any) -> None:
    click.echo(
        f"trained {result.steps} steps on {result.tokens_seen:,} tokens in {result.seconds:.0f} s; "
        f"compute {result.compute:.3g} FLOPs"
    )
    for folder in result.checkpoints:
        click.echo(f"checkpoint {folder}")
    click.echo(f"final model {result.output_dir} (with gpbench_checkpoint.json)")


@click.command("sft", cls=_RecipeCommand)
@_common
@click.option(
    "--method",
    type=click.Choice(["sft", "init"]),
    default=None,
    help="init: this run is the SFT initialisation the SFT and RL series start from.",
)
def sft_command(**kw: Any) -> None:
    """SFT on a task's train split (TRL SFTTrainer); every checkpoint gets gpbench_checkpoint.json.

    \b
    Examples:
      gpbench recipes sft --task gp-l --model base/ -o ckpts/sft
      gpbench recipes sft --task gp-l --model base/ -o ckpts/init --method init
      gpbench recipes sft --preset paper --model GP-L-Init/ -o ckpts/sft --compute-budget 1e18
      gpbench recipes sft --task gp-l --model base/ -o ckpts/sft --threads 1
    """
    _require_trl()
    from gpbench.recipes import sft

    config = sft.resolve(kw["preset"], _overrides(kw, (*_FLAGS, "method")))
    _report(sft.train(config))


@click.command("rl", cls=_RecipeCommand)
@_common
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=None,
    help="Verification budget in rollouts (attempts per decision point, the verifier's "
    "feedback between them). Default: the task's (GP 5, V-IRL 2); 1 = single-turn.",
)
@click.option("--num-generations", type=click.IntRange(min=2), default=None)
def rl_command(**kw: Any) -> None:
    """RL with TRL's GRPO and gpbench's verifier as the reward (the paper used PPO; see README).

    \b
    Examples:
      gpbench recipes rl --task gp-l --model ckpts/init -o ckpts/rl
      gpbench recipes rl --task gp-l --model ckpts/init -o ckpts/rl --budget 1
      gpbench recipes rl --task gp-l --model ckpts/init -o ckpts/rl --set shaping=format:0.5
    """
    _require_trl()
    from gpbench.recipes import rl

    config = rl.resolve(kw["preset"], _overrides(kw, (*_FLAGS, "budget", "num_generations")))
    _report(rl.train(config))


@click.group("recipes")
def recipes() -> None:
    """Train on gpbench tasks with TRL: SFT, and RL from the verifier (pip install 'gpbench[recipes]')."""


recipes.add_command(sft_command)
recipes.add_command(rl_command)
