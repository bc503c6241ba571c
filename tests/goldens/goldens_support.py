"""What every golden test shares: a portable random stream, canonical lines, digests, data files.

The goldens freeze gpbench's observable behaviour (instances, verdicts, episodes, fuzz
statuses) so that a refactor can be shown to change nothing. Everything here is a pure function
of fixed keys: the random stream is SHAKE-256 of a key (not Python's ``random``, whose methods
beyond ``random()`` may change between versions, and not gpbench's own generator, which the
goldens are meant to check), and nothing iterates over a set or depends on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gpbench.serialization import to_json

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

REGENERATE_HINT = (
    "If this change is intended (a deliberate behaviour change, with a task version bump where "
    "instances or scores change), regenerate the goldens with "
    "`.venv/bin/python tests/goldens/regenerate.py` and commit tests/goldens/data/ saying why. "
    "A refactor must leave every golden unchanged."
)

_WORDS_PER_BLOCK = 64
_BLOCK = struct.Struct(f">{_WORDS_PER_BLOCK}Q")
_SPAN = 1 << 64
# n -> the rejection limit for below(n): the largest multiple of n that fits in 64 bits.
_LIMITS: dict[int, int] = {}
_DIGITS_PER_WORD = 18
_DIGIT_LIMIT = _SPAN - _SPAN % 10**_DIGITS_PER_WORD


class Draws:
    """A stream of uniform choices that is the same on every machine and Python version.

    Block ``k`` of the stream is SHAKE-256 of ``key#k``, read as 64-bit words; integers below
    ``n`` come from words by rejection, so they are exactly uniform.
    """

    __slots__ = ("_block", "_key", "_words")

    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")
        self._block = 0
        self._words: list[int] = []

    def _refill(self) -> list[int]:
        data = hashlib.shake_256(b"%s#%d" % (self._key, self._block)).digest(_BLOCK.size)
        self._block += 1
        self._words = list(_BLOCK.unpack(data))  # popped from the end
        return self._words

    def below(self, n: int) -> int:
        """A uniform integer in ``[0, n)``."""
        limit = _LIMITS.get(n)
        if limit is None:
            if n <= 0:
                raise ValueError(f"below() needs n >= 1, got {n}")
            limit = _SPAN - _SPAN % n
            if len(_LIMITS) < 4096:
                _LIMITS[n] = limit
        words = self._words
        while True:
            if not words:
                words = self._refill()
            word = words.pop()
            if word < limit:
                return word % n

    def between(self, low: int, high: int) -> int:
        """A uniform integer in ``[low, high]``."""
        return low + self.below(high - low + 1)

    def chance(self, numerator: int, denominator: int) -> bool:
        """True with probability ``numerator / denominator``."""
        return self.below(denominator) < numerator

    def choice(self, items: Sequence[T]) -> T:
        """A uniformly chosen element of a non-empty sequence."""
        return items[self.below(len(items))]

    def digits(self, count: int) -> str:
        """``count`` uniform decimal digits (18 from each accepted word)."""
        parts = []
        words = self._words
        while count > 0:
            if not words:
                words = self._refill()
            word = words.pop()
            if word < _DIGIT_LIMIT:
                parts.append(f"{word % 10**_DIGITS_PER_WORD:018d}"[: min(count, _DIGITS_PER_WORD)])
                count -= _DIGITS_PER_WORD
        return "".join(parts)

    def shuffled(self, items: Iterable[T]) -> list[T]:
        """A new list with the items in random order (Fisher-Yates)."""
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.below(i + 1)
            out[i], out[j] = out[j], out[i]
        return out

    def log_count(self, high: int) -> int:
        """A count in ``[1, high]``, mostly small: uniform over the bit lengths, then uniform."""
        bits = self.between(0, max(0, high.bit_length() - 1))
        return min(high, self.between(1 << bits, (2 << bits) - 1))


# A lone surrogate as a raw code point, or as a JSON escape (how a fixed encoder may write it).
_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def canonical_line(record: Any) -> bytes:
    """The bytes a golden digest is taken over: ``to_json(record)`` as UTF-8.

    A record that holds a lone surrogate (model output read from a JSON file can) has no UTF-8
    form as ``to_json`` writes it today; its line is the record decoded back and written with
    every non-ASCII character escaped, so the goldens hold whether ``to_json`` writes the
    surrogate raw or escaped, as long as it keeps the value.
    """
    text = to_json(record)
    if _SURROGATE.search(text) is None:
        return text.encode("utf-8")
    decoded = json.loads(text)
    return json.dumps(decoded, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()


def digest(lines: Iterable[bytes]) -> str:
    """sha256 (hex) of the lines, each followed by a newline."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line)
        h.update(b"\n")
    return h.hexdigest()


def short_sha(data: bytes | str, length: int = 8) -> str:
    """The first ``length`` hex digits of sha256 of ``data`` (text as UTF-8, surrogates kept)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:length]


def utf8_size(text: str) -> int:
    """Bytes of ``text`` as UTF-8 (a lone surrogate counts its three bytes)."""
    return len(text.encode("utf-8", "surrogatepass"))


def load_json(name: str) -> dict[str, Any]:
    """A golden data file (``data/<name>``); a missing file reads as empty."""
    path = DATA / name
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def save_json(name: str, data: dict[str, Any]) -> None:
    """Write a golden data file with sorted keys (stable diffs)."""
    DATA.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    (DATA / name).write_text(text, encoding="utf-8")


def load_rows(name: str) -> list[list[Any]]:
    """The rows of a gzip JSON-lines snapshot (``data/<name>``); missing reads as empty."""
    path = DATA / name
    if not path.is_file():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def save_rows(name: str, rows: Iterable[Sequence[Any]]) -> None:
    """Write a gzip JSON-lines snapshot; the gzip header carries no time, so equal rows give
    equal bytes."""
    path = DATA / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        json.dumps(list(row), separators=(",", ":"), ensure_ascii=True) + "\n" for row in rows
    )
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(text.encode("ascii"))


def clip(text: str, limit: int = 160) -> str:
    """``repr`` of text, cut to ``limit`` characters for a failure message."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
