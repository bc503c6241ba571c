"""JSON lines for records: one canonical encoding, strict decoding with line-numbered errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any, TypeVar

from gpbench.errors import RecordSchemaError

R = TypeVar("R")


# Records are trees built by gpbench (no cycles), so the encoder's cycle check is skipped: a cycle
# would still fail, with RecursionError.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)
# JSONEncoder.encode builds its C encoder anew on every call; records are encoded one by one, so
# the same C encoder with the same settings is made once (where the C accelerator exists).
_C_ENCODE = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, False
    )
)


# Field names that are Python keywords carry a trailing underscore in the dataclass only.
_KEYWORD_FIELDS = {"return_": "return"}
_KEYWORD_KEYS = {v: k for k, v in _KEYWORD_FIELDS.items()}


def to_dict(record: Any) -> dict[str, Any]:
    """A record's fields as a dict (shallow: records hold only JSON-able values)."""
    # dataclasses.asdict deep-copies every nested value; records are JSON data already, so a
    # shallow view is exact and ~5x faster on the generation hot path.
    keys = _field_keys(type(record))
    values = getattr(record, "__dict__", None)
    if values is not None and len(values) == len(keys):
        # A record's __dict__ holds exactly its fields in declaration order (__init__, copy and
        # pickle all fill it that way), so a copy is the same dict at a third of the cost.
        renamed = _RENAMED.get(type(record))
        if renamed is None:
            return dict(values)
        return dict(zip(renamed, values.values(), strict=True))
    return {key: getattr(record, name) for name, key in keys}


_FIELD_KEYS: dict[type, tuple[tuple[str, str], ...]] = {}


# Record classes with a field whose JSON key differs: their JSON keys in declaration order.
_RENAMED: dict[type, tuple[str, ...]] = {}


def _field_keys(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, JSON key) pairs of a record class, computed once per class."""
    keys = _FIELD_KEYS.get(cls)
    if keys is None:
        keys = tuple((f.name, _KEYWORD_FIELDS.get(f.name, f.name)) for f in dataclasses.fields(cls))
        if any(name != key for name, key in keys):
            _RENAMED[cls] = tuple(key for _, key in keys)
        _FIELD_KEYS[cls] = keys
    return keys


def to_json(record: Any) -> str:
    """The canonical one-line JSON of a record (dataclass) or dict: stable bytes for equal content."""
    payload = to_dict(record) if dataclasses.is_dataclass(record) else record
    if _C_ENCODE is None:
        return _ENCODER.encode(payload)
    return "".join(_C_ENCODE(payload, 0))


_SCHEMAS: dict[type, tuple[frozenset[str], frozenset[str]]] = {}


def _schema(cls: type) -> tuple[frozenset[str], frozenset[str]]:
    """(all field names, required field names) of a record class, computed once per class."""
    schema = _SCHEMAS.get(cls)
    if schema is None:
        fields = dataclasses.fields(cls)
        required = frozenset(
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        schema = (frozenset(f.name for f in fields), required)
        _SCHEMAS[cls] = schema
    return schema


def from_dict(cls: type[R], data: Any, *, path: str = "<data>", line: int = 0) -> R:
    """Build a record dataclass from a decoded dict, naming missing or unknown fields."""
    if not isinstance(data, dict):
        raise RecordSchemaError(path, line, f"expected a JSON object, got {type(data).__name__}")
    data = {_KEYWORD_KEYS.get(k, k): v for k, v in data.items()}
    fields, required = _schema(cls)
    missing = sorted(required - data.keys())
    if missing:
        raise RecordSchemaError(path, line, f"{cls.__name__} is missing {', '.join(missing)}")
    known = {k: v for k, v in data.items() if k in fields}
    try:
        return cls(**known)
    except TypeError as exc:
        raise RecordSchemaError(path, line, f"not a valid {cls.__name__}: {exc}") from None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line raises RecordSchemaError."""
    if not path.is_file():
        raise RecordSchemaError(str(path), 0, "file not found")
    with path.open("r", encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RecordSchemaError(str(path), number, f"not valid JSON ({exc.msg})") from None
            if not isinstance(data, dict):
                raise RecordSchemaError(str(path), number, "expected a JSON object on each line")
            yield number, data


def read_records(cls: type[R], path: Path) -> Iterator[R]:
    """Yield records of type ``cls`` from a JSON-lines file."""
    for number, data in read_jsonl(path):
        yield from_dict(cls, data, path=str(path), line=number)
