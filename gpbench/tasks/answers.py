"""Robust extraction of a model's JSON-like answer, shared by all tasks.

Models answer in the paper's format, e.g.
``{"cards": ['A', '3', 'K', '6'], "number": [1, 3, 10, 6], "formula": "(3*10-6)*1=24",}``, but the
text around it varies: code fences, prose before and after, single quotes, trailing commas,
``//`` or ``#`` comments, Python literals (``True``, ``None``), unquoted card names (``[J, 10]``)
and unquoted keys inside the braces (``{formula: "..."}``). The answer is hostile data, so it is
read by a small tolerant parser written here: no ``eval``, no ``ast.literal_eval`` (which can
die with ``MemoryError`` or ``RecursionError`` on hostile nesting). Every bound is fixed (see the
constants): only an answer's last characters are examined (its object sits at its end, and the
cut keeps the work linear), nesting is capped, and so are the ``{...}`` spans tried.

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

Outside a parsed object a key counts where it is a field, never where it is a word of prose: a
quoted key (``"formula":``, ``'formula':``) anywhere; a bare one only right after ``{`` or ``,``
(a broken object) or at the start of a line (``formula: ...``, ``- **formula**: ...``) with its
value on that line. "Here's how to derive the formula:" is prose and never shadows the answer
written after it.

>>> extract_field("Here's how to derive the formula:\\n\\n1. Multiply 5 by 5.", "formula") is None
True
>>> extract_field("- **action**: forward()", "action")
'forward()'
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
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

# Longer numeric literals stay strings: int() is quadratic in digits and fails past 4300 of them.
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
_LOW_SURROGATE_RE = re.compile(r"\\u([dD][c-fC-F][0-9a-fA-F]{2})")  # \uDC00 to \uDFFF
_LITERALS: dict[str, Json] = {"true": True, "false": False, "null": None}  # JSON's spellings
_LITERALS |= {"True": True, "False": False, "None": None}  # and Python's
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
# Characters that escape to themselves; a backslash-newline is Python's line continuation.
_SIMPLE_ESCAPES |= {"\\": "\\", "/": "/", "'": "'", '"': '"', "\n": ""}
_ESCAPE_WIDTH = {"x": 2, "u": 4, "U": 8}


@dataclass(slots=True)
class _Parser:
    """Recursive descent over ``text[pos:end]``; recursion is bounded by :data:`MAX_DEPTH`."""

    text: str
    pos: int
    end: int

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
        if c in "{[" and depth >= MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH}")
        if c == "{":
            return self.object(depth + 1)
        if c == "[":
            return self.array(depth + 1)
        if c in "\"'":
            return self.string()
        token = self.bare_text()  # a literal, a number, else the text
        if token in _LITERALS:
            return _LITERALS[token]
        if len(token) <= _MAX_NUMBER_CHARS:
            if _INT_RE.fullmatch(token):
                return int(token)
            if _FLOAT_RE.fullmatch(token) and math.isfinite(float(token)):
                return float(token)
        return token

    def object(self, depth: int) -> dict[str, Json]:
        result: dict[str, Json] = {}
        for c in self.items("}"):
            key = self.string() if c in "\"'" else self.bare_text()
            self.skip()
            if self.pos >= self.end or self.text[self.pos] != ":":
                self.fail(f"expected ':' after key {key[:20]!r}")
            self.pos += 1
            result[key] = self.value(depth)
        return result

    def array(self, depth: int) -> list[Json]:
        return [self.value(depth) for _ in self.items("]")]

    def items(self, close: str) -> Iterator[str]:
        """Step through an object's or list's items up to ``close``: yield each one's first
        character and, once the caller has read the item, consume one optional comma."""
        opening = self.text[self.pos]
        self.pos += 1
        while True:
            self.skip()
            if self.pos >= self.end:
                self.fail(f"unclosed {opening!r}")
            c = self.text[self.pos]
            if c == close:
                self.pos += 1
                return
            yield c
            self.skip()
            if self.pos < self.end and self.text[self.pos] == ",":  # missing commas are tolerated
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
            low = _LOW_SURROGATE_RE.match(self.text, self.pos, self.end)
            if low is not None:
                self.pos = low.end()
                return chr(0x10000 + ((code - 0xD800) << 10) + (int(low.group(1), 16) - 0xDC00))
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


# What matters inside braces: braces, one-line strings and comments (outside, only "{" does).
_IN_OBJECT_RE = re.compile(r"""\{+|[}"'#]|//""")
_QUOTED_RE = {'"': re.compile(r'"(?:[^"\\\n]|\\.)*"'), "'": re.compile(r"'(?:[^'\\\n]|\\.)*'")}


def _object_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every balanced ``{...}`` span, in the order the spans close.

    One linear pass. Quotes count only inside braces, and only with a partner on their line, so
    an apostrophe in prose ("Here's") does not hide what follows.
    """
    spans: list[tuple[int, int]] = []
    opens: list[int] = []
    pos = 0
    while True:
        if not opens:
            start = text.find("{", pos)
            if start < 0:
                return spans
            opens.append(start)
            pos = start + 1
            continue
        match = _IN_OBJECT_RE.search(text, pos)
        if match is None:  # the open spans never close
            return spans
        token = match.group()
        pos = match.end()
        if token[0] == "{":
            opens.extend(range(match.start(), pos))
        elif token == "}":
            spans.append((opens.pop(), pos))
        elif token in _QUOTED_RE:
            quoted = _QUOTED_RE[token].match(text, match.start())
            if quoted is not None:
                pos = quoted.end()
        else:  # a comment runs to the end of its line
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline


def extract_object(text: str, *, max_chars: int = MAX_CHARS) -> dict[str, Json] | None:
    """The LAST top-level ``{...}`` object in text that parses leniently, else None: models
    restate or correct themselves, and their final word is the answer.

    Spans are tried latest-closing first, so a later object beats an earlier one and an
    enclosing object beats those nested in it; a nested one is tried only if the enclosing one
    failed elsewhere than inside it. The work stays linear: at most :data:`MAX_CANDIDATES`
    spans, and none started once ``max_chars`` characters of candidates were parsed. An empty
    ``{}`` counts only if no non-empty object parses (a stray ``{}`` in trailing prose must not
    hide the answer). Never raises.

    >>> extract_object('{"formula": "1+2"} then {"formula": "4*6"}')
    {'formula': '4*6'}
    >>> extract_object("{{{{") is None
    True
    """
    if max_chars < 1:
        return None
    window = text[-max_chars:]
    empty: dict[str, Json] | None = None
    failed_at: list[int] = []  # where the candidates tried so far stopped parsing
    tried = 0
    budget = len(window)  # characters of candidate text left to parse; the first is always tried
    for start, end in islice(reversed(_object_spans(window)), _MAX_SPANS_EXAMINED):
        if tried == MAX_CANDIDATES or budget < 0:
            break
        if any(start < position < end for position in failed_at):
            continue
        tried += 1
        budget -= end - start
        parser = _Parser(window, start, end)
        try:
            result = parser.value(0)
        except AnswerSyntaxError as error:
            failed_at.append(error.position)
            continue
        parser.skip()
        if parser.pos != end or not isinstance(result, dict):
            continue
        if result:
            return result
        empty = result  # {}
    return empty


def extract_field(text: str, key: str, *, max_chars: int = MAX_CHARS) -> Json | None:
    """Value of ``key`` from :func:`extract_object`, else from :func:`extract_field_fallback`.

    >>> extract_field('{"formula": "(3*10-6)*1=24", "cards": [A, 3', "formula")
    '(3*10-6)*1=24'
    >>> extract_field("no answer here", "formula") is None
    True
    """
    found = extract_object(text, max_chars=max_chars)
    if found is not None and key in found:
        return found[key]
    return extract_field_fallback(text, key, max_chars=max_chars)


def extract_field_fallback(text: str, key: str, *, max_chars: int = MAX_CHARS) -> Json | None:
    """The value after the LAST ``key:`` that stands as a field (see the module docstring).

    For answers whose object does not parse (cut off by the token limit, broken quoting, no braces),
    and for a caller that already holds :func:`extract_object`'s result. One lenient value is read
    after the key and, if that fails, the rest of the line (a trailing comma and an unmatched
    leading quote removed); None when the key is absent. Case-sensitive; never raises.

    >>> extract_field_fallback('{"formula": "4*6=24", "cards": [A, 3', "formula")
    '4*6=24'
    """
    if not key or max_chars < 1:
        return None
    window = text[-max_chars:]
    # The key quoted with the same quote on both sides, not glued to a longer word, or bare after
    # "{" or "," or first on its line (a list marker and markdown emphasis allowed).
    name = re.escape(key)
    field = re.compile(  # re.compile keeps its own cache of compiled patterns
        rf"""(?:(?<![\w"'])(?P<q>["']){name}(?P=q)"""
        rf"""|(?:^|(?<=[{{,]))[ \t]*(?:[-*+>•][ \t]+)?(?:\*\*|__)?{name}(?:\*\*|__)?)"""
        r"[ \t]*:[ \t]*",
        re.MULTILINE,
    )
    last = None
    for match in field.finditer(window):
        # A bare key first on its line with no value on that line is a heading ("formula:"
        # above prose), unless it follows the "{" or "," of a broken object.
        before = window[max(0, match.start() - 64) : match.start()].rstrip()  # the text before
        value_on_line = window[match.end() : match.end() + 1] not in ("", "\r", "\n")
        if match.group("q") or before.endswith(("{", ",")) or value_on_line:
            last = match  # the last field counts
    if last is None:
        return None
    with contextlib.suppress(AnswerSyntaxError):
        return _Parser(window, last.end(), len(window)).value(0)
    line = window[last.end() :].partition("\n")[0]
    raw = line.strip().rstrip(",").strip()
    if raw[:1] in ("'", '"') and not raw.endswith(raw[0]):
        raw = raw[1:].strip()
    return raw or None
