"""``gpbench regress``: do known checkpoints still score what checkpoints.md says they should?"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

import click

from gpbench.serialization import check_writable, write_text_atomic


@click.command("regress")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The checkpoints file: its table for people, its fenced `json gpbench-regress` block "
    "for this command. Default: the checkpoints.md shipped with gpbench (in a checkout, the "
    "repository's checkpoints.md links to it).",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="Check only this checkpoint (repeatable). A checkpoint named here that cannot be "
    "checked makes the exit status 4.",
)
@click.option(
    "--model-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Look for checkpoints here first: DIR/<name>, DIR/<hub id or path>, DIR/<last part>.",
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/regress"),
    show_default=True,
    help="Where the run folders go (RUNS_DIR/<name>/...); every run is made afresh.",
)
@click.option(
    "--json",
    "json_path",
    default=None,
    metavar="FILE",
    help="Write the JSON summary to FILE ('-': stdout, and the table goes to stderr).",
)
@click.option(
    "--update",
    is_flag=True,
    help="Re-record the expectations of the checkpoints checked (block and table) from this "
    "run, after showing the diff; once written, the exit status is 0 (the run is the new "
    "expectation).",
)
@click.option(
    "--write-table",
    is_flag=True,
    help="Only rewrite the human table from the JSON block (no evaluation), after showing the diff.",
)
@click.option("--yes", "-y", is_flag=True, help="Write --update / --write-table without asking.")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0, max=1),
    default=0.05,
    show_default=True,
    help="--update: tolerance of metrics recorded for the first time (a fraction: 0.05 = 5 "
    "points); existing tolerances are kept.",
)
def regress(**kw: Any) -> None:
    """Evaluate the checkpoints listed in checkpoints.md and test each expected figure.

    An expectation is a rate and a tolerance band. A figure outside its band whose exact
    binomial test against the nearest band edge (clustered bootstrap with several samples per
    instance) is significant at alpha after Holm's adjustment over the checkpoint's checks is a
    regression, in either direction; outside the band but not significant is inconclusive. alpha
    is in the manifest (0.01).

    \b
    Exit status: 0 all checked expectations hold; 3 a regression or a checkpoint that failed to
    run; 4 nothing checked, or an --only checkpoint skipped; 1 a usage or manifest error.

    \b
    Examples:
      gpbench regress                                   every checkpoint this machine can reach
      gpbench regress --only tiny-cpu-reference --json runs/regress/summary.json
      gpbench regress --only gp-l-init --model-root /models
      gpbench regress --only tiny-cpu-reference --update
    """
    from gpbench.regress.manifest import load_manifest, with_entries
    from gpbench.regress.run import (
        format_table,
        packaged_manifest,
        run_regress,
        summary_line,
        updated_entries,
    )

    manifest_path: Path = kw["manifest"] or packaged_manifest()
    if kw["write_table"]:
        if kw["update"]:
            raise click.UsageError("--write-table and --update do not go together")
        manifest = load_manifest(manifest_path, check_table=False)
        new_text = with_entries(manifest, manifest.entries, block=False)
        _write_with_diff(manifest_path, new_text, kw["yes"], "table rewritten from the block")
        return
    manifest = load_manifest(manifest_path)
    json_to_stdout = kw["json_path"] == "-"
    if kw["json_path"] and not json_to_stdout:
        check_writable(Path(kw["json_path"]), "--json")  # before the evaluations, not after
    out = sys.stderr if json_to_stdout else sys.stdout

    announced: set[str] = set()

    def progress(label: str, done: int, total: int) -> None:
        if label not in announced:
            announced.add(label)
            click.echo(f"{label}: {total} episodes", err=True)

    report = run_regress(
        manifest,
        only=tuple(kw["only"]),
        model_root=kw["model_root"],
        runs_dir=kw["runs_dir"],
        progress=progress,
    )
    click.echo(format_table(report), file=out)
    click.echo(summary_line(report), file=out)
    if json_to_stdout:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif kw["json_path"]:
        text = json.dumps(report.to_json(), indent=2) + "\n"
        write_text_atomic(Path(kw["json_path"]), text, parents=True)
    code = report.exit_code()
    if kw["update"]:
        if not any(not r.error for r in report.results):
            click.echo("--update: no checkpoint was checked, nothing to record", err=True)
            sys.exit(code)
        new_text = with_entries(manifest, updated_entries(manifest, report, kw["tolerance"]))
        if _write_with_diff(manifest_path, new_text, kw["yes"], "expectations re-recorded"):
            code = 0 if not any(r.error for r in report.results) else code
    sys.exit(code)


def _write_with_diff(path: Path, new_text: str, yes: bool, what: str) -> bool:
    """Show the diff of ``path`` against ``new_text``, ask, write; True when written or equal.

    A link is written through (the repository's checkpoints.md links into the package): renaming
    the new file onto the link itself would turn it into a copy.
    """
    path = path.resolve()
    old_text = path.read_text(encoding="utf-8")
    if old_text == new_text:
        click.echo(f"{path}: already up to date", err=True)
        return True
    diff = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"{path} (now)",
        tofile=f"{path} (new)",
    )
    click.echo("".join(diff), err=True)
    if not yes:
        try:
            confirmed = click.confirm(f"write {path}?", default=False, err=True)
        except click.Abort:
            confirmed = False
        if not confirmed:
            click.echo(f"{path} left unchanged (pass --yes to write without asking)", err=True)
            return False
    write_text_atomic(path, new_text)  # a full disk leaves the old checkpoints.md whole
    click.echo(f"{path}: {what}", err=True)
    return True
