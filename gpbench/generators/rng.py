"""Keyed random streams that give the same numbers on every machine and Python version.

Every instance is a pure function of a key string such as ``"gp-l-v1/ood-rule/42/3"``. The stream
is SHA-256 in counter mode over that key, so it depends on nothing but the key: not on
``PYTHONHASHSEED``, not on the Python version (``random.Random`` only guarantees ``random()``
across versions, not ``randrange`` or ``choice``), not on numpy. Integers below ``n`` are drawn
by rejection sampling, so they are exactly uniform.

>>> KeyedRng("gp-l-v1/id/42/0").below(13) == KeyedRng("gp-l-v1/id/42/0").below(13)
True
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

_WORD_BITS = 64


class KeyedRng:
    """A deterministic stream of uniform integers derived from a key string."""

    __slots__ = ("_counter", "_key", "_words")

    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")
        self._counter = 0
        self._words: list[int] = []

    def _next_word(self) -> int:
        if not self._words:
            digest = hashlib.sha256(self._key + b"#" + str(self._counter).encode()).digest()
            self._counter += 1
            # The digest's four big-endian 64-bit words, popped first to last.
            self._words = list(_FOUR_WORDS.unpack(digest))[::-1]
        return self._words.pop()

    def below(self, n: int) -> int:
        """A uniform integer in ``[0, n)``."""
        if n <= 0:
            raise ValueError(f"below() needs n >= 1, got {n}")
        limit = (1 << _WORD_BITS) - ((1 << _WORD_BITS) % n)
        while True:
            word = self._next_word()
            if word < limit:
                return word % n

    def digits(self, base: int, count: int) -> list[int]:
        """``count`` independent uniform integers in ``[0, base)`` from as few words as possible.

        One 64-bit word carries ``k`` base-``base`` digits when ``base**k <= 2**64``; words at or
        above the largest multiple of ``base**k`` are rejected, so every digit is exactly uniform.
        """
        out: list[int] = []
        limit = _ONE_WORD_LIMITS.get((base, count))
        if limit is None:
            if base < 2 or count < 0:
                raise ValueError(f"digits() needs base >= 2 and count >= 0, got {base}, {count}")
            per_word = _digits_per_word(base)
            if count <= per_word:
                limit = _rejection_limit(base**count)
                if len(_ONE_WORD_LIMITS) < 1024:
                    _ONE_WORD_LIMITS[(base, count)] = limit
        if limit is not None:  # the usual case (a hand's ranks or suits): one word
            word = self._next_word()
            while word >= limit:
                word = self._next_word()
            for _ in range(count):
                word, digit = divmod(word, base)
                out.append(digit)
            return out
        while len(out) < count:
            k = min(per_word, count - len(out))
            limit = _rejection_limit(base**k)
            word = self._next_word()
            while word >= limit:
                word = self._next_word()
            for _ in range(k):
                word, digit = divmod(word, base)
                out.append(digit)
        return out

    def between(self, low: int, high: int) -> int:
        """A uniform integer in ``[low, high]`` (both ends included)."""
        return low + self.below(high - low + 1)

    def choice(self, items: Sequence[T]) -> T:
        """A uniformly chosen element of a non-empty sequence."""
        return items[self.below(len(items))]

    def shuffle(self, items: list[T]) -> None:
        """Shuffle ``items`` in place (Fisher-Yates)."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        """``k`` distinct elements of ``items`` in random order."""
        pool = list(items)
        if not 0 <= k <= len(pool):
            raise ValueError(f"cannot sample {k} from {len(pool)} items")
        for i in range(k):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


_FOUR_WORDS = struct.Struct(">4Q")

# (base, count) -> rejection limit, for the draws that fit one word: hands draw ranks and suits
# this way for every instance, so the checks and limits are looked up once.
_ONE_WORD_LIMITS: dict[tuple[int, int], int] = {}


@functools.lru_cache(maxsize=256)
def _rejection_limit(span: int) -> int:
    """Words at or above this are rejected: the largest multiple of ``span`` below ``2**64``."""
    return (1 << _WORD_BITS) - ((1 << _WORD_BITS) % span)


@functools.lru_cache(maxsize=64)
def _digits_per_word(base: int) -> int:
    per_word = 1
    while base ** (per_word + 1) <= 1 << _WORD_BITS:
        per_word += 1
    return per_word


def content_hash(text: str, length: int = 16) -> str:
    """A short, stable hex digest of ``text`` (for uids and canonical content hashes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
