from __future__ import annotations

import collections

import pytest

from gpbench.generators.rng import KeyedRng, content_hash


def test_known_values_are_pinned() -> None:
    # Pinned outputs: a change here changes every generated file on every machine.
    rng = KeyedRng("gp-l-v1/id/42/0")
    assert [rng.below(13) for _ in range(8)] == [4, 12, 0, 9, 2, 11, 11, 7]
    assert content_hash("gp-l-v1/id/42/0") == "75b308540e07c3b7"


def test_same_key_same_stream_other_key_other_stream() -> None:
    a = [KeyedRng("k/1").below(1000) for _ in range(1)]
    b = [KeyedRng("k/1").below(1000) for _ in range(1)]
    assert a == b
    first = KeyedRng("k/1")
    second = KeyedRng("k/2")
    assert [first.below(10**9) for _ in range(5)] != [second.below(10**9) for _ in range(5)]


def test_below_is_roughly_uniform() -> None:
    rng = KeyedRng("uniformity")
    counts = collections.Counter(rng.below(13) for _ in range(13_000))
    assert set(counts) == set(range(13))
    assert all(850 < c < 1150 for c in counts.values())


def test_sample_and_shuffle_are_permutations() -> None:
    rng = KeyedRng("perm")
    items = list(range(52))
    picked = rng.sample(items, 4)
    assert len(set(picked)) == 4 and set(picked) <= set(items)
    rng.shuffle(items)
    assert sorted(items) == list(range(52))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        KeyedRng("x").below(0)
    with pytest.raises(ValueError):
        KeyedRng("x").sample([1, 2], 3)
