"""GeneralPoints hands: ranks, face-card rules, an exact solver and the hand sampler.

Ranks are the integers 1..13 (Ace = 1, J/Q/K = 11/12/13); a *rule* maps ranks to the values that
count in the arithmetic (the paper's training rule counts J, Q and K as 10). Solving uses exact
rational arithmetic (ints, and :class:`fractions.Fraction` once a division leaves a remainder):
the paper's float check rejects the only solution of {3, 3, 8, 8}, ``8/(3-8/3)``.

The reference formula is a deterministic function of the sorted value multiset and the target,
so the formula that ``train`` holds for a hand can be recomputed without the training file.

>>> solve((3, 3, 8, 8), 24)
'8/(3-8/3)'
>>> solve((1, 1, 1, 1), 24) is None
True
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from gpbench.generators.rng import KeyedRng, content_hash

RANK_NAMES: tuple[str, ...] = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
"""Rank strings indexed by ``rank - 1``; ten is shown as ``10``."""
RANKS: tuple[int, ...] = tuple(range(1, 14))
FACE_RANKS: tuple[int, ...] = (11, 12, 13)
SUITS: tuple[str, ...] = ("S", "H", "D", "C")
BLACK_SUITS: tuple[str, ...] = ("S", "C")
RED_SUITS: tuple[str, ...] = ("H", "D")

TRAINING_FACE_VALUES: tuple[int, int, int] = (10, 10, 10)
"""J, Q, K all count as 10: the paper's training (and ID) rule."""
OOD_FACE_VALUES: tuple[int, int, int] = (11, 12, 13)
"""J, Q, K count as 11, 12, 13: the paper's rule shift."""

HELDOUT_MODULUS = 5
"""One value multiset in ``HELDOUT_MODULUS`` (by a keyed hash) is reserved for ``id-heldout``."""

# Precedence of a rendered sub-expression: decides where parentheses are needed.
_ATOM, _PRODUCT, _SUM = 3, 2, 1

Number = int | Fraction
"""An exact value: an ``int`` while integral (ints are several times faster than Fraction), else
a Fraction. Equal values hash alike either way, so dict lookups do not care which."""
Reachable = dict[Number, tuple[str, int]]


def rank_name(rank: int) -> str:
    """``1 -> 'A'``, ``10 -> '10'``, ``13 -> 'K'``."""
    return RANK_NAMES[rank - 1]


def rank_from_name(name: str) -> int:
    """``'A' -> 1``, ``'K' -> 13``; raises ``ValueError`` on anything else."""
    try:
        return RANK_NAMES.index(name) + 1
    except ValueError:
        raise ValueError(f"unknown card rank {name!r} (expected one of {RANK_NAMES})") from None


def card_value(rank: int, face_values: Sequence[int]) -> int:
    """The value a rank counts for under a face-card rule."""
    return face_values[rank - 11] if rank >= 11 else rank


def _divide(x: Number, y: Number) -> Number:
    """``x / y`` exactly (``y != 0``): an int when two ints divide evenly."""
    if isinstance(x, int):
        if isinstance(y, int):
            return x // y if x % y == 0 else Fraction(x, y)
        return Fraction(x) / y
    return x / y


def _combine(left: Reachable, right: Reachable) -> Reachable:
    """Every value reachable by one operator between a value of ``left`` and one of ``right``.

    For each pair the candidates come in a fixed order (``x+y``, ``x*y``, ``x-y``, ``y-x``,
    ``x/y``, ``y/x``) and the first formula found for a value is kept; a formula is only
    rendered when its value is new (most are not).
    """
    out: Reachable = {}
    for x, (ex, px) in left.items():
        for y, (ey, py) in right.items():
            value = x + y
            if value not in out:
                out[value] = (f"{ex}+{ey}", _SUM)
            value = x * y
            if value not in out:
                lx = f"({ex})" if px == _SUM else ex
                out[value] = (f"{lx}*{f'({ey})' if py == _SUM else ey}", _PRODUCT)
            value = x - y
            if value not in out:
                out[value] = (f"{ex}-{f'({ey})' if py == _SUM else ey}", _SUM)
            value = y - x
            if value not in out:
                out[value] = (f"{ey}-{f'({ex})' if px == _SUM else ex}", _SUM)
            if y != 0:
                value = _divide(x, y)
                if value not in out:
                    lx = f"({ex})" if px == _SUM else ex
                    out[value] = (f"{lx}/{f'({ey})' if py != _ATOM else ey}", _PRODUCT)
            if x != 0:
                value = _divide(y, x)
                if value not in out:
                    ly = f"({ey})" if py == _SUM else ey
                    out[value] = (f"{ly}/{f'({ex})' if px != _ATOM else ex}", _PRODUCT)
    return out


def _splits(values: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Unordered splits of a sorted multiset into two non-empty sorted parts, without repeats."""
    n = len(values)
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    # Masks that contain element 0 give each unordered split once (up to equal values).
    for mask in range(1, 1 << n, 2):
        if mask == (1 << n) - 1:
            continue
        left = tuple(values[i] for i in range(n) if mask >> i & 1)
        right = tuple(values[i] for i in range(n) if not mask >> i & 1)
        if (left, right) not in seen:
            seen.add((left, right))
            yield left, right


@lru_cache(maxsize=8192)
def reachable(values: tuple[int, ...]) -> Reachable:
    """Every value an expression over exactly these numbers can take, with one formula for each.

    ``values`` must be sorted. Results are memoised, so all 1,820 hands share their sub-problems.
    """
    if len(values) == 1:
        return {values[0]: (str(values[0]), _ATOM)}
    out: Reachable = {}
    for left, right in _splits(values):
        for value, rendered in _combine(reachable(left), reachable(right)).items():
            if value not in out:
                out[value] = rendered
    return out


@lru_cache(maxsize=65536)
def _solve_sorted(values: tuple[int, ...], target: int) -> str | None:
    t = target
    if len(values) == 1:
        return str(values[0]) if values[0] == target else None
    for left, right in _splits(values):
        small, large = reachable(left), reachable(right)
        if len(small) > len(large):
            small, large = large, small
        for x, (ex, px) in small.items():
            # y such that x op y == t or y op x == t, looked up instead of enumerated.
            needed: list[tuple[Number, str]] = [(t - x, "x+y"), (x - t, "x-y"), (t + x, "y-x")]
            if x != 0:
                needed.append((_divide(t, x), "x*y"))
                needed.append((t * x, "y/x"))
            if t != 0:
                needed.append((_divide(x, t), "x/y"))
            for y, shape in needed:
                found = large.get(y)
                if found is None or (shape == "x/y" and y == 0):
                    continue
                ey, py = found
                return _render(shape, ex, px, ey, py)
    return None


def _render(shape: str, ex: str, px: int, ey: str, py: int) -> str:
    def wrap(text: str, precedence: int, below: int) -> str:
        return f"({text})" if precedence < below else text

    if shape == "x+y":
        return f"{ex}+{ey}"
    if shape == "x-y":
        return f"{ex}-{wrap(ey, py, _PRODUCT)}"
    if shape == "y-x":
        return f"{ey}-{wrap(ex, px, _PRODUCT)}"
    if shape == "x*y":
        return f"{wrap(ex, px, _PRODUCT)}*{wrap(ey, py, _PRODUCT)}"
    if shape == "x/y":
        return f"{wrap(ex, px, _PRODUCT)}/{wrap(ey, py, _ATOM)}"
    if shape == "y/x":
        return f"{wrap(ey, py, _PRODUCT)}/{wrap(ex, px, _ATOM)}"
    raise AssertionError(f"unknown shape {shape}")


def solve(values: Sequence[int], target: int) -> str | None:
    """A formula (without ``=target``) that uses each value once and equals ``target``, or None.

    The formula depends only on the multiset of values and the target, never on their order.
    """
    return _solve_sorted(tuple(sorted(values)), target)


def is_solvable(values: Sequence[int], target: int) -> bool:
    """Whether some ``+ - * / ( )`` expression over ``values`` equals ``target`` exactly."""
    return solve(values, target) is not None


def value_multisets(face_values: Sequence[int], num_cards: int = 4) -> list[tuple[int, ...]]:
    """Distinct sorted value multisets reachable by ``num_cards`` ranks under a face rule."""
    found = {
        tuple(sorted(card_value(r, face_values) for r in ranks))
        for ranks in itertools.combinations_with_replacement(RANKS, num_cards)
    }
    return sorted(found)


def heldout_key(values: Sequence[int], target: int) -> str:
    """Canonical content of a hand under the training rule: what ``train`` and ``id-heldout`` split on."""
    return f"gp/values={','.join(map(str, sorted(values)))}/target={target}"


def is_heldout(values: Sequence[int], target: int) -> bool:
    """Whether a training-rule value multiset is reserved for ``id-heldout`` (never in ``train``)."""
    return _is_heldout_sorted(tuple(sorted(values)), target)


@lru_cache(maxsize=65536)
def _is_heldout_sorted(values: tuple[int, ...], target: int) -> bool:
    return int(content_hash("heldout:" + heldout_key(values, target), 8), 16) % HELDOUT_MODULUS == 0


@dataclass(frozen=True)
class HandConfig:
    """How to deal a GeneralPoints hand.

    Attributes:
        target: the number the formula must reach (24 in the paper).
        face_values: values of J, Q, K under the active rule.
        suits: suits to draw from (GP-VL colours); paired across splits by position.
        sampling: ``uniform`` (each rank uniform in 1..13, with replacement: the paper's code) or
            ``deck`` (distinct cards from ranks x suits).
        force_face: hold at least one J/Q/K (the paper's ood-rule: 3 uniform ranks + 1 face rank,
            shuffled; in ``deck`` mode, draws without a face card are redrawn).
        heldout: ``any`` (the paper), ``exclude`` (train: never a held-out value multiset) or
            ``only`` (id-heldout); membership is by the training-rule value multiset.
        also_solvable_under: further face rules the hand must be solvable under (paired variants).
        num_cards: cards per hand.
    """

    target: int = 24
    face_values: tuple[int, int, int] = TRAINING_FACE_VALUES
    suits: tuple[str, ...] = BLACK_SUITS
    sampling: str = "uniform"
    force_face: bool = False
    heldout: str = "any"
    also_solvable_under: tuple[tuple[int, int, int], ...] = field(default=())
    num_cards: int = 4

    def __post_init__(self) -> None:
        if self.sampling not in ("uniform", "deck"):
            raise ValueError(f"sampling must be 'uniform' or 'deck', got {self.sampling!r}")
        if self.heldout not in ("any", "exclude", "only"):
            raise ValueError(f"heldout must be 'any', 'exclude' or 'only', got {self.heldout!r}")
        if not self.suits or any(s not in SUITS for s in self.suits):
            raise ValueError(f"suits must be a non-empty subset of {SUITS}, got {self.suits!r}")
        if len(self.face_values) != 3:
            raise ValueError(f"face_values needs 3 values (J, Q, K), got {self.face_values!r}")
        if not 1 <= self.num_cards <= 6:
            raise ValueError(f"num_cards must be in 1..6, got {self.num_cards}")
        if self.sampling == "deck" and self.num_cards > 13 * len(self.suits):
            raise ValueError("deck sampling needs at least num_cards cards in the deck")
        # accepts() by sorted ranks, and whether any hand is accepted: not fields (equality,
        # hashing and repr ignore them), computed on first use.
        object.__setattr__(self, "_accepted", {})
        object.__setattr__(self, "_possible", None)

    def any_possible(self) -> bool:
        """Whether at least one rank multiset meets the constraints (so ``deal`` terminates).

        Memoised on the config (the task memoises one config per split and options).
        """
        possible: bool | None = self._possible  # type: ignore[attr-defined]
        if possible is None:
            possible = any(
                self.accepts(ranks)
                for ranks in itertools.combinations_with_replacement(RANKS, self.num_cards)
            )
            object.__setattr__(self, "_possible", possible)
        return possible

    def accepts(self, ranks: Sequence[int]) -> bool:
        """Whether a dealt hand meets every constraint (solvable under each rule, held-out share).

        Every constraint depends on the multiset of ranks only, so answers are memoised by it
        (at most 1,820 four-card multisets; a deal tries ~1.4 hands per instance).
        """
        key = tuple(sorted(ranks))
        accepted: dict[tuple[int, ...], bool] = self._accepted  # type: ignore[attr-defined]
        verdict = accepted.get(key)
        if verdict is None:
            verdict = accepted[key] = self._accepts(key)
        return verdict

    def _accepts(self, ranks: Sequence[int]) -> bool:
        values = [card_value(r, self.face_values) for r in ranks]
        if not is_solvable(values, self.target):
            return False
        for rule in self.also_solvable_under:
            if not is_solvable([card_value(r, rule) for r in ranks], self.target):
                return False
        if self.force_face and not any(r in FACE_RANKS for r in ranks):
            return False
        if self.heldout != "any":
            training_values = [card_value(r, TRAINING_FACE_VALUES) for r in ranks]
            held = is_heldout(training_values, self.target)
            return held if self.heldout == "only" else not held
        return True


@dataclass(frozen=True)
class Hand:
    """A dealt hand with the values under its rule and a reference formula."""

    ranks: tuple[int, ...]
    suits: tuple[str, ...]
    values: tuple[int, ...]
    formula: str
    """Reference expression over ``values`` (no ``=target``); a function of the sorted values."""
    draws: int
    """How many hands were dealt until one met the constraints (1 = the first)."""


MAX_DRAWS = 100_000


def _deal_ranks(config: HandConfig, rng: KeyedRng) -> tuple[list[int], list[str] | None]:
    """One dealt hand: ranks, and suits when the draw fixes them (deck mode)."""
    n = config.num_cards
    if config.sampling == "deck":
        deck = [(r, s) for s in range(len(config.suits)) for r in RANKS]
        cards = rng.sample(deck, n)
        return [r for r, _ in cards], [config.suits[s] for _, s in cards]
    if config.force_face:
        ranks = [d + 1 for d in rng.digits(13, n - 1)] + [rng.choice(FACE_RANKS)]
        rng.shuffle(ranks)
    else:
        ranks = [d + 1 for d in rng.digits(13, n)]
    return ranks, None


def deal(config: HandConfig, rng: KeyedRng) -> Hand:
    """Deal hands from ``rng`` until one meets ``config``'s constraints (the paper's redraw loop).

    Suits do not affect acceptance, so in uniform mode they are drawn once, after the ranks are
    accepted (each suit independently uniform over ``config.suits``).
    """
    if not config.any_possible():
        raise ValueError(
            f"no {config.num_cards}-card hand meets this configuration (target {config.target}, "
            f"face values {config.face_values}, heldout={config.heldout}); choose another target"
        )
    for draw in range(1, MAX_DRAWS + 1):
        ranks, suits = _deal_ranks(config, rng)
        if config.accepts(ranks):
            if suits is None:
                suits = [config.suits[d] for d in rng.digits(len(config.suits), len(ranks))]
            values = tuple(card_value(r, config.face_values) for r in ranks)
            formula = solve(values, config.target)
            assert formula is not None  # accepts() checked solvability
            return Hand(tuple(ranks), tuple(suits), values, formula, draw)
    raise RuntimeError(f"no acceptable hand in {MAX_DRAWS} draws for {config}")
