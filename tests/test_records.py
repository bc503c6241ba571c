"""Record construction: the fast builders give records equal to the constructors'."""

from __future__ import annotations

import dataclasses
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
