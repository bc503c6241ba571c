"""Records: the fast builders equal the constructors; to_json is the canonical json.dumps."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from gpbench.harness.backends import Completion, Request
from gpbench.records import Episode, Instance, Turn, Verdict, build_record
from gpbench.serialization import to_dict, to_json
from gpbench.tasks.episode import Step

RECORD_CLASSES = (Instance, Turn, Episode, Verdict, Request, Completion, Step)


def _values(cls: type) -> tuple[Any, ...]:
    """One distinct, JSON-able value per field."""
    return tuple(f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls))


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_build_record_equals_the_constructor(cls: type) -> None:
    values = _values(cls)
    built = build_record(cls, values)
    constructed = cls(*values)
    assert type(built) is cls
    assert built == constructed and hash(built) == hash(constructed)
    assert repr(built) == repr(constructed)
    assert list(vars(built)) == list(vars(constructed))  # field order: to_dict relies on it
    assert to_dict(built) == to_dict(constructed)
    assert to_json(built) == to_json(constructed)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.extra = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_build_record_refuses_a_wrong_number_of_values(cls: type) -> None:
    values = _values(cls)
    with pytest.raises(TypeError):
        build_record(cls, values[:-1])
    with pytest.raises(TypeError):
        build_record(cls, (*values, "one too many"))


def test_typed_builders_equal_the_constructors() -> None:
    for cls in (Instance, Turn, Episode, Verdict):
        values = _values(cls)
        assert cls.of(*values) == cls(*values)  # type: ignore[attr-defined]


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


@dataclasses.dataclass(frozen=True)
class _Awkward:
    """Field names a generated builder could trip over (its own locals, a keyword-like name)."""

    record: str
    fields: str
    new: str
    cls: str
    return_: str


def test_build_record_takes_any_field_names() -> None:
    values = _values(_Awkward)
    assert build_record(_Awkward, values) == _Awkward(*values)
