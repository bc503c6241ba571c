"""One self-contained ``report.html``: tables, figures and a filterable gallery, no network.

Figures are SVG and gallery scenes PNG, both embedded as ``data:`` URIs; the styles and the
script that searches, sorts and pages the gallery are inline. Gallery episodes are one JSON
document in a ``<script type="application/json">`` element, drawn by the script with
``textContent`` only, so model text is never parsed as HTML. A Content-Security-Policy forbids
every other source, so the page works from ``file://`` and cannot reach out even by mistake.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpbench.reports.gallery import GalleryAttempt, GalleryItem
from gpbench.reports.table import Cell

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
PAGE_SIZE = 25
"""Gallery episodes a page."""


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
        gallery_total: episodes the runs hold (the gallery lists them all unless turned off).
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
.gallery-pager { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-top: 10px; }
#gallery-count { color: #555; margin-left: 8px; }
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

_SCRIPT = r"""
(function () {
  // The gallery: episodes from the JSON below, filtered, sorted and paged here; the state lives
  // in the URL fragment (#q=status:wrong_value&page=2), so a view can be shared or bookmarked.
  var holder = document.getElementById("gallery-data");
  if (!holder) { return; }
  var data = JSON.parse(holder.textContent);
  var PAGE = parseInt(holder.getAttribute("data-page-size"), 10) || 25, FOLD = 6;
  var KEYS = ["uid", "status", "final", "flag", "task", "split", "series", "checkpoint",
              "outcome", "stop"];
  var FILTERS = ["run", "series", "outcome", "status", "flag"];
  var search = document.getElementById("gallery-search");
  var sort = document.getElementById("gallery-sort");
  var list = document.getElementById("gallery-episodes");
  var count = document.getElementById("gallery-count");
  var pageLabels = document.querySelectorAll(".gallery-pager .page-label");
  var buttons = document.querySelectorAll(".gallery-pager button");
  var selects = {};
  FILTERS.forEach(function (name) {
    selects[name] = document.querySelector('#gallery-filters select[name="' + name + '"]');
  });
  var state = {q: "", sort: "pick", page: 1};
  FILTERS.forEach(function (name) { state[name] = ""; });

  data.forEach(function (d) {
    var text = [d.uid, d.problem, d.note, d.checkpoint, d.series, d.stop];
    d.attempts.forEach(function (a) { text.push(a.response, a.feedback, a.status); });
    d.text = text.concat(d.flags).join("\n").toLowerCase();
    d.values = {run: [d.task + " " + d.split], series: [d.series],
                outcome: [d.correct ? "solved" : "failed"], status: d.statuses, flag: d.flags};
  });

  function parse(q) {
    var out = [], re = /(-?)(?:([a-z]+):)?(?:"([^"]*)"|(\S+))/gi, m;
    while ((m = re.exec(q)) !== null) {
      var key = (m[2] || "").toLowerCase();
      var value = m[3] !== undefined ? m[3] : m[4];
      if (key && KEYS.indexOf(key) === -1) { value = m[2] + ":" + value; key = ""; }
      if (value) { out.push({neg: m[1] === "-", key: key, value: value.toLowerCase()}); }
    }
    return out;
  }
  function has(values, v) {
    return values.some(function (x) { return x.toLowerCase() === v; });
  }
  function test(d, t) {
    switch (t.key) {
      case "uid": return d.uid.toLowerCase().indexOf(t.value) !== -1;
      case "status": return has(d.statuses, t.value);
      case "final": return d.final.toLowerCase() === t.value;
      case "flag": return has(d.flags, t.value);
      case "task": return d.task.toLowerCase() === t.value;
      case "split": return d.split.toLowerCase() === t.value;
      case "series": return d.series.toLowerCase() === t.value;
      case "checkpoint": return d.checkpoint.toLowerCase().indexOf(t.value) !== -1;
      case "outcome": return (d.correct ? "solved" : "failed") === t.value;
      case "stop": return d.stop.toLowerCase() === t.value;
      default: return d.text.indexOf(t.value) !== -1;
    }
  }
  function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
  var SORTS = {
    status: function (a, b) { return cmp(a.final, b.final); },
    "return": function (a, b) { return a.ret - b.ret; },
    "-return": function (a, b) { return b.ret - a.ret; },
    attempts: function (a, b) { return a.attempts.length - b.attempts.length; },
    "-attempts": function (a, b) { return b.attempts.length - a.attempts.length; },
    uid: function (a, b) { return cmp(a.uid, b.uid); }
  };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }  // model text: never parsed as HTML
    return node;
  }
  function tag(text, cls) { return el("span", cls ? "tag " + cls : "tag", text); }
  function attempt(a, multi) {
    var li = el("li"), head = el("div");
    head.appendChild(document.createTextNode("attempt " + a.attempt +
      (multi ? ", decision point " + (a.point + 1) : "") + ": "));
    head.appendChild(el("b", a.correct ? "solved" : "failed", a.status));
    head.appendChild(document.createTextNode(" reward " + a.reward));
    a.flags.forEach(function (f) {
      if (f !== "output_truncated") { head.appendChild(tag(f, "flag")); }
    });
    if (a.truncated) { head.appendChild(tag("output truncated")); }
    li.appendChild(head);
    li.appendChild(el("pre", "", a.response));
    if (a.feedback) { li.appendChild(el("p", "feedback", a.feedback)); }
    return li;
  }
  function card(d) {
    var art = el("article", "episode");
    art.setAttribute("data-uid", d.uid);
    art.setAttribute("data-task", d.task);
    var h = el("h3", "", d.task + " " + d.split + " #" + d.index +
               (d.sample ? " sample " + d.sample : "") + ": ");
    h.appendChild(d.correct ? el("span", "solved", "solved")
                            : el("span", "failed", "failed (" + d.stop + ")"));
    art.appendChild(h);
    var who = el("div", "", d.checkpoint + " ");
    who.appendChild(tag(d.series));
    d.flags.forEach(function (f) { who.appendChild(tag(f, "flag")); });
    who.appendChild(el("br"));
    var uid = el("code", "", d.uid);
    uid.title = "uid";
    who.appendChild(uid);
    art.appendChild(who);
    if (d.images.length) {
      var scene = el("div", "scene");
      d.images.forEach(function (i) {
        var fig = el("figure"), img = el("img");
        img.src = "data:image/png;base64," + i.png;
        img.alt = i.caption;
        fig.appendChild(img);
        fig.appendChild(el("figcaption", "", i.caption));
        scene.appendChild(fig);
      });
      art.appendChild(scene);
    }
    if (d.note) { art.appendChild(el("p", "note", d.note)); }
    if (d.left_out) {
      art.appendChild(el("p", "note", "scene not embedded: the page carries scenes for the " +
                         "first episodes of the default order only (gpbench report --gallery)"));
    }
    if (d.problem) {
      var problem = el("details");
      problem.open = !d.images.length;  // text tasks: the problem is the picture
      problem.appendChild(el("summary", "", "problem"));
      problem.appendChild(el("pre", "", d.problem));
      art.appendChild(problem);
    }
    var ol = el("ol", "attempts");
    d.attempts.forEach(function (a) { ol.appendChild(attempt(a, d.multi)); });
    if (d.attempts.length > FOLD) {
      var fold = el("details");
      fold.appendChild(el("summary", "", d.attempts.length + " attempts"));
      fold.appendChild(ol);
      art.appendChild(fold);
    } else {
      art.appendChild(ol);
    }
    return art;
  }

  function matching() {
    var tokens = parse(state.q);
    var out = data.filter(function (d) {
      var picked = FILTERS.every(function (name) {
        return !state[name] || d.values[name].indexOf(state[name]) !== -1;
      });
      return picked && tokens.every(function (t) { return test(d, t) !== t.neg; });
    });
    var by = SORTS[state.sort];
    if (by) { out.sort(function (a, b) { return by(a, b) || a.n - b.n; }); }
    return out;
  }
  function render() {
    var shown = matching();
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    state.page = Math.min(Math.max(1, state.page), pages);
    var start = (state.page - 1) * PAGE, slice = shown.slice(start, start + PAGE);
    list.textContent = "";
    slice.forEach(function (d) { list.appendChild(card(d)); });
    count.textContent = shown.length
      ? (start + 1) + "\u2013" + (start + slice.length) + " of " + shown.length +
        " matching episodes (" + data.length + " in all)"
      : "no episode matches (" + data.length + " in all)";
    pageLabels.forEach(function (l) { l.textContent = "page " + state.page + " of " + pages; });
    buttons.forEach(function (b) {
      var go = b.getAttribute("data-go");
      b.disabled = (go === "first" || go === "prev") ? state.page === 1 : state.page === pages;
    });
  }
  function controls() {
    search.value = state.q;
    sort.value = SORTS[state.sort] ? state.sort : "pick";
    FILTERS.forEach(function (name) { if (selects[name]) { selects[name].value = state[name]; } });
  }
  function readHash() {
    var hash = location.hash.slice(1);
    if (hash.indexOf("=") === -1) { return false; }  // #gallery and other anchors: no state
    var p = new URLSearchParams(hash);
    state.q = p.get("q") || "";
    state.sort = p.get("sort") || "pick";
    state.page = parseInt(p.get("page") || "1", 10) || 1;
    FILTERS.forEach(function (name) { state[name] = p.get(name) || ""; });
    return true;
  }
  function writeHash() {
    var p = new URLSearchParams();
    if (state.q) { p.set("q", state.q); }
    FILTERS.forEach(function (name) { if (state[name]) { p.set(name, state[name]); } });
    if (state.sort !== "pick") { p.set("sort", state.sort); }
    if (state.page > 1) { p.set("page", String(state.page)); }
    var text = p.toString();
    try {
      history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
    } catch (e) { /* some file:// setups refuse: the page still works, unbookmarked */ }
  }
  function changed() { state.page = 1; update(); }
  function update() { render(); writeHash(); }

  search.addEventListener("input", function () { state.q = search.value; changed(); });
  sort.addEventListener("change", function () { state.sort = sort.value; changed(); });
  FILTERS.forEach(function (name) {
    if (selects[name]) {
      selects[name].addEventListener("change", function () {
        state[name] = selects[name].value; changed();
      });
    }
  });
  buttons.forEach(function (b) {
    b.addEventListener("click", function () {
      var go = b.getAttribute("data-go");
      state.page = go === "first" ? 1 : go === "prev" ? state.page - 1
                 : go === "next" ? state.page + 1 : Number.MAX_SAFE_INTEGER;
      update();
      // From the pager under the cards, the new page starts back at the top of the gallery.
      if (b.closest("#gallery-pager-end")) { search.scrollIntoView(); }
    });
  });
  window.addEventListener("hashchange", function () {
    if (readHash()) { controls(); render(); }
  });
  readHash();
  controls();
  render();
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
    with_scene = sum(1 for item in items if item.images)
    parts.append(
        f"<p>{len(items)} of {total} episodes, {PAGE_SIZE} a page, in an order that mixes "
        f"checkpoints, splits and outcomes; scenes re-rendered from each instance's key, embedded "
        f"for {with_scene} episodes (<code>--gallery</code> bounds them), the others text "
        "only.</p>"
    )
    values: dict[str, list[str]] = {name: [] for name, _ in _FILTERS}
    for item in items:
        for name, found in _filter_values(item).items():
            values[name].extend(v for v in found if v not in values[name])
    e = html.escape
    controls = [
        '<label>search <input id="gallery-search" type="search" size="34" '
        'placeholder="status:wrong_value flag:NAME uid:ABC or words"></label>'
    ]
    for name, label in _FILTERS:
        options = "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in sorted(values[name]))
        controls.append(
            f'<label>{label} <select name="{name}"><option value="">all</option>'
            f"{options}</select></label>"
        )
    sorts = "".join(f'<option value="{key}">{label}</option>' for key, label in _SORTS)
    controls.append(f'<label>sort <select id="gallery-sort">{sorts}</select></label>')
    parts.append(f'<div id="gallery-filters">{"".join(controls)}</div>')
    parts.append(_SEARCH_HELP)
    parts.append(_pager("gallery-pager", '<span id="gallery-count"></span>'))
    parts.append(
        '<noscript><p class="note">The gallery needs JavaScript (inline, no network); the '
        "table and figures above do not.</p></noscript>"
    )
    parts.append('<div class="episodes" id="gallery-episodes"></div>')
    parts.append(_pager("gallery-pager-end"))
    parts.append(
        f'<script type="application/json" id="gallery-data" data-page-size="{PAGE_SIZE}">'
        f"{gallery_json(items)}</script>"
    )
    return "\n".join(parts)


def _pager(pager_id: str, after: str = "") -> str:
    """Page buttons around the page number; the top pager's number has the id gallery-page."""
    label_id = ' id="gallery-page"' if pager_id == "gallery-pager" else ""
    buttons = "".join(
        f'<button type="button" data-go="{go}">{label}</button>'
        for go, label in (("first", "first"), ("prev", "previous"))
    )
    more = "".join(
        f'<button type="button" data-go="{go}">{label}</button>'
        for go, label in (("next", "next"), ("last", "last"))
    )
    return (
        f'<div class="gallery-pager" id="{pager_id}">{buttons}'
        f'<span class="page-label"{label_id}></span>{more}{after}</div>'
    )


_SORTS = (
    ("pick", "mixed (default)"),
    ("status", "final status"),
    ("return", "return, lowest first"),
    ("-return", "return, highest first"),
    ("-attempts", "attempts, most first"),
    ("attempts", "attempts, fewest first"),
    ("uid", "uid"),
)
_SEARCH_HELP = (
    "<details><summary>search syntax</summary><p>Words separated by spaces, all must match "
    "(case-insensitive). <code>status:NAME</code>: some attempt got that status; "
    "<code>final:NAME</code>: the last one did; <code>flag:NAME</code>; <code>uid:PART</code>; "
    "<code>task:</code>, <code>split:</code>, <code>series:</code>, <code>checkpoint:PART</code>, "
    "<code>outcome:solved|failed</code>, <code>stop:REASON</code>. Other words (or "
    '<code>"a phrase"</code>) are looked for in answers, feedback, problems and notes. A leading '
    "<code>-</code> negates: <code>-flag:train_rule_answer</code>. The view is kept in the "
    "address (<code>report.html#q=status:wrong_value&amp;page=2</code>): bookmark or share "
    "it.</p></details>"
)


def _filter_values(item: GalleryItem) -> dict[str, list[str]]:
    return {
        "run": [f"{item.task} {item.split}"],
        "series": [item.series],
        "outcome": ["solved" if item.correct else "failed"],
        "status": item.statuses,
        "flag": item.flags,
    }


def gallery_records(items: Sequence[GalleryItem]) -> list[dict[str, Any]]:
    """The gallery's episodes as the page's script reads them (``n``: the default order)."""
    return [
        {
            "n": number,
            "series": item.series,
            "checkpoint": item.checkpoint,
            "task": item.task,
            "split": item.split,
            "uid": item.uid,
            "index": item.index,
            "sample": item.sample,
            "correct": item.correct,
            "stop": item.stop_reason,
            "final": item.final_status,
            "ret": item.return_,
            "statuses": item.statuses,
            "flags": item.flags,
            "problem": item.problem,
            "note": item.note,
            "multi": item.multi_decision,
            "left_out": item.scene_left_out,
            "images": [
                {"caption": i.caption, "png": base64.b64encode(i.png).decode("ascii")}
                for i in item.images
            ],
            "attempts": [_attempt_record(a) for a in item.attempts],
        }
        for number, item in enumerate(items)
    ]


def _attempt_record(a: GalleryAttempt) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "point": a.decision_point,
        "response": a.response,
        "status": a.status,
        "correct": a.correct,
        "reward": a.reward,
        "feedback": a.feedback,
        "flags": a.flags,
        "truncated": a.output_truncated,
    }


def gallery_json(items: Sequence[GalleryItem]) -> str:
    """The gallery's episodes as JSON that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` are written as ``\\u`` escapes, so no model text (``</script>``,
    ``<!--``) can end or alter the element; JSON.parse reads them back unchanged. A lone
    surrogate (valid in JSON, not in UTF-8) shows as ``\\udXXX`` text, as in ``summary.csv``.
    """
    text = json.dumps(_printable(gallery_records(items)), ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _printable(value: Any) -> Any:
    """``value`` with every string's lone surrogates written out as ``\\udXXX`` text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    return value
