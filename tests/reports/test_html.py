"""report.html: self-contained, and in headless Chromium without errors and with every image.

The Chromium test opens a copy of the page with a small probe script added: it records script
errors, failed loads and Content-Security-Policy violations, checks every image decoded
(``naturalWidth > 0``), drives the gallery filters, and writes what it found into the DOM,
which ``chromium --headless --dump-dom`` prints. A second copy with a broken image and a
throwing script proves the probe sees both.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gpbench.reports.build import ReportConfig, ReportResult, build_report

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
    articles = [a for t, a in tags if t == "article"]
    assert len(articles) == GALLERY
    assert {a["data-outcome"] for a in articles} == {"solved", "failed"}
    # Cards of image tasks carry their scene; text GeneralPoints cards carry none.
    for match in re.finditer(
        r'<article class="episode"[^>]*data-run="([^"]+)"(.*?)</article>', page
    ):
        scenes = match.group(2).count("data:image/png;base64,")
        task = match.group(1).split()[0]
        assert scenes == {"gp-l": 0, "virl-l": 1, "gp-vl": 1, "virl-vl": 2}[task], task


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
function __shown() {
  return Array.prototype.filter.call(document.querySelectorAll("article.episode"),
                                     function (a) { return !a.hidden; }).length;
}
function __filter(name, value) {
  var select = document.querySelector('#gallery-filters select[name="' + name + '"]');
  if (!select) { return null; }
  select.value = value;
  select.dispatchEvent(new Event("change"));
  var result = {shown: __shown(), count: document.getElementById("gallery-count").textContent};
  select.value = "";
  select.dispatchEvent(new Event("change"));
  return result;
}
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var result = {
    errors: window.__probe.errors,
    images: images.length,
    broken: images.filter(function (i) { return !i.complete || i.naturalWidth === 0; })
                  .map(function (i) { return i.alt; }),
    shown: __shown(),
    misrecognized: __filter("status", "misrecognized_cards"),
    memorized: __filter("flag", "train_rule_answer"),
    failed: __filter("outcome", "failed"),
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


def _probe(page: str, folder: Path, extra: str = "") -> tuple[dict[str, object], str]:
    """Open ``page`` with the probe in headless Chromium: the probe's result and the log."""
    marker = '<meta name="viewport"'
    assert marker in page
    probed = page.replace(marker, _PROBE + extra + marker, 1)
    path = folder / "probed.html"
    path.write_text(probed, encoding="utf-8")
    done = subprocess.run(
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
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe result (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(html.unescape(found.group(1))), done.stderr


def _console_problems(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if ":CONSOLE" in line and re.search(r"Uncaught|Refused|Error|Failed", line)
    ]


@pytest.mark.slow
def test_report_loads_in_headless_chromium_with_every_image_and_no_errors(
    report: ReportResult, tmp_path: Path
) -> None:
    page = report.html.read_text(encoding="utf-8")
    result, log = _probe(page, tmp_path)
    assert result["errors"] == [] and _console_problems(log) == []
    embedded = page.count('src="data:image/')
    assert result["images"] == embedded == len(report.figures) // 2 + page.count("data:image/png")
    assert result["broken"] == []
    assert result["shown"] == GALLERY

    def cards(attribute: str, value: str) -> int:
        values = re.findall(rf'<article class="episode"[^>]*data-{attribute}="([^"]*)"', page)
        return sum(value in v.split("|") for v in values)

    for key, attribute, value in (
        ("misrecognized", "status", "misrecognized_cards"),
        ("memorized", "flag", "train_rule_answer"),
        ("failed", "outcome", "failed"),
    ):
        expected = cards(attribute, value)
        assert 0 < expected < GALLERY, (attribute, value)
        assert result[key] == {
            "shown": expected,
            "count": f"{expected} of {GALLERY} episodes shown",
        }


@pytest.mark.slow
def test_the_probe_sees_broken_images_and_script_errors(
    report: ReportResult, tmp_path: Path
) -> None:
    page = report.html.read_text(encoding="utf-8")
    broken = page.replace("</body>", '<img src="data:image/png;base64,AAAA" alt="broken"></body>')
    result, log = _probe(broken, tmp_path, '<script>throw new Error("boom");</script>')
    assert result["broken"] == ["broken"]
    assert "failed to load IMG broken" in result["errors"]
    assert any("boom" in str(e) for e in result["errors"])  # type: ignore[union-attr]
    assert any("boom" in line for line in _console_problems(log))
