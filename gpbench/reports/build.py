"""The Python API behind ``gpbench report``: run folders in; CSV, figures and HTML out.

Writes into the output folder:

- ``summary.csv``: one row per checkpoint x task x split (columns in :mod:`gpbench.reports.table`);
- ``figures/NAME.png``, ``.svg`` and ``.json`` (the data drawn, :mod:`gpbench.reports.figure_data`);
- ``report.html``: the table, the figures and a gallery, in one self-contained file.

The output folder is the report and nothing else: the whole report is built in a temporary
sibling folder and swapped in (the old report renamed aside, the new one renamed in, the old one
deleted), so an interrupted or failed report leaves the old report or the new one, never a new
``summary.csv`` beside an old ``report.html``. A folder holding anything but a report is refused.

Only run folders are read: no model is loaded, and gallery scenes are re-rendered from instance
keys through :mod:`gpbench.tasks`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gpbench
from gpbench.errors import ConfigError, GpbenchError
from gpbench.reports.figure_data import all_figure_data, figure_json
from gpbench.reports.gallery import choose_episodes, gallery_items
from gpbench.reports.groups import Group, build_groups
from gpbench.reports.html import EmbeddedFigure, ReportPage, render_page
from gpbench.reports.inputs import LeftOut, find_run_folders, load_runs
from gpbench.reports.series import X_AXES, parse_series
from gpbench.reports.table import summary_rows, to_csv
from gpbench.serialization import current_umask

CSV_FILE = "summary.csv"
HTML_FILE = "report.html"
FIGURES_DIR = "figures"
_FIGURE_PREFIXES = ("success-", "ood-change-", "by-attempt-", "recognition-", "memorization-")

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as each stage advances."""


@dataclass(frozen=True)
class ReportConfig:
    """Everything ``gpbench report`` takes.

    Attributes:
        runs: run folders, or folders holding run folders at any depth.
        out: the output folder (created when missing; a previous report there is replaced).
        series: ``NAME=GLOB`` rules naming series (default: the checkpoints' ``method``).
        x_axis: ``step`` or ``compute`` (docs/tasks.md §3).
        gallery: most gallery episodes shown with their scene; the gallery lists every episode,
            those past this bound as text only (0: no gallery).
        title: the page title.
    """

    runs: tuple[Path, ...]
    out: Path
    series: tuple[str, ...] = ()
    x_axis: str = "step"
    gallery: int = 40
    title: str = "gpbench report"


@dataclass(frozen=True)
class ReportResult:
    """What a report wrote and what it left out."""

    out: Path
    csv: Path
    html: Path
    figures: list[Path]
    runs: int
    groups: int
    left_out: list[LeftOut] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_report(config: ReportConfig, progress: Progress | None = None) -> ReportResult:
    """Read the runs and write ``summary.csv``, the figures and ``report.html``."""
    if config.x_axis not in X_AXES:
        raise ConfigError(f"--x must be one of {', '.join(X_AXES)}, got {config.x_axis!r}")
    if config.gallery < 0:
        raise ConfigError(f"--gallery must be >= 0, got {config.gallery}")
    rules = parse_series(config.series)

    def step(stage: str) -> Callable[[int, int], None]:
        return lambda done, total: progress(stage, done, total) if progress else None

    folders = find_run_folders(config.runs)
    runs, left_out = load_runs(folders, step("reading runs"))
    if not runs:
        reasons = "; ".join(f"{item.folder}: {item.reason}" for item in left_out)
        raise GpbenchError(f"no complete run with episodes to report on ({reasons})")
    groups = build_groups(runs, rules, config.x_axis)
    notes = _notes(groups, left_out, config.x_axis)

    out = config.out
    target = _output_folder(out)
    try:
        with _staging(target) as stage:
            figures = _write_report(stage, config, groups, len(runs), notes, step)
            _swap_in(stage, target)
    except OSError as exc:
        raise GpbenchError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return ReportResult(
        out,
        out / CSV_FILE,
        out / HTML_FILE,
        [out / FIGURES_DIR / name for name in figures],
        len(runs),
        len(groups),
        left_out,
        notes,
    )


def _write_report(
    stage: Path,
    config: ReportConfig,
    groups: list[Group],
    run_count: int,
    notes: list[str],
    step: Callable[[str], Callable[[int, int], None]],
) -> list[str]:
    """Write the whole report into ``stage``; returns the file names of the figures drawn."""
    figures_dir = stage / FIGURES_DIR
    figures_dir.mkdir()
    columns, rows = summary_rows(groups)
    # Text for people: a surrogate (from a file name that is not UTF-8) shows as \udXXX.
    (stage / CSV_FILE).write_text(
        to_csv(columns, rows), encoding="utf-8", errors="backslashreplace"
    )

    from gpbench.reports.figures import SeriesColours, render, title

    figures = all_figure_data(groups, config.x_axis)
    colours = SeriesColours()
    embedded: list[EmbeddedFigure] = []
    written: list[str] = []
    tick = step("drawing figures")
    for number, figure in enumerate(figures, start=1):
        png, svg = render(figure, colours)
        base = figures_dir / figure.name
        base.with_suffix(".png").write_bytes(png)
        base.with_suffix(".svg").write_bytes(svg)
        base.with_suffix(".json").write_text(
            json.dumps(figure_json(figure), indent=1) + "\n", encoding="utf-8"
        )
        written += [f"{figure.name}.png", f"{figure.name}.svg"]
        embedded.append(EmbeddedFigure(figure.name, title(figure), svg))
        tick(number, len(figures))

    everything = sum(len(g.episodes) for g in groups) if config.gallery else 0
    picks = choose_episodes(groups, everything)
    items = gallery_items(picks, step("rendering gallery"), scenes=config.gallery)
    page = ReportPage(
        title=config.title,
        facts=_facts(groups, run_count, config.x_axis),
        notes=notes,
        columns=columns,
        rows=rows,
        figures=embedded,
        gallery=items,
        gallery_total=sum(len(g.episodes) for g in groups),
        runs=[_run_line(g) for g in groups],
    )
    (stage / HTML_FILE).write_text(render_page(page), encoding="utf-8", errors="backslashreplace")
    return written


def _output_folder(out: Path) -> Path:
    """The folder the report will replace (a symlink's target), refused unless it holds a report.

    The swap replaces the whole folder, so a folder with anything else in it (notes, run
    folders, the current folder) is refused rather than deleted.
    """
    target = out.resolve()
    if not target.exists():
        return target
    if not target.is_dir():
        raise GpbenchError(f"{out} is a file; give -o a folder")
    cwd = Path.cwd().resolve()
    if cwd == target.resolve() or target.resolve() in cwd.parents:
        raise GpbenchError(
            f"-o {out} holds the current folder, which the report would replace; "
            "give -o a folder of its own (e.g. -o report/)"
        )
    strays = _not_report_files(target)
    if strays:
        shown = ", ".join(strays[:3]) + (f" and {len(strays) - 3} more" if len(strays) > 3 else "")
        raise GpbenchError(
            f"-o {out} holds files that are not part of a gpbench report ({shown}); the report "
            "replaces the whole folder, so give -o a new folder or a previous report's"
        )
    return target


def _not_report_files(folder: Path) -> list[str]:
    """Entries of ``folder`` that a report does not write (sorted, relative)."""
    strays = []
    for entry in sorted(folder.iterdir()):
        if entry.name in (CSV_FILE, HTML_FILE) and entry.is_file() and not entry.is_symlink():
            continue
        if entry.name == FIGURES_DIR and entry.is_dir() and not entry.is_symlink():
            strays += [
                f"{FIGURES_DIR}/{figure.name}"
                for figure in sorted(entry.iterdir())
                if not (
                    figure.name.startswith(_FIGURE_PREFIXES)
                    and figure.suffix in (".png", ".svg", ".json")
                    and figure.is_file()
                )
            ]
            continue
        strays.append(entry.name)
    return strays


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` (hidden, so no report reads it), removed on exit."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        stage.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700 folders; give what mkdir does
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap_in(stage: Path, target: Path) -> None:
    """Replace ``target`` by ``stage``: the old folder aside, the new one in, the old deleted.

    A failure of the second rename puts the old report back, so ``target`` never holds a mix.
    """
    if not target.exists():
        stage.rename(target)
        return
    old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
    target.rename(old)
    try:
        stage.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _notes(groups: list[Group], left_out: list[LeftOut], x_axis: str) -> list[str]:
    notes = [f"left out {item.folder}: {item.reason}" for item in left_out]
    unplaced = sorted({g.checkpoint.name for g in groups if g.x is None})
    if unplaced:
        need = (
            "a step"
            if x_axis == "step"
            else "compute, or parameter_count, tokens_seen and method (sft or rl)"
        )
        notes.append(
            f"{len(unplaced)} checkpoint(s) have no {x_axis} and are left out of the curves "
            f"({', '.join(unplaced)}): their metadata lacks {need}; record it with "
            f"`gpbench eval --meta KEY=VALUE`"
        )
    if x_axis == "compute":
        assumed = sorted(
            {
                g.checkpoint.name
                for g in groups
                if g.x is not None
                and "compute" not in g.checkpoint.metadata
                and "init_tokens" not in g.checkpoint.metadata
            }
        )
        if assumed:
            notes.append(
                "compute counts the initialisation's tokens as 0 where init_tokens is not "
                f"recorded ({', '.join(assumed)}): every series shifts by the same amount"
            )
    return notes


def _facts(groups: list[Group], runs: int, x_axis: str) -> list[str]:
    checkpoints = len({g.checkpoint.key for g in groups})
    tasks = sorted({f"{g.task}@{g.task_version}" for g in groups})
    series = list(dict.fromkeys(g.series for g in groups))
    return [
        f"{runs} run(s): {checkpoints} checkpoint(s) in series {', '.join(series)}; "
        f"tasks {', '.join(tasks)}",
        f"x axis: training {x_axis}" + (" (the paper's formula)" if x_axis == "compute" else ""),
        "intervals: 95%, Wilson with one sample per instance, else a seeded bootstrap over "
        "instances; per-step accuracy: Wilson over attempts",
        f"written by gpbench {gpbench.__version__} from run folders only (no model loaded)",
    ]


def _run_line(g: Group) -> str:
    folders = ", ".join(str(f) for f in g.folders)
    return (
        f"{g.checkpoint.name} ({g.series}) {g.task}@{g.task_version} {g.split}: "
        f"{len(g.episodes)} episodes from {folders}"
    )
