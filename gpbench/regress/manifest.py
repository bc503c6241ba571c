"""checkpoints.md: the human table and the fenced JSON block that ``gpbench regress`` reads.

Prose for people, a markdown table between :data:`TABLE_BEGIN` and :data:`TABLE_END` (one row per
checkpoint x task x split), and one fenced block opened by :data:`FENCE_OPEN`: the source of truth,
``{"version": 1, "alpha": 0.01, "checkpoints": [ENTRY, ...]}`` with the keys, defaults and rules of
the nested schema :data:`BLOCK` (:data:`ENTRY`, :data:`CHECK`, ...). The table is the block's rendering
(:func:`render_table`); loading fails, naming the line, where the two differ, and every error names
the line and the JSON path: ``checkpoints.md:41: checkpoints[0].checks[0].expect.success.rate: ...``.

>>> entries, alpha = parse_block('{"version": 1, "alpha": 0.01, "checkpoints": []}', 1, "m.md")
>>> alpha, render_table(entries)[0].count("|")
(0.01, 11)
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from gpbench.errors import GpbenchError, RecordSchemaError, did_you_mean
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
_SOURCES = {"hub": "[{0}](https://huggingface.co/{0})", "path": "`{0}`", "policy": "policy `{0}`"}
"""The keys an entry names its checkpoint by, and how the table shows each."""
_FIX_TABLE = "edit the table to match, or rewrite it with `gpbench regress --write-table`"

JsonPath = tuple[str | int, ...]


class ManifestError(RecordSchemaError):
    """A checkpoints.md that cannot be read: bad JSON, a bad field, or table and block differ."""


@dataclass(frozen=True)
class Expectation:
    """An expected rate and its tolerance band (both fractions in [0, 1])."""

    metric: str
    rate: float
    tol: float


@dataclass(frozen=True)
class Check:
    """One task x split a checkpoint is evaluated on (the keys of :data:`CHECK`, its decoding's);
    ``expect`` and ``paper`` keep the block's order."""

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


@dataclass(frozen=True)
class Manifest:
    """A parsed checkpoints.md; ``block`` (the JSON between the fences) and ``table`` (between the
    markers) are 0-based ``(first, end)`` line ranges, end exclusive."""

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


# -- the schema: key -> (default, rule[, schema within]); a rule says what is wrong, or None ---

Rule = Callable[[Any], str | None]
Schema = dict[str, tuple[Any, ...]]
"""Key (``"*"``: any) -> ``(default, rule[, Schema of the value's keys or of its list's items])``."""
REQUIRED = object()
"""The default of a key that must be given."""


def _must(test: Callable[[Any], Any], need: str) -> Rule:
    return lambda v: None if test(v) else f"must be {need}, got {v!r}"


def _is_number(value: Any) -> bool:
    try:  # type(), not isinstance(): a bool is not a number here
        return type(value) in (int, float) and math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _text(value: Any) -> str | None:
    """A table cell: non-empty text without '|', line breaks or lone surrogates."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if "|" in value or "\n" in value:
        return "may not hold '|' or a line break (it is a table cell)"
    if escape_surrogates(value) != value:
        return "holds a lone surrogate (a \\udXXX escape), which is not text; write the character"
    return None


def _optional_text(value: Any) -> str | None:
    return None if isinstance(value, str) and not value.strip() else _text(value)


def _one_of(choices: tuple[str, ...]) -> Rule:
    def rule(value: Any) -> str | None:
        if value in choices:
            return None
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        return f"must be one of {', '.join(choices)}, got {value!r}{hint}"

    return rule


def _matches(pattern: str, need: str) -> Rule:
    return _must(lambda v: isinstance(v, str) and re.fullmatch(pattern, v), need)


_STRING = _must(lambda v: isinstance(v, str), "a string")
_OBJECT = _must(lambda v: isinstance(v, dict), "an object")
_NUMBER = _must(_is_number, "a number")
_COUNT = _must(lambda v: type(v) is int and v >= 1, "an integer >= 1")
_SEED = _must(lambda v: type(v) is int and v >= 0, "an integer >= 0")
_FRACTION = _must(lambda v: _is_number(v) and 0 <= v <= 1, "a fraction in [0, 1] (0.115 for 11.5%)")
_CHECKS = _must(lambda v: isinstance(v, list) and v, "a non-empty list of objects")
_VERSION = _must(lambda v: v == SCHEMA_VERSION, f"{SCHEMA_VERSION}, the version this gpbench reads")
_EXPECTATION = _must(
    lambda v: isinstance(v, dict) and set(v) == {"rate", "tol"}, '{"rate": r, "tol": t}'
)
_SETTINGS = _must(
    lambda v: isinstance(v, dict) and all(isinstance(x, (str, int, float)) for x in v.values()),
    "an object of strings, numbers or booleans",
)
DECODING: Schema = {
    "temperature": (REQUIRED, _NUMBER),
    "top_p": (REQUIRED, _NUMBER),
    "max_tokens": (REQUIRED, _must(lambda v: type(v) is int, "an integer")),
}
EXPECTATION: Schema = {"rate": (REQUIRED, _FRACTION), "tol": (REQUIRED, _FRACTION)}
CHECK: Schema = {
    "task": (REQUIRED, _STRING),  # a task id; the registry says which (see _check)
    "split": (REQUIRED, _STRING),  # one of the task's splits
    "n": (REQUIRED, _COUNT),
    "seed": (REQUIRED, _SEED),
    "samples": (1, _COUNT),  # k > 1: the clustered bootstrap
    "decoding": (REQUIRED, _OBJECT, DECODING),
    "sampling_seed": (0, _SEED),
    "budget": (REQUIRED, _COUNT),  # attempts (per decision point for V-IRL)
    "mode": ("gpbench", _STRING),  # one of the task's verifier modes
    "expect": ({}, _OBJECT, {"*": (REQUIRED, _EXPECTATION, EXPECTATION)}),
    "paper": ({}, _OBJECT, {"*": (REQUIRED, _FRACTION)}),  # metric: rate, shown
    "recorded": ("", _optional_text),  # where the expectations come from
}
ENTRY: Schema = {
    "name": (REQUIRED, _matches(r"[a-z0-9][a-z0-9._-]*", "a name matching [a-z0-9][a-z0-9._-]*")),
    "hub": ("", _matches(r"[A-Za-z0-9][\w.-]*/[\w.-]+", "a hub id such as owner/model")),
    "path": ("", _text),  # a folder, relative to the manifest's folder
    "policy": ("", _text),  # the scripted backend's policy
    "licence": (REQUIRED, _text),
    "architecture": (REQUIRED, _text),
    "backend": (REQUIRED, _one_of(BACKENDS)),
    "backend_note": ("", _optional_text),  # free text for people
    "backend_settings": ({}, _SETTINGS),  # passed to the backend (batch_size, dtype, ...)
    "needs_gpu": (False, _must(lambda v: isinstance(v, bool), "true or false")),
    "build": ("", _optional_text),  # the command that makes a missing path
    "checks": (REQUIRED, _CHECKS, CHECK),
}
BLOCK: Schema = {
    "version": (REQUIRED, _VERSION),
    "alpha": (REQUIRED, _must(lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)")),
    "checkpoints": (REQUIRED, _must(lambda v: isinstance(v, list), "a list of objects"), ENTRY),
}
_TOKENS = re.compile(r'(\{|"(?:[^"\\]|\\.)*"\s*:)|"(?:[^"\\]|\\.)*"')
"""An object's "{" or a key (group 1), or another string (skipped with any "{" inside it)."""


def load_manifest(path: Path, *, check_table: bool = True) -> Manifest:
    """Read and validate ``path``; with ``check_table``, also require the table to match the block
    (a :class:`ManifestError` names the file and line of anything missing or wrong)."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "pass --manifest PATH (the repository's checkpoints.md)"
        raise ManifestError(where, 0, f"no such file; {hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(where, 0, f"cannot read it ({exc})") from None
    lines = tuple(text.splitlines())
    fence = _marker_line(lines, FENCE_OPEN, "fenced block opened by", where)
    closes = [i for i in range(fence + 1, len(lines)) if lines[i].strip() == FENCE_CLOSE]
    if not closes:
        raise ManifestError(where, fence + 1, "the JSON block is never closed by a ``` line")
    begin = _marker_line(lines, TABLE_BEGIN, "table begin line", where)
    end = _marker_line(lines, TABLE_END, "table end line", where)
    if end < begin:
        raise ManifestError(where, end + 1, f"the table's end comes before '{TABLE_BEGIN}'")
    block = (fence + 1, closes[0])
    entries, alpha = parse_block("\n".join(lines[block[0] : block[1]]), block[0] + 1, where)
    manifest = Manifest(path, alpha, entries, lines, block, (begin + 1, end))
    if check_table:
        check_table_matches(manifest)
    return manifest


def _marker_line(lines: tuple[str, ...], marker: str, what: str, where: str) -> int:
    found = [i for i, line in enumerate(lines) if line.strip() == marker]
    if len(found) != 1:
        at = f" (lines {', '.join(str(i + 1) for i in found)})" if found else ""
        reason = f"expected exactly one {what} '{marker}', found {len(found)}{at}"
        raise ManifestError(where, found[1] + 1 if found else 0, reason)
    return found[0]


def parse_block(text: str, first_line: int, where: str) -> tuple[tuple[Entry, ...], float]:
    """Parse and validate the JSON block (its first line is file line ``first_line``): first
    :data:`BLOCK` checks every value's type and range, then each entry and check is checked against
    what the schema cannot say (one source, the task registry, unique names and labels)."""
    block = _Block(text, first_line, where)
    data = block.value(block.data, (REQUIRED, _OBJECT, BLOCK), ())
    entries = [_entry(block, raw, ("checkpoints", i)) for i, raw in enumerate(data["checkpoints"])]
    names = [entry.name for entry in entries]
    for i, name in enumerate(names):
        if name in names[:i]:
            block.fail(("checkpoints", i, "name"), f"checkpoint name {name!r} is used twice")
    return tuple(entries), float(data["alpha"])


def _entry(block: _Block, values: dict[str, Any], path: JsonPath) -> Entry:
    sources = [key for key in _SOURCES if values[key]]  # a given source is never "" (its rule)
    if len(sources) != 1:
        reason = "give exactly one of hub (a hub id), path (a folder) or policy (scripted backend)"
        block.fail(path, f"{reason}, found {', '.join(sources) or 'none'}")
    if (sources[0] == "policy") != (values["backend"] == "scripted"):
        reason = "a policy goes with backend scripted, and backend scripted with a policy"
        block.fail((*path, "backend"), reason)
    checks = [_check(block, raw, (*path, "checks", i)) for i, raw in enumerate(values["checks"])]
    labels = [check.label for check in checks]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            block.fail((*path, "checks", i), f"{label} is checked twice; merge the two checks")
    same = {key: values[key] for key in ENTRY if key not in (*_SOURCES, "checks")}
    return Entry(**same, source=values[sources[0]], kind=sources[0], checks=tuple(checks))


def _check(block: _Block, values: dict[str, Any], path: JsonPath) -> Check:
    from gpbench.harness.backends import Sampling
    from gpbench.tasks.registry import get_task

    task: TaskSpec = block.attempt((*path, "task"), get_task, values["task"])
    block.attempt((*path, "split"), task.split, values["split"])
    block.check((*path, "mode"), _one_of(task.verifier_modes)(values["mode"]))
    d, expect, paper = values["decoding"], values["expect"], values["paper"]
    numbers = float(d["temperature"]), float(d["top_p"]), d["max_tokens"]
    sampling = block.attempt((*path, "decoding"), Sampling, *numbers)
    for key, metrics in (("expect", expect), ("paper", paper)):
        for metric in metrics:
            block.check((*path, key, metric), metric_problem(metric, task))
    if not expect and not paper:
        need = "nothing to compare; give expect (tested) or paper (shown for information)"
        block.fail(path, need)
    return Check(
        **{key: values[key] for key in CHECK if key not in ("task", "decoding", "expect", "paper")},
        task=task.id,
        **{key: getattr(sampling, key) for key in DECODING},
        expect=tuple(Expectation(m, float(e["rate"]), float(e["tol"])) for m, e in expect.items()),
        paper=tuple((metric, float(rate)) for metric, rate in paper.items()),
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


class _Block:
    """The parsed JSON block and the file line of each of its objects and keys, by JSON path.

    A key given twice in one object is refused: ``json.loads`` keeps the last, so a hand edit that
    adds an expectation beside an old one would test only one of them.
    """

    def __init__(self, text: str, first_line: int, where: str) -> None:
        twice: dict[int, str] = {}  # the id of an object that holds a key twice: the key

        def to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            value, counts = dict(pairs), Counter(key for key, _ in pairs)
            twice.update({id(value): key for key in counts if counts[key] > 1})
            return value

        try:
            self.data = parse_json(text, object_pairs_hook=to_dict)
        except json.JSONDecodeError as exc:
            reason = f"the JSON block is not valid JSON: {exc.msg}"
            raise ManifestError(where, first_line + exc.lineno - 1, reason) from None
        self.where, self.lines = where, dict[JsonPath, int]()
        # The text holds each object's "{" and each key in the order a depth-first walk of the
        # data meets them, so the n-th of these tokens is on the line of the n-th path walked.
        breaks = [match.start() for match in re.finditer("\n", text)]
        tokens = (m.start() for m in _TOKENS.finditer(text) if m.group(1))
        token_lines = (first_line + bisect.bisect(breaks, start) for start in tokens)
        todo: list[tuple[JsonPath, Any]] = [((), self.data)]
        while todo:  # a stack, not recursion: any depth json.loads accepts is fine
            path, value = todo.pop()
            if path and isinstance(path[-1], str):  # a key's token comes before its value's
                self.lines[path] = next(token_lines)
            if isinstance(value, dict):
                start = next(token_lines)
                self.lines.setdefault(path, start)
                if id(value) in twice:
                    reason = "appears twice in the object that starts on this line; JSON would"
                    reason += " keep only the last one, so remove or merge the other"
                    raise ManifestError(where, start, f"key {twice[id(value)]!r} {reason}")
                todo.extend(((*path, key), item) for key, item in reversed(value.items()))
            elif isinstance(value, list):
                todo.extend(((*path, i), item) for i, item in reversed(list(enumerate(value))))

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

    def attempt(self, path: JsonPath, make: Callable[..., Any], *args: Any) -> Any:
        """``make(*args)``, failing at ``path`` with the reason where it raises a GpbenchError."""
        try:
            return make(*args)
        except GpbenchError as exc:
            self.fail(path, str(exc))

    def value(self, raw: Any, node: tuple[Any, ...], path: JsonPath) -> Any:
        """``raw`` checked by ``node``'s rule and, within, its schema: text stripped, defaults in;
        the first problem met, depth first, fails at its JSON path."""
        rule, schema = node[1], node[2] if len(node) > 2 else None
        self.check(path, rule(raw))
        if schema is None:
            return raw.strip() if rule in (_text, _optional_text) else raw
        if isinstance(raw, list):  # a list's schema is its items'
            item = (REQUIRED, _OBJECT, schema)
            return [self.value(value, item, (*path, i)) for i, value in enumerate(raw)]
        for key in (key for key in raw if key not in schema and "*" not in schema):
            known = f"{did_you_mean(key, schema)} (keys: {', '.join(schema)})"
            self.fail((*path, key), f"unknown key {key!r}{known}")
        out = {
            key: self.value(v, schema.get(key, schema.get("*")), (*path, key))
            for key, v in raw.items()
        }
        for key, (default, *_) in schema.items():
            if key not in out and key != "*":
                if default is REQUIRED:
                    self.fail((*path, key), "is required")
                out[key] = default
        return out


# -- the table: one renderer, and the check that the file's table is its output ----------------


def render_table(entries: tuple[Entry, ...]) -> list[str]:
    """The markdown table's lines: header, separator, one row per checkpoint x check."""
    rows = [list(HEADER), *(_row(entry, check) for entry in entries for check in entry.checks)]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    return [lines[0], "|" + "---|" * len(HEADER), *lines[1:]]


def _row(entry: Entry, check: Check) -> list[str]:
    greedy = check.temperature == 0
    decoding = "greedy" if greedy else f"T={check.temperature:g} top-p {check.top_p:g}"
    parts = [f"{decoding}, {check.max_tokens} tokens", f"budget {check.budget}"]
    parts += [f"{check.samples} samples"] if check.samples != 1 else []
    parts += [f"sampling seed {check.sampling_seed}"] if check.sampling_seed != 0 else []
    parts += [f"{check.mode} mode"] if check.mode != "gpbench" else []
    note = f" ({entry.backend_note})" if entry.backend_note else ""
    expected = [f"{e.metric} {percent(e.rate)} ± {100 * e.tol:.1f}" for e in check.expect]
    return [
        entry.name,
        _SOURCES[entry.kind].format(entry.source),
        entry.licence,
        entry.architecture,
        entry.backend + note + ("; needs a GPU" if entry.needs_gpu else ""),
        f"{check.task} {check.split} (n={check.n}, seed {check.seed})",
        "; ".join(parts),
        "; ".join(expected) or "information only",
        "; ".join(f"{m} {percent(r)}" for m, r in check.paper) or "—",
        check.recorded or "—",
    ]


def check_table_matches(manifest: Manifest) -> None:
    """Raise :class:`ManifestError` at the first table line that differs from the block."""
    (first, end), lines = manifest.table, manifest.lines
    found = [(i + 1, _cells(lines[i])) for i in range(first, end) if lines[i].strip()]
    rows, wanted = found[2:], [_cells(line) for line in render_table(manifest.entries)[2:]]

    def differ(line: int, reason: str) -> NoReturn:
        raise ManifestError(str(manifest.path), line, f"{reason}; {_FIX_TABLE}")

    if len(found) < 2 or found[0][1] != list(HEADER):
        reason = f"the table header must be | {' | '.join(HEADER)} |"
        differ(found[0][0] if found else first + 1, reason)
    for (line, cells), want in zip(rows, wanted, strict=False):
        if len(cells) != len(want):
            differ(line, f"table row has {len(cells)} cells, expected {len(want)}")
        for column, cell, expected in zip(HEADER, cells, want, strict=True):
            if cell != expected:
                where = f"table row {want[0]} {want[5]}: column '{column}'"
                differ(line, f"{where} reads {cell!r} but the JSON block gives {expected!r}")
    if len(rows) != len(wanted):
        line = rows[len(wanted)][0] if len(rows) > len(wanted) else end
        differ(line, f"the table has {len(rows)} rows but the JSON block has {len(wanted)} checks")


def _cells(line: str) -> list[str]:
    text = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip() for cell in text.split("|")]


# -- writing: the block's data (defaults left out), its text, the file with both rewritten -----


def to_data(alpha: float, entries: tuple[Entry, ...]) -> dict[str, Any]:
    """The JSON block's object for ``entries`` (the inverse of :func:`parse_block`)."""
    out = []
    for entry in entries:
        checks = []
        for c in entry.checks:
            decoding = {key: getattr(c, key) for key in DECODING}
            expect = {e.metric: {"rate": e.rate, "tol": e.tol} for e in c.expect}
            data = {**vars(c), "decoding": decoding, "expect": expect, "paper": dict(c.paper)}
            checks.append(_given(data, CHECK))
        out.append(_given({**vars(entry), entry.kind: entry.source, "checks": checks}, ENTRY))
    return {"version": SCHEMA_VERSION, "alpha": alpha, "checkpoints": out}


def _given(values: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """The schema's keys in ``values``, in the schema's order, less those that equal the default."""
    return {
        key: values[key]
        for key, (default, *_) in schema.items()
        if values.get(key, default) != default
    }


def dump_block(data: Any, indent: int = 0) -> str:
    """JSON with objects of scalars on one line (diff-friendly: one expectation per line)."""
    keyed = isinstance(data, dict)
    pairs = list(data.items() if keyed else enumerate(data) if isinstance(data, list) else [])
    if not any(isinstance(v, (dict, list)) for _, v in pairs):
        # One line, non-ASCII kept readable, a lone surrogate (backend settings) escaped.
        return escape_surrogates(json.dumps(data, ensure_ascii=False))
    heads = [" " * (indent + 2) + (f"{json.dumps(k)}: " if keyed else "") for k, _ in pairs]
    lines = [head + dump_block(v, indent + 2) for head, (_, v) in zip(heads, pairs, strict=True)]
    opening, closing = "{}" if keyed else "[]"
    return opening + "\n" + ",\n".join(lines) + "\n" + " " * indent + closing


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
