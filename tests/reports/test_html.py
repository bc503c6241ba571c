"""report.html: self-contained, its gallery data safe, and in headless Chromium without errors.

The gallery lists every episode as JSON that the page's script searches, sorts and pages. The
Chromium tests open a copy of the page with a small probe script added: it records script errors,
failed loads and Content-Security-Policy violations, checks every image decoded
(``naturalWidth > 0``), reads which episodes the page shows, and writes what it found into the
DOM, which ``chromium --headless --dump-dom`` prints. The view to show is given in the URL
fragment (``#q=status:wrong_numbers&page=2``), as a reader's bookmark would. A second copy with a
broken image and a throwing script proves the probe sees both; a screenshot shows the page drawn.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from report_fixtures import scored_run

from gpbench.reports.build import ReportConfig, ReportResult, build_report
from gpbench.reports.gallery import RESPONSE_CHARS, GalleryAttempt, GalleryImage, GalleryItem
from gpbench.reports.html import PAGE_SIZE, ReportPage, gallery_json, render_page
from gpbench.tasks.spec import TaskSpec

GALLERY = 24


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


@pytest.fixture(scope="module")
def report(study: Path, mixed_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    out = tmp_path_factory.mktemp("html") / "report"
    return build_report(ReportConfig(runs=(study, mixed_runs), out=out, gallery=GALLERY))


def test_page_is_self_contained(report: ReportResult) -> None:
    page = report.html.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    tags = parser.tags
    assert not [t for t, _ in tags if t in ("link", "iframe", "object", "embed")]
    assert not [a for t, a in tags if t == "script" and "src" in a]
    for _, attrs in tags:
        for name in ("src", "href"):
            value = attrs.get(name, "")
            assert not value or value.startswith(("data:", "#")), value
    images = [a for t, a in tags if t == "img"]
    assert all(a["alt"] for a in images)
    svgs = [a for a in images if a["src"].startswith("data:image/svg+xml;base64,")]
    assert len(svgs) == len(report.figures) // 2
    csp = next(a for t, a in tags if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in csp["content"]
    assert not [t for t, _ in tags if t == "article"]  # the script draws the episodes
    records = embedded_gallery(page)
    assert len(records) == _episode_count(report) > 10 * PAGE_SIZE
    assert {r["correct"] for r in records} == {True, False}
    assert [r["n"] for r in records] == list(range(len(records)))
    # Scenes for the first GALLERY episodes only; text GeneralPoints has none to leave out.
    scenes = {"gp-l": 0, "virl-l": 1, "gp-vl": 1, "virl-vl": 2}
    assert {r["task"] for r in records[:GALLERY]} == set(scenes)
    for record in records:
        shown = len(record["images"])
        if record["n"] < GALLERY:
            assert shown == scenes[record["task"]] and not record["left_out"], record["uid"]
        else:
            assert shown == 0 and record["left_out"] == (record["task"] != "gp-l"), record["uid"]


GALLERY_DATA = re.compile(
    r'<script type="application/json" id="gallery-data"[^>]*>(.*?)</script>', re.S
)


def embedded_gallery(page: str) -> list[dict[str, Any]]:
    """The gallery's episodes as the page embeds them."""
    found = GALLERY_DATA.findall(page)
    assert len(found) == 1
    records: list[dict[str, Any]] = json.loads(found[0])
    return records


def _episode_count(report: ReportResult) -> int:
    """Episodes the runs hold, from the page's list of runs."""
    page = report.html.read_text(encoding="utf-8")
    runs = page.split('<h2 id="runs">Runs</h2>', 1)[1]
    return sum(int(n) for n in re.findall(r": (\d+) episodes from ", runs))


HOSTILE = (
    "</script><script>alert(1)</script>",
    "</SCRIPT >",
    "<!--<script>",
    '<img src=x onerror="alert(2)">',
    "&amp; &lt;b&gt;",
    "line\u2028separator\u2029end",
    "\ud800 lone surrogate \udcff",
)


def _item(text: str, **kw: Any) -> GalleryItem:
    attempt = GalleryAttempt(0, 0, text, "wrong_value", False, -1.0, text, [text], False)
    fields: dict[str, Any] = {
        "series": text,
        "checkpoint": text,
        "task": "gp-l",
        "split": "id",
        "uid": text,
        "index": 0,
        "sample": 0,
        "correct": False,
        "stop_reason": "budget_exhausted",
        "statuses": ["wrong_value"],
        "flags": [text],
        "problem": text,
        "attempts": [attempt],
        "note": text,
        **kw,
    }
    return GalleryItem(**fields)


def _printed(text: str) -> str:
    """What the page shows for ``text``: lone surrogates written out, as summary.csv does."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.mark.parametrize("text", HOSTILE)
def test_gallery_data_cannot_close_its_script_and_reads_back_unchanged(text: str) -> None:
    embedded = gallery_json([_item(text)])
    assert not set("<>&") & set(embedded)
    embedded.encode("utf-8")  # no lone surrogate left: the page is valid UTF-8
    [record] = json.loads(embedded)
    expected = _printed(text)
    assert record["uid"] == record["problem"] == record["note"] == expected
    assert record["flags"] == [expected] and record["series"] == expected
    [attempt] = record["attempts"]
    assert attempt["response"] == attempt["feedback"] == expected
    assert attempt["flags"] == [expected]


def test_hostile_text_is_inert_in_the_page() -> None:
    items = [_item(text) for text in HOSTILE]
    # build_report writes the page as report.html is written: lone surrogates as \\udXXX.
    page = render_page(ReportPage("t", [], [], [], [], [], items, len(items)))
    page = page.encode("utf-8", "backslashreplace").decode("utf-8")
    parser = _Tags()
    parser.feed(page)
    # Two scripts (the data and the code), each closed once: no model text ended one early.
    assert [t for t, _ in parser.tags if t == "script"] == ["script", "script"]
    assert page.lower().count("</script") == 2
    assert not [a for _, a in parser.tags if "onerror" in a]
    outside = page.replace(gallery_json(items), "")
    assert "<script>alert" not in outside and "<!--<script>" not in outside
    assert [r["uid"] for r in embedded_gallery(page)] == [_printed(t) for t in HOSTILE]


def test_scenes_are_embedded_as_base64_png_bytes_only() -> None:
    # The page's script adds the data:image/png prefix: no text from a run can become a URL.
    scene = GalleryImage("scene </script>", b"\x89PNG\r\n\x1a\n-not-a-real-png")
    [record] = json.loads(gallery_json([_item("a", images=[scene])]))
    assert record["images"] == [
        {"caption": "scene </script>", "png": "iVBORw0KGgotbm90LWEtcmVhbC1wbmc="}
    ]


def _long_answers(task: TaskSpec, instance: Any) -> list[str]:
    return ["</script><b>" + "y" * (3 * RESPONSE_CHARS)] * task.max_attempts


SIZE_BOUND = 12_000_000
"""Bytes of report.html for 1,000 gp-vl episodes of five long answers each (README's bound)."""


@pytest.mark.slow
def test_a_thousand_episodes_of_long_answers_stay_under_the_size_bound(tmp_path: Path) -> None:
    run = scored_run(
        tmp_path / "runs",
        "long",
        task_name="gp-vl",
        split="id",
        n=1000,
        answers=_long_answers,
        checkpoint="/ckpts/long",
    )
    result = build_report(ReportConfig(runs=(run,), out=tmp_path / "report"))
    page = result.html.read_text(encoding="utf-8")
    records = embedded_gallery(page)
    assert len(records) == 1000
    assert sum(1 for r in records if r["images"]) == 40  # the default --gallery
    assert all(len(r["attempts"]) == 5 for r in records)
    longest = max(len(a["response"]) for r in records for a in r["attempts"])
    assert RESPONSE_CHARS < longest < RESPONSE_CHARS + 30  # shortened, with how much was cut
    assert len(page.encode("utf-8")) < SIZE_BOUND


_PROBE = """
<script>
window.__probe = {errors: []};
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__probe.errors.push(t && t.tagName ? "failed to load " + t.tagName + " " + (t.alt || "")
                                            : "script error: " + e.message);
}, true);
document.addEventListener("securitypolicyviolation", function (e) {
  window.__probe.errors.push("blocked by CSP: " + e.blockedURI);
});
var __consoleError = console.error;
console.error = function () {
  window.__probe.errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
  __consoleError.apply(console, arguments);
};
function __text(id) {
  var node = document.getElementById(id);
  return node ? node.textContent : null;
}
function __view() {
  var articles = Array.prototype.slice.call(document.querySelectorAll("article.episode"));
  return {
    uids: articles.map(function (a) { return a.getAttribute("data-uid"); }),
    scenes: articles.map(function (a) { return a.querySelectorAll(".scene img").length; }),
    page: __text("gallery-page"),
    count: __text("gallery-count"),
    hash: location.hash,
    first: articles.length ? articles[0].getBoundingClientRect().toJSON() : null
  };
}
function __search(q) {
  var box = document.getElementById("gallery-search");
  if (!box) { return null; }
  box.value = q;
  box.dispatchEvent(new Event("input"));
  return __view();
}
function __next() {
  __search("");
  document.querySelector('#gallery-pager-end button[data-go="next"]').click();
  return __view();
}
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var result = {
    errors: window.__probe.errors,
    images: images.length,
    broken: images.filter(function (i) { return !i.complete || i.naturalWidth === 0; })
                  .map(function (i) { return i.alt; }),
    view: __view(),
    typed: __search("status:misrecognized_cards"),
    next: __next(),
  };
  var out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is missing in CI: `make pytest` installs Debian's chromium")
    pytest.skip("needs headless Chromium: apt-get install chromium (`make pytest` installs it)")


def _headless(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={folder / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _probe(
    page: str,
    folder: Path,
    extra: str = "",
    fragment: str = "",
    *args: str,
    probe_script: str = _PROBE,
) -> tuple[dict[str, Any], str]:
    """Open ``page#fragment`` with the probe in headless Chromium: the probe's result and log."""
    marker = '<meta name="viewport"'
    assert marker in page
    probed = page.replace(marker, probe_script + extra + marker, 1)
    path = folder / "probed.html"
    path.write_text(probed, encoding="utf-8")
    done = _headless(folder, *args, "--dump-dom", path.as_uri() + fragment)
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe result (exit {done.returncode}):\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result, done.stderr


def _console_problems(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if ":CONSOLE" in line and re.search(r"Uncaught|Refused|Error|Failed", line)
    ]


def _expected_view(
    records: list[dict[str, Any]],
    keep: Callable[[dict[str, Any]], bool],
    page: int = 1,
    key: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """What the gallery should show: the matching records in order, one page of them."""
    matching = [r for r in records if keep(r)]
    if key is not None:
        matching.sort(key=lambda r: (key(r), r["n"]))
    pages = max(1, math.ceil(len(matching) / PAGE_SIZE))
    start = (page - 1) * PAGE_SIZE
    shown = matching[start : start + PAGE_SIZE]
    return {
        "uids": [r["uid"] for r in shown],
        "scenes": [len(r["images"]) for r in shown],
        "page": f"page {page} of {pages}",
        "count": f"{start + 1}\u2013{start + len(shown)} of {len(matching)} matching episodes "
        f"({len(records)} in all)",
    }


def _view(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("hash", "first")}


@pytest.mark.slow
def test_report_loads_in_headless_chromium_with_every_image_and_no_errors(
    report: ReportResult, tmp_path: Path
) -> None:
    page = report.html.read_text(encoding="utf-8")
    records = embedded_gallery(page)
    result, log = _probe(page, tmp_path)
    assert result["errors"] == [] and _console_problems(log) == []
    # The figures and the first page's scenes (GALLERY < PAGE_SIZE: every scene is on it).
    assert result["images"] == len(report.figures) // 2 + sum(len(r["images"]) for r in records)
    assert result["broken"] == []
    first = _view(result["view"])
    assert first == _expected_view(records, lambda r: True)
    assert len(first["uids"]) == PAGE_SIZE and sum(first["scenes"]) > 0
    assert first["page"] == f"page 1 of {math.ceil(len(records) / PAGE_SIZE)}"
    # Typing a search re-draws the first page of the matching episodes and keeps it in the URL.
    misread = _expected_view(records, lambda r: "misrecognized_cards" in r["statuses"])
    assert 0 < len(misread["uids"]) < len(records)
    assert _view(result["typed"]) == misread
    assert result["typed"]["hash"] == "#q=status%3Amisrecognized_cards"
    # The pager under the cards turns the page too (the search cleared first).
    assert _view(result["next"]) == _expected_view(records, lambda r: True, page=2)
    assert result["next"]["hash"] == "#page=2"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fragment", "keep", "page", "key"),
    [
        ("#q=status:wrong_numbers&page=2", lambda r: "wrong_numbers" in r["statuses"], 2, None),
        (
            "#series=sft&outcome=failed&q=flag:train_rule_answer%20-split:id&sort=uid",
            lambda r: (
                r["series"] == "sft"
                and not r["correct"]
                and "train_rule_answer" in r["flags"]
                and r["split"] != "id"
            ),
            1,
            lambda r: r["uid"],
        ),
        ("#sort=-return&page=3", lambda r: True, 3, lambda r: -r["ret"]),
        ("#q=%22your%20formula%22%20final:wrong_numbers&sort=-attempts", None, 1, None),
        ("#q=status:no_such_status", lambda r: False, 1, None),
    ],
)
def test_the_url_fragment_selects_searches_sorts_and_pages(
    report: ReportResult,
    tmp_path: Path,
    fragment: str,
    keep: Callable[[dict[str, Any]], bool] | None,
    page: int,
    key: Callable[[dict[str, Any]], Any] | None,
) -> None:
    text = report.html.read_text(encoding="utf-8")
    records = embedded_gallery(text)
    if keep is None:  # free text in the feedback, with the last status; most attempts first

        def keep(r: dict[str, Any]) -> bool:
            said = [a["response"] + "\n" + a["feedback"] for a in r["attempts"]]
            return r["final"] == "wrong_numbers" and any("your formula" in s.lower() for s in said)

        def key(r: dict[str, Any]) -> Any:
            return -len(r["attempts"])

    result, log = _probe(text, tmp_path, fragment=fragment)
    assert result["errors"] == [] and _console_problems(log) == []
    expected = _expected_view(records, keep, page, key)
    if "no_such_status" in fragment:
        assert expected["uids"] == []
        expected["count"] = f"no episode matches ({len(records)} in all)"
    else:
        assert expected["uids"]  # the page asked for exists: the test is not vacuous
    assert _view(result["view"]) == expected


@pytest.mark.slow
def test_a_screenshot_of_a_linked_view_draws_the_gallery(
    report: ReportResult, tmp_path: Path
) -> None:
    fragment = "#q=status:wrong_numbers&page=2"
    width = 1280
    # Where the first card lies at this width (the probe reads the layout), then a window tall
    # enough to show it.
    result, _ = _probe(
        report.html.read_text(encoding="utf-8"),
        tmp_path,
        "",
        fragment,
        f"--window-size={width},900",
    )
    box = result["view"]["first"]
    top, bottom = int(box["top"]), int(box["bottom"])
    assert 0 < top < bottom
    height = bottom + 20
    shot = tmp_path / "gallery.png"
    done = _headless(
        tmp_path,
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--screenshot={shot}",
        report.html.as_uri() + fragment,
    )
    assert shot.exists(), f"no screenshot (exit {done.returncode}):\n{done.stderr[-3000:]}"
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (width, height)
    card = image.crop((0, top, width, bottom))
    # The card was drawn: dark text, and its heading's outcome in the page's red or green.
    assert sum(card.convert("L").histogram()[:100]) > 0
    outcome = [(0xB3, 0x26, 0x1E), (0x1E, 0x7B, 0x34)]

    def near(pixel: tuple[int, int, int]) -> bool:
        return any(sum(abs(a - b) for a, b in zip(pixel, c, strict=True)) < 60 for c in outcome)

    raw = card.tobytes()
    pixels = zip(raw[0::3], raw[1::3], raw[2::3], strict=True)
    assert sum(1 for pixel in pixels if near(pixel)) > 20


_ALERTS = """
<script>
window.alert = function (text) { window.__probe.errors.push("alert ran: " + text); };
window.__texts = function () {
  return Array.prototype.map.call(document.querySelectorAll("article.episode pre"),
                                  function (p) { return p.textContent; });
};
</script>
"""


@pytest.mark.slow
def test_hostile_model_text_is_drawn_as_text_in_chromium(tmp_path: Path) -> None:
    items = [_item(text) for text in HOSTILE]
    page = render_page(ReportPage("t", [], [], [], [], [], items, len(items)))
    page = page.encode("utf-8", "backslashreplace").decode("utf-8")
    # _ALERTS turns any alert into a probe error; the probe also returns the cards' <pre> texts.
    probe = _PROBE.replace("typed: __search(", "texts: window.__texts(), typed: __search(")
    marker = '<meta name="viewport"'
    result, log = _probe(page.replace(marker, _ALERTS + marker, 1), tmp_path, probe_script=probe)
    assert result["errors"] == [] and _console_problems(log) == []
    assert result["images"] == 0  # the hostile <img> stayed text
    assert result["view"]["uids"] == [_printed(t) for t in HOSTILE]
    # Each card shows its problem and its response, character for character.
    assert result["texts"] == [_printed(t) for t in HOSTILE for _ in range(2)]


@pytest.mark.slow
def test_the_probe_sees_broken_images_and_script_errors(
    report: ReportResult, tmp_path: Path
) -> None:
    page = report.html.read_text(encoding="utf-8")
    broken = page.replace("</body>", '<img src="data:image/png;base64,AAAA" alt="broken"></body>')
    result, log = _probe(broken, tmp_path, '<script>throw new Error("boom");</script>')
    assert result["broken"] == ["broken"]
    assert "failed to load IMG broken" in result["errors"]
    assert any("boom" in str(e) for e in result["errors"])
    assert any("boom" in line for line in _console_problems(log))
