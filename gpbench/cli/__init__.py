"""The ``gpbench`` command: a thin click layer over the Python API, one module per command."""

from __future__ import annotations

import sys
from typing import Any

import click

import gpbench
from gpbench.cli.compare import compare
from gpbench.cli.convert import convert
from gpbench.cli.eval import eval_command
from gpbench.cli.generate import generate
from gpbench.cli.lm_eval import lm_eval_export, lm_eval_path
from gpbench.cli.merge import merge
from gpbench.cli.overlap import overlap
from gpbench.cli.recipes import recipes
from gpbench.cli.regress import regress
from gpbench.cli.report import report
from gpbench.cli.score import score
from gpbench.cli.show import show
from gpbench.cli.tasks import tasks
from gpbench.errors import GpbenchError


class _Group(click.Group):
    """Turns gpbench's own errors into one line on stderr and a non-zero exit, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GpbenchError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written was kept", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(gpbench.__version__, prog_name="gpbench")
def cli() -> None:
    """gpbench: did post-training teach the task, or memorize the training distribution?

    Procedural GeneralPoints (24-style card arithmetic) and V-IRL navigation tasks, each with an
    in-distribution split and out-of-distribution splits (rule, colour, spatial shift), after
    "SFT Memorizes, RL Generalizes" (Chu et al., 2025).

    \b
    Start here:
      gpbench tasks                                   list tasks, versions and splits
      gpbench generate                                write every paper split to ./data
      gpbench generate gp-l --split ood-rule -n 234 --seed 42 -o out/
      gpbench show gp-vl --split ood-color --seed 42 --index 3 -o card.png
      gpbench eval --model ckpt/ --split ood-rule
      gpbench score gp-l --instances out/gp-l/ood-rule.jsonl --responses resp.jsonl -o runs/mine/
      gpbench report runs/ -o report/                 ID/OOD curves, tables, HTML gallery
      gpbench compare RUN_A RUN_B                     paired comparison (exact McNemar)
      lm_eval ... --include_path "$(gpbench lm-eval-path)" --tasks gpbench_gp_l_ood_rule
    """


cli.add_command(tasks)
cli.add_command(generate)
cli.add_command(score)
cli.add_command(show)
cli.add_command(eval_command)
cli.add_command(merge)
cli.add_command(convert)
cli.add_command(report)
cli.add_command(compare)
cli.add_command(regress)
cli.add_command(lm_eval_path)
cli.add_command(lm_eval_export)
cli.add_command(overlap)
cli.add_command(recipes)


def main() -> None:
    """Console-script entry point."""
    cli(auto_envvar_prefix="GPBENCH")
