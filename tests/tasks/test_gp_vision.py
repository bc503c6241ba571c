from __future__ import annotations

import json

import pytest

from gpbench.errors import ConfigError
from gpbench.generators.card_art import pixel_sha256
from gpbench.tasks.registry import get_task

TASK = get_task("gp-vl")
TEXT = get_task("gp-l")


def _red_pixels(image: object) -> int:
    data = image.convert("RGB").tobytes()  # type: ignore[attr-defined]
    return sum(
        1
        for r, g, b in zip(data[0::3], data[1::3], data[2::3], strict=True)
        if r > 120 and r > g + 60 and r > b + 60
    )


def test_splits_and_suits() -> None:
    assert list(TASK.splits) == ["train", "id", "id-heldout", "ood-rule", "ood-color"]
    for split, suits in [("id", {"S", "C"}), ("ood-rule", {"S", "C"}), ("ood-color", {"H", "D"})]:
        for inst in TASK.dataset(split, 42, 40):
            assert set(inst.problem["suits"]) <= suits
    for inst in TASK.dataset("ood-color", 42, 40):
        assert inst.problem["rule"] == "jqk=10"


def test_paired_colour_variant_keeps_the_hand_and_swaps_the_colour() -> None:
    mapping = {"S": "H", "C": "D"}
    for index in range(30):
        black = TASK.instance("id", 42, index, {"paired": "true"})
        red = TASK.instance("ood-color", 42, index, {"paired": "true"})
        assert black.problem["cards"] == red.problem["cards"]
        assert [mapping[s] for s in black.problem["suits"]] == red.problem["suits"]


def test_messages_put_the_image_first_and_follow_the_paper_prompt() -> None:
    inst = TASK.instance("ood-color", 42, 3)
    [message] = inst.messages
    image_part, text_part = message["content"]
    assert image_part == {"type": "image", "path": "ood-color/images/3.png"}
    assert inst.images == ["ood-color/images/3.png"]
    text = text_part["text"]
    assert "You are observing these four cards in the image." in text
    assert "[Input]" not in text
    assert "Your response should be a valid json file in the following format:" in text


def test_colour_shift_is_visible_in_the_pixels() -> None:
    red = TASK.images(TASK.instance("ood-color", 42, 0))[0]
    black = TASK.images(TASK.instance("id", 42, 0))[0]
    assert red.size == (1200, 1200)
    assert _red_pixels(red) > 1000
    assert _red_pixels(black) == 0


def test_images_are_deterministic_and_keyed() -> None:
    inst = TASK.instance("id", 42, 1)
    assert pixel_sha256(TASK.images(inst)[0]) == pixel_sha256(TASK.images(inst)[0])
    other = TASK.instance("id", 42, 2)
    assert pixel_sha256(TASK.images(inst)[0]) != pixel_sha256(TASK.images(other)[0])


def test_visual_knobs_are_recorded_and_change_the_image() -> None:
    base = TASK.instance("id", 42, 0)
    knobs = {"background": "#223344", "rotation": "8", "jitter": "10", "resolution": "600"}
    shifted = TASK.instance("id", 42, 0, knobs)
    assert shifted.params["background"] == "#223344" and shifted.params["resolution"] == 600
    assert shifted.uid != base.uid
    image = TASK.images(shifted)[0]
    assert image.size == (600, 600)
    assert image.getpixel((2, 2))[:3] == (0x22, 0x33, 0x44)
    with pytest.raises(ConfigError, match="resolution"):
        TASK.instance("id", 42, 0, {"resolution": "10"})
    with pytest.raises(ConfigError, match="visual option"):
        TASK.instance("id", 42, 0, {"background": "not-a-colour"})


@pytest.mark.parametrize(
    ("variant", "status"),
    [
        ("python", "correct"),
        ("json", "correct"),
        ("bare", "correct"),
        ("reversed", "correct"),  # order does not matter: a multiset
        ("one_wrong", "misrecognized_cards"),
        ("three_cards", "misrecognized_cards"),
        ("one_string", "misrecognized_cards"),
    ],
)
def test_cards_are_checked_first(variant: str, status: str) -> None:
    inst = TASK.instance("ood-rule", 42, 0)
    hand = inst.problem["cards"]
    wrong = [*hand[:3], "Q" if hand[3] != "Q" else "K"]
    field = {
        "python": repr(hand),
        "json": json.dumps(hand),
        "bare": "[" + ", ".join(hand) + "]",
        "reversed": repr(hand[::-1]),
        "one_wrong": repr(wrong),
        "three_cards": repr(hand[:3]),
        "one_string": repr(" ".join(hand)),
    }[variant]
    formula = inst.reference["formula"]
    answer = f'{{"cards": {field}, "number": {inst.problem["values"]}, "formula": "{formula}"}}'
    verdict = TASK.verify(inst, answer)
    assert verdict.status == status
    if status == "misrecognized_cards":
        assert verdict.reward == -1.5 and verdict.statuses == ["misrecognized_cards"]


def test_numeric_and_t_card_names_are_accepted() -> None:
    inst = next(i for i in TASK.dataset("id", 42, 200) if "10" in i.problem["cards"])
    cards = ["T" if c == "10" else c for c in inst.problem["cards"]]
    answer = f'{{"cards": {cards!r}, "formula": "{inst.reference["formula"]}"}}'
    assert TASK.verify(inst, answer).correct
    assert not TASK.verify(inst, answer, mode="reference").correct
