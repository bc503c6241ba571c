"""Tests of lenient answer extraction: model-style answers, hostile input and properties."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.tasks.answers import (
    MAX_DEPTH,
    AnswerSyntaxError,
    Json,
    extract_field,
    extract_object,
    parse_lenient,
)

PAPER: dict[str, Json] = {
    "cards": ["A", "3", "K", "6"],
    "number": [1, 3, 10, 6],
    "formula": "(3*10-6)*1=24",
}

OBJECT_CASES: list[tuple[str, str, dict[str, Json] | None]] = [
    ("strict json", json.dumps(PAPER), PAPER),
    (
        "paper style",
        """{"cards": ['A', '3', 'K', '6'], "number": [1, 3, 10, 6], "formula": "(3*10-6)*1=24",}""",
        PAPER,
    ),
    (
        "python literal",
        "{'cards': ['A', '3', 'K', '6'], 'number': [1, 3, 10, 6], 'formula': '(3*10-6)*1=24'}",
        PAPER,
    ),
    (
        "code fence and prose",
        "Let's think. It's easy!\n```json\n"
        + json.dumps(PAPER, indent=2)
        + "\n```\nI hope that's right {smile}",
        PAPER,
    ),
    (
        "unquoted cards and keys",
        "{cards: [A, 3, K, 6], number: [1, 3, 10, 6], formula: (3*10-6)*1=24}",
        {"cards": ["A", 3, "K", 6], "number": [1, 3, 10, 6], "formula": "(3*10-6)*1=24"},
    ),
    ("bare J and 10", '{"cards": [J, 10]}', {"cards": ["J", 10]}),
    (
        "comments",
        '{\n  "cards": [A, 3], // the hand\n  # the answer:\n  "formula": "3*8=24", // done\n}',
        {"cards": ["A", 3], "formula": "3*8=24"},
    ),
    (
        "braces inside strings and comments",
        '{"formula": "{not} a brace}", // }}}\n "x": 1}',
        {"formula": "{not} a brace}", "x": 1},
    ),
    (
        "two answers: the last wins",
        '{"formula": "1+2+3+4=10"}\nWait, that is wrong. Final: {"formula": "4*6=24"}',
        {"formula": "4*6=24"},
    ),
    (
        "three answers in fences",
        "```json\n{'formula': 'a'}\n```\n```json\n{'formula': 'b'}\n```\n```json\n{'formula': 'c'}\n```",
        {"formula": "c"},
    ),
    (
        "later broken object falls back to the earlier one",
        '{"formula": "4*6=24"} and then {"formula": "oops',
        {"formula": "4*6=24"},
    ),
    (
        "unclosed prose brace before the answer",
        'I think { the answer is {"formula": "4*6=24"}',
        {"formula": "4*6=24"},
    ),
    ("duplicate keys: last wins", '{"formula": "1", "formula": "2"}', {"formula": "2"}),
    (
        "python and json literals",
        "{'a': True, 'b': false, 'c': None, 'd': null, 'e': -1.5, 'f': 1e3}",
        {"a": True, "b": False, "c": None, "d": None, "e": -1.5, "f": 1000.0},
    ),
    (
        "escapes",
        r'{"s": "a\"b\\c\nd\u00e9\ud83d\ude00\x41", "t": ' + r"'it\'s'}",
        {"s": 'a"b\\c\nd\u00e9\U0001f600A', "t": "it's"},
    ),
    ("missing commas across lines", "{\n a: 1\n b: [2 , 3]\n}", {"a": 1, "b": [2, 3]}),
    ("nested object", '{"a": {"b": [1, {"c": 2}]}}', {"a": {"b": [1, {"c": 2}]}}),
    ("empty object", "{}", {}),
    ("a stray {} after the answer", '{"formula": "4*6"} ok {}', {"formula": "4*6"}),
    ("empty string", "", None),
    ("no braces", "The answer is 4*6=24.", None),
    ("unbalanced open", '{"formula": "4*6=24"', None),
    ("unbalanced close", '"formula": "4*6=24"}', None),
    ("only closers", "}}}}]]]", None),
    ("not an object inside", "{1 2 3 :}", None),
    ("key without colon", '{"formula" "4*6"}', None),
    ("line break in a string", '{"formula": "4*6\n=24"}', None),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in OBJECT_CASES],
)
def test_extract_object(text: str, expected: dict[str, Json] | None) -> None:
    assert extract_object(text) == expected


FIELD_CASES: list[tuple[str, str, Json | None]] = [
    (json.dumps(PAPER), "formula", "(3*10-6)*1=24"),
    (json.dumps(PAPER), "cards", ["A", "3", "K", "6"]),
    (json.dumps(PAPER), "missing", None),
    # No complete object: the one-line fallback.
    (
        '{"cards": [A, 3, K, 6], "formula": "(3*10-6)*1=24", "number": [1, 3',
        "formula",
        "(3*10-6)*1=24",
    ),
    ("{'formula': '4*6=24', 'cards': ['A'", "formula", "4*6=24"),
    ("formula: 4*6=24", "formula", "4*6=24"),
    ("formula: 4*6=24,\ncards: [4, 6]", "formula", "4*6=24"),
    ("formula: 4*6=24,\ncards: [4, 6]", "cards", [4, 6]),
    ("- **formula**: 4*6=24", "formula", "4*6=24"),  # a markdown field list
    ("{cards: [4, A, 6], formula: 4*6*1=24 oops", "formula", "4*6*1=24 oops"),  # broken object
    ("{cards: [4, 6],\nformula:\n4*6=24", "formula", "4*6=24"),
    # A bare key inside a sentence, or heading prose below it, is prose: it never counts, so it
    # cannot shadow the answer written after it.
    ("Here's how to derive the formula:\n\n1. Multiply.\n5*5-1=24", "formula", None),
    ("formula:\n\n1. Multiply 4 by 6.", "formula", None),
    ("The action: forward()", "action", None),
    ("Then I use this formula: 4*6=24", "formula", None),
    ('"formula": "4*6=24', "formula", "4*6=24"),  # cut off by the token limit
    ('"formula": "1"\n"formula": "2"', "formula", "2"),  # last wins in the fallback too
    ("Formula: 4*6", "formula", None),  # keys are case-sensitive
    ("myformula: 4*6", "formula", None),  # not glued to a longer word
    ("formula:", "formula", None),
    ("", "formula", None),
    ("{{{{", "formula", None),
]


@pytest.mark.parametrize(("text", "key", "expected"), FIELD_CASES)
def test_extract_field(text: str, key: str, expected: Json | None) -> None:
    assert extract_field(text, key) == expected


PARSE_CASES: list[tuple[str, Json]] = [
    ("1", 1),
    ("-7", -7),
    ("+7", 7),
    ("0.25", 0.25),
    ("-1e-3", -0.001),
    ("1" * 65, "1" * 65),  # over-long numerals stay strings
    ("1e999", "1e999"),  # so do non-finite floats
    ("'x'", "x"),
    ('"x"', "x"),
    ("K", "K"),
    ("10 of hearts", "10 of hearts"),
    ("[]", []),
    ("[1,]", [1]),
    ("[A, 3, K, 6]  // the cards", ["A", 3, "K", 6]),
    ("[True, False, None, true, false, null]", [True, False, None, True, False, None]),
    ("  # comment only before\n [1]", [1]),
    ("{a: {b: {c: []}}}", {"a": {"b": {"c": []}}}),
    (r"'\q'", "\\q"),  # unknown escape keeps its backslash
    (r"'\ud800'", "\ufffd"),  # a lone surrogate is replaced
    (r"'\U00110000'", "\ufffd"),  # out of range
    (r"'\x4'", "\\x4"),  # malformed hex escape is kept
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_lenient(text: str, expected: Json) -> None:
    assert parse_lenient(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "[1", "[1] [2]", "{a 1}", "'abc", "[,1]", "[1,,2]", ",", ":", "}", "{'a': }"],
)
def test_parse_lenient_rejects(text: str) -> None:
    with pytest.raises(AnswerSyntaxError):
        parse_lenient(text)


def test_answer_syntax_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at"):
        parse_lenient("[1")


def test_depth_limit() -> None:
    assert parse_lenient("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(AnswerSyntaxError, match="deeper"):
        parse_lenient("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    deep = '{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)
    # The outermost levels are too deep; the innermost 32 still form an object.
    found = extract_object(deep)
    assert found is not None
    assert "a" in found


def test_parse_lenient_size_cap() -> None:
    with pytest.raises(AnswerSyntaxError, match="limit"):
        parse_lenient("[" + "1," * 40_000 + "]")
    assert parse_lenient("[1,1]", max_chars=5) == [1, 1]


def test_only_the_tail_is_examined() -> None:
    answer = '{"formula": "4*6=24"}'
    assert extract_object(answer + " " * 100) == {"formula": "4*6=24"}
    assert extract_object(answer + " " * 100, max_chars=50) is None
    assert extract_object(answer, max_chars=0) is None


def _timed(text: str) -> float:
    start = time.perf_counter()
    assert extract_object(text) is None
    assert extract_field(text, "formula") is None
    return time.perf_counter() - start


@pytest.mark.parametrize(
    "text",
    [
        "{" * 10**6,
        "[" * 10**6,
        "{" + "[" * 10**6,
        "{" * 10**6 + "}" * 10**6,
        "{ " * 500_000,
        "{'" * 500_000,
        '{"a":' * 200_000 + "1" + "}" * 200_000,
        "}" * 10**6,
        "{a:" * 16 + "[" + "1," * 28_000 + "] x:" + "}" * 16,  # nested late failures
    ],
    ids=[
        "braces",
        "brackets",
        "brace-brackets",
        "balanced",
        "spaced",
        "quotes",
        "keys",
        "closers",
        "late-failure",
    ],
)
def test_hostile_nesting_is_fast(text: str) -> None:
    assert _timed(text) < 1.0


def test_megabyte_answer_with_object_at_the_end() -> None:
    text = "blah " * 200_000 + json.dumps(PAPER)
    start = time.perf_counter()
    assert extract_field(text, "formula") == PAPER["formula"]
    assert time.perf_counter() - start < 0.5


def test_many_small_objects() -> None:
    text = "{}" * 500_000 + '{"formula": "x"}' + "{}" * 10
    assert extract_object(text) == {"formula": "x"}
    assert extract_object("{}" * 500_000) == {}


# ---------------------------------------------------------------- properties

JSONISH = "{}[]\"',:\\/#\n aAK1-.e"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=JSONISH, max_size=200)))
def test_extract_never_raises(text: str) -> None:
    found = extract_object(text)
    assert found is None or isinstance(found, dict)
    extract_field(text, "formula")
    with contextlib.suppress(AnswerSyntaxError):
        parse_lenient(text)


json_values: st.SearchStrategy[Json] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**18), 10**18)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_round_trips_json(value: Json, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert parse_lenient(text) == value
    assert parse_lenient(json.dumps(value, indent=2) + " // trailing") == value
    if isinstance(value, dict):
        assert extract_object(f"Answer:\n```json\n{text}\n```\nDone.") == value


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_round_trips_python_repr(value: Json) -> None:
    assert parse_lenient(repr(value)) == value
