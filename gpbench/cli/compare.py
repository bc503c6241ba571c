"""``gpbench compare``: two runs on the same instances, paired (exact McNemar)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("compare")
@click.argument("run_a", type=click.Path(file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option(
    "--all", "every_pair", is_flag=True, help="List every instance, not only those that differ."
)
def compare(run_a: Path, run_b: Path, as_json: bool, every_pair: bool) -> None:
    """Paired comparison of two runs on identical instances (exact McNemar test).

    Prints the success of each with its 95% interval, the difference, the discordant pairs
    (instances only one run solved) with the exact two-sided McNemar p-value, and those
    instances with each run's statuses. Refuses runs of different task versions or instance
    sets with a one-line error.

    \b
    Examples:
      gpbench compare runs/ckpt-a__gp-l__ood-rule__1a2b runs/ckpt-b__gp-l__ood-rule__3c4d
      gpbench compare RUN_A RUN_B --json > diff.json
    """
    from gpbench.reports.compare import compare_runs, format_comparison

    comparison = compare_runs(run_a, run_b)
    if as_json:
        click.echo(json.dumps(comparison.to_json(), indent=2))
    else:
        click.echo(format_comparison(comparison, every_pair=every_pair))
