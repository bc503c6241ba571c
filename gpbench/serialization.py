"""JSON lines for records: one canonical encoding, strict decoding with line-numbered errors.

Model and server text is hostile: a JSON answer may hold a lone surrogate (``"\\ud800"`` is valid
JSON and decodes to a string UTF-8 cannot encode), nesting deeper than Python's parser can follow,
or an integer longer than Python converts. Every writer here keeps such text (surrogates as JSON
escapes) and every reader turns such input into a one-line error naming the file and line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from gpbench.errors import GpbenchError, RecordSchemaError

R = TypeVar("R")


# Field names that are Python keywords carry a trailing underscore in the dataclass only.
_KEYWORD_FIELDS = {"return_": "return"}
_KEYWORD_KEYS = {v: k for k, v in _KEYWORD_FIELDS.items()}


def to_dict(record: Any) -> dict[str, Any]:
    """A record's fields as a dict, in declaration order, keyword fields renamed (``return``).

    Shallow, unlike ``dataclasses.asdict``: records hold JSON data already, so there is nothing
    to convert and no need to copy every nested value.
    """
    return {
        _KEYWORD_FIELDS.get(f.name, f.name): getattr(record, f.name)
        for f in dataclasses.fields(record)
    }


def to_json(record: Any) -> str:
    """The canonical one-line JSON of a record (dataclass) or dict: stable bytes for equal content.

    Keys in field (or insertion) order, no spaces, non-ASCII text as is, NaN and infinities
    refused; a lone surrogate, which UTF-8 cannot hold, as its JSON escape (the same string).
    """
    payload = to_dict(record) if dataclasses.is_dataclass(record) else record
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return escape_surrogates(text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(text: str) -> str:
    """``text`` with each surrogate code point written as its escape ``\\udXXX``: encodable UTF-8.

    Surrogates can only sit inside the strings of a JSON text (everything else is ASCII), so in
    JSON the result is the same value; in text for people (CSV, HTML, figure labels) it shows
    where the model or a file name held a code point that is not a character. A high surrogate
    directly followed by a low one is escaped as a pair, which a JSON decoder reads as the one
    character the pair stands for (as UTF-16 does); ``json.loads`` never yields such a pair.

    >>> escape_surrogates("ok \\ud800!") == "ok " + chr(92) + "ud800!"
    True
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")  # one C pass; fails only on a surrogate
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text


def json_text(value: Any, *, indent: int | None = None) -> str:
    """``json.dumps(value, ensure_ascii=False, indent=indent)`` that always encodes to UTF-8 (lone
    surrogates as escapes), for JSON files people read (``run.json``, manifests)."""
    return escape_surrogates(json.dumps(value, ensure_ascii=False, indent=indent))


class JsonLimitError(json.JSONDecodeError):
    """JSON beyond what Python decodes (it may be valid): nesting past the recursion limit, or an
    integer with more digits than Python converts."""


def parse_json(text: str, **kwargs: Any) -> Any:
    """``json.loads(text, **kwargs)``; input Python cannot decode raises :class:`JsonLimitError`.

    ``json.loads`` raises ``RecursionError`` (``[`` x 100,000) or a bare ``ValueError`` (4,301
    digits) there; both are a property of the input, so they become a JSONDecodeError.
    """
    try:
        return json.loads(text, **kwargs)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise JsonLimitError("nested too deeply to decode", text, 0) from None
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        raise JsonLimitError("an integer with too many digits", text, 0) from None


def write_text_atomic(
    target: Path, text: str, *, errors: str = "strict", parents: bool = False
) -> None:
    """Write ``text`` (UTF-8) to ``target`` all or nothing: a temporary sibling renamed into place.

    A failure (a full disk, an unwritable folder) leaves ``target`` as it was and no temporary
    file, and raises :class:`GpbenchError` naming ``target`` and the reason. ``errors`` is the
    encoder's error handler (``backslashreplace`` writes surrogates as ``\\udXXX`` in text for
    people); ``parents`` creates missing folders first.
    """
    try:
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise GpbenchError(f"cannot write {target}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors) as handle:
            handle.write(text)
        tmp.chmod(0o666 & ~current_umask())  # mkstemp makes 0600 files; give what open() would give
        tmp.replace(target)
    except OSError as exc:
        raise GpbenchError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: Path, option: str) -> None:
    """Refuse, before any work, an output file that cannot be written (``option`` names the
    option in the message): a folder, or a path whose nearest existing folder is a file or is
    read-only. Missing folders are fine: :func:`write_text_atomic` can create them."""
    if path.is_dir():
        raise GpbenchError(f"{option} {path} is a folder; give a file path")
    existing = next(p for p in (path.parent, *path.parent.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise GpbenchError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GpbenchError(f"{option} {path}: the folder {existing} is not writable")


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def from_dict(cls: type[R], data: Any, *, path: str = "<data>", line: int = 0) -> R:
    """Build a record dataclass from a decoded dict, naming missing or unknown fields."""
    if not isinstance(data, dict):
        raise RecordSchemaError(path, line, f"expected a JSON object, got {type(data).__name__}")
    data = {_KEYWORD_KEYS.get(k, k): v for k, v in data.items()}
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    required = (f.name for f in fields if f.default is f.default_factory is dataclasses.MISSING)
    missing = sorted(name for name in required if name not in data)
    if missing:
        raise RecordSchemaError(path, line, f"{cls.__name__} is missing {', '.join(missing)}")
    names = {f.name for f in fields}
    known = {k: v for k, v in data.items() if k in names}
    try:
        return cls(**known)
    except TypeError as exc:
        raise RecordSchemaError(path, line, f"not a valid {cls.__name__}: {exc}") from None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line raises RecordSchemaError.

    Bad lines: not UTF-8, not JSON, JSON Python cannot decode (see :func:`parse_json`), or not an
    object. Lines end at ``\\n`` only (a JSON text holds no other line break outside its strings).
    """
    if not path.is_file():
        raise RecordSchemaError(str(path), 0, "file not found")
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                data = _decode_line(path, number, raw)
                if data is not None:
                    yield number, data
    except OSError as exc:
        raise RecordSchemaError(str(path), 0, f"cannot read it ({exc.strerror or exc})") from None


def _decode_line(path: Path, number: int, raw: bytes) -> dict[str, Any] | None:
    """The object on one line (None for a blank line)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        raise RecordSchemaError(str(path), number, f"{reason}; save the file as UTF-8") from None
    if not text.strip():
        return None
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise RecordSchemaError(str(path), number, f"not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise RecordSchemaError(str(path), number, "expected a JSON object on each line")
    return data


def read_records(cls: type[R], path: Path) -> Iterator[R]:
    """Yield records of type ``cls`` from a JSON-lines file."""
    for number, data in read_jsonl(path):
        yield from_dict(cls, data, path=str(path), line=number)
