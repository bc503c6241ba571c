"""The ``gpbench`` command: a thin click layer over the Python API, one module per command."""

from __future__ import annotations

import sys
from typing import Any

import click

import gpbench
from gpbench.cli.compare import compare
from gpbench.cli.completion import completion
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
    """Turns errors that come from the input or the machine into one line on stderr and exit 1.

    gpbench's own errors carry their message. The rest are caught here, at the root, so that no
    command can end in a traceback for them: an ``OSError`` (a full disk, a read-only or
    unwritable folder, a missing file) says which path and why; ``RecursionError`` (JSON nested
    deeper than Python follows), ``UnicodeDecodeError`` (a file that is not UTF-8) and
    ``UnicodeEncodeError`` (a lone surrogate reaching a strict writer) say what was wrong.
    Readers and writers that know the file and line say so themselves first.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GpbenchError as exc:
            raise click.ClickException(one_line(str(exc))) from None
        except OSError as exc:
            raise click.ClickException(one_line(os_error_message(exc))) from None
        except RecursionError:
            raise click.ClickException(
                "an input is nested too deeply to read (JSON nested beyond Python's recursion "
                "limit); such a file is not one gpbench writes or reads"
            ) from None
        except UnicodeDecodeError as exc:
            raise click.ClickException(
                f"an input file is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                "save it as UTF-8"
            ) from None
        except UnicodeEncodeError as exc:
            raise click.ClickException(
                f"cannot write text holding U+{ord(exc.object[exc.start]):04X}, which UTF-8 "
                "cannot encode (a lone surrogate, as from a file name that is not UTF-8)"
            ) from None
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written was kept", err=True)
            sys.exit(130)


def os_error_message(exc: OSError) -> str:
    """``PATH: reason`` (both paths of a rename), or the reason alone when no path is known.

    >>> os_error_message(OSError(28, "No space left on device", "out/summary.csv"))
    'out/summary.csv: No space left on device'
    """
    reason = exc.strerror or str(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def one_line(message: str) -> str:
    """``message`` on one line: line breaks (a path may hold one) written as ``\\n``, ``\\r``."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


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
cli.add_command(completion)


def main() -> None:
    """Console-script entry point."""
    cli(auto_envvar_prefix="GPBENCH")
