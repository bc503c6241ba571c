"""Drawing the figure records of :mod:`gpbench.reports.figure_data` with matplotlib (PNG + SVG).

matplotlib is imported here only, when a report is drawn (``pip install 'gpbench[reports]'``).
Figures use matplotlib's object API (no pyplot state), fixed colours per series name and fixed
SVG ids and metadata, so the same data always gives the same files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gpbench.errors import MissingDependencyError
from gpbench.reports.figure_data import (
    METRIC_LABELS,
    AttemptFigure,
    ChangeFigure,
    CurveFigure,
    FigureData,
    Line,
    MemorizationFigure,
    RecognitionFigure,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_INIT_COLOUR = "#6b6b6b"
_NAMED_COLOURS = {"rl": "#c0392b", "sft": "#1f5fa8"}
_PALETTE = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#7f6a00", "#c2185b", "#00838f")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_X_LABELS = {"step": "training step", "compute": "training compute (FLOPs, the paper's formula)"}


class SeriesColours:
    """A fixed colour per series: ``sft`` blue, ``rl`` red, others from a palette in order seen."""

    def __init__(self) -> None:
        self._assigned: dict[str, str] = {}

    def __call__(self, series: str, init: bool = False) -> str:
        """The colour of a series (the initial checkpoint is grey)."""
        if init:
            return _INIT_COLOUR
        if series not in self._assigned:
            named = _NAMED_COLOURS.get(series.lower())
            used = set(self._assigned.values())
            free = [c for c in _PALETTE if c not in used]
            self._assigned[series] = named or (free[0] if free else _PALETTE[len(used) % 8])
        return self._assigned[series]


def render(figure: FigureData, colours: SeriesColours) -> tuple[bytes, bytes]:
    """The figure as PNG and SVG bytes."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("matplotlib", "reports", "gpbench report") from None
    with matplotlib.rc_context(
        {
            "svg.hashsalt": "gpbench",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
        }
    ):
        fig = Figure(layout="constrained")
        if isinstance(figure, CurveFigure):
            _curves(fig, figure, colours)
        elif isinstance(figure, ChangeFigure):
            _change(fig, figure, colours)
        elif isinstance(figure, AttemptFigure):
            _attempts(fig, figure, colours)
        elif isinstance(figure, RecognitionFigure):
            _recognition(fig, figure, colours)
        else:
            _memorization(fig, figure, colours)
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return png.getvalue(), svg.getvalue()


def title(figure: FigureData) -> str:
    """A one-line title for a figure."""
    if isinstance(figure, CurveFigure):
        return f"{figure.task}: in- and out-of-distribution performance during training"
    if isinstance(figure, ChangeFigure):
        return f"{figure.task}: out-of-distribution change from the initial checkpoint"
    if isinstance(figure, AttemptFigure):
        return (
            f"{figure.task}: success within k attempts (verification budget); each series' last "
            "checkpoint drawn solid with its interval"
        )
    if isinstance(figure, RecognitionFigure):
        return f"{figure.task}: card recognition against success"
    return f"{figure.task}: share of out-of-distribution failures that replay training"


def _axes_row(fig: Figure, count: int, height: float = 3.2) -> list[Axes]:
    fig.set_size_inches(max(4.0, 3.6 * count), height)
    axes = fig.subplots(1, count, squeeze=False)[0]
    return list(axes)


def _percent(ax: Axes, label: str) -> None:
    ax.set_ylabel(f"{label} (%)")
    ax.set_ylim(-2, 102)


def _draw_lines(ax: Axes, lines: Sequence[Line], colours: SeriesColours) -> None:
    for number, line in enumerate(lines):
        xs = [p.x for p in line.points]
        init = all(p.init for p in line.points)
        colour = colours(line.series, init)
        ax.fill_between(
            xs,
            [100 * p.low for p in line.points],
            [100 * p.high for p in line.points],
            color=colour,
            alpha=0.15,
            linewidth=0,
        )
        rates = [100 * p.rate for p in line.points]
        ax.errorbar(
            xs,
            rates,
            yerr=[
                [_error(r - 100 * p.low) for r, p in zip(rates, line.points, strict=True)],
                [_error(100 * p.high - r) for r, p in zip(rates, line.points, strict=True)],
            ],
            fmt="none",
            ecolor=colour,
            alpha=0.5,
            capsize=2,
            linewidth=0.8,
        )
        ax.plot(
            xs,
            rates,
            color=colour,
            marker=_MARKERS[number % len(_MARKERS)],
            markersize=4,
            label=line.series,
        )
        starts = [p for p in line.points if p.init]
        if starts and not init:
            ax.plot([p.x for p in starts], [100 * p.rate for p in starts], "o", color=_INIT_COLOUR)


def _x_axis(ax: Axes, x_axis: str) -> None:
    """Label the x axis; compute ticks are written out (``4.9e+13``): matplotlib's shared
    offset text would sit on the axis label."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xlabel(_X_LABELS[x_axis])
    if x_axis == "compute":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))


def _error(length: float) -> float:
    """An error bar's length: interval ends may sit a rounding error inside the rate (k = n)."""
    return max(0.0, length)


def _curves(fig: Figure, figure: CurveFigure, colours: SeriesColours) -> None:
    axes = _axes_row(fig, len(figure.panels))
    for ax, panel in zip(axes, figure.panels, strict=True):
        _draw_lines(ax, panel.lines, colours)
        kind = "OOD" if panel.split.startswith("ood") else "ID"
        ax.set_title(f"{kind}: {panel.split}")
        _x_axis(ax, figure.x_axis)
        _percent(ax, METRIC_LABELS.get(panel.metric, panel.metric))
    axes[0].legend(loc="best")
    fig.suptitle(figure.task)


def _change(fig: Figure, figure: ChangeFigure, colours: SeriesColours) -> None:
    from matplotlib.patches import Patch

    bars, paths = _axes_row(fig, 2)
    splits = list(dict.fromkeys(c.split for c in figure.changes))
    series = list(dict.fromkeys(c.series for c in figure.changes))
    width = 0.8 / max(1, len(series))
    for s_index, name in enumerate(series):
        for change in (c for c in figure.changes if c.series == name):
            x = splits.index(change.split) + (s_index - (len(series) - 1) / 2) * width
            height = 100 * change.delta
            bars.bar(x, height, width=width * 0.9, color=colours(name))
            note = f"{height:+.1f}"
            if change.p_value is not None:
                note += f"\np={change.p_value:.2g}"
            bars.annotate(
                note,
                (x, height),
                ha="center",
                va="bottom" if height >= 0 else "top",
                fontsize=8,
                xytext=(0, 2 if height >= 0 else -2),
                textcoords="offset points",
            )
            paths.plot(
                [x_ for x_, _ in change.path],
                [100 * d for _, d in change.path],
                marker="o",
                markersize=4,
                color=colours(name),
                label=f"{name} ({change.split})",
            )
    bars.axhline(0, color="black", linewidth=0.8)
    bars.set_xticks(range(len(splits)), splits)
    bars.set_ylabel("change from initial checkpoint (points)")
    bars.legend(handles=[Patch(color=colours(name), label=name) for name in series], loc="best")
    bars.margins(y=0.25)
    paths.axhline(0, color="black", linewidth=0.8)
    _x_axis(paths, figure.x_axis)
    paths.set_ylabel("change along training (points)")
    paths.legend(loc="best", fontsize=7)
    fig.suptitle(f"{figure.task}: OOD change from the initial checkpoint")


def _attempts(fig: Figure, figure: AttemptFigure, colours: SeriesColours) -> None:
    axes = _axes_row(fig, len(figure.panels))
    for ax, panel in zip(axes, figure.panels, strict=True):
        last = {c.series: c for c in panel.curves}
        for curve in panel.curves:
            colour = colours(curve.series, curve.init)
            ks = [p.k for p in curve.points]
            final = last[curve.series] is curve
            if final:
                ax.fill_between(
                    ks,
                    [100 * p.low for p in curve.points],
                    [100 * p.high for p in curve.points],
                    color=colour,
                    alpha=0.15,
                    linewidth=0,
                )
            ax.plot(
                ks,
                [100 * p.rate for p in curve.points],
                color=colour,
                alpha=1.0 if final else 0.35,
                marker="o",
                markersize=3,
                label=f"{curve.series}: {curve.checkpoint}" if final else None,
            )
        ax.set_title(panel.split)
        ax.set_xlabel("attempts allowed (k)")
        if panel.curves and panel.curves[0].points:
            ax.set_xticks([p.k for p in panel.curves[0].points])
        _percent(ax, "success within k attempts")
        ax.legend(loc="best", fontsize=7)
    fig.suptitle(f"{figure.task}: success by attempt")


def _recognition(fig: Figure, figure: RecognitionFigure, colours: SeriesColours) -> None:
    [ax] = _axes_row(fig, 1, height=3.6)
    fig.set_size_inches(5.2, 3.8)
    splits = list(dict.fromkeys(p.split for p in figure.points))
    seen: set[tuple[str, str]] = set()
    for point in figure.points:
        key = (point.series, point.split)
        ax.errorbar(
            100 * point.recognition,
            100 * point.success,
            yerr=[
                [_error(100 * (point.success - point.low))],
                [_error(100 * (point.high - point.success))],
            ],
            fmt=_MARKERS[splits.index(point.split) % len(_MARKERS)],
            color=colours(point.series),
            capsize=2,
            label=f"{point.series} ({point.split})" if key not in seen else None,
        )
        seen.add(key)
    ax.set_xlabel("card recognition accuracy (%)")
    ax.set_xlim(-2, 102)
    _percent(ax, "success")
    ax.legend(loc="best", fontsize=7)
    fig.suptitle(f"{figure.task}: recognition against success")


def _memorization(fig: Figure, figure: MemorizationFigure, colours: SeriesColours) -> None:
    axes = _axes_row(fig, len(figure.panels))
    for ax, panel in zip(axes, figure.panels, strict=True):
        _draw_lines(ax, panel.lines, colours)
        ax.set_title(f"{panel.flag} on {panel.split}", fontsize=9)
        _x_axis(ax, figure.x_axis)
        _percent(ax, "share of failed attempts")
        ax.legend(loc="best")
    fig.suptitle(f"{figure.task}: failures that replay the training distribution")
