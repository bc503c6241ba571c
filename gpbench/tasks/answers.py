"""Robust extraction of a model's JSON-like answer, shared by all tasks.

Models answer in the paper's format, e.g.
``{"cards": ['A', '3', 'K', '6'], "number": [1, 3, 10, 6], "formula": "(3*10-6)*1=24",}``, but the
text around it varies: code fences, prose before and after, single quotes, trailing commas,
``//`` or ``#`` comments, Python literals (``True``, ``None``), unquoted card names (``[J, 10]``)
and unquoted keys (``formula: "..."``). The answer is hostile data, so it is read by a small
tolerant parser written here: no ``eval``, no ``ast.literal_eval`` (which can die with
``MemoryError`` or ``RecursionError`` on hostile nesting). Every bound is fixed:

* only the last ``max_chars`` characters of an answer are examined (an answer's object sits at
  its end; a longer answer is rambling, and the cut keeps the work linear and small);
* containers nest at most :data:`MAX_DEPTH` deep; deeper input is a syntax error;
* at most :data:`MAX_CANDIDATES` ``{...}`` spans are tried per answer.

When an answer holds several objects, :func:`extract_object` returns the LAST one that parses:
models restate or correct themselves, and their final word is the answer.

Lenient grammar (a superset of JSON and of Python literals of str/int/float/bool/None/list/dict):

* strings in ``'...'`` or ``"..."`` on one line, with JSON and Python escapes (``\\n``, ``\\t``,
  ``\\uXXXX``, ``\\xXX``, ``\\UXXXXXXXX``, ...); an unknown escape keeps its backslash;
* numbers: ints and floats, signed; a numeric literal over 64 characters stays a string;
* ``true``/``false``/``null`` and ``True``/``False``/``None``;
* any other unquoted run of text (up to ``, : [ ] { }``, a quote, a comment or the end of the
  line) is a *bare token*: a number if it reads as one, else a string with surrounding
  whitespace removed (``[A, 3, K]`` -> ``["A", 3, "K"]``, ``formula: 2*12=24`` -> ``"2*12=24"``);
* keys may be strings or bare tokens; duplicate keys: the last one wins;
* commas between items are optional and a trailing comma is allowed;
* ``//`` and ``#`` start comments that run to the end of the line (outside strings).

>>> extract_object('Sure! {"cards": [J, 10], formula: "10+J",} Good luck.')
{'cards': ['J', 10], 'formula': '10+J'}
>>> extract_field("{'formula': '(3*10-6)*1=24'}", "formula")
'(3*10-6)*1=24'
>>> extract_field('formula: 4*6=24', "formula")
'4*6=24'
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right, insort
from collections.abc import Collection, Sequence
from functools import lru_cache
from itertools import accumulate, count, islice
from operator import add
from typing import NoReturn, TypeAlias

__all__ = [
    "MAX_CANDIDATES",
    "MAX_CHARS",
    "MAX_DEPTH",
    "AnswerSyntaxError",
    "Json",
    "extract_field",
    "extract_field_fallback",
    "extract_object",
    "extract_object_fields",
    "parse_lenient",
]

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
"""A parsed value: what ``json.loads`` returns (non-finite floats are kept as strings)."""

MAX_CHARS = 65536
"""Default number of characters examined, counted from the end of the text."""
MAX_DEPTH = 32
"""Deepest nesting of lists and objects that parses; deeper is an :class:`AnswerSyntaxError`."""
MAX_CANDIDATES = 16
"""Most ``{...}`` spans :func:`extract_object` tries to parse, from the end of the text."""
# Spans looked at (tried or skipped) per call: hostile text can hold tens of thousands.
_MAX_SPANS_EXAMINED = 256

# A numeric literal longer than this stays a string: int() of a huge digit run costs quadratic
# time and raises past Python's 4300-digit limit.
_MAX_NUMBER_CHARS = 64


class AnswerSyntaxError(ValueError):
    """Text that the lenient parser cannot read as one value; ``position`` is where it stopped."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.position = position


_SKIP_RE = re.compile(r"(?:\s+|//[^\n]*|#[^\n]*)*")
# A bare token: anything up to a delimiter, quote, comment or line end ('/' alone is fine: 8/3).
_BARE_RE = re.compile(r"""(?:[^,:\[\]{}"'#/\n]|/(?!/))+""")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?")
_STRING_CHUNK_RE = {'"': re.compile(r'[^"\\\n]*'), "'": re.compile(r"[^'\\\n]*")}
_HEX_RE = {n: re.compile(f"[0-9a-fA-F]{{{n}}}") for n in (2, 4, 8)}
_LITERALS: dict[str, Json] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "\\": "\\",
    "/": "/",
    "'": "'",
    '"': '"',
    "\n": "",  # backslash-newline: Python's line continuation inside a string
}
_ESCAPE_WIDTH = {"x": 2, "u": 4, "U": 8}


class _Parser:
    """Recursive descent over ``text[pos:end]``; recursion is bounded by :data:`MAX_DEPTH`."""

    __slots__ = ("end", "pos", "text")

    def __init__(self, text: str, pos: int, end: int) -> None:
        self.text = text
        self.pos = pos
        self.end = end

    def fail(self, what: str) -> NoReturn:
        raise AnswerSyntaxError(f"{what} at {self.pos}", self.pos)

    def skip(self) -> None:
        match = _SKIP_RE.match(self.text, self.pos, self.end)
        if match is not None:  # always matches (it may match nothing); this satisfies mypy
            self.pos = match.end()

    def value(self, depth: int) -> Json:
        self.skip()
        if self.pos >= self.end:
            self.fail("expected a value but the text ended")
        c = self.text[self.pos]
        if c == "{":
            return self.object(depth + 1)
        if c == "[":
            return self.array(depth + 1)
        if c in "\"'":
            return self.string()
        return self.bare()

    def object(self, depth: int) -> dict[str, Json]:
        if depth > MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH}")
        self.pos += 1
        result: dict[str, Json] = {}
        while True:
            self.skip()
            if self.pos >= self.end:
                self.fail("unclosed '{'")
            c = self.text[self.pos]
            if c == "}":
                self.pos += 1
                return result
            key = self.string() if c in "\"'" else self.bare_text()
            self.skip()
            if self.pos >= self.end or self.text[self.pos] != ":":
                self.fail(f"expected ':' after key {key[:20]!r}")
            self.pos += 1
            result[key] = self.value(depth)
            self.comma()

    def array(self, depth: int) -> list[Json]:
        if depth > MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH}")
        self.pos += 1
        result: list[Json] = []
        while True:
            self.skip()
            if self.pos >= self.end:
                self.fail("unclosed '['")
            if self.text[self.pos] == "]":
                self.pos += 1
                return result
            result.append(self.value(depth))
            self.comma()

    def comma(self) -> None:
        """Consume one optional comma after an item (missing commas are tolerated)."""
        self.skip()
        if self.pos < self.end and self.text[self.pos] == ",":
            self.pos += 1

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        chunk = _STRING_CHUNK_RE[quote]
        parts: list[str] = []
        while True:
            match = chunk.match(self.text, self.pos, self.end)
            if match is not None:  # always matches; the check satisfies mypy
                parts.append(match.group())
                self.pos = match.end()
            if self.pos >= self.end:
                self.fail("unterminated string")
            c = self.text[self.pos]
            self.pos += 1
            if c == quote:
                return "".join(parts)
            if c == "\n":
                self.fail("line break inside a string")
            parts.append(self.escape())

    def escape(self) -> str:
        """The character(s) for the escape after a backslash; ``pos`` is past the backslash."""
        if self.pos >= self.end:
            self.fail("unterminated string")
        c = self.text[self.pos]
        self.pos += 1
        simple = _SIMPLE_ESCAPES.get(c)
        if simple is not None:
            return simple
        width = _ESCAPE_WIDTH.get(c)
        if width is None or _HEX_RE[width].match(self.text, self.pos, self.end) is None:
            return "\\" + c  # unknown or malformed escape: keep it, as Python does
        code = int(self.text[self.pos : self.pos + width], 16)
        self.pos += width
        if 0xD800 <= code < 0xDC00:  # high surrogate: JSON spells astral characters as a pair
            after = self.pos + 2
            if (
                self.text.startswith("\\u", self.pos, self.end)
                and _HEX_RE[4].match(self.text, after, self.end) is not None
            ):
                low = int(self.text[after : after + 4], 16)
                if 0xDC00 <= low < 0xE000:
                    self.pos = after + 4
                    return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
        if 0xD800 <= code < 0xE000 or code > 0x10FFFF:
            # A lone surrogate cannot be encoded as UTF-8 later; an out-of-range code is no char.
            return "\ufffd"
        return chr(code)

    def bare_text(self) -> str:
        match = _BARE_RE.match(self.text, self.pos, self.end)
        if match is None or not match.group().strip():
            found = repr(self.text[self.pos]) if self.pos < self.end else "the end"
            self.fail(f"expected a value but found {found}")
        self.pos = match.end()
        return match.group().strip()

    def bare(self) -> Json:
        return _bare_value(self.bare_text())


def _bare_value(token: str) -> Json:
    """The value of a stripped, non-empty bare token: a literal, a number, else the text."""
    if token in _LITERALS:
        return _LITERALS[token]
    if len(token) <= _MAX_NUMBER_CHARS:
        if token.isdigit() and token.isascii():  # the common case of _INT_RE, tested first
            return int(token)
        if _INT_RE.fullmatch(token):
            return int(token)
        if _FLOAT_RE.fullmatch(token):
            number = float(token)
            if math.isfinite(number):
                return number
    return token


def parse_lenient(text: str, *, max_chars: int = MAX_CHARS) -> Json:
    """Parse the whole of ``text`` as one lenient value (see the module docstring).

    Raises :class:`AnswerSyntaxError` when ``text`` is not one value, nests deeper than
    :data:`MAX_DEPTH` or is longer than ``max_chars``; never any other exception.

    >>> parse_lenient("[A, 3, K, 6,]  // the cards")
    ['A', 3, 'K', 6]
    >>> parse_lenient("{'ok': True, 'n': -1.5, 'x': None}")
    {'ok': True, 'n': -1.5, 'x': None}
    """
    if len(text) > max_chars:
        raise AnswerSyntaxError(f"text has {len(text)} characters, limit {max_chars}")
    parser = _Parser(text, 0, len(text))
    result = parser.value(0)
    parser.skip()
    if parser.pos != parser.end:
        parser.fail("unexpected text after the value")
    return result


# Finding the {...} spans. Inside braces only braces, strings and comments matter; outside them
# only "{" does. A string is on one line; a quote with no partner on its line is an ordinary
# character. Every quantifier is possessive, so each match is one linear pass.
_DQ_ESC = r'"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"'
_SQ_ESC = r"'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'"
# Between two braces of a run: plain text and strings with no escape or brace in them.
_GAP = r"""[^{}"'#/]*+(?:(?:"[^"\\\n{}]*+"|'[^'\\\n{}]*+')[^{}"'#/]*+)*+"""
# Inside braces: everything up to the next run of braces (group 1), strings and comments
# skipped. A run is "{" or "}" repeated, with gaps between them ({"a": [{"a": [{ is one run), so
# nested text costs one step per run, not one per brace.
_TO_BRACES_RE = re.compile(
    rf"""[^{{}}"'#/]*+(?:(?:{_DQ_ESC}|{_SQ_ESC}|["']|//[^\n]*+|/|#[^\n]*+)[^{{}}"'#/]*+)*+"""
    rf"(\{{++(?:{_GAP}\{{++)*+|\}}++(?:{_GAP}\}}++)*+)"
)

# The fast path: a flat object in a subset of the lenient grammar, read with regular
# expressions. Keys and values are strings without escapes, bare tokens, or lists of those; no
# comments, no nesting beyond one list, whitespace and one optional comma after each item.
# Alternatives start with different characters and quantifiers are possessive, so every part
# matches exactly what the parser reads there (a bare token is _BARE_RE's run, stripped), in
# linear time. Such a match is also exactly the span the brace scan finds from its "{": outside
# its strings it holds no brace, quote or comment. Anything outside the subset does not match
# and is read by _Parser.
# Strings: escapes other than \x, \u and \U (which need their hex digits read) are allowed.
_Q = r""""[^"\\\n]*+(?:\\[^\nxuU][^"\\\n]*+)*+"|'[^'\\\n]*+(?:\\[^\nxuU][^'\\\n]*+)*+'"""
_ESCAPE_RE = re.compile(r"\\(.)")
_BARE = r"""(?:[^,:\[\]{}"'#/\n]++|/(?!/))++"""
_ITEM = rf"\s*+(?:{_Q}|{_BARE})\s*+,?+"
# A member's value: a string, a list of strings and bare tokens, or a bare token.
_VALUE = rf"{_Q}|\[(?:{_ITEM})*+\s*+\]|{_BARE}"
_MEMBER = rf"\s*+(?:{_Q}|{_BARE})\s*+:\s*+(?:{_VALUE})\s*+,?+"
# A member with groups: (key quoted, key bare, value quoted, list items, value bare). A quoted
# or bare group is never empty when it took part, so a false group did not.
_MEMBER_GROUPS = (
    rf"\s*+(?:({_Q})|({_BARE}))\s*+:\s*+(?:({_Q})|\[((?:{_ITEM})*+)\s*+\]|({_BARE}))\s*+,?+"
)
_MEMBER_RE = re.compile(_MEMBER_GROUPS)
_ITEM_RE = re.compile(rf"\s*+(?:({_Q})|({_BARE}))\s*+,?+")  # (item quoted, item bare)
# The object: the first _INLINE_MEMBERS members in groups of their own, so that the usual answer
# is read in one match; the members after them in the last group (they tile it, so findall reads
# them one after the other, in linear time).
_INLINE_MEMBERS = 4
_members = rf"((?:{_MEMBER})*+)"
for _ in range(_INLINE_MEMBERS):
    _members = rf"(?:{_MEMBER_GROUPS}{_members})?+"
_FLAT_OBJECT_RE = re.compile(rf"\{{{_members}\s*+\}}")
del _members
# A key that an escape cannot spell (escapes give quotes, slashes, control characters or keep
# their backslash) and that reads the same quoted or bare.
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_]+")


@lru_cache(maxsize=16)
def _one_key_object_re(key: str) -> re.Pattern[str] | None:
    """:data:`_FLAT_OBJECT_RE` for a caller that wants only ``key`` (a plain key, else None).

    The same language and extent: each member is tried as a ``key`` member first, which matches
    exactly where the general member would, with the same key. Group 1 is the ``}`` of an empty
    object; group 2 the value text of the last ``key`` member (a repeated group keeps its last
    capture, and the parser keeps the last duplicate), so nothing else is sliced or converted.
    """
    if not _PLAIN_KEY_RE.fullmatch(key):
        return None
    wanted = rf"""\s*+(?:"{key}"|'{key}'|{key})\s*+:\s*+({_VALUE})\s*+,?+"""
    return re.compile(rf"\{{(?:\s*+(\}})|(?:{wanted}|{_MEMBER})*+\s*+\}})")


def _value_from_text(value: str) -> Json:
    """The value of a :data:`_VALUE` match, as :func:`_member_value` reads it from its groups."""
    first = value[0]
    if first == '"' or first == "'":
        return _unquote(value)
    if first == "[":
        return _member_value(None, value[1:-1], None)
    return _bare_value(value.strip())


# The text the parser reads without error before it fails for depth: MAX_DEPTH containers
# opened, each with nothing before the next one (an object: a key and ":"). The next "{" or "["
# is where _Parser raises. Strings here are read as the parser reads them, any escape included.
_SKIP = r"(?:\s++|//[^\n]*+|#[^\n]*+)*+"
_KEY = rf"""(?:"[^"\\\n]*+(?:\\[\s\S][^"\\\n]*+)*+"|'[^'\\\n]*+(?:\\[\s\S][^'\\\n]*+)*+'|{_BARE})"""
_TOO_DEEP_RE = re.compile(rf"(?:\{{{_SKIP}{_KEY}{_SKIP}:{_SKIP}|\[{_SKIP}){{{MAX_DEPTH}}}[{{\[]")
# An object that fails at once: no key after "{" (a character no key starts with), or no ":"
# after the key. The last character matched is where _Parser raises.
_NO_KEY_RE = re.compile(rf"\{{{_SKIP}(?:[,:\[\]{{]|{_KEY}{_SKIP}[^:])")


_MEMBER_STARTS = tuple(range(0, 5 * _INLINE_MEMBERS, 5))  # each inline member's first group


def _flat_members(match: re.Match[str], keys: Collection[str] | None) -> dict[str, Json]:
    """The object a :data:`_FLAT_OBJECT_RE` match read, as the parser reads it; only ``keys``."""
    groups = match.groups()
    result: dict[str, Json] = {}
    quoted = None if keys is None else _quoted_forms(keys)
    for i in _MEMBER_STARTS:
        key_q = groups[i]
        if key_q is not None:
            if "\\" in key_q:
                key = _unquote(key_q)
            elif quoted is not None and key_q not in quoted:
                continue  # an unwanted key (a quoted key is wanted iff its quoted form is)
            else:
                key = key_q[1:-1]
        elif groups[i + 1] is not None:
            key = groups[i + 1].strip()
        else:  # an inline member that did not take part: the members ended
            return result
        if keys is None or key in keys:
            value_q = groups[i + 2]
            if value_q is not None and "\\" not in value_q:  # the usual string value
                result[key] = value_q[1:-1]
            else:
                result[key] = _member_value(value_q, groups[i + 3], groups[i + 4])
    if groups[-1]:  # more members than the inline ones
        for key_q, key_bare, value_q, items, value_bare in _MEMBER_RE.findall(groups[-1]):
            key = _unquote(key_q) if key_q else key_bare.strip()
            if keys is None or key in keys:
                result[key] = _member_value(value_q, items, value_bare)
    return result


_QUOTED_FORMS: dict[Collection[str], frozenset[str]] = {}


def _quoted_forms(keys: Collection[str]) -> frozenset[str]:
    """``"key"`` and ``'key'`` for each key: a member's quoted key (without escapes) is wanted
    exactly when it is one of these, so unwanted keys are never sliced out."""
    try:
        forms = _QUOTED_FORMS.get(keys)
    except TypeError:  # an unhashable collection (a set): computed each time
        forms = None
    if forms is None:
        forms = frozenset(f"{q}{key}{q}" for key in keys for q in "\"'")
        try:
            if len(_QUOTED_FORMS) < 64:
                _QUOTED_FORMS[keys] = forms
        except TypeError:
            pass
    return forms


def _member_value(value_q: str | None, items: str | None, value_bare: str | None) -> Json:
    """A member's value from its groups (absent ones None or empty)."""
    if value_q:
        return _unquote(value_q)
    if value_bare:
        return _bare_value(value_bare.strip())
    return [_unquote(q) if q else _bare_value(b.strip()) for q, b in _ITEM_RE.findall(items or "")]


def _unquote(quoted: str) -> str:
    """The text of a string :data:`_Q` matched, as :meth:`_Parser.string` reads it."""
    text = quoted[1:-1]
    if "\\" in text:  # simple escapes; an unknown one keeps its backslash
        return _ESCAPE_RE.sub(_unescape, text)
    return text


def _unescape(match: re.Match[str]) -> str:
    return _SIMPLE_ESCAPES.get(match.group(1), match.group())


def _object_spans(text: str) -> tuple[list[tuple[int, int]], dict[int, re.Match[str]]]:
    """``(start, end)`` of the last :data:`_MAX_SPANS_EXAMINED` (at least) balanced ``{...}``
    spans, in the order the spans close, and the :data:`_FLAT_OBJECT_RE` match of each span that
    is a flat object, by start.

    One linear pass. Quotes are only honoured inside braces, so an apostrophe in prose ("Here's")
    does not hide what follows; a quote with no closing partner on its line is read as an
    ordinary character for the same reason.
    """
    spans: list[tuple[int, int]] = []
    flats: dict[int, re.Match[str]] = {}
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return spans, flats
        flat = _FLAT_OBJECT_RE.match(text, start)
        if flat is not None:  # the usual answer: its span in one match
            pos = flat.end()
            spans.append((start, pos))
            flats[start] = flat
            continue
        opens = [start]
        pos = start + 1
        while opens:
            match = _TO_BRACES_RE.match(text, pos)
            if match is None:  # no brace left: the open spans never close
                return spans, flats
            run, pos = match.span(1)
            if text[run] == "{":
                if pos - run == 1:
                    opens.append(run)
                else:
                    opens.extend(_brace_positions(text, run, pos, "{", 0))
                continue
            # A run of closers; those left over once every span is closed are prose, like any
            # text (and the run holds no "{" to start a new span).
            if pos - run == 1:
                spans.append((opens.pop(), pos))
                continue
            ends = _brace_positions(text, run, pos, "}", 1)
            count = min(len(ends), len(opens))
            # The i-th closer closes the i-th open from the top; only the last ones closed (the
            # outermost) are ever looked at, so only they are paired.
            keep = min(count, _MAX_SPANS_EXAMINED)
            base = len(opens) - count
            outermost = opens[base : base + keep]
            outermost.reverse()
            del opens[base:]
            spans.extend(zip(outermost, ends[count - keep : count], strict=True))
            if len(spans) > 4 * _MAX_SPANS_EXAMINED:
                del spans[: len(spans) - _MAX_SPANS_EXAMINED]


def _brace_positions(text: str, start: int, end: int, brace: str, shift: int) -> Sequence[int]:
    """Where each ``brace`` in ``text[start:end]`` is (plus ``shift``), computed in C loops.

    ``text[start]`` and ``text[end - 1]`` are braces (a run). Hostile and looping answers nest one unit over and over
    (``{"a": [{"a": [``, ``}]}]``): the longest prefix of the run that repeats the text up to its
    second brace is a ``range``, found with C string comparisons; only the rest is split.
    """
    second = text.find(brace, start + 1, end)
    if second < 0:
        return (start + shift,)
    step = second - start
    repeats = (end - start) // step  # at most this many whole units fit
    unit = text[start:second]
    if not text.startswith(unit * repeats, start):
        low, high = 1, repeats - 1  # the largest count of whole units that match, by bisection
        while low < high:
            middle = (low + high + 1) // 2
            if text.startswith(unit * middle, start):
                low = middle
            else:
                high = middle - 1
        repeats = low
    rest = start + repeats * step
    if rest >= end - 1:  # the run is whole units, possibly closed by one more brace
        return range(start + shift, end + shift, step)
    positions = range(start + shift, rest + shift, step)
    gaps = text[rest:end].split(brace)[:-1]  # the text before each later brace
    return [*positions, *map(add, accumulate(map(len, gaps)), count(rest + shift))]


def _find_object(text: str, max_chars: int) -> dict[str, Json] | re.Match[str] | None:
    """What :func:`extract_object` returns, a flat object still as its regex match."""
    if max_chars < 1:
        return None
    window = text[-max_chars:]
    spans, flats = _object_spans(window)
    if spans:  # the usual answer: the last span is a flat object, and it is tried first
        flat = flats.get(spans[-1][0])
        if flat is not None and (flat.group(1) is not None or flat.group(2) is not None):
            return flat
    empty: dict[str, Json] | None = None
    failed_at: list[int] = []  # where the candidates tried so far stopped parsing, sorted
    tried = 0
    budget = len(window)  # characters of candidate text left to parse; the first is always tried
    for start, end in islice(reversed(spans), _MAX_SPANS_EXAMINED):
        if tried == MAX_CANDIDATES or budget < 0:
            break
        # A span around the point where an enclosing candidate failed would fail there again
        # (the grammar is context-free); re-parsing it is what makes nested hostile text slow.
        if failed_at:
            after = bisect_right(failed_at, start)  # the first failure past the start
            if after < len(failed_at) and failed_at[after] < end:
                continue
        tried += 1
        budget -= end - start
        flat = flats.get(start)
        if flat is None:
            flat = _FLAT_OBJECT_RE.fullmatch(window, start, end)
            if flat is None:
                # Where the parser would fail, when one match can tell (hostile text, mostly).
                doomed = _NO_KEY_RE.match(window, start, end) or _TOO_DEEP_RE.match(
                    window, start, end
                )
                if doomed is not None:
                    insort(failed_at, doomed.end() - 1)
                    continue
        if flat is not None:
            if flat.group(1) is not None or flat.group(2) is not None:  # a first key: not empty
                return flat
            if empty is None:
                empty = {}
            continue
        parser = _Parser(window, start, end)
        try:
            result = parser.value(0)
        except AnswerSyntaxError as error:
            insort(failed_at, error.position)
            continue
        parser.skip()
        if parser.pos != end or not isinstance(result, dict):
            continue
        if result:
            return result
        if empty is None:
            empty = result
    return empty


def extract_object(text: str, *, max_chars: int = MAX_CHARS) -> dict[str, Json] | None:
    """The last top-level ``{...}`` object in text parsed leniently, else None.

    Only the last ``max_chars`` characters are examined. Candidate spans are tried in the order
    they close, latest first, so a later object beats an earlier one and an enclosing object is
    tried before the objects nested in it (which are tried only if it fails to parse, and only
    those that do not contain the place where it failed). At most :data:`MAX_CANDIDATES` spans
    are tried, and once ``max_chars`` characters of candidates have been parsed no further one
    is started, so the work stays linear in ``max_chars``. An empty ``{}`` is returned only when no non-empty
    object is found among them (so a stray ``{}`` in trailing prose does not hide the answer).
    Never raises.

    >>> extract_object('{"formula": "1+2"} then {"formula": "4*6"}')
    {'formula': '4*6'}
    >>> extract_object("{{{{") is None
    True
    """
    found = _find_object(text, max_chars)
    if isinstance(found, re.Match):
        return _flat_members(found, None)
    return found


def extract_object_fields(
    text: str, keys: Collection[str], *, max_chars: int = MAX_CHARS
) -> dict[str, Json] | None:
    """:func:`extract_object` with only the members named in ``keys``.

    None exactly when :func:`extract_object` returns None; otherwise its object without the
    other members (which are checked but not converted, so this is faster). Never raises.

    >>> extract_object_fields('{"cards": [J, 10], "formula": "10+J"}', {"formula"})
    {'formula': '10+J'}
    """
    if max_chars < 1:
        return None
    window = text[-max_chars:]
    start = window.find("{")
    if start >= 0:  # the usual answer: one flat object, the only "{...}" in the text
        one_key = None
        if len(keys) == 1:  # the verifier's case, the formula alone: one group to read
            (key,) = keys
            one_key = _one_key_object_re(key)
        if one_key is not None:
            flat = one_key.match(window, start)
            # Not empty (group 1), and the only "{...}" in the text. It matches exactly where
            # _FLAT_OBJECT_RE does, so a miss here is a miss there too.
            if flat is not None and flat.group(1) is None and window.find("{", flat.end()) < 0:
                value = flat.group(2)
                return {} if value is None else {key: _value_from_text(value)}
        else:
            flat = _FLAT_OBJECT_RE.match(window, start)
            # A group took part only if the first member did (lastindex is None for "{}").
            if flat is not None and flat.lastindex is not None and window.find("{", flat.end()) < 0:
                return _flat_members(flat, keys)
    found = _find_object(window, max_chars)
    if isinstance(found, re.Match):
        return _flat_members(found, keys)
    if found is None:
        return None
    return {key: value for key, value in found.items() if key in keys}


@lru_cache(maxsize=64)
def _field_pattern(key: str) -> re.Pattern[str]:
    # The key, optionally quoted with the same quote on both sides, not glued to a longer word.
    return re.compile(rf"""(?<![\w"'])(?P<q>["']?){re.escape(key)}(?P=q)[ \t]*:[ \t]*""")


def extract_field(text: str, key: str, *, max_chars: int = MAX_CHARS) -> Json | None:
    """Value of ``key`` from :func:`extract_object`, else from a one-line regex fallback.

    The fallback finds ``"key": ...``, ``'key': ...`` or ``key: ...``; the result is None when
    the key is absent.

    The fallback serves answers whose object does not parse (cut off by the token limit, broken
    quoting, or no braces at all). It takes the LAST ``key:`` in the examined window, reads one
    lenient value after it and, if that fails, the rest of the line (a trailing comma and an
    unmatched leading quote removed). The key match is case-sensitive. Never raises.

    >>> extract_field('{"formula": "(3*10-6)*1=24", "cards": [A, 3', "formula")
    '(3*10-6)*1=24'
    >>> extract_field("no answer here", "formula") is None
    True
    """
    found = extract_object_fields(text, (key,), max_chars=max_chars)
    if found is not None and key in found:
        return found[key]
    return extract_field_fallback(text, key, max_chars=max_chars)


def _last_field_match(window: str, key: str) -> re.Match[str] | None:
    """The last match of :func:`_field_pattern` that ``finditer`` over ``window`` yields.

    Every match holds the key, starting at the key or at the quote before it, so only the
    places where the key occurs are tried (``str.find`` skips the rest far faster than the
    pattern could), in finditer's order: left to right, never inside the previous match.
    """
    pattern = _field_pattern(key)
    last: re.Match[str] | None = None
    pos = 0  # where finditer would search next
    at = window.find(key)
    while at >= 0:
        match = None
        if at - 1 >= pos:
            match = pattern.match(window, at - 1)
        if match is None and at >= pos:
            match = pattern.match(window, at)
        if match is None:
            at = window.find(key, at + 1)
        else:
            last = match
            pos = match.end()
            at = window.find(key, pos)
    return last


def extract_field_fallback(text: str, key: str, *, max_chars: int = MAX_CHARS) -> Json | None:
    """The regex fallback of :func:`extract_field` alone, without parsing the object again.

    ``extract_field(text, key)`` is ``found[key]`` when ``found = extract_object(text)`` is an
    object holding ``key``, and ``extract_field_fallback(text, key)`` otherwise: a caller that
    already has ``found`` calls this instead of parsing the text twice. Never raises.

    >>> extract_field_fallback('{"formula": "4*6=24", "cards": [A, 3', "formula")
    '4*6=24'
    """
    if not key or max_chars < 1:
        return None
    window = text[-max_chars:]
    last = _last_field_match(window, key)
    if last is None:
        return None
    parser = _Parser(window, last.end(), len(window))
    try:
        return parser.value(0)
    except AnswerSyntaxError:
        pass
    newline = window.find("\n", last.end())
    raw = window[last.end() : len(window) if newline < 0 else newline].strip()
    raw = raw.rstrip(",").strip()
    if raw[:1] in ("'", '"') and not raw.endswith(raw[0]):
        raw = raw[1:].strip()
    return raw or None
