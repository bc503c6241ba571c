"""Records: frozen, JSON in field order; to_json is the canonical json.dumps, and every string
(lone surrogates included) is written as valid UTF-8 and read back unchanged."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.errors import GpbenchError, RecordSchemaError
from gpbench.harness.backends import Completion, Request
from gpbench.records import Episode, Instance, Turn, Verdict
from gpbench.serialization import (
    escape_surrogates,
    from_dict,
    json_text,
    parse_json,
    read_jsonl,
    to_dict,
    to_json,
    write_text_atomic,
)
from gpbench.tasks.episode import Step

RECORD_CLASSES = (Instance, Turn, Episode, Verdict, Request, Completion, Step)


def _values(cls: type) -> tuple[Any, ...]:
    """One distinct, JSON-able value per field."""
    return tuple(f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls))


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_records_are_frozen_and_read_back_from_their_json(cls: type) -> None:
    values = _values(cls)
    record = cls(**{f.name: v for f, v in zip(dataclasses.fields(cls), values, strict=True)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.extra = 1  # type: ignore[attr-defined]
    assert list(to_dict(record).values()) == list(values)  # declaration order
    assert from_dict(cls, json.loads(to_json(record))) == record


@pytest.mark.parametrize(
    "payload",
    [
        {"a": 1, "b": [1.5, -0.0, 1e300, None, True], "c": {"é": '\u2003\n"\\'}, "d": ""},
        {"nested": [[{"x": []}], {}], "big": 10**40, "emoji": "\U0001f600"},
        "a bare string",
        [1, "two", 3.0],
    ],
)
def test_to_json_is_the_canonical_json_dumps(payload: Any) -> None:
    expected = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert to_json(payload) == expected
    assert to_json(payload) == to_json(payload)  # the shared encoder keeps no state


def test_to_json_refuses_what_json_refuses() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        to_json({"x": float("nan")})
    with pytest.raises(TypeError, match="not JSON serializable"):
        to_json({"x": object()})
    assert to_json({"x": 1}) == '{"x":1}'  # still usable after an error


def test_to_dict_renames_keyword_fields_in_place() -> None:
    values = _values(Episode)
    record = to_dict(Episode(*values))
    names = [f.name for f in dataclasses.fields(Episode)]
    assert list(record) == ["return" if name == "return_" else name for name in names]
    assert list(record.values()) == list(values)


def test_from_dict_names_missing_fields_and_ignores_unknown_ones() -> None:
    data = {"text": "hi", "finish_reason": "stop", "later_field": 1}
    assert from_dict(Completion, data) == Completion(text="hi", finish_reason="stop")
    with pytest.raises(RecordSchemaError, match=r"f\.jsonl:3: Turn is missing attempt, verdict"):
        from_dict(Turn, {"response": "x"}, path="f.jsonl", line=3)
    with pytest.raises(RecordSchemaError, match=r"f\.jsonl:1: expected a JSON object, got list"):
        from_dict(Turn, [], path="f.jsonl", line=1)


# Text as models and servers return it: any code point, surrogates included.
_ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12)


def _no_joined_pair(text: str) -> bool:
    """No high surrogate directly before a low one (json.loads never returns such a pair)."""
    return not any(
        "\ud800" <= a <= "\udbff" and "\udc00" <= b <= "\udfff" for a, b in itertools.pairwise(text)
    )


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_ANY_TEXT, st.lists(_ANY_TEXT, max_size=3), max_size=4))
def test_to_json_writes_every_string_as_utf8_and_reads_it_back(payload: dict[str, Any]) -> None:
    text = to_json(payload)
    text.encode("utf-8")  # a lone surrogate would raise here (the run writer's crash)
    if all(_no_joined_pair(k) and all(_no_joined_pair(v) for v in vs) for k, vs in payload.items()):
        assert json.loads(text) == payload
    if not any("\ud800" <= c <= "\udfff" for c in json.dumps(payload, ensure_ascii=False)):
        # Records without surrogates keep their bytes (the golden files pin them).
        assert text == json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def test_a_lone_surrogate_in_an_answer_is_stored_as_its_escape() -> None:
    answer = json.loads('"\\ud800 then \\udfff and \\u00e9"')  # valid JSON: lone surrogates
    episode = {"response": answer, "verdict": {"extracted": {"formula": answer}}}
    text = to_json(episode)
    assert text == (
        '{"response":"\\ud800 then \\udfff and é",'
        '"verdict":{"extracted":{"formula":"\\ud800 then \\udfff and é"}}}'
    )
    assert json.loads(text.encode("utf-8").decode("utf-8")) == episode
    assert json_text({"model": answer}, indent=1).encode("utf-8")
    assert json.loads(json_text({"model": answer})) == {"model": answer}


def test_a_surrogate_pair_in_a_string_reads_back_as_its_character() -> None:
    # Only string concatenation makes such a pair; UTF-8 has no way to keep it apart.
    joined = "\ud83d" + "\ude00"
    assert json.loads(to_json([joined])) == ["\U0001f600"]


def test_escape_surrogates_leaves_other_text_alone() -> None:
    for text in ("", "plain", "é ± \u2003 \U0001f600", "a\\ud800b"):
        assert escape_surrogates(text) is text


def _jsonl(path: Path, data: bytes) -> list[tuple[int, dict[str, Any]]]:
    path.write_bytes(data)
    return list(read_jsonl(path))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}\n{"b": "\xff\xfe"}\n', r"f\.jsonl:2: not UTF-8 text \(byte 0xff at column 8\)"),
        (b'{"a": 1}\n' + b"[" * 100_000 + b"\n", r"f\.jsonl:2: not valid JSON \(nested too deep"),
        (
            b'{"a": ' + b"9" * 5000 + b"}\n",
            r"f\.jsonl:1: not valid JSON \(an integer with too many",
        ),
        (b'{"a": 1}\n\n[1]\n', r"f\.jsonl:3: expected a JSON object"),
        (b'{"a": tru}\n', r"f\.jsonl:1: not valid JSON \(Expecting value\)"),
    ],
)
def test_read_jsonl_names_the_line_of_input_it_cannot_read(
    tmp_path: Path, data: bytes, message: str
) -> None:
    with pytest.raises(RecordSchemaError, match=message):
        _jsonl(tmp_path / "f.jsonl", data)


def test_read_jsonl_reads_crlf_lines_and_skips_blank_ones(tmp_path: Path) -> None:
    rows = _jsonl(tmp_path / "f.jsonl", b'{"a": 1}\r\n\r\n  \n{"b": "\xc3\xa9"}')
    assert rows == [(1, {"a": 1}), (4, {"b": "é"})]


def test_parse_json_passes_other_errors_through() -> None:
    assert parse_json("[1, 2]") == [1, 2]
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        parse_json("[" * 50_000)
    with pytest.raises(TypeError):
        parse_json(None)  # type: ignore[arg-type]


def test_write_text_atomic_replaces_the_file_or_leaves_it(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old\n")
    write_text_atomic(target, "new é\n")
    assert target.read_text(encoding="utf-8") == "new é\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    with pytest.raises(GpbenchError, match=r"cannot write .*missing.*: No such file or directory"):
        write_text_atomic(tmp_path / "missing" / "out.json", "x")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "\ud800")  # text for strict UTF-8 must be escaped first
    write_text_atomic(tmp_path / "people.csv", "a\udcffb\n", errors="backslashreplace")
    assert (tmp_path / "people.csv").read_text() == "a\\udcffb\n"
    assert target.read_text(encoding="utf-8") == "new é\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "people.csv"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
