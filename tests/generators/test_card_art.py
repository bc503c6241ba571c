from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops

from gpbench.generators.card_art import (
    SceneStyle,
    clear_caches,
    pixel_sha256,
    render_card,
    render_scene,
    scene_png,
)

RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
SUITS = ("S", "H", "D", "C")
GREEN = (0x35, 0x65, 0x4D)
PAPER_POSITIONS = ((5, 411), (302, 411), (599, 411), (896, 411))
CARD_W, CARD_H = 270, 378


def _is_red(rgb: tuple[int, ...]) -> bool:
    """The brief's definition of a reddish pixel."""
    r, g, b = rgb[:3]
    return r > 120 and r > g + 60 and r > b + 60


def _colours(image: Image.Image) -> list[tuple[int, ...]]:
    """Every distinct colour of ``image`` (fast: counted in C, checked here in Python)."""
    return [colour for _, colour in _counted_colours(image)]


def _counted_colours(image: Image.Image) -> list[tuple[int, tuple[int, ...]]]:
    counted = image.getcolors(maxcolors=image.width * image.height)
    assert counted is not None
    out: list[tuple[int, tuple[int, ...]]] = []
    for n, colour in counted:
        assert isinstance(colour, tuple)  # multi-band images count tuples, never single ints
        out.append((n, colour))
    return out


def _red_count(image: Image.Image) -> int:
    return sum(n for n, colour in _counted_colours(image.convert("RGB")) if _is_red(colour))


def _differing_share(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
    unchanged = diff.histogram()[0]
    return 1 - unchanged / (a.width * a.height)


# --- determinism ---------------------------------------------------------------------------


def test_same_inputs_give_identical_pixels_and_png_bytes_even_from_cold_caches() -> None:
    style = SceneStyle(rotation_deg=6, jitter_px=9)
    clear_caches()
    first = render_scene(["10", "J", "Q", "K"], ["S", "C", "S", "C"])
    first_knobs = render_scene(["A", "7", "9", "Q"], ["H", "D", "H", "D"], style, jitter_key="k")
    clear_caches()  # redraw every face, font and tile from scratch
    second = render_scene(["10", "J", "Q", "K"], ["S", "C", "S", "C"])
    second_knobs = render_scene(["A", "7", "9", "Q"], ["H", "D", "H", "D"], style, jitter_key="k")
    assert pixel_sha256(first) == pixel_sha256(second)
    assert pixel_sha256(first_knobs) == pixel_sha256(second_knobs)
    assert scene_png(first) == scene_png(second)
    assert scene_png(first_knobs) == scene_png(second_knobs)


_CHILD = """
from gpbench.generators.card_art import SceneStyle, pixel_sha256, render_scene
print(pixel_sha256(render_scene(["A", "10", "J", "K"], ["S", "C", "H", "D"])))
style = SceneStyle(rotation_deg=7.5, jitter_px=12, card_scale=0.9)
print(pixel_sha256(render_scene(["Q", "3", "8", "K"], ["C", "S", "D", "H"], style, jitter_key="gp-vl-v1/id/42/7")))
"""


def test_pixel_hash_is_the_same_in_a_process_with_another_hash_seed() -> None:
    here = [
        pixel_sha256(render_scene(["A", "10", "J", "K"], ["S", "C", "H", "D"])),
        pixel_sha256(
            render_scene(
                ["Q", "3", "8", "K"],
                ["C", "S", "D", "H"],
                SceneStyle(rotation_deg=7.5, jitter_px=12, card_scale=0.9),
                jitter_key="gp-vl-v1/id/42/7",
            )
        ),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == here


# --- the paper's layout ----------------------------------------------------------------------


def test_scene_is_1200_square_rgb_with_cards_exactly_at_the_paper_positions() -> None:
    scene = render_scene(["10", "J", "Q", "K"], ["S", "C", "S", "C"])
    assert scene.mode == "RGB" and scene.size == (1200, 1200)
    assert SceneStyle().card_positions == PAPER_POSITIONS
    for x, y in PAPER_POSITIONS:
        cx, cy = x + CARD_W // 2, y + CARD_H // 2
        assert scene.getpixel((cx, cy)) != GREEN
        # Each edge of the card rectangle is card (its border line); one pixel out is table.
        for inside, outside in [
            ((cx, y), (cx, y - 1)),
            ((cx, y + CARD_H - 1), (cx, y + CARD_H)),
            ((x, cy), (x - 1, cy)),
            ((x + CARD_W - 1, cy), (x + CARD_W, cy)),
        ]:
            assert scene.getpixel(inside) != GREEN, (x, y, inside)
            assert scene.getpixel(outside) == GREEN, (x, y, outside)
        # Rounded corners show the table.
        assert scene.getpixel((x, y)) == GREEN
    for x in (288, 585, 882):  # the gaps between the cards
        assert scene.getpixel((x, 600)) == GREEN
    assert scene.getpixel((600, 200)) == GREEN and scene.getpixel((600, 1000)) == GREEN


def test_fast_tile_path_equals_alpha_compositing_of_the_faces() -> None:
    ranks, suits = ["A", "7", "10", "K"], ["H", "C", "D", "S"]
    expected = Image.new("RGB", (1200, 1200), GREEN)
    for rank, suit, pos in zip(ranks, suits, PAPER_POSITIONS, strict=True):
        face = render_card(rank, suit)
        expected.paste(face, pos, face)
    assert pixel_sha256(render_scene(ranks, suits)) == pixel_sha256(expected)
    # Overlapping cards take the compositing path; later cards lie on top.
    style = SceneStyle(card_positions=((0, 0), (100, 50), (200, 100), (300, 150)))
    overlapped = render_scene(ranks, suits, style)
    expected = Image.new("RGB", (1200, 1200), GREEN)
    for rank, suit, pos in zip(ranks, suits, style.card_positions, strict=True):
        face = render_card(rank, suit)
        expected.paste(face, pos, face)
    assert pixel_sha256(overlapped) == pixel_sha256(expected)


# --- faces ----------------------------------------------------------------------------------


def test_all_52_faces_are_rgba_of_the_paper_size_and_pairwise_distinct() -> None:
    hashes = {}
    for rank, suit in itertools.product(RANKS, SUITS):
        face = render_card(rank, suit)
        assert face.mode == "RGBA" and face.size == (CARD_W, CARD_H)
        hashes[pixel_sha256(face)] = (rank, suit)
    assert len(hashes) == 52


def test_black_suit_faces_are_pure_greys_and_red_suit_faces_pure_red_tints() -> None:
    for rank, suit in itertools.product(RANKS, SUITS):
        face = render_card(rank, suit)
        colours = _colours(face)
        opaque = [c for c in colours if c[3] > 0]
        if suit in ("S", "C"):
            # Antialiased edges included: not one reddish (or any coloured) pixel.
            assert not any(_is_red(c) for c in colours), (rank, suit)
            assert all(r == g == b for r, g, b, _ in opaque), (rank, suit)
            assert _red_count(face) == 0
        else:
            assert any(_is_red(c) for c in opaque), (rank, suit)
            assert _red_count(face) > 200, (rank, suit)
            # Every colour lies on the line from white to #c8102e (within rounding).
            for r, g, b, _ in opaque:
                t = (255 - g) / (255 - 0x10)
                assert abs(r - (255 - t * (255 - 0xC8))) <= 2, (rank, suit, (r, g, b))
                assert abs(b - (255 - t * (255 - 0x2E))) <= 2, (rank, suit, (r, g, b))


def test_scenes_of_black_cards_hold_no_red_and_red_cards_plenty() -> None:
    black = render_scene(["J", "Q", "K", "10"], ["S", "C", "S", "C"])
    assert _red_count(black) == 0
    knobs = SceneStyle(rotation_deg=12, jitter_px=15, card_scale=1.1)
    assert (
        _red_count(render_scene(["A", "K", "Q", "J"], ["C", "S", "C", "S"], knobs, jitter_key="x"))
        == 0
    )
    red = render_scene(["A", "7", "9", "Q"], ["H", "D", "H", "D"])
    assert _red_count(red) > 4 * 1000


def test_court_cards_differ_clearly_from_each_other_and_from_ten() -> None:
    for suit in SUITS:
        faces = {rank: render_card(rank, suit) for rank in ("10", "J", "Q", "K")}
        for a, b in itertools.combinations(faces, 2):
            assert pixel_sha256(faces[a]) != pixel_sha256(faces[b])
            # Not a one-glyph difference: the designs differ over a real share of the card.
            assert _differing_share(faces[a], faces[b]) > 0.04, (suit, a, b)


def test_render_card_validates_and_returns_a_private_copy() -> None:
    face = render_card("Q", "H")
    face.paste((0, 0, 0, 255), (0, 0, CARD_W, CARD_H))
    assert pixel_sha256(render_card("Q", "H")) != pixel_sha256(face)
    small = render_card("7", "D", (100, 140))
    assert small.size == (100, 140)
    for args in [("1", "S"), ("T", "S"), ("A", "X"), ("A", "s")]:
        with pytest.raises(ValueError, match="unknown"):
            render_card(*args)
    with pytest.raises(ValueError, match="size"):
        render_card("A", "S", (8, 8))


# --- style ----------------------------------------------------------------------------------


def test_style_params_are_json_and_round_trip() -> None:
    style = SceneStyle()
    params = style.as_params()
    assert style.is_paper_default() and params["paper_default"] is True
    assert json.loads(json.dumps(params)) == params
    assert params["background"] == "#35654d" and params["card_size"] == [270, 378]
    assert SceneStyle.from_params(json.loads(json.dumps(params))) == style
    knobs = SceneStyle(background="#223344", card_scale=0.8, rotation_deg=5, jitter_px=4)
    assert not knobs.is_paper_default() and knobs.as_params()["paper_default"] is False
    assert SceneStyle.from_params(json.loads(json.dumps(knobs.as_params()))) == knobs
    # Spellings of the same colour normalise to one value (params and caches agree).
    assert SceneStyle(background="#35654D") == style
    assert SceneStyle(background="rgb(53, 101, 77)").is_paper_default()
    with pytest.raises(ValueError, match="unknown scene style"):
        SceneStyle.from_params({"colour": "red"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "width and height"),
        ({"height": -5}, "width and height"),
        ({"width": 1200.0}, "width must be an integer"),
        ({"width": True}, "width must be an integer"),
        ({"background": "not-a-colour"}, "background"),
        ({"background": "#35654d80"}, "opaque"),
        ({"background": 0x35654D}, "colour string"),
        ({"card_size": (0, 378)}, "card_size"),
        ({"card_size": (270,)}, "pair"),
        ({"card_positions": ((5, 411), (302, 411), (599, 411))}, "4"),
        ({"card_positions": ((5, 411),) * 5}, "4"),
        ({"card_positions": ((5, 411), (302, 411), (599, 411), (1000, 411))}, "does not fit"),
        ({"card_positions": ((-1, 411), (302, 411), (599, 411), (896, 411))}, "does not fit"),
        ({"card_scale": 0}, "card_scale"),
        ({"card_scale": 2.5}, "card_scale"),
        ({"card_scale": float("nan")}, "finite"),
        ({"card_scale": 0.01}, "smaller"),
        ({"rotation_deg": -1}, "rotation_deg"),
        ({"rotation_deg": 181}, "rotation_deg"),
        ({"jitter_px": -1}, "jitter_px"),
        ({"jitter_px": 1.5}, "jitter_px"),
    ],
)
def test_style_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SceneStyle(**kwargs)  # type: ignore[arg-type]


def test_render_scene_needs_one_card_per_position() -> None:
    with pytest.raises(ValueError, match="4 ranks and 4 suits"):
        render_scene(["A", "2", "3"], ["S", "S", "S"])
    with pytest.raises(ValueError, match="unknown suit"):
        render_scene(["A", "2", "3", "4"], ["S", "S", "S", "R"])


# --- knobs ----------------------------------------------------------------------------------

HAND = (["A", "10", "Q", "K"], ["S", "H", "C", "D"])


def test_knobs_off_ignore_the_jitter_key() -> None:
    base = pixel_sha256(render_scene(*HAND))
    assert pixel_sha256(render_scene(*HAND, jitter_key="anything")) == base
    assert pixel_sha256(render_scene(*HAND, SceneStyle(), jitter_key="else")) == base


@pytest.mark.parametrize(
    "style",
    [
        SceneStyle(jitter_px=10),
        SceneStyle(rotation_deg=8),
        SceneStyle(rotation_deg=8, jitter_px=10, card_scale=0.85),
    ],
)
def test_knobs_change_the_image_deterministically_in_the_key(style: SceneStyle) -> None:
    base = pixel_sha256(render_scene(*HAND))
    a = pixel_sha256(render_scene(*HAND, style, jitter_key="gp-vl-v1/id/42/0"))
    again = pixel_sha256(render_scene(*HAND, style, jitter_key="gp-vl-v1/id/42/0"))
    other = pixel_sha256(render_scene(*HAND, style, jitter_key="gp-vl-v1/id/42/1"))
    assert a == again
    assert a != base and a != other


def test_scale_and_background_change_the_image_and_keep_the_layout() -> None:
    big = render_scene(*HAND, SceneStyle(card_scale=1.1))
    small = render_scene(*HAND, SceneStyle(card_scale=0.5))
    for x, y in PAPER_POSITIONS:
        cx, cy = x + CARD_W // 2, y + CARD_H // 2
        assert small.getpixel((x + 10, cy)) == GREEN  # shrunk about the centre
        assert big.getpixel((cx, y - 5)) != GREEN  # grown about the centre
    blue = render_scene(*HAND, SceneStyle(background="#223344"))
    assert blue.getpixel((600, 100)) == (0x22, 0x33, 0x44)


def test_moved_cards_stay_on_the_table() -> None:
    style = SceneStyle(jitter_px=60, rotation_deg=20)
    for key in range(20):
        scene = render_scene(*HAND, style, jitter_key=str(key))
        # The first card sits 5 px from the left edge: it would be pushed off without clamping.
        assert scene.getpixel((0, 10)) == GREEN and scene.getpixel((1199, 10)) == GREEN
        column = [scene.getpixel((0, y)) for y in range(1200)]
        assert sum(p != GREEN for p in column) < 200, key


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from(RANKS), min_size=4, max_size=4),
    st.lists(st.sampled_from(("S", "C")), min_size=4, max_size=4),
    st.text(max_size=12),
    st.integers(0, 30),
    st.integers(0, 20),
)
def test_any_black_hand_with_any_knobs_has_no_red(
    ranks: list[str], suits: list[str], key: str, jitter: int, rotation: int
) -> None:
    style = SceneStyle(jitter_px=jitter, rotation_deg=rotation)
    assert _red_count(render_scene(ranks, suits, style, jitter_key=key)) == 0


# --- bytes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_pixel_hash_survives_a_png_round_trip(level: int) -> None:
    scene = render_scene(["A", "7", "9", "Q"], ["H", "D", "H", "D"])
    with Image.open(io.BytesIO(scene_png(scene, compress_level=level))) as decoded:
        assert decoded.mode == "RGB" and decoded.size == (1200, 1200)
        assert pixel_sha256(decoded) == pixel_sha256(scene)
