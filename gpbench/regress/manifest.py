"""checkpoints.md: the human table and the fenced JSON block that ``gpbench regress`` reads.

Prose for people, then a markdown table between the markers :data:`TABLE_BEGIN` and
:data:`TABLE_END` (one row per checkpoint x task x split), then one fenced block whose info string
is ``json gpbench-regress``. The block is the source of truth; the table is its rendering
(:func:`render_table`), and loading a manifest fails, naming the line, when the two disagree.

The block (version 1) is ``{"version": 1, "alpha": 0.01, "checkpoints": [ENTRY, ...]}``; the
tables :data:`ENTRY`, :data:`CHECK` and :data:`DECODING` give every key with its default and the
rule its value obeys. An entry names one source: ``hub`` (a hub id), ``path`` (a folder relative
to the manifest's folder) or ``policy`` (the scripted backend's, ``reference:0.3``). A check's
``expect`` holds ``{METRIC: {"rate": r, "tol": t}}`` (tested, see :mod:`gpbench.regress.checks`),
its ``paper`` ``{METRIC: r}`` (shown, never tested). A metric is one of :data:`EPISODE_METRICS`,
``per_step_accuracy`` on multi-decision tasks, or ``status:<name>`` with a status the check's task
gives answers (in any verifier mode) or ``none`` (no attempt). Errors name the file line and the
JSON path: ``checkpoints.md:41: checkpoints[0].checks[0].expect.success.rate: must be ...``.

>>> entries, alpha = parse_block('{"version": 1, "alpha": 0.01, "checkpoints": []}', 1, "m.md")
>>> alpha, render_table(entries)[0].count("|")
(0.01, 11)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from gpbench.errors import GpbenchError, did_you_mean
from gpbench.serialization import escape_surrogates, parse_json
from gpbench.stats import percent

if TYPE_CHECKING:
    from gpbench.tasks.spec import TaskSpec

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
    "paper (docs/tasks.md §4)",
    "expectation from",
)
EPISODE_METRICS = ("success", "first_try_success", "parse_rate", "truncation_rate")
STEP_METRICS = ("per_step_accuracy",)
NO_ATTEMPT = "none"
"""The status of an episode without any attempt (see :mod:`gpbench.regress.checks`)."""
_SOURCES = ("hub", "path", "policy")
_FIX_TABLE = "edit the table to match, or rewrite it with `gpbench regress --write-table`"

JsonPath = tuple[str | int, ...]


class ManifestError(GpbenchError):
    """A checkpoints.md that cannot be read: bad JSON, a bad field, or table and block differ."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


@dataclass(frozen=True)
class Expectation:
    """An expected rate and its tolerance band (both fractions in [0, 1])."""

    metric: str
    rate: float
    tol: float


@dataclass(frozen=True)
class Check:
    """One task x split a checkpoint is evaluated on (the keys of :data:`CHECK`).

    ``temperature``, ``top_p`` and ``max_tokens`` are its decoding; ``expect`` the tested
    expectations and ``paper`` the paper's figures, in the block's order; ``line`` the line of its
    ``"task"`` key in the manifest (for messages).
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
    mode: str = "gpbench"
    line: int = 0

    @property
    def label(self) -> str:
        """``gp-l/ood-rule``."""
        return f"{self.task}/{self.split}"


@dataclass(frozen=True)
class Entry:
    """One checkpoint (the keys of :data:`ENTRY`); ``kind`` says which source key ``source`` is."""

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
        names = [e.name for e in self.entries]
        if name in names:
            return self.entries[names.index(name)]
        hint = f"{did_you_mean(name, names)} (checkpoints: {', '.join(names)})"
        raise ManifestError(str(self.path), 0, f"no checkpoint named {name!r}{hint}")


# -- the schema: key -> (default, rule); a rule says what is wrong with a value, or None --------

Rule = Callable[[Any], str | None]
REQUIRED = object()
"""The default of a key that must be given."""


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _must(test: Callable[[Any], Any], need: str) -> Rule:
    return lambda v: None if test(v) else f"must be {need}, got {v!r}"


def _text(value: Any) -> str | None:
    """A table cell: non-empty text without '|', line breaks or lone surrogates."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if "|" in value or "\n" in value:
        return "may not hold '|' or a line break (it is a table cell)"
    if escape_surrogates(value) != value:
        return (
            "holds a lone surrogate (a \\ud800-\\udfff escape), which is not text; "
            "write the character itself"
        )
    return None


def _optional_text(value: Any) -> str | None:
    return None if isinstance(value, str) and not value.strip() else _text(value)


def _one_of(choices: tuple[str, ...]) -> Rule:
    def rule(value: Any) -> str | None:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        if value in choices:
            return None
        return f"must be one of {', '.join(choices)}, got {value!r}{hint}"

    return rule


def _task(value: Any) -> str | None:
    from gpbench.tasks.registry import get_task

    if not isinstance(value, str):
        return f"must be a task id such as gp-l, got {value!r}"
    try:
        get_task(value)
    except GpbenchError as exc:
        return str(exc)
    return None


def _integer(minimum: int) -> Rule:
    return _must(lambda v: _is_int(v) and v >= minimum, f"an integer >= {minimum}")


_OBJECT = _must(lambda v: isinstance(v, dict), "an object")
_FRACTION = _must(lambda v: _is_number(v) and 0 <= v <= 1, "a fraction in [0, 1] (0.115 for 11.5%)")
_VERSION = _must(lambda v: v == SCHEMA_VERSION, f"{SCHEMA_VERSION}, the version this gpbench reads")
_NAME = _must(
    lambda v: isinstance(v, str) and re.fullmatch(r"[a-z0-9][a-z0-9._-]*", v),
    "a name matching [a-z0-9][a-z0-9._-]* (e.g. gp-l-init)",
)
_HUB = _must(
    lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", v),
    "a hub id such as owner/model",
)
_SETTINGS = _must(
    lambda v: (
        isinstance(v, dict) and all(isinstance(x, (str, int, float, bool)) for x in v.values())
    ),
    "an object of strings, numbers or booleans",
)
BLOCK: dict[str, tuple[Any, Rule]] = {
    "version": (REQUIRED, _VERSION),
    "alpha": (REQUIRED, _must(lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)")),
    "checkpoints": (REQUIRED, _must(lambda v: isinstance(v, list), "a list of objects")),
}
ENTRY: dict[str, tuple[Any, Rule]] = {
    "name": (REQUIRED, _NAME),
    "hub": ("", _HUB),
    "path": ("", _text),  # a folder, relative to the manifest's folder
    "policy": ("", _text),  # the scripted backend's policy
    "licence": (REQUIRED, _text),
    "architecture": (REQUIRED, _text),
    "backend": (REQUIRED, _one_of(BACKENDS)),
    "backend_note": ("", _optional_text),  # free text for people
    "backend_settings": ({}, _SETTINGS),  # passed to the backend (batch_size, dtype, ...)
    "needs_gpu": (False, _must(lambda v: isinstance(v, bool), "true or false")),
    "build": ("", _optional_text),  # the command that makes a missing path
    "checks": (REQUIRED, _must(lambda v: isinstance(v, list) and v, "a non-empty list of objects")),
}
CHECK: dict[str, tuple[Any, Rule]] = {
    "task": (REQUIRED, _task),
    "split": (REQUIRED, _must(lambda v: isinstance(v, str), "a split name such as ood-rule")),
    "n": (REQUIRED, _integer(1)),
    "seed": (REQUIRED, _integer(0)),
    "samples": (1, _integer(1)),  # k > 1: the clustered bootstrap
    "decoding": (REQUIRED, _OBJECT),
    "sampling_seed": (0, _integer(0)),
    "budget": (REQUIRED, _integer(1)),  # attempts (per decision point for V-IRL)
    "mode": ("gpbench", _must(lambda v: isinstance(v, str), "a verifier mode such as gpbench")),
    "expect": ({}, _OBJECT),
    "paper": ({}, _OBJECT),
    "recorded": ("", _optional_text),  # where the expectations come from
}
DECODING: dict[str, tuple[Any, Rule]] = {
    "temperature": (REQUIRED, _must(_is_number, "a number")),
    "top_p": (REQUIRED, _must(_is_number, "a number")),
    "max_tokens": (REQUIRED, _must(_is_int, "an integer")),
}
_TEXT_RULES = (_text, _optional_text)
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:\n]')
"""The block's strings and structural characters (numbers and literals are not needed)."""


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
    opens = [i for i, line in enumerate(lines) if line.strip() == FENCE_OPEN]
    if len(opens) != 1:
        found = f"{len(opens)} (lines {', '.join(str(i + 1) for i in opens)})" if opens else "no"
        raise ManifestError(
            where,
            opens[1] + 1 if opens else 0,
            f"expected exactly one fenced block opened by '{FENCE_OPEN}', found {found}",
        )
    closes = [i for i in range(opens[0] + 1, len(lines)) if lines[i].strip() == FENCE_CLOSE]
    if not closes:
        raise ManifestError(where, opens[0] + 1, "the JSON block is never closed by a ``` line")
    begins = [i for i, line in enumerate(lines) if line.strip() == TABLE_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == TABLE_END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        line = (begins or ends or [-1])[0] + 1
        raise ManifestError(
            where,
            line,
            f"expected the table between one '{TABLE_BEGIN}' line and one '{TABLE_END}' line",
        )
    block = (opens[0] + 1, closes[0])
    entries, alpha = parse_block("\n".join(lines[block[0] : block[1]]), block[0] + 1, where)
    manifest = Manifest(path, alpha, entries, lines, block, (begins[0] + 1, ends[0]))
    if check_table:
        check_table_matches(manifest)
    return manifest


def parse_block(text: str, first_line: int, where: str) -> tuple[tuple[Entry, ...], float]:
    """Parse and validate the JSON block (its first line is file line ``first_line``)."""
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        line = first_line + exc.lineno - 1
        raise ManifestError(where, line, f"the JSON block is not valid JSON: {exc.msg}") from None
    at = _Lines(text, first_line, where)
    block = at.fields(data, BLOCK, ())
    entries: list[Entry] = []
    for position, raw in enumerate(block["checkpoints"]):
        entry = _entry(raw, ("checkpoints", position), at)
        if entry.name in (e.name for e in entries):
            at.fail(
                ("checkpoints", position, "name"), f"checkpoint name {entry.name!r} is used twice"
            )
        entries.append(entry)
    return tuple(entries), float(block["alpha"])


def _entry(raw: Any, path: JsonPath, at: _Lines) -> Entry:
    values = at.fields(raw, ENTRY, path)
    sources = [key for key in _SOURCES if key in raw]
    if len(sources) != 1:
        at.fail(
            path,
            "give exactly one of hub (a hub id), path (a folder) or policy (scripted backend), "
            f"found {', '.join(sources) or 'none'}",
        )
    if (sources[0] == "policy") != (values["backend"] == "scripted"):
        at.fail(
            (*path, "backend"),
            "a policy goes with backend scripted, and backend scripted with a policy",
        )
    checks: list[Check] = []
    for position, raw_check in enumerate(values["checks"]):
        check = _check(raw_check, (*path, "checks", position), at)
        if check.label in (c.label for c in checks):
            at.fail(
                (*path, "checks", position), f"{check.label} is checked twice; merge the two checks"
            )
        checks.append(check)
    same = {key: values[key] for key in ENTRY if key not in (*_SOURCES, "checks")}
    source = values[sources[0]]
    return Entry(**same, source=source, kind=sources[0], checks=tuple(checks), line=at.line(path))


def _check(raw: Any, path: JsonPath, at: _Lines) -> Check:
    from gpbench.harness.backends import Sampling
    from gpbench.tasks.registry import get_task

    values = at.fields(raw, CHECK, path)
    task = get_task(values["task"])
    try:
        task.split(values["split"])
    except GpbenchError as exc:
        at.fail((*path, "split"), str(exc))
    at.check((*path, "mode"), _one_of(task.verifier_modes)(values["mode"]))  # the task's modes
    decoding = at.fields(values["decoding"], DECODING, (*path, "decoding"))
    try:
        sampling = Sampling(
            float(decoding["temperature"]), float(decoding["top_p"]), decoding["max_tokens"]
        )
    except GpbenchError as exc:
        at.fail((*path, "decoding"), str(exc))
    expect = []
    for metric, value in values["expect"].items():
        at.check((*path, "expect", metric), metric_problem(metric, task))
        if not isinstance(value, dict) or set(value) != {"rate", "tol"}:
            at.fail((*path, "expect", metric), 'must be {"rate": r, "tol": t}')
        for key in ("rate", "tol"):
            at.check((*path, "expect", metric, key), _FRACTION(value[key]))
        expect.append(Expectation(metric, float(value["rate"]), float(value["tol"])))
    for metric, value in values["paper"].items():
        at.check((*path, "paper", metric), metric_problem(metric, task) or _FRACTION(value))
    if not expect and not values["paper"]:
        at.fail(path, "nothing to compare; give expect (tested) or paper (shown for information)")
    same = {
        key: values[key]
        for key in ("split", "n", "seed", "samples", "sampling_seed", "budget", "recorded", "mode")
    }
    return Check(
        **same,
        task=task.id,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        expect=tuple(expect),
        paper=tuple((metric, float(value)) for metric, value in values["paper"].items()),
        line=at.line(path),
    )


def task_statuses(task: TaskSpec) -> tuple[str, ...]:
    """The statuses a check on ``task`` can expect: its answers' in every verifier mode, and none.

    >>> from gpbench.tasks.registry import get_task
    >>> task_statuses(get_task("virl-l"))
    ('correct_action', 'wrong_action', 'wrong_action_and_observation', 'unparseable', 'none')
    """
    statuses = [s for mode in task.verifier_modes for s in task.answer_statuses(mode)]
    return tuple(dict.fromkeys([*statuses, NO_ATTEMPT]))


def metric_problem(metric: str, task: TaskSpec) -> str | None:
    """Why ``metric`` is not a metric a check on ``task`` can expect, or None when it is.

    >>> from gpbench.tasks.registry import get_task
    >>> metric_problem("status:wrong_value", get_task("gp-l")) is None
    True
    >>> metric_problem("sucess", get_task("gp-l"))
    "unknown metric 'sucess'; did you mean 'success'? (metrics: success, first_try_success, parse_rate, truncation_rate, status:<status>)"
    """
    if metric.startswith("status:"):
        status, known = metric.removeprefix("status:"), task_statuses(task)
        if status in known:
            return None
        hint = did_you_mean(status, known)
        return f"unknown status {status!r} for {task.id}{hint} (statuses: {', '.join(known)})"
    allowed = EPISODE_METRICS + (STEP_METRICS if task.multi_decision else ())
    if metric in allowed:
        return None
    if metric in STEP_METRICS:
        return f"{metric} is for multi-decision tasks; {task.id} has one decision per episode"
    hint = did_you_mean(metric, allowed)
    return f"unknown metric {metric!r}{hint} (metrics: {', '.join(allowed)}, status:<status>)"


class _Lines:
    """The file line of every key and array item of the block, by JSON path, to name in errors.

    Reading the (valid) JSON's tokens also refuses a key given twice in one object: ``json.loads``
    keeps the last, so a hand edit that adds an expectation beside an old one would test one.
    """

    def __init__(self, text: str, first_line: int, where: str) -> None:
        self.where = where
        self.lines: dict[JsonPath, int] = {}
        # A frame per open container: its path, whether it is an object, its keys so far and
        # its current key (objects) or item index (arrays, counted by commas).
        stack: list[tuple[JsonPath, bool, set[str], list[Any]]] = []
        line, expect_key = first_line, False
        for token in _TOKENS.findall(text):
            if token == "\n":
                line += 1
            elif token in ("{", "["):
                path: JsonPath = (*stack[-1][0], stack[-1][3][0]) if stack else ()
                self.lines.setdefault(path, line)
                stack.append((path, token == "{", set(), [0 if token == "[" else None]))
                expect_key = token == "{"
            elif token in ("}", "]"):
                stack.pop()
            elif token in (",", ":"):
                path, is_object, _, state = stack[-1]
                expect_key = is_object and token == ","
                if not is_object:
                    state[0] += 1
            elif expect_key:  # in a valid text, the string after "{" or "," of an object
                path, _, keys, state = stack[-1]
                key = state[0] = json.loads(token)
                if key in keys:
                    raise ManifestError(
                        where,
                        self.lines[path],
                        f"key {key!r} appears twice in the object that starts on this line; "
                        "JSON would keep only the last one, so remove or merge the other",
                    )
                keys.add(key)
                self.lines[(*path, key)] = line

    def line(self, path: JsonPath) -> int:
        """The line of ``path`` or its nearest part; an object's is its name or task key's."""
        for end in range(len(path), -1, -1):
            for anchor in ((*path[:end], "name"), (*path[:end], "task"), path[:end]):
                if anchor in self.lines:
                    return self.lines[anchor]
        return 0

    def fail(self, path: JsonPath, reason: str) -> NoReturn:
        """Raise the one-line error ``file:line: json.path: reason``."""
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        raise ManifestError(self.where, self.line(path), f"{dotted or 'the JSON block'}: {reason}")

    def check(self, path: JsonPath, problem: str | None) -> None:
        """Fail at ``path`` when a rule found a ``problem``."""
        if problem is not None:
            self.fail(path, problem)

    def fields(
        self, raw: Any, table: Mapping[str, tuple[Any, Rule]], path: JsonPath
    ) -> dict[str, Any]:
        """``raw`` checked against ``table``: the values (text stripped), defaults filled in."""
        if not isinstance(raw, dict):
            self.fail(path, "must be an object")
        for key in raw:
            if key not in table:
                self.fail(
                    (*path, key),
                    f"unknown key {key!r}{did_you_mean(key, table)} (keys: {', '.join(table)})",
                )
        values = {}
        for key, (default, rule) in table.items():
            if key not in raw and default is REQUIRED:
                self.fail((*path, key), "is required")
            value = raw.get(key, default)
            if key in raw:
                self.check((*path, key), rule(value))
            values[key] = value.strip() if rule in _TEXT_RULES else value
        return values


# -- the table: one renderer, and the check that the file's table is its output ----------------


def render_rows(entries: tuple[Entry, ...]) -> list[list[str]]:
    """The table's rows (cells as text), one per checkpoint x check, in block order."""
    sources = {
        "hub": "[{0}](https://huggingface.co/{0})",
        "path": "`{0}`",
        "policy": "policy `{0}`",
    }
    return [
        [
            entry.name,
            sources[entry.kind].format(entry.source),
            entry.licence,
            entry.architecture,
            entry.backend
            + (f" ({entry.backend_note})" if entry.backend_note else "")
            + ("; needs a GPU" if entry.needs_gpu else ""),
            f"{check.task} {check.split} (n={check.n}, seed {check.seed})",
            decoding_text(check),
            expectations_text(check.expect),
            "; ".join(f"{m} {percent(r)}" for m, r in check.paper) or "—",
            check.recorded or "—",
        ]
        for entry in entries
        for check in entry.checks
    ]


def render_table(entries: tuple[Entry, ...]) -> list[str]:
    """The markdown table's lines: header, separator, rows."""
    lines = ["| " + " | ".join(row) + " |" for row in [list(HEADER), *render_rows(entries)]]
    return [lines[0], "|" + "---|" * len(HEADER), *lines[1:]]


def decoding_text(check: Check) -> str:
    """``greedy, 64 tokens; budget 2`` or ``T=0.6 top-p 0.9, 256 tokens; budget 5; 4 samples``."""
    greedy = check.temperature == 0
    decoding = "greedy" if greedy else f"T={check.temperature:g} top-p {check.top_p:g}"
    parts = [f"{decoding}, {check.max_tokens} tokens", f"budget {check.budget}"]
    if check.samples != 1:
        parts.append(f"{check.samples} samples")
    if check.sampling_seed != 0:
        parts.append(f"sampling seed {check.sampling_seed}")
    if check.mode != "gpbench":
        parts.append(f"{check.mode} mode")
    return "; ".join(parts)


def expectations_text(expect: tuple[Expectation, ...]) -> str:
    """``success 11.5% ± 5.0; parse_rate 98.0% ± 5.0`` (tolerances in percentage points)."""
    texts = [f"{e.metric} {percent(e.rate)} ± {100 * e.tol:.1f}" for e in expect]
    return "; ".join(texts) or "information only"


def check_table_matches(manifest: Manifest) -> None:
    """Raise :class:`ManifestError` at the first table line that differs from the block."""
    where, (first, end), lines = str(manifest.path), manifest.table, manifest.lines
    found = [(i + 1, _cells(lines[i])) for i in range(first, end) if lines[i].strip()]
    if len(found) < 2:
        raise ManifestError(where, first + 1, f"the table has no header; {_FIX_TABLE}")
    if found[0][1] != list(HEADER):
        raise ManifestError(
            where, found[0][0], f"the table header must be | {' | '.join(HEADER)} |; {_FIX_TABLE}"
        )
    rows, expected = found[2:], render_rows(manifest.entries)
    for (line, got), want in zip(rows, expected, strict=False):
        if len(got) != len(want):
            raise ManifestError(
                where, line, f"table row has {len(got)} cells, expected {len(want)}; {_FIX_TABLE}"
            )
        for column, (cell, wanted) in enumerate(zip(got, want, strict=True)):
            if cell != wanted:
                raise ManifestError(
                    where,
                    line,
                    f"table row {want[0]} {want[5]}: column '{HEADER[column]}' reads {cell!r} "
                    f"but the JSON block gives {wanted!r}; {_FIX_TABLE}",
                )
    if len(rows) != len(expected):
        line = rows[len(expected)][0] if len(rows) > len(expected) else end
        raise ManifestError(
            where,
            line,
            f"the table has {len(rows)} rows but the JSON block has {len(expected)} checks; "
            + _FIX_TABLE,
        )


def _cells(line: str) -> list[str]:
    text = line.strip()
    text = text[1:] if text.startswith("|") else text
    return [cell.strip() for cell in (text[:-1] if text.endswith("|") else text).split("|")]


# -- writing: the block's data (defaults left out), its text, the file with both rewritten -----


def to_data(alpha: float, entries: tuple[Entry, ...]) -> dict[str, Any]:
    """The JSON block's object for ``entries`` (the inverse of :func:`parse_block`)."""
    out = []
    for entry in entries:
        checks = []
        for check in entry.checks:
            data: dict[str, Any] = {key: getattr(check, key, None) for key in CHECK}
            data["decoding"] = {key: getattr(check, key) for key in DECODING}
            data["expect"] = {e.metric: {"rate": e.rate, "tol": e.tol} for e in check.expect}
            data["paper"] = dict(check.paper)
            checks.append(_without_defaults(data, CHECK))
        item: dict[str, Any] = {key: getattr(entry, key, "") for key in ENTRY}
        item.update({entry.kind: entry.source, "checks": checks})
        out.append(_without_defaults(item, ENTRY))
    return {"version": SCHEMA_VERSION, "alpha": alpha, "checkpoints": out}


def _without_defaults(
    item: dict[str, Any], table: Mapping[str, tuple[Any, Rule]]
) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value != table[key][0]}


def dump_block(data: Any, indent: int = 0) -> str:
    """JSON with objects of scalars on one line (diff-friendly: one expectation per line)."""
    items = (
        list(data.values()) if isinstance(data, dict) else data if isinstance(data, list) else []
    )
    nested = any(isinstance(v, (dict, list)) for v in items)
    pad, close = " " * (indent + 2), "\n" + " " * indent
    if isinstance(data, dict) and nested:
        lines = [f"{pad}{json.dumps(k)}: {dump_block(v, indent + 2)}" for k, v in data.items()]
        return "{\n" + ",\n".join(lines) + close + "}"
    if nested:
        return "[\n" + ",\n".join(pad + dump_block(v, indent + 2) for v in items) + close + "]"
    # One line, non-ASCII kept readable, a lone surrogate (backend settings) escaped.
    return escape_surrogates(json.dumps(data, ensure_ascii=False))


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
