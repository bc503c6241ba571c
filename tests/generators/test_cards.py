from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpbench.generators.arithmetic import evaluate
from gpbench.generators.cards import (
    OOD_FACE_VALUES,
    RANKS,
    TRAINING_FACE_VALUES,
    HandConfig,
    card_value,
    deal,
    is_heldout,
    is_solvable,
    rank_from_name,
    rank_name,
    solve,
    value_multisets,
)
from gpbench.generators.rng import KeyedRng


def _formula_is_exact(values: tuple[int, ...], formula: str, target: int) -> bool:
    result = evaluate(formula)
    return result.ok and result.value == target and sorted(result.numbers) == sorted(values)


def test_paper_solvability_counts() -> None:
    ranks = list(itertools.combinations_with_replacement(RANKS, 4))
    assert len(ranks) == 1820
    ood = [tuple(card_value(r, OOD_FACE_VALUES) for r in hand) for hand in ranks]
    assert sum(is_solvable(v, 24) for v in ood) == 1362
    training = value_multisets(TRAINING_FACE_VALUES)
    assert len(training) == 715
    assert sum(is_solvable(v, 24) for v in training) == 566


def test_three_three_eight_eight_needs_exact_fractions() -> None:
    assert solve((3, 3, 8, 8), 24) == "8/(3-8/3)"
    assert _formula_is_exact((3, 3, 8, 8), "8/(3-8/3)", 24)


@pytest.mark.parametrize("face_values", [TRAINING_FACE_VALUES, OOD_FACE_VALUES])
def test_every_reference_formula_evaluates_exactly_with_each_value_once(
    face_values: tuple[int, int, int],
) -> None:
    for values in value_multisets(face_values):
        formula = solve(values, 24)
        if formula is not None:
            assert _formula_is_exact(values, formula, 24), (values, formula)


@given(
    st.lists(st.integers(1, 13), min_size=4, max_size=4),
    st.integers(-30, 200),
)
def test_solver_formula_is_correct_for_any_target(values: list[int], target: int) -> None:
    formula = solve(values, target)
    if formula is not None:
        assert _formula_is_exact(tuple(values), formula, target)


def test_every_reference_formula_of_the_1820_hands_is_pinned() -> None:
    # 1,362 of the 1,820 four-card hands of ranks 1..13 make 24 (the known count for the game);
    # the digest pins every reference formula, so a faster solver cannot change one silently.
    hands = list(itertools.combinations_with_replacement(RANKS, 4))
    formulas = [solve(hand, 24) for hand in hands]
    assert sum(formula is not None for formula in formulas) == 1362
    listing = "\n".join(f"{hand}:{formula}" for hand, formula in zip(hands, formulas, strict=True))
    digest = hashlib.sha256(listing.encode()).hexdigest()
    assert digest == "4352c1d7bcc8badd9f3780db0868017f2044a944f27664442baa41a15151f4ac"


def test_formula_depends_only_on_the_multiset() -> None:
    for perm in itertools.permutations((1, 3, 10, 6)):
        assert solve(perm, 24) == solve((1, 3, 6, 10), 24)


def test_rank_names_round_trip() -> None:
    assert [rank_name(r) for r in RANKS] == [
        "A",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
        "J",
        "Q",
        "K",
    ]
    assert all(rank_from_name(rank_name(r)) == r for r in RANKS)
    with pytest.raises(ValueError):
        rank_from_name("T")


def test_heldout_share_is_about_one_in_five() -> None:
    solvable = [v for v in value_multisets(TRAINING_FACE_VALUES) if is_solvable(v, 24)]
    held = [v for v in solvable if is_heldout(v, 24)]
    assert len(held) == 112  # documented in the gp-l task docstring and README


def test_ood_deal_forces_a_face_card_and_is_solvable() -> None:
    config = HandConfig(face_values=OOD_FACE_VALUES, force_face=True)
    for i in range(300):
        hand = deal(config, KeyedRng(f"t/{i}"))
        assert any(r >= 11 for r in hand.ranks)
        assert is_solvable(hand.values, 24)


def test_deck_sampling_gives_distinct_cards() -> None:
    config = HandConfig(sampling="deck")
    for i in range(200):
        hand = deal(config, KeyedRng(f"d/{i}"))
        assert len(set(zip(hand.ranks, hand.suits, strict=True))) == 4


def test_impossible_configuration_fails_fast() -> None:
    impossible = HandConfig(target=10**6)
    assert not impossible.any_possible() and not impossible.any_possible()  # memoised
    assert HandConfig().any_possible()
    with pytest.raises(ValueError, match="no 4-card hand"):
        deal(impossible, KeyedRng("x"))


def test_bad_config_values_raise() -> None:
    with pytest.raises(ValueError):
        HandConfig(sampling="poker")
    with pytest.raises(ValueError):
        HandConfig(suits=("X",))
