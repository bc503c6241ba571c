"""One self-contained ``report.html``: tables, figures and a filterable gallery, no network.

Figures are SVG and gallery scenes PNG, both embedded as ``data:`` URIs; the styles and the few
lines of script that filter the gallery are inline. A Content-Security-Policy forbids every
other source, so the page works from ``file://`` and cannot reach out even by mistake.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpbench.reports.gallery import GalleryAttempt, GalleryItem
from gpbench.reports.table import Cell

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
_OPEN_ATTEMPTS = 6
"""Episodes with more attempts than this show them folded (V-IRL routes have dozens)."""


@dataclass(frozen=True)
class EmbeddedFigure:
    """A figure as the page shows it."""

    name: str
    title: str
    svg: bytes


@dataclass(frozen=True)
class ReportPage:
    """Everything ``report.html`` shows.

    Attributes:
        title: the page heading.
        facts: short lines under the heading (what was read, the x axis, the gpbench version).
        notes: things the reader should know (runs or points left out, assumptions made).
        columns, rows: the summary table (as in ``summary.csv``).
        figures: the figures, in order.
        gallery: the gallery episodes.
        gallery_total: episodes available to the gallery (it shows at most the cap).
        runs: one line per run folder used.
    """

    title: str
    facts: list[str]
    notes: list[str]
    columns: list[str]
    rows: list[dict[str, Cell]]
    figures: list[EmbeddedFigure]
    gallery: list[GalleryItem]
    gallery_total: int
    runs: list[str] = field(default_factory=list)


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 0 16px 48px;
  color: #1d1d1f; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
nav a { margin-right: 14px; }
.facts { color: #555; margin: 0; padding-left: 18px; }
.notes li { color: #8a4b00; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f4f4f6; position: sticky; top: 0; }
td.text { text-align: left; }
.table-wrap { overflow-x: auto; max-height: 70vh; }
figure { margin: 18px 0; }
.figures { display: flex; flex-wrap: wrap; gap: 0 24px; align-items: flex-start; }
figure.plot img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
#gallery-filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: center;
  background: #f7f7f9; padding: 8px 12px; border-radius: 6px; position: sticky; top: 0; z-index: 1; }
#gallery-filters label { font-size: 13px; }
.episodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 14px;
  margin-top: 12px; }
article.episode { border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px; }
article.episode[hidden] { display: none; }
article.episode h3 { font-size: 14px; margin: 0 0 6px; }
.solved { color: #1e7b34; } .failed { color: #b3261e; }
.scene { display: flex; flex-wrap: wrap; gap: 8px; }
.scene figure { margin: 0; } .scene img { max-width: 100%; height: auto; border: 1px solid #ccc; }
pre { white-space: pre-wrap; word-break: break-word; background: #f7f7f9; padding: 6px;
  border-radius: 4px; font-size: 12px; margin: 4px 0; }
ol.attempts { padding-left: 20px; } ol.attempts li { margin-bottom: 8px; }
.tag { display: inline-block; background: #eee; border-radius: 3px; padding: 0 5px; font-size: 11px;
  margin-left: 4px; } .tag.flag { background: #ffe2b8; }
.feedback { color: #555; font-style: italic; margin: 2px 0; }
.note { color: #8a4b00; }
"""

_SCRIPT = """
(function () {
  var selects = document.querySelectorAll("#gallery-filters select");
  var cards = document.querySelectorAll("article.episode");
  var count = document.getElementById("gallery-count");
  function matches(card, select) {
    if (!select.value) { return true; }
    var have = (card.getAttribute("data-" + select.name) || "").split("|");
    return have.indexOf(select.value) !== -1;
  }
  function apply() {
    var shown = 0;
    Array.prototype.forEach.call(cards, function (card) {
      var ok = Array.prototype.every.call(selects, function (s) { return matches(card, s); });
      card.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + cards.length + " episodes shown";
  }
  Array.prototype.forEach.call(selects, function (s) { s.addEventListener("change", apply); });
  apply();
})();
"""

_TABLE_COLUMNS = (
    ("series", "series"),
    ("checkpoint", "checkpoint"),
    ("x", "x"),
    ("task", "task"),
    ("split", "split"),
    ("episodes", "episodes"),
    ("success", "success % [95% CI]"),
    ("first_try_success", "first try %"),
    ("per_step_accuracy", "per-step % [95% CI]"),
    ("recognition_accuracy", "recognition %"),
    ("truncation_rate", "truncated %"),
)
_FILTERS = (
    ("run", "task and split"),
    ("series", "series"),
    ("outcome", "outcome"),
    ("status", "status"),
    ("flag", "flag"),
)


def render_page(page: ReportPage) -> str:
    """The whole HTML document."""
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(page.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(page.title)}</h1>",
        '<ul class="facts">' + "".join(f"<li>{e(f)}</li>" for f in page.facts) + "</ul>",
        '<nav><a href="#summary">Summary</a><a href="#figures">Figures</a>'
        '<a href="#gallery">Gallery</a><a href="#runs">Runs</a></nav>',
    ]
    if page.notes:
        parts.append(
            '<h2 id="notes">Notes</h2><ul class="notes">'
            + "".join(f"<li>{e(n)}</li>" for n in page.notes)
            + "</ul>"
        )
    parts.append(_summary(page.columns, page.rows))
    parts.append(_figures(page.figures))
    parts.append(_gallery(page.gallery, page.gallery_total))
    parts.append(
        '<h2 id="runs">Runs</h2><ul>' + "".join(f"<li>{e(r)}</li>" for r in page.runs) + "</ul>"
    )
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _summary(columns: Sequence[str], rows: Sequence[dict[str, Cell]]) -> str:
    shown = [
        (key, label) for key, label in _TABLE_COLUMNS if any(r.get(key) is not None for r in rows)
    ]
    flags = [c for c in columns if c.startswith("flag_")]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in shown)
    head += "".join(f"<th>{html.escape(c.removeprefix('flag_'))} %</th>" for c in flags)
    body = []
    for row in rows:
        cells = [_cell(key, row) for key, _ in shown]
        cells += [f"<td>{_pct(row.get(c))}</td>" for c in flags]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<h2 id="summary">Summary</h2>'
        "<p>One row per checkpoint x task x split; every column, per-status rates included, is "
        "in <code>summary.csv</code> beside this page. Flag columns: share of attempts.</p>"
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _cell(key: str, row: dict[str, Cell]) -> str:
    value = row.get(key)
    if key in ("success", "per_step_accuracy"):
        low_key = "success_low" if key == "success" else "per_step_low"
        high_key = "success_high" if key == "success" else "per_step_high"
        if value is None:
            return "<td></td>"
        return f"<td>{_pct(value)} [{_pct(row.get(low_key))}, {_pct(row.get(high_key))}]</td>"
    if key in ("first_try_success", "recognition_accuracy", "truncation_rate"):
        return f"<td>{_pct(value)}</td>"
    if key == "x":
        return f"<td>{'' if value is None else f'{value:g}'}</td>"
    if isinstance(value, str):
        return f'<td class="text">{html.escape(value)}</td>'
    return f"<td>{'' if value is None else html.escape(str(value))}</td>"


def _pct(value: Cell) -> str:
    return f"{100 * value:.1f}" if isinstance(value, (int, float)) else ""


def _figures(figures: Sequence[EmbeddedFigure]) -> str:
    if not figures:
        return '<h2 id="figures">Figures</h2><p>No figure: the runs hold nothing to plot.</p>'
    parts = ['<h2 id="figures">Figures</h2><div class="figures">']
    for figure in figures:
        data = base64.b64encode(figure.svg).decode("ascii")
        parts.append(
            f'<figure class="plot" id="fig-{html.escape(figure.name)}">'
            f'<img src="data:image/svg+xml;base64,{data}" alt="{html.escape(figure.title)}">'
            f"<figcaption>{html.escape(figure.title)} (<code>figures/{html.escape(figure.name)}"
            f".png|.svg|.json</code>)</figcaption></figure>"
        )
    parts.append("</div>")
    return "\n".join(parts)


def _gallery(items: Sequence[GalleryItem], total: int) -> str:
    parts = ['<h2 id="gallery">Gallery</h2>']
    if not items:
        parts.append("<p>No gallery (turned off with <code>--gallery 0</code>).</p>")
        return "\n".join(parts)
    parts.append(
        f"<p>{len(items)} of {total} episodes, picked across checkpoints, splits and outcomes; "
        "scenes re-rendered from each instance's key.</p>"
    )
    values: dict[str, list[str]] = {name: [] for name, _ in _FILTERS}
    for item in items:
        for name, found in _card_values(item).items():
            values[name].extend(v for v in found if v not in values[name])
    controls = []
    for name, label in _FILTERS:
        options = "".join(
            f'<option value="{html.escape(v)}">{html.escape(v)}</option>'
            for v in sorted(values[name])
        )
        controls.append(
            f'<label>{label} <select name="{name}"><option value="">all</option>'
            f"{options}</select></label>"
        )
    parts.append(
        f'<div id="gallery-filters">{"".join(controls)}<span id="gallery-count"></span></div>'
    )
    parts.append('<div class="episodes">' + "".join(_card(item) for item in items) + "</div>")
    return "\n".join(parts)


def _card_values(item: GalleryItem) -> dict[str, list[str]]:
    return {
        "run": [f"{item.task} {item.split}"],
        "series": [item.series],
        "outcome": ["solved" if item.correct else "failed"],
        "status": item.statuses,
        "flag": item.flags,
    }


def _card(item: GalleryItem) -> str:
    e = html.escape
    data = " ".join(
        f'data-{name}="{e("|".join(found))}"' for name, found in _card_values(item).items()
    )
    outcome = (
        '<span class="solved">solved</span>'
        if item.correct
        else f'<span class="failed">failed ({e(item.stop_reason)})</span>'
    )
    head = (
        f"<h3>{e(item.task)} {e(item.split)} #{item.index}"
        f"{f' sample {item.sample}' if item.sample else ''}: {outcome}</h3>"
        f'<div>{e(item.checkpoint)} <span class="tag">{e(item.series)}</span>'
        + "".join(f'<span class="tag flag">{e(f)}</span>' for f in item.flags)
        + f'<br><code title="uid">{e(item.uid)}</code></div>'
    )
    scene = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(i.png).decode("ascii")}" '
        f'alt="{e(i.caption)}"><figcaption>{e(i.caption)}</figcaption></figure>'
        for i in item.images
    )
    body = [head]
    if scene:
        body.append(f'<div class="scene">{scene}</div>')
    if item.note:
        body.append(f'<p class="note">{e(item.note)}</p>')
    if item.problem:
        # Text tasks have no scene: their problem is the picture, so it starts unfolded.
        unfolded = "" if item.images else " open"
        body.append(
            f"<details{unfolded}><summary>problem</summary><pre>{e(item.problem)}</pre></details>"
        )
    attempts = (
        '<ol class="attempts">'
        + "".join(_attempt(a, item.multi_decision) for a in item.attempts)
        + "</ol>"
    )
    if len(item.attempts) > _OPEN_ATTEMPTS:
        attempts = f"<details><summary>{len(item.attempts)} attempts</summary>{attempts}</details>"
    body.append(attempts)
    return f'<article class="episode" {data}>{"".join(body)}</article>'


def _attempt(a: GalleryAttempt, multi_decision: bool) -> str:
    e = html.escape
    where = f", decision point {a.decision_point + 1}" if multi_decision else ""
    tags = "".join(
        f'<span class="tag flag">{e(f)}</span>' for f in a.flags if f != "output_truncated"
    )
    if a.output_truncated:
        tags += '<span class="tag">output truncated</span>'
    verdict = "solved" if a.correct else "failed"
    feedback = f'<p class="feedback">{e(a.feedback)}</p>' if a.feedback else ""
    return (
        f'<li><div>attempt {a.attempt}{where}: <b class="{verdict}">{e(a.status)}</b> '
        f"reward {a.reward:g}{tags}</div><pre>{e(a.response)}</pre>{feedback}</li>"
    )
