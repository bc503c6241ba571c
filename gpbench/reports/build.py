"""The Python API behind ``gpbench report``: run folders in; CSV, figures and HTML out.

Writes into the output folder:

- ``summary.csv``: one row per checkpoint x task x split (columns in :mod:`gpbench.reports.table`);
- ``figures/NAME.png``, ``.svg`` and ``.json`` (the data drawn, :mod:`gpbench.reports.figure_data`);
- ``report.html``: the table, the figures and a gallery, in one self-contained file.

Only run folders are read: no model is loaded, and gallery scenes are re-rendered from instance
keys through :mod:`gpbench.tasks`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gpbench
from gpbench.errors import ConfigError, GpbenchError
from gpbench.reports.figure_data import all_figure_data, figure_json
from gpbench.reports.gallery import choose_episodes, gallery_items
from gpbench.reports.groups import Group, build_groups
from gpbench.reports.html import EmbeddedFigure, ReportPage, render_page
from gpbench.reports.runs import LeftOut, find_run_folders, load_runs
from gpbench.reports.series import X_AXES, parse_series
from gpbench.reports.table import summary_rows, to_csv

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
        out: the output folder (created when missing; report files in it are replaced).
        series: ``NAME=GLOB`` rules naming series (default: the checkpoints' ``method``).
        x_axis: ``step`` or ``compute`` (TASKS.md §3).
        gallery: most episodes in the HTML gallery (0: no gallery).
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
    if out.exists() and not out.is_dir():
        raise GpbenchError(f"{out} is a file; give -o a folder")
    figures_dir = out / FIGURES_DIR
    try:
        figures_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GpbenchError(f"cannot create {figures_dir}: {exc.strerror}") from None
    columns, rows = summary_rows(groups)
    (out / CSV_FILE).write_text(to_csv(columns, rows), encoding="utf-8")

    from gpbench.reports.figures import SeriesColours, render, title

    for old in figures_dir.iterdir():
        if old.name.startswith(_FIGURE_PREFIXES) and old.suffix in (".png", ".svg", ".json"):
            old.unlink()
    figures = all_figure_data(groups, config.x_axis)
    colours = SeriesColours()
    embedded: list[EmbeddedFigure] = []
    written: list[Path] = []
    tick = step("drawing figures")
    for number, figure in enumerate(figures, start=1):
        png, svg = render(figure, colours)
        base = figures_dir / figure.name
        base.with_suffix(".png").write_bytes(png)
        base.with_suffix(".svg").write_bytes(svg)
        base.with_suffix(".json").write_text(
            json.dumps(figure_json(figure), indent=1) + "\n", encoding="utf-8"
        )
        written += [base.with_suffix(".png"), base.with_suffix(".svg")]
        embedded.append(EmbeddedFigure(figure.name, title(figure), svg))
        tick(number, len(figures))

    picks = choose_episodes(groups, config.gallery)
    items = gallery_items(picks, step("rendering gallery"))
    page = ReportPage(
        title=config.title,
        facts=_facts(groups, len(runs), config.x_axis),
        notes=notes,
        columns=columns,
        rows=rows,
        figures=embedded,
        gallery=items,
        gallery_total=sum(len(g.episodes) for g in groups),
        runs=[_run_line(g) for g in groups],
    )
    html_path = out / HTML_FILE
    html_path.write_text(render_page(page), encoding="utf-8")
    return ReportResult(
        out, out / CSV_FILE, html_path, written, len(runs), len(groups), left_out, notes
    )


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
        f"x axis: training {x_axis}" + (" (TASKS.md §3 formula)" if x_axis == "compute" else ""),
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
