"""checkpoints.md: the human table and the fenced JSON block that ``gpbench regress`` reads.

Layout of the file:
    Prose for people, then a markdown table between the markers :data:`TABLE_BEGIN` and
    :data:`TABLE_END` (one row per checkpoint x task x split), then one fenced block whose info
    string is ``json gpbench-regress``. The block is the source of truth; the table is its rendering
    (:func:`render_table`), and loading a manifest fails, naming the line, when the two disagree.

Block schema (version 1)::

    {"version": 1, "alpha": 0.01, "checkpoints": [ENTRY, ...]}

    ENTRY: name          unique, [a-z0-9][a-z0-9._-]*
           hub | path    a hub id, or a folder (relative to the manifest's folder); exactly one
                         (``policy`` instead, for the scripted backend: ``reference:0.3``, ...)
           licence, architecture
           backend       hf, vllm or scripted; backend_note: free text for people (optional)
           backend_settings  passed to the backend (batch_size, dtype, ...; optional)
           needs_gpu     skip on machines without a CUDA GPU (optional, default false)
           build         the command that makes a missing ``path`` (optional)
           checks        [CHECK, ...]
    CHECK: task, split, n, seed, budget, samples (default 1), sampling_seed (default 0)
           decoding      {"temperature", "top_p", "max_tokens"}
           expect        {METRIC: {"rate": r, "tol": t}}   tested (see gpbench.regress.checks)
           paper         {METRIC: r}                        the paper's figure, shown, not tested
           recorded      where the expectations come from (free text)

>>> entries, alpha = parse_block('{"version": 1, "alpha": 0.01, "checkpoints": []}', 1, "m.md")
>>> alpha, render_table(entries)[0].count("|")
(0.01, 11)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from gpbench.errors import GpbenchError, did_you_mean
from gpbench.serialization import escape_surrogates, parse_json

FENCE_OPEN = "```json gpbench-regress"
FENCE_CLOSE = "```"
TABLE_BEGIN = "<!-- gpbench-regress:table:begin (generated from the JSON block below) -->"
TABLE_END = "<!-- gpbench-regress:table:end -->"
SCHEMA_VERSION = 1
BACKENDS = ("hf", "vllm", "scripted")
HEADER = (
    "name",
    "source",
    "licence",
    "architecture",
    "backend",
    "task / split",
    "decoding / budget",
    "expected ± tolerance",
    "paper (TASKS.md §4)",
    "expectation from",
)
# Metrics a check can expect (statuses are written status:<name>); see gpbench.regress.checks.
EPISODE_METRICS = ("success", "first_try_success", "parse_rate", "truncation_rate")
STEP_METRICS = ("per_step_accuracy",)
KNOWN_STATUSES = (
    "correct",
    "misrecognized_cards",
    "illegal_formula",
    "wrong_numbers",
    "wrong_value",
    "solution_prefix",
    "correct_action",
    "wrong_action",
    "wrong_action_and_observation",
    "unparseable",
    "none",
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SOURCE_KEYS = ("hub", "path", "policy")
_ENTRY_KEYS = (
    "name",
    "hub",
    "path",
    "policy",
    "licence",
    "architecture",
    "backend",
    "backend_note",
    "backend_settings",
    "needs_gpu",
    "build",
    "checks",
)
_CHECK_KEYS = (
    "task",
    "split",
    "n",
    "seed",
    "samples",
    "decoding",
    "sampling_seed",
    "budget",
    "expect",
    "paper",
    "recorded",
)
_DECODING_KEYS = ("temperature", "top_p", "max_tokens")


class ManifestError(GpbenchError):
    """A checkpoints.md that cannot be read: bad JSON, a bad field, or table and block differ."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


@dataclass(frozen=True)
class Expectation:
    """An expected rate and its tolerance band (both fractions in [0, 1])."""

    metric: str
    rate: float
    tol: float


@dataclass(frozen=True)
class Check:
    """One task x split a checkpoint is evaluated on, with its decoding and its expectations.

    Attributes:
        task, split, n, seed: the instances (``gpbench eval --task --split -n --seed``).
        samples: samples per instance (k > 1 switches the test to the clustered bootstrap).
        temperature, top_p, max_tokens: decoding (temperature 0 = greedy).
        sampling_seed: seeds decoding.
        budget: verification budget (attempts; per decision point for V-IRL).
        expect: tested expectations, in the block's order.
        paper: the paper's figures for this check (shown, never tested).
        recorded: where the expectations come from.
        line: the line of the check's ``"task"`` key in the manifest (for messages).
    """

    task: str
    split: str
    n: int
    seed: int
    samples: int
    temperature: float
    top_p: float
    max_tokens: int
    sampling_seed: int
    budget: int
    expect: tuple[Expectation, ...]
    paper: tuple[tuple[str, float], ...]
    recorded: str
    line: int = 0

    @property
    def label(self) -> str:
        """``gp-l/ood-rule``."""
        return f"{self.task}/{self.split}"


@dataclass(frozen=True)
class Entry:
    """One checkpoint of the manifest (see the module docstring for the fields)."""

    name: str
    source: str
    kind: str  # "hub", "path" or "policy" (scripted backend)
    licence: str
    architecture: str
    backend: str
    backend_note: str
    backend_settings: dict[str, Any]
    needs_gpu: bool
    build: str
    checks: tuple[Check, ...]
    line: int = 0


@dataclass(frozen=True)
class Manifest:
    """A parsed checkpoints.md: its entries and where the block and the table sit in its lines.

    ``block`` and ``table`` are ``(first, end)`` 0-based line indices of the block's JSON lines
    (between the fences) and of the table's lines (between the markers), end exclusive.
    """

    path: Path
    alpha: float
    entries: tuple[Entry, ...]
    lines: tuple[str, ...]
    block: tuple[int, int]
    table: tuple[int, int]

    def entry(self, name: str) -> Entry:
        """The entry called ``name`` (a one-line error with a did-you-mean hint otherwise)."""
        for entry in self.entries:
            if entry.name == name:
                return entry
        names = [e.name for e in self.entries]
        raise ManifestError(
            str(self.path),
            0,
            f"no checkpoint named {name!r}{did_you_mean(name, names)} "
            f"(checkpoints: {', '.join(names)})",
        )


def load_manifest(path: Path, *, check_table: bool = True) -> Manifest:
    """Read and validate ``path``; with ``check_table``, also require the table to match the block.

    Raises:
        ManifestError: a missing file, block or table, bad JSON, a bad field, or a table row that
            differs from the block (the message names the file and line).
    """
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            where, 0, "no such file; pass --manifest PATH (the repository's checkpoints.md)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(where, 0, f"cannot read it ({exc})") from None
    lines = tuple(text.splitlines())
    block = _find_block(lines, where)
    table = _find_table(lines, where)
    data_text = "\n".join(lines[block[0] : block[1]])
    entries, alpha = parse_block(data_text, block[0] + 1, where)
    manifest = Manifest(path, alpha, entries, lines, block, table)
    if check_table:
        check_table_matches(manifest)
    return manifest


def parse_block(text: str, first_line: int, where: str) -> tuple[tuple[Entry, ...], float]:
    """Parse and validate the JSON block; returns ``(entries, alpha)``.

    ``first_line`` is the 1-based file line of the block's first line, so that messages name the
    file's line.
    """
    data = _decode_block(text, first_line, where)
    locator = _Locator(text.splitlines(), first_line)
    if not isinstance(data, dict):
        raise ManifestError(where, first_line, "the JSON block must hold an object")
    _no_unknown(data, ("version", "alpha", "checkpoints"), "the JSON block", where, locator, 0)
    if data.get("version") != SCHEMA_VERSION:
        raise ManifestError(
            where,
            locator.find('"version"', 0),
            f"unsupported manifest version {data.get('version')!r}; this gpbench reads version "
            f"{SCHEMA_VERSION}",
        )
    alpha = data.get("alpha")
    if not _is_number(alpha) or not 0 < float(alpha) < 1:
        raise ManifestError(
            where,
            locator.find('"alpha"', 0),
            f"alpha must be a number in (0, 1), got {alpha!r}",
        )
    raw_entries = data.get("checkpoints")
    if not isinstance(raw_entries, list):
        raise ManifestError(
            where, locator.find('"checkpoints"', 0), "checkpoints must be a list of objects"
        )
    entries: list[Entry] = []
    seen: set[str] = set()
    cursor = 0
    for position, raw in enumerate(raw_entries, start=1):
        entry = _entry(raw, position, where, locator, cursor)
        cursor = locator.index(entry.line) + 1 if entry.line else cursor
        if entry.name in seen:
            raise ManifestError(where, entry.line, f"checkpoint name {entry.name!r} is used twice")
        seen.add(entry.name)
        entries.append(entry)
    return tuple(entries), float(alpha)


def check_table_matches(manifest: Manifest) -> None:
    """Raise :class:`ManifestError` at the first table line that differs from the block."""
    where = str(manifest.path)
    first, end = manifest.table
    table_lines = [(i, manifest.lines[i]) for i in range(first, end) if manifest.lines[i].strip()]
    fix = "edit the table to match, or rewrite it with `gpbench regress --write-table`"
    if len(table_lines) < 2:
        raise ManifestError(where, first + 1, f"the table has no header; {fix}")
    header_index, header = table_lines[0]
    if _cells(header) != list(HEADER):
        raise ManifestError(
            where, header_index + 1, f"the table header must be | {' | '.join(HEADER)} |; {fix}"
        )
    rows = table_lines[2:]
    expected = render_rows(manifest.entries)
    for (index, text), want in zip(rows, expected, strict=False):
        got = _cells(text)
        if got == want:
            continue
        if len(got) != len(want):
            raise ManifestError(
                where, index + 1, f"table row has {len(got)} cells, expected {len(want)}; {fix}"
            )
        column = next(c for c, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
        raise ManifestError(
            where,
            index + 1,
            f"table row {want[0]} {want[5]}: column '{HEADER[column]}' reads {got[column]!r} but "
            f"the JSON block gives {want[column]!r}; {fix}",
        )
    if len(rows) != len(expected):
        raise ManifestError(
            where,
            rows[len(expected)][0] + 1 if len(rows) > len(expected) else end,
            f"the table has {len(rows)} rows but the JSON block has {len(expected)} checks; {fix}",
        )


def render_rows(entries: tuple[Entry, ...]) -> list[list[str]]:
    """The table's rows (cells as text), one per checkpoint x check, in block order."""
    rows = []
    for entry in entries:
        for check in entry.checks:
            rows.append(
                [
                    entry.name,
                    _source_cell(entry),
                    entry.licence,
                    entry.architecture,
                    _backend_cell(entry),
                    f"{check.task} {check.split} (n={check.n}, seed {check.seed})",
                    decoding_text(check),
                    expectations_text(check.expect),
                    "; ".join(f"{m} {_pct(r)}" for m, r in check.paper) or "—",
                    check.recorded or "—",
                ]
            )
    return rows


def render_table(entries: tuple[Entry, ...]) -> list[str]:
    """The markdown table's lines: header, separator, rows."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines.extend("| " + " | ".join(row) + " |" for row in render_rows(entries))
    return lines


def decoding_text(check: Check) -> str:
    """``greedy, 64 tokens; budget 2`` or ``T=0.6 top-p 0.9, 256 tokens; budget 5; 4 samples``."""
    if check.temperature == 0:
        decoding = "greedy"
    else:
        decoding = f"T={_num(check.temperature)} top-p {_num(check.top_p)}"
    parts = [f"{decoding}, {check.max_tokens} tokens", f"budget {check.budget}"]
    if check.samples != 1:
        parts.append(f"{check.samples} samples")
    if check.sampling_seed != 0:
        parts.append(f"sampling seed {check.sampling_seed}")
    return "; ".join(parts)


def expectations_text(expect: tuple[Expectation, ...]) -> str:
    """``success 11.5% ± 5.0; parse_rate 98.0% ± 5.0`` (tolerances in percentage points)."""
    if not expect:
        return "information only"
    return "; ".join(f"{e.metric} {_pct(e.rate)} ± {100 * e.tol:.1f}" for e in expect)


def to_data(alpha: float, entries: tuple[Entry, ...]) -> dict[str, Any]:
    """The JSON block's object for ``entries`` (inverse of :func:`parse_block`)."""
    out: list[dict[str, Any]] = []
    for entry in entries:
        item: dict[str, Any] = {"name": entry.name, entry.kind: entry.source}
        item["licence"] = entry.licence
        item["architecture"] = entry.architecture
        item["backend"] = entry.backend
        if entry.backend_note:
            item["backend_note"] = entry.backend_note
        if entry.backend_settings:
            item["backend_settings"] = dict(entry.backend_settings)
        if entry.needs_gpu:
            item["needs_gpu"] = True
        if entry.build:
            item["build"] = entry.build
        item["checks"] = [_check_data(check) for check in entry.checks]
        out.append(item)
    return {"version": SCHEMA_VERSION, "alpha": alpha, "checkpoints": out}


def dump_block(data: Any) -> str:
    """JSON with objects of scalars on one line (diff-friendly: one expectation per line)."""
    return _dump(data, 0)


def with_entries(manifest: Manifest, entries: tuple[Entry, ...], *, block: bool = True) -> str:
    """The manifest's text with its table (and, with ``block``, its JSON block) from ``entries``."""
    lines = list(manifest.lines)
    sections = [(manifest.table, render_table(entries))]
    if block:
        sections.append((manifest.block, dump_block(to_data(manifest.alpha, entries)).splitlines()))
    # Replace the later section first so the earlier one's indices stay valid.
    for (start, end), new in sorted(sections, key=lambda section: -section[0][0]):
        lines[start:end] = new
    return "\n".join(lines) + "\n"


# -- parsing helpers ---------------------------------------------------------------------------


class _DuplicateKeyError(Exception):
    """A key given twice in one object (``json.loads`` would silently keep the last)."""

    def __init__(self, key: str, completed: int) -> None:
        super().__init__(key)
        self.key = key
        self.completed = completed  # objects decoded before this one (decoding order)


def _decode_block(text: str, first_line: int, where: str) -> Any:
    """The block's JSON; a key twice in one object, or JSON Python cannot decode, is an error.

    ``json.loads`` keeps the last of two equal keys, so a hand edit that adds an expectation
    beside an old one would silently test only one of them.
    """
    completed = 0

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal completed
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key, completed)
            seen.add(key)
        completed += 1
        return dict(pairs)

    try:
        return parse_json(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            where, first_line + exc.lineno - 1, f"the JSON block is not valid JSON: {exc.msg}"
        ) from None
    except _DuplicateKeyError as exc:
        start = _object_starts(text)[exc.completed]
        raise ManifestError(
            where,
            first_line + text.count("\n", 0, start),
            f"key {exc.key!r} appears twice in the object that starts on this line; JSON would "
            "keep only the last one, so remove or merge the other",
        ) from None


def _object_starts(text: str) -> list[int]:
    """Where each object of a valid JSON text starts, in the order a decoder finishes them."""
    starts: list[int] = []
    open_objects: list[int] = []
    in_string = escaped = False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            open_objects.append(position)
        elif char == "}":
            starts.append(open_objects.pop())
    return starts


class _Locator:
    """Finds the file line of a needle in the block, searching from a given block line."""

    def __init__(self, lines: list[str], first_line: int) -> None:
        self.lines = lines
        self.first_line = first_line

    def find(self, needle: str, start: int) -> int:
        """1-based file line of the first block line at or after ``start`` holding ``needle``."""
        for index in range(max(0, start), len(self.lines)):
            if needle in self.lines[index]:
                return self.first_line + index
        return self.first_line + max(0, start)

    def find_pair(self, key: str, value: Any, start: int) -> int:
        """Like :meth:`find` for a ``"key": value`` pair, whatever the spacing around the colon."""
        pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:\s*" + re.escape(json.dumps(value)))
        for index in range(max(0, start), len(self.lines)):
            if pattern.search(self.lines[index]):
                return self.first_line + index
        return 0

    def index(self, line: int) -> int:
        """The block-relative index of a file line."""
        return line - self.first_line


def _find_block(lines: tuple[str, ...], where: str) -> tuple[int, int]:
    opens = [i for i, line in enumerate(lines) if line.strip() == FENCE_OPEN]
    if len(opens) != 1:
        found = "no" if not opens else f"{len(opens)}"
        lines_at = ", ".join(str(i + 1) for i in opens)
        raise ManifestError(
            where,
            opens[1] + 1 if len(opens) > 1 else 0,
            f"expected exactly one fenced block opened by '{FENCE_OPEN}', found {found}"
            + (f" (lines {lines_at})" if opens else ""),
        )
    start = opens[0] + 1
    for index in range(start, len(lines)):
        if lines[index].strip() == FENCE_CLOSE:
            return start, index
    raise ManifestError(where, opens[0] + 1, "the JSON block is never closed by a ``` line")


def _find_table(lines: tuple[str, ...], where: str) -> tuple[int, int]:
    begins = [i for i, line in enumerate(lines) if line.strip() == TABLE_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == TABLE_END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ManifestError(
            where,
            (begins or ends or [-1])[0] + 1,
            f"expected the table between one '{TABLE_BEGIN}' line and one '{TABLE_END}' line",
        )
    return begins[0] + 1, ends[0]


def _cells(line: str) -> list[str]:
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|"):
        text = text[:-1]
    return [cell.strip() for cell in text.split("|")]


def _no_unknown(
    data: dict[str, Any],
    allowed: tuple[str, ...],
    what: str,
    where: str,
    locator: _Locator,
    start: int,
) -> None:
    for key in data:
        if key not in allowed:
            raise ManifestError(
                where,
                locator.find(f'"{key}"', start),
                f"{what}: unknown key {key!r}{did_you_mean(key, allowed)} "
                f"(keys: {', '.join(allowed)})",
            )


def _is_number(value: Any) -> TypeGuard[int | float]:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(
    raw: dict[str, Any], key: str, what: str, where: str, line: int, *, required: bool = True
) -> str:
    value = raw.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ManifestError(where, line, f"{what}: {key} must be a non-empty string")
    if "|" in value or "\n" in value:
        raise ManifestError(where, line, f"{what}: {key} may not hold '|' or a line break")
    if escape_surrogates(value) != value:
        raise ManifestError(
            where,
            line,
            f"{what}: {key} holds a lone surrogate (a \\ud800-\\udfff escape), "
            "which is not text; write the character itself",
        )
    return value.strip()


def _entry(raw: Any, position: int, where: str, locator: _Locator, cursor: int) -> Entry:
    if not isinstance(raw, dict):
        raise ManifestError(where, locator.first_line, f"checkpoint #{position} must be an object")
    name = raw.get("name")
    line = locator.find_pair("name", name, cursor) if isinstance(name, str) else 0
    start = locator.index(line) if line else 0
    what = f"checkpoint {name!r}" if isinstance(name, str) else f"checkpoint #{position}"
    _no_unknown(raw, _ENTRY_KEYS, what, where, locator, start)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ManifestError(
            where,
            line or locator.first_line,
            f"{what}: name must match [a-z0-9][a-z0-9._-]* (e.g. gp-l-init), got {name!r}",
        )
    sources = [key for key in _SOURCE_KEYS if key in raw]
    if len(sources) != 1:
        raise ManifestError(
            where,
            line,
            f"{what}: give exactly one of hub (a hub id), path (a folder) or policy (scripted "
            f"backend), found {', '.join(sources) or 'none'}",
        )
    kind = sources[0]
    source = _text(raw, kind, what, where, locator.find(f'"{kind}"', start))
    if kind == "hub" and not _HUB_ID.match(source):
        raise ManifestError(
            where,
            locator.find('"hub"', start),
            f"{what}: hub must be a hub id such as owner/model, got {source!r}",
        )
    backend = raw.get("backend")
    if (kind == "policy") != (backend == "scripted"):
        raise ManifestError(
            where,
            locator.find('"backend"', start),
            f"{what}: a policy goes with backend scripted, and backend scripted with a policy",
        )
    if backend not in BACKENDS:
        raise ManifestError(
            where,
            locator.find('"backend"', start),
            f"{what}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}"
            + (did_you_mean(backend, BACKENDS) if isinstance(backend, str) else ""),
        )
    settings = raw.get("backend_settings", {})
    if not isinstance(settings, dict) or not all(
        isinstance(v, (str, int, float, bool)) for v in settings.values()
    ):
        raise ManifestError(
            where,
            locator.find('"backend_settings"', start),
            f"{what}: backend_settings must be an object of strings, numbers or booleans",
        )
    needs_gpu = raw.get("needs_gpu", False)
    if not isinstance(needs_gpu, bool):
        raise ManifestError(
            where, locator.find('"needs_gpu"', start), f"{what}: needs_gpu must be true or false"
        )
    raw_checks = raw.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise ManifestError(
            where,
            locator.find('"checks"', start),
            f"{what}: checks must be a non-empty list of objects",
        )
    checks: list[Check] = []
    cursor = start
    for number, raw_check in enumerate(raw_checks, start=1):
        check = _check(raw_check, f"{what}, check #{number}", where, locator, cursor)
        cursor = locator.index(check.line) + 1
        if any((c.task, c.split) == (check.task, check.split) for c in checks):
            raise ManifestError(
                where, check.line, f"{what}: {check.label} is checked twice; merge the two checks"
            )
        checks.append(check)
    return Entry(
        name=name,
        source=source,
        kind=kind,
        licence=_text(raw, "licence", what, where, locator.find('"licence"', start)),
        architecture=_text(raw, "architecture", what, where, locator.find('"architecture"', start)),
        backend=str(backend),
        backend_note=_text(
            raw, "backend_note", what, where, locator.find('"backend_note"', start), required=False
        ),
        backend_settings=dict(settings),
        needs_gpu=needs_gpu,
        build=_text(raw, "build", what, where, locator.find('"build"', start), required=False),
        checks=tuple(checks),
        line=line,
    )


def _check(raw: Any, what: str, where: str, locator: _Locator, start: int) -> Check:
    from gpbench.harness.backends import Sampling
    from gpbench.tasks.registry import get_task

    line = locator.find('"task"', start)
    if not isinstance(raw, dict):
        raise ManifestError(where, line, f"{what} must be an object")
    begin = locator.index(line)
    _no_unknown(raw, _CHECK_KEYS, what, where, locator, begin)
    task_id = raw.get("task")
    try:
        if not isinstance(task_id, str):
            raise GpbenchError(f"task must be a task id such as gp-l, got {task_id!r}")
        task = get_task(task_id)
        split = raw.get("split")
        if not isinstance(split, str):
            raise GpbenchError(f"split must be a split name such as ood-rule, got {split!r}")
        task.split(split)
    except GpbenchError as exc:
        raise ManifestError(where, line, f"{what}: {exc}") from None
    what = f"{what} ({task_id}/{split})"

    def integer(key: str, minimum: int, default: int | None = None) -> int:
        value = raw.get(key, default)
        if not _is_int(value) or value < minimum:
            raise ManifestError(
                where,
                locator.find(f'"{key}"', begin),
                f"{what}: {key} must be an integer >= {minimum}, got {value!r}",
            )
        return int(value)

    n = integer("n", 1)
    seed = integer("seed", 0)
    samples = integer("samples", 1, 1)
    budget = integer("budget", 1)
    sampling_seed = integer("sampling_seed", 0, 0)
    decoding = raw.get("decoding")
    decoding_line = locator.find('"decoding"', begin)
    if not isinstance(decoding, dict):
        raise ManifestError(
            where,
            decoding_line,
            f"{what}: decoding must be an object with {', '.join(_DECODING_KEYS)}",
        )
    _no_unknown(decoding, _DECODING_KEYS, f"{what} decoding", where, locator, begin)
    missing = [key for key in _DECODING_KEYS if key not in decoding]
    if missing:
        raise ManifestError(where, decoding_line, f"{what}: decoding lacks {', '.join(missing)}")
    try:
        if not all(_is_number(decoding[key]) for key in _DECODING_KEYS) or not _is_int(
            decoding["max_tokens"]
        ):
            raise GpbenchError("temperature and top_p must be numbers, max_tokens an integer")
        sampling = Sampling(
            float(decoding["temperature"]), float(decoding["top_p"]), int(decoding["max_tokens"])
        )
    except GpbenchError as exc:
        raise ManifestError(where, decoding_line, f"{what}: decoding: {exc}") from None
    multi = bool(getattr(task, "multi_decision", False))
    expect = _expectations(raw.get("expect", {}), multi, what, where, locator, begin)
    paper = _paper(raw.get("paper", {}), multi, what, where, locator, begin)
    if not expect and not paper:
        raise ManifestError(
            where,
            line,
            f"{what}: nothing to compare; give expect (tested) or paper (shown for information)",
        )
    recorded = _text(
        raw, "recorded", what, where, locator.find('"recorded"', begin), required=False
    )
    return Check(
        task=task.id,
        split=str(split),
        n=n,
        seed=seed,
        samples=samples,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        sampling_seed=sampling_seed,
        budget=budget,
        expect=expect,
        paper=paper,
        recorded=recorded,
        line=line,
    )


def check_metric(metric: str, multi_decision: bool) -> str | None:
    """Why ``metric`` is not a metric a check can expect, or None when it is.

    >>> check_metric("status:wrong_value", False) is None, check_metric("sucess", False)
    (True, "unknown metric 'sucess'; did you mean 'success'? (metrics: success, first_try_success, parse_rate, truncation_rate, status:<status>)")
    """
    if metric.startswith("status:"):
        status = metric.removeprefix("status:")
        if status in KNOWN_STATUSES:
            return None
        return (
            f"unknown status {status!r}{did_you_mean(status, KNOWN_STATUSES)} "
            f"(statuses: {', '.join(KNOWN_STATUSES)})"
        )
    allowed = EPISODE_METRICS + (STEP_METRICS if multi_decision else ())
    if metric in allowed:
        return None
    if metric in STEP_METRICS:
        return f"{metric} is for multi-decision tasks (virl-l, virl-vl)"
    return (
        f"unknown metric {metric!r}{did_you_mean(metric, allowed)} "
        f"(metrics: {', '.join(allowed)}, status:<status>)"
    )


def _expectations(
    raw: Any, multi: bool, what: str, where: str, locator: _Locator, begin: int
) -> tuple[Expectation, ...]:
    line = locator.find('"expect"', begin)
    if not isinstance(raw, dict):
        raise ManifestError(where, line, f"{what}: expect must be an object of metrics")
    out = []
    for metric, value in raw.items():
        metric_line = locator.find(f'"{metric}"', locator.index(line))
        problem = check_metric(metric, multi)
        if problem is not None:
            raise ManifestError(where, metric_line, f"{what}: {problem}")
        if not isinstance(value, dict) or set(value) != {"rate", "tol"}:
            raise ManifestError(
                where, metric_line, f'{what}: expect.{metric} must be {{"rate": r, "tol": t}}'
            )
        for key in ("rate", "tol"):
            number = value[key]
            if not _is_number(number) or not 0 <= float(number) <= 1:
                raise ManifestError(
                    where,
                    metric_line,
                    f"{what}: expect.{metric}.{key} must be a fraction in [0, 1] "
                    f"(0.115 for 11.5%), got {number!r}",
                )
        out.append(Expectation(metric, float(value["rate"]), float(value["tol"])))
    return tuple(out)


def _paper(
    raw: Any, multi: bool, what: str, where: str, locator: _Locator, begin: int
) -> tuple[tuple[str, float], ...]:
    line = locator.find('"paper"', begin)
    if not isinstance(raw, dict):
        raise ManifestError(where, line, f"{what}: paper must be an object of metric: rate")
    out = []
    for metric, value in raw.items():
        problem = check_metric(metric, multi)
        if problem is not None:
            raise ManifestError(where, line, f"{what}: paper: {problem}")
        if not _is_number(value) or not 0 <= float(value) <= 1:
            raise ManifestError(
                where, line, f"{what}: paper.{metric} must be a fraction in [0, 1], got {value!r}"
            )
        out.append((metric, float(value)))
    return tuple(out)


def _check_data(check: Check) -> dict[str, Any]:
    item: dict[str, Any] = {
        "task": check.task,
        "split": check.split,
        "n": check.n,
        "seed": check.seed,
    }
    if check.samples != 1:
        item["samples"] = check.samples
    item["decoding"] = {
        "temperature": check.temperature,
        "top_p": check.top_p,
        "max_tokens": check.max_tokens,
    }
    if check.sampling_seed != 0:
        item["sampling_seed"] = check.sampling_seed
    item["budget"] = check.budget
    if check.expect:
        item["expect"] = {e.metric: {"rate": e.rate, "tol": e.tol} for e in check.expect}
    if check.paper:
        item["paper"] = dict(check.paper)
    if check.recorded:
        item["recorded"] = check.recorded
    return item


# -- rendering helpers -------------------------------------------------------------------------


def _source_cell(entry: Entry) -> str:
    if entry.kind == "hub":
        return f"[{entry.source}](https://huggingface.co/{entry.source})"
    if entry.kind == "policy":
        return f"policy `{entry.source}`"
    return f"`{entry.source}`"


def _backend_cell(entry: Entry) -> str:
    text = entry.backend
    if entry.backend_note:
        text += f" ({entry.backend_note})"
    if entry.needs_gpu:
        text += "; needs a GPU"
    return text


def _pct(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def _num(value: float) -> str:
    return f"{value:g}"


def _dump(value: Any, indent: int) -> str:
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        if all(not isinstance(v, (dict, list)) for v in value.values()):
            return _json(value)
        items = [f"{pad}{json.dumps(k)}: {_dump(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if all(not isinstance(v, (dict, list)) for v in value):
            return _json(value)
        items = [pad + _dump(v, indent + 2) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return _json(value)


def _json(value: Any) -> str:
    """One-line JSON, non-ASCII kept readable, a lone surrogate (backend settings) escaped."""
    return escape_surrogates(json.dumps(value, ensure_ascii=False))
