from __future__ import annotations

import ast
import collections

import pytest

from gpbench.errors import ConfigError, UnknownSplitError, UnknownTaskError
from gpbench.generators.cards import is_heldout
from gpbench.tasks.general_points import hand_values
from gpbench.tasks.registry import get_task

TASK = get_task("gp-l")


def test_pinned_instance_is_stable_across_machines() -> None:
    # Known answer: the same key must give the same hand everywhere, forever (for version 1).
    inst = TASK.instance("ood-rule", 42, 0)
    assert inst.uid == "63284c44d083e4e6"
    assert inst.problem["cards"] == ["3", "A", "K", "8"]
    assert inst.problem["suits"] == ["S", "C", "C", "C"]
    assert inst.problem["values"] == [3, 1, 13, 8]
    assert inst.reference["formula"] == "1*(3+8+13)=24"


def test_prompt_follows_the_paper_format() -> None:
    inst = TASK.instance("id", 42, 3)
    [message] = inst.messages
    assert message["role"] == "user"
    text = message["content"]
    assert text.startswith("\n[Task Description]\nYou are an expert 24 points card game player.")
    assert "Note that 'J', 'Q', and 'K' count as '10', and each card must be used once." in text
    cards_line = next(line for line in text.splitlines() if line.startswith("Cards: "))
    assert ast.literal_eval(cards_line.removeprefix("Cards: ")) == inst.problem["cards"]
    assert "\"formula\": 'an equation that equals 24'," in text
    ood = TASK.instance("ood-rule", 42, 3).messages[0]["content"]
    assert "count as '11', '12', and '13' respectively" in ood


def test_train_never_emits_a_heldout_multiset_and_heldout_only_emits_them() -> None:
    train_keys = {TASK.content_key(i) for i in TASK.dataset("train", 0, 3000)}
    heldout = list(TASK.dataset("id-heldout", 42, 500))
    heldout_keys = {TASK.content_key(i) for i in heldout}
    assert not train_keys & heldout_keys
    # By construction too: membership is a function of the value multiset.
    assert all(is_heldout(i.problem["values"], 24) for i in heldout)
    # id-heldout reaches most of the 112 reserved multisets (rank draws weight them unevenly).
    assert len(heldout_keys) >= 85


def test_id_covers_train_and_heldout_like_the_paper() -> None:
    held = sum(is_heldout(i.problem["values"], 24) for i in TASK.dataset("id", 42, 1000))
    assert 100 < held < 320  # about a fifth of the paper's ID distribution


def test_every_ood_rule_hand_holds_a_face_card_with_ood_values() -> None:
    for inst in TASK.dataset("ood-rule", 42, 234):
        assert set(inst.problem["cards"]) & {"J", "Q", "K"}
        assert inst.problem["values"] == hand_values(inst.problem["cards"], "jqk=11/12/13")
        assert set(inst.problem["values"]) & {11, 12, 13}
        assert not TASK.region_problems(inst)


def test_seeds_give_unrelated_sets_without_shifted_overlap() -> None:
    a = [TASK.content_key(i) for i in TASK.dataset("id", 42, 300)]
    b = [TASK.content_key(i) for i in TASK.dataset("id", 43, 300)]
    # seed + index schemes make seed 43 equal to seed 42 shifted by one.
    shifted = sum(x == y for x, y in zip(a[1:], b, strict=False))
    aligned = sum(x == y for x, y in zip(a, b, strict=True))
    # Chance agreement between two draws is about sum(p^2) over ~566 multisets: a few in 300.
    assert shifted < 15 and aligned < 15


def test_uniform_sampling_has_duplicate_ranks_like_the_paper() -> None:
    duplicates = sum(len(set(i.problem["cards"])) < 4 for i in TASK.dataset("id", 42, 500))
    assert duplicates > 100  # ~40% of uniform draws repeat a rank


def test_paired_option_gives_the_same_hand_under_both_rules() -> None:
    options = {"paired": "true"}
    for index in range(50):
        a = TASK.instance("id", 42, index, options)
        b = TASK.instance("ood-rule", 42, index, options)
        assert a.problem["cards"] == b.problem["cards"]
        assert a.problem["suits"] == b.problem["suits"]
        assert a.problem["rule"] != b.problem["rule"]
        assert a.params["paired"] is True
        assert a.uid != b.uid


def test_target_and_deck_options_are_recorded_and_keyed() -> None:
    inst = TASK.instance("id", 42, 0, {"target": "30", "sampling": "deck"})
    assert inst.problem["target"] == 30
    assert inst.reference["formula"].endswith("=30")
    assert inst.params["sampling"] == "deck" and inst.params["target"] == 30
    assert inst.uid != TASK.instance("id", 42, 0).uid
    assert "You are an expert 30 points card game player" in inst.messages[0]["content"]


def test_option_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="did you mean 'target'"):
        TASK.instance("id", 42, 0, {"targt": 3})
    with pytest.raises(ConfigError, match="expects an integer"):
        TASK.instance("id", 42, 0, {"target": "many"})
    with pytest.raises(ConfigError, match="did you mean 'deck'"):
        TASK.instance("id", 42, 0, {"sampling": "dek"})


def test_registry_errors_and_pinned_versions() -> None:
    assert get_task("gp-l@1") is TASK
    with pytest.raises(UnknownTaskError, match="did you mean 'gp-l'"):
        get_task("gp_l")
    with pytest.raises(UnknownTaskError, match="no version 9"):
        get_task("gp-l@9")
    with pytest.raises(UnknownSplitError, match="did you mean 'ood-rule'"):
        TASK.split("ood_rule")


def test_dataset_is_lazy_and_index_addressable() -> None:
    ds = TASK.dataset("id", 42, 10, start=5)
    assert len(ds) == 10
    assert ds[0] == TASK.instance("id", 42, 5)
    assert ds[-1].index == 14
    assert [i.index for i in ds[2:4]] == [7, 8]
    with pytest.raises(IndexError):
        ds[10]


def test_card_distribution_is_uniform_over_ranks() -> None:
    counts = collections.Counter(c for i in TASK.dataset("id", 7, 2000) for c in i.problem["cards"])
    assert set(counts) == {"A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K"}
