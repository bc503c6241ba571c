"""``gpbench merge``: join shard runs into one run folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("merge")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="The merged run folder to write.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
def merge(runs: tuple[Path, ...], out: Path, overwrite: bool) -> None:
    """Join the runs of `gpbench eval --shard i/N` (0/N .. N-1/N) into one run folder.

    Refuses shards that do not belong together (another checkpoint, task version, decoding,
    budget ...) or that do not cover every shard exactly once, and shards whose episodes are not
    what their run.json promises (a missing, repeated or foreign episode, a damaged line).
    The output folder is written under its writer lock, all at once.

    \b
    Example:
      gpbench merge runs/*__gp-l__id__* -o runs/merged-gp-l-id
    """
    from gpbench.harness.merge import merge_runs

    count = merge_runs(list(runs), out, overwrite=overwrite)
    click.echo(
        f"wrote {out}/run.json and episodes.jsonl ({count} episodes from {len(runs)} shards)"
    )
