"""``gpbench tasks``: list task ids, versions, splits and options."""

from __future__ import annotations

import json
from typing import Any

import click

from gpbench.tasks.registry import all_tasks


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead.")
def tasks(as_json: bool) -> None:
    """List registered tasks with their versions, splits (paper size and seed) and options."""
    rows: list[dict[str, Any]] = []
    for task in all_tasks():
        rows.append(
            {
                "task": task.id,
                "version": task.version,
                "modality": task.modality,
                "description": task.description,
                "splits": [
                    {
                        "name": s.name,
                        "description": s.description,
                        "paper_size": s.paper_size,
                        "paper_seed": s.paper_seed,
                    }
                    for s in task.splits.values()
                ],
                "options": [
                    {"name": o.name, "default": o.default, "help": o.help}
                    for o in task.options.values()
                ],
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['task']}@{row['version']}  [{row['modality']}]  {row['description']}")
        for s in row["splits"]:
            size = f"n={s['paper_size']}, seed={s['paper_seed']}"
            click.echo(f"  {s['name']:<12} {s['description']}  ({size})")
        if row["options"]:
            click.echo("  options (-O NAME=VALUE):")
            for o in row["options"]:
                default = (
                    str(o["default"]).lower() if isinstance(o["default"], bool) else o["default"]
                )
                click.echo(f"    {o['name']}={default}  {o['help']}")
        click.echo()
