"""``gpbench report``: run folders in; summary.csv, figures and one report.html out."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write summary.csv, figures/ and report.html into.",
)
@click.option(
    "--series",
    "series",
    multiple=True,
    metavar="NAME=GLOB",
    help="Name a series: runs whose folder or checkpoint path matches GLOB (repeatable; first "
    "match wins). Default: the checkpoint metadata's method (sft, rl, ...); init is the shared "
    "start of every series.",
)
@click.option(
    "--x",
    "x_axis",
    type=click.Choice(["step", "compute"]),
    default="step",
    show_default=True,
    help="x axis: training step, or training compute by the paper's formula (metadata: "
    "compute, or parameter_count + tokens_seen + method).",
)
@click.option(
    "--gallery",
    type=click.IntRange(min=0),
    default=40,
    show_default=True,
    help="Most gallery episodes embedded with their scene; every episode is listed (searchable, "
    "paged), the rest as text only. 0 turns the gallery off.",
)
@click.option("--title", default="gpbench report", show_default=True, help="Page title.")
def report(
    runs: tuple[Path, ...],
    out: Path,
    series: tuple[str, ...],
    x_axis: str,
    gallery: int,
    title: str,
) -> None:
    """Report on run folders: ID/OOD curves per series, memorization flags, a gallery.

    RUNS are run folders (from `gpbench eval` or `gpbench score`) or folders holding them.
    Only run folders are read, never a model; gallery scenes are re-rendered from instance
    keys. Needs matplotlib: pip install 'gpbench[reports]'.

    \b
    Examples:
      gpbench report runs/ -o report/
      gpbench report runs/ -o report/ --x compute
      gpbench report runs/ -o report/ --series SFT='runs/sft-*' --series RL='runs/rl-*'
    """
    from gpbench.reports.build import ReportConfig, build_report

    config = ReportConfig(runs, out, series, x_axis, gallery, title)
    result = build_report(config, _progress())
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"read {result.runs} runs ({result.groups} checkpoint x task x split rows); wrote "
        f"{result.csv}, {len(result.figures) // 2} figures in {out / 'figures'} and {result.html}"
    )


def _progress() -> Callable[[str, int, int], None]:
    """Progress on stderr: a rewritten line on a terminal, a line per stage otherwise."""
    started: set[str] = set()

    def progress(stage: str, done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\r{stage}: {done}/{total}", err=True, nl=done >= total)
        elif stage not in started:
            click.echo(f"{stage}: {total}", err=True)
        started.add(stage)

    return progress
