"""Playing-card faces and the GP-VL table scene, drawn with pillow from the font gpbench ships.

The scene follows the paper's layout: a 1200x1200 RGB canvas in casino green
``#35654d`` with four 270x378 cards whose top-left corners are at x = 5, 302, 599, 896, y = 411.
:class:`SceneStyle` holds that layout and a few optional visual knobs (card scale, rotation,
jitter), all off by default.

How a card is drawn. Everything printed on a card is first drawn as *ink coverage* on a
greyscale canvas (0 = bare white card, 255 = full ink) at :data:`SUPERSAMPLE` times the final
size, reduced with a box filter (antialiasing), and only then coloured: each pixel is the linear
mix of white and the suit's ink colour (black, or red ``#c8102e``) by its coverage. So a
black-suit card holds only greys (R = G = B in every pixel, antialiased edges included) and a
red-suit card only reds and light red tints; the colour shift of the ``ood-color`` split is the
only difference between a black and a red card of the same rank. Suit symbols are polygons and
ellipses (not font glyphs), so they look the same at any size; corner indices and the court
letters use ``gpbench/assets/fonts/DejaVuSans-Bold.ttf`` through FreeType's basic layout (no
raqm, no system fonts).

Determinism. Nothing here draws random numbers of its own: the optional
rotation/jitter come from :class:`gpbench.generators.rng.KeyedRng` keyed by the caller's
``jitter_key``, and with those knobs at 0 the key is not used at all. The default path uses
only polygon/ellipse rasterisation, FreeType and integer box reduction, so the decoded pixels
are the same on every machine with the same pillow/FreeType; :func:`pixel_sha256` hashes those
pixels (PNG bytes may differ with the zlib inside pillow).

Speed. Card faces, the background and the card-on-background tiles are cached, so building a
scene is one copy of the background plus four rectangle copies (thousands per second);
PNG encoding (:func:`scene_png`) is the expensive part and is measured in
``bench/bench_render.py``.

>>> scene = render_scene(["A", "10", "J", "K"], ["S", "C", "S", "C"])
>>> scene.mode, scene.size
('RGB', (1200, 1200))
>>> scene.getpixel((600, 200))  # the table between and above the cards
(53, 101, 77)
>>> SceneStyle().is_paper_default(), SceneStyle(jitter_px=3).is_paper_default()
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from PIL import Image, ImageChops, ImageColor, ImageDraw

from gpbench.generators import imaging
from gpbench.generators.cards import RANK_NAMES, SUITS

# Re-exported: callers have always imported them from here.
from gpbench.generators.imaging import PNG_COMPRESS_LEVEL, pixel_sha256, scene_png
from gpbench.generators.rng import KeyedRng

__all__ = [
    "BLACK_INK",
    "PNG_COMPRESS_LEVEL",
    "RED_INK",
    "SUPERSAMPLE",
    "SceneStyle",
    "clear_caches",
    "pixel_sha256",
    "render_card",
    "render_scene",
    "scene_png",
]

SUPERSAMPLE = 4
"""Faces are drawn at this multiple of their size and box-reduced: antialiasing with integer maths."""

BLACK_INK: tuple[int, int, int] = (0, 0, 0)
"""Ink of spades and clubs: every mark on those cards is a grey between this and white."""
RED_INK: tuple[int, int, int] = (0xC8, 0x10, 0x2E)
"""Ink of hearts and diamonds (``#c8102e``): every mark is a tint between this and white."""

_PAPER = "#35654d"
_MIN_CARD_SIDE = 16  # below this the corner index and pips no longer fit legibly
_MAX_SIDE = 16384

# Ink coverage levels (0 = white card, 255 = full suit colour). With black ink these are greys
# 255 - level; with red ink, tints between white and #c8102e.
_FULL = 255
_MID = 150  # fills of the court-card motifs: clearly inked, but lighter than outlines
_BORDER = 110  # the card's thin edge line: visible on the table without looking like a mark
_TINT = 34  # background of the court-card frame: a light wash

# One primitive of a suit symbol in unit coordinates (x, y in [-1, 1], y pointing down):
# ("poly", points) or ("ellipse", (cx, cy, r)).
_Shape = list[tuple[str, Any]]
_Point = tuple[float, float]


# --------------------------------------------------------------------------------------------
# Scene style


def _parse_colour(value: object, name: str) -> str:
    """``value`` as ``#rrggbb`` (lower case), or a ``ValueError`` that names the field."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a colour string such as '#35654d', got {value!r}")
    try:
        rgb = ImageColor.getrgb(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a colour pillow understands") from None
    if len(rgb) == 4 and rgb[3] != 255:
        raise ValueError(f"{name} {value!r} must be opaque (the scene is RGB)")
    return "#{:02x}{:02x}{:02x}".format(*rgb[:3])


def _as_int(value: object, name: str) -> int:
    # bool is an int subclass; True as a width is a bug in the caller, not a size of 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def _as_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def _as_pair(value: object, name: str) -> tuple[int, int]:
    # Lists are accepted so that a style read back from JSON params validates the same way.
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be a pair of integers, got {value!r}")
    return (_as_int(value[0], f"{name}[0]"), _as_int(value[1], f"{name}[1]"))


@dataclass(frozen=True)
class SceneStyle:
    """How the table scene looks: canvas, colour, card layout and optional visual knobs.

    The defaults are the paper's layout. Colours are normalised to ``#rrggbb`` and pairs to
    tuples on construction (so a style read back from JSON compares equal); every field is
    validated and a bad value raises ``ValueError`` naming the field.

    ``card_scale`` scales each card about its centre; ``rotation_deg`` and ``jitter_px`` are the
    largest absolute rotation (degrees) and offset (pixels, per axis) of each card, drawn per
    card from ``KeyedRng(jitter_key + f"/card{i}")`` by :func:`render_scene`.
    """

    width: int = 1200
    height: int = 1200
    background: str = _PAPER
    card_size: tuple[int, int] = (270, 378)
    card_positions: tuple[tuple[int, int], ...] = ((5, 411), (302, 411), (599, 411), (896, 411))
    card_scale: float = 1.0
    rotation_deg: float = 0.0
    jitter_px: int = 0

    def __post_init__(self) -> None:
        """Validate and normalise every field."""
        width = _as_int(self.width, "width")
        height = _as_int(self.height, "height")
        if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
            raise ValueError(f"width and height must be in 1..{_MAX_SIDE}, got {width}x{height}")
        background = _parse_colour(self.background, "background")
        card_w, card_h = _as_pair(self.card_size, "card_size")
        if card_w < _MIN_CARD_SIDE or card_h < _MIN_CARD_SIDE:
            raise ValueError(
                f"card_size must be at least {_MIN_CARD_SIDE}x{_MIN_CARD_SIDE}, got {card_w}x{card_h}"
            )
        if not isinstance(self.card_positions, tuple | list) or len(self.card_positions) != 4:
            raise ValueError(
                f"card_positions must hold 4 (x, y) pairs, got {self.card_positions!r}"
            )
        positions = tuple(
            _as_pair(p, f"card_positions[{i}]") for i, p in enumerate(self.card_positions)
        )
        for i, (x, y) in enumerate(positions):
            # The unscaled card must be fully on the table: a half-visible card is unreadable.
            if x < 0 or y < 0 or x + card_w > width or y + card_h > height:
                raise ValueError(
                    f"card {i} at ({x}, {y}) of size {card_w}x{card_h} does not fit the "
                    f"{width}x{height} canvas"
                )
        scale = _as_float(self.card_scale, "card_scale")
        if not 0.0 < scale <= 2.0:
            raise ValueError(f"card_scale must be in (0, 2], got {scale}")
        if round(card_w * scale) < _MIN_CARD_SIDE or round(card_h * scale) < _MIN_CARD_SIDE:
            raise ValueError(
                f"card_scale {scale} makes the cards smaller than {_MIN_CARD_SIDE} pixels"
            )
        rotation = _as_float(self.rotation_deg, "rotation_deg")
        if not 0.0 <= rotation <= 180.0:
            raise ValueError(f"rotation_deg must be in [0, 180], got {rotation}")
        jitter = _as_int(self.jitter_px, "jitter_px")
        if not 0 <= jitter <= max(width, height):
            raise ValueError(f"jitter_px must be in 0..{max(width, height)}, got {jitter}")
        # A frozen dataclass can only be normalised through object.__setattr__.
        for name, value in (
            ("background", background),
            ("card_size", (card_w, card_h)),
            ("card_positions", positions),
            ("card_scale", scale),
            ("rotation_deg", rotation),
        ):
            object.__setattr__(self, name, value)

    def is_paper_default(self) -> bool:
        """True for the paper's scene: its layout and colour, with every knob off."""
        return self == _PAPER_STYLE

    def as_params(self) -> dict[str, object]:
        """The style as JSON-able instance params (lists for pairs) plus ``paper_default``."""
        params: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "card_size":
                value = list(value)
            elif f.name == "card_positions":
                value = [list(p) for p in value]
            params[f.name] = value
        params["paper_default"] = self.is_paper_default()
        return params

    @classmethod
    def from_params(cls, params: dict[str, object]) -> SceneStyle:
        """The inverse of :meth:`as_params` (``paper_default`` is derived, so it is ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known - {"paper_default"}
        if unknown:
            raise ValueError(f"unknown scene style fields: {sorted(unknown)}")
        return cls(**{k: v for k, v in params.items() if k in known})  # type: ignore[arg-type]


_PAPER_STYLE = SceneStyle()


# --------------------------------------------------------------------------------------------
# Suit symbols


def _normalised(shape: _Shape) -> _Shape:
    """Scale and centre a shape so its bounding box fits ``[-1, 1]^2`` touching two sides."""
    xs: list[float] = []
    ys: list[float] = []
    for kind, data in shape:
        if kind == "poly":
            xs += [p[0] for p in data]
            ys += [p[1] for p in data]
        else:
            cx, cy, r = data
            xs += [cx - r, cx + r]
            ys += [cy - r, cy + r]
    mx, my = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    half = max(max(xs) - min(xs), max(ys) - min(ys)) / 2
    out: _Shape = []
    for kind, data in shape:
        if kind == "poly":
            out.append((kind, [((x - mx) / half, (y - my) / half) for x, y in data]))
        else:
            cx, cy, r = data
            out.append((kind, ((cx - mx) / half, (cy - my) / half, r / half)))
    return out


def _heart_outline(steps: int = 160) -> list[_Point]:
    # The classic parametric heart: smooth lobes and a pointed tip; y is flipped for image axes.
    points = []
    for i in range(steps):
        t = 2 * math.pi * i / steps
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        points.append((x / 17, -y / 17))
    return points


def _build_suits() -> dict[str, _Shape]:
    heart = _heart_outline()
    # Spade: an upside-down heart on a flared stem.
    body = [(x * 0.95, -y * 0.95 - 0.12) for x, y in heart]
    stem = [
        (0.0, 0.25),
        (0.08, 0.62),
        (0.18, 0.82),
        (0.38, 0.98),
        (-0.38, 0.98),
        (-0.18, 0.82),
        (-0.08, 0.62),
    ]
    # Club: three round leaves, a filled centre and the same flared stem.
    r = 0.43
    leaves = [(0.0, -0.5), (-0.5, 0.2), (0.5, 0.2)]
    club: _Shape = [("ellipse", (x, y, r)) for x, y in leaves]
    club.append(("poly", [(0.0, -0.3), (-0.32, 0.25), (0.32, 0.25)]))
    club.append(("poly", [(0.0, 0.05), *stem[1:]]))
    # Diamond: a rhombus with slightly concave sides, as printed on cards.
    diamond: list[_Point] = []
    corners = [(0.0, -1.0), (0.74, 0.0), (0.0, 1.0), (-0.74, 0.0)]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
        for k in range(12):
            s = k / 12
            bow = 0.07 * math.sin(math.pi * s)  # pull the middle of each side inwards
            x, y = x0 + (x1 - x0) * s, y0 + (y1 - y0) * s
            diamond.append((x * (1 - bow), y * (1 - bow)))
    return {
        "S": _normalised([("poly", body), ("poly", stem)]),
        "H": _normalised([("poly", heart)]),
        "D": _normalised([("poly", diamond)]),
        "C": _normalised(club),
    }


_SUIT_SHAPES: dict[str, _Shape] = _build_suits()


def _draw_suit(
    draw: ImageDraw.ImageDraw,
    suit: str,
    cx: float,
    cy: float,
    half: float,
    *,
    flipped: bool = False,
    ink: int = _FULL,
) -> None:
    """Draw a suit symbol centred at ``(cx, cy)`` fitting a square of side ``2 * half``.

    ``flipped`` turns it upside down (as pips in the lower half of a card are printed); the
    symbols are left-right symmetric, so a vertical mirror is a 180° rotation.
    """
    sign = -1.0 if flipped else 1.0
    for kind, data in _SUIT_SHAPES[suit]:
        if kind == "poly":
            pts = [(cx + x * half, cy + sign * y * half) for x, y in data]
            draw.polygon(pts, fill=ink)
        else:
            x, y, r = data
            ex, ey = cx + x * half, cy + sign * y * half
            draw.ellipse([ex - r * half, ey - r * half, ex + r * half, ey + r * half], fill=ink)


# --------------------------------------------------------------------------------------------
# Text


@lru_cache(maxsize=1)
def _cap_ratio() -> float:
    """Height of a capital (``K``) above the baseline per pixel of font size."""
    ref = 1000
    return -float(imaging.font(ref).getbbox("K", anchor="ls")[1]) / ref


@lru_cache(maxsize=256)
def _text_mask(text: str, cap_height: int, gap: int) -> Image.Image:
    """Ink coverage of ``text`` whose capitals are ``cap_height`` px tall, cropped to its ink.

    Glyphs are set one by one on a shared baseline, ``gap`` px apart ink to ink: DejaVu's digits
    carry wide side bearings, and this tight setting keeps "10" narrow enough for a card corner
    without squeezing it through a resampling filter.
    """
    font = imaging.font(max(1, round(cap_height / _cap_ratio())))
    boxes = [font.getbbox(ch, anchor="ls") for ch in text]
    top = min(b[1] for b in boxes)
    bottom = max(b[3] for b in boxes)
    width = sum(int(b[2] - b[0]) for b in boxes) + gap * (len(text) - 1)
    mask = Image.new("L", (max(1, width), max(1, int(bottom - top))), 0)
    draw = ImageDraw.Draw(mask)
    x = 0
    for ch, (left, _, right, _) in zip(text, boxes, strict=True):
        draw.text((x - left, -top), ch, fill=255, font=font, anchor="ls")
        x += int(right - left) + gap
    return mask


def _stamp(canvas: Image.Image, mask: Image.Image, cx: float, cy: float, ink: int = _FULL) -> None:
    """Ink ``mask`` onto ``canvas`` centred at ``(cx, cy)`` (coverage blends, edges stay smooth)."""
    x = round(cx - mask.width / 2)
    y = round(cy - mask.height / 2)
    canvas.paste(ink, (x, y, x + mask.width, y + mask.height), mask)


# --------------------------------------------------------------------------------------------
# Card faces

# Pip positions of the number cards: (column, row) in a unit grid, column 0/0.5/1 = left/centre/
# right, row 0..1 from the top pip row to the bottom one; pips below the middle print upside down.
_SIDE_COLUMNS_OF_FOUR = tuple((c, r / 3) for r in range(4) for c in (0.0, 1.0))
_PIP_LAYOUTS: dict[str, tuple[tuple[float, float], ...]] = {
    "2": ((0.5, 0.0), (0.5, 1.0)),
    "3": ((0.5, 0.0), (0.5, 0.5), (0.5, 1.0)),
    "4": ((0, 0), (1, 0), (0, 1), (1, 1)),
    "5": ((0, 0), (1, 0), (0.5, 0.5), (0, 1), (1, 1)),
    "6": ((0, 0), (1, 0), (0, 0.5), (1, 0.5), (0, 1), (1, 1)),
    "7": ((0, 0), (1, 0), (0.5, 0.25), (0, 0.5), (1, 0.5), (0, 1), (1, 1)),
    "8": ((0, 0), (1, 0), (0.5, 0.25), (0, 0.5), (1, 0.5), (0.5, 0.75), (0, 1), (1, 1)),
    "9": (*_SIDE_COLUMNS_OF_FOUR, (0.5, 0.5)),
    "10": (*_SIDE_COLUMNS_OF_FOUR, (0.5, 1 / 6), (0.5, 5 / 6)),
}


@dataclass(frozen=True)
class _Geometry:
    """Where things go on a card of a given size, in supersampled pixels."""

    w: float
    h: float

    @property
    def radius(self) -> float:
        return 0.06 * min(self.w, self.h) * 1.4

    @property
    def border(self) -> int:
        return max(1, round(0.008 * self.w))

    # Corner index: rank above a small suit, centred on this column.
    @property
    def index_cx(self) -> float:
        return 0.115 * self.w

    @property
    def index_cap(self) -> int:
        return round(0.105 * self.h)

    @property
    def index_left(self) -> float:
        return 0.035 * self.w

    @property
    def index_top(self) -> float:
        return 0.03 * self.h

    @property
    def index_suit_half(self) -> float:
        return 0.052 * self.w

    # Pips of the number cards.
    @property
    def pip_half(self) -> float:
        return 0.085 * self.w

    def pip_centre(self, col: float, row: float) -> _Point:
        x = (0.3 + 0.4 * col) * self.w
        y = (0.215 + 0.57 * row) * self.h
        return x, y

    # Frame of the court cards.
    @property
    def frame(self) -> tuple[float, float, float, float]:
        return (0.225 * self.w, 0.075 * self.h, 0.775 * self.w, 0.925 * self.h)


def _draw_corner_index(canvas: Image.Image, rank: str, suit: str, g: _Geometry) -> None:
    """Rank and small suit in the top-left corner, and the same turned 180° bottom-right."""
    s = SUPERSAMPLE
    cap = g.index_cap
    gap = round(0.06 * cap)
    rank_mask = _text_mask(rank, cap, gap)
    # "10" is the one wide index: it may reach over the first pip column (it sits above the top
    # pip row) and is set a little smaller only if it would still be wider than that.
    max_width = 0.25 * g.w
    if rank_mask.width > max_width:
        rank_mask = _text_mask(rank, round(cap * max_width / rank_mask.width), gap)
    rank_cx = max(g.index_cx, g.index_left + rank_mask.width / 2)
    suit_cy = g.index_top + cap + 0.025 * g.h + g.index_suit_half
    # Draw on a blank corner so that copying it to the opposite corner copies nothing else.
    box_w = int(g.index_left + max_width + 2 * s)
    box_h = int(suit_cy + g.index_suit_half + 2 * s)
    corner = Image.new("L", (box_w, box_h), 0)
    _stamp(corner, rank_mask, rank_cx, g.index_top + cap / 2)
    _draw_suit(ImageDraw.Draw(corner), suit, g.index_cx, suit_cy, g.index_suit_half)
    # Merge with a per-pixel maximum (nothing drawn before is erased); the turned copy is an
    # exact transpose, no resampling.
    for part, (x0, y0) in (
        (corner, (0, 0)),
        (corner.transpose(Image.Transpose.ROTATE_180), (g.w - box_w, g.h - box_h)),
    ):
        x, y = round(x0), round(y0)
        region = canvas.crop((x, y, x + box_w, y + box_h))
        canvas.paste(ImageChops.lighter(region, part), (x, y))


def _draw_pips(draw: ImageDraw.ImageDraw, rank: str, suit: str, g: _Geometry) -> None:
    if rank == "A":
        _draw_suit(draw, suit, g.w / 2, g.h / 2, 0.23 * g.w)
        return
    for col, row in _PIP_LAYOUTS[rank]:
        x, y = g.pip_centre(col, row)
        _draw_suit(draw, suit, x, y, g.pip_half, flipped=row > 0.5)


def _unit(cx: float, cy: float, half: float, pts: Sequence[_Point], flip: bool) -> list[_Point]:
    """Map motif points from unit coordinates into a box; ``flip`` rotates them by 180°."""
    sign = -1.0 if flip else 1.0
    return [(cx + sign * x * half, cy + sign * y * half) for x, y in pts]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int) -> list[_Point]:
    """Points along an elliptical arc from angle ``a0`` to ``a1`` (radians, y down)."""
    return [
        (cx + rx * math.cos(a0 + (a1 - a0) * i / n), cy + ry * math.sin(a0 + (a1 - a0) * i / n))
        for i in range(n + 1)
    ]


def _ball(pts: list[_Point], x: float, y: float, r: float, n: int = 20) -> None:
    pts.extend(_arc(x, y, r, r, 0, 2 * math.pi, n))


def _motif(rank: str) -> list[tuple[list[_Point], int]]:
    """The headdress of a court card in unit coordinates: (polygon, ink) in drawing order.

    King: a five-pointed crown with balls on the points; queen: a coronet of three round arches
    topped with pearls; jack: a soft cap with a long feather. The silhouettes differ, so the
    three court cards are told apart even before their letters are read.
    """
    parts: list[tuple[list[_Point], int]] = []
    if rank == "K":
        tips = [(-0.95, -0.35), (-0.48, -0.62), (0.0, -0.88), (0.48, -0.62), (0.95, -0.35)]
        valleys = [(-0.7, 0.1), (-0.24, 0.02), (0.24, 0.02), (0.7, 0.1)]
        body: list[_Point] = [(-0.82, 0.5)]
        for i, tip in enumerate(tips):
            body.append(tip)
            if i < len(valleys):
                body.append(valleys[i])
        body.append((0.82, 0.5))
        parts.append((body, _MID))
        parts.append(([(-0.86, 0.45), (0.86, 0.45), (0.86, 0.85), (-0.86, 0.85)], _FULL))
        for x, y in tips:
            ball: list[_Point] = []
            _ball(ball, x, y - 0.06, 0.12)
            parts.append((ball, _FULL))
        for x in (-0.5, 0.0, 0.5):  # white jewels on the band
            parts.append(([(x, 0.52), (x + 0.1, 0.65), (x, 0.78), (x - 0.1, 0.65)], 0))
    elif rank == "Q":
        body = [(-0.8, 0.5), (-0.8, 0.05)]
        for cx, cy, r in ((-0.53, 0.05, 0.27), (0.0, -0.2, 0.28), (0.53, 0.05, 0.27)):
            body += _arc(cx, cy, r, r * 1.25, math.pi, 2 * math.pi, 16)
        body += [(0.8, 0.05), (0.8, 0.5)]
        parts.append((body, _MID))
        parts.append(([(-0.84, 0.45), (0.84, 0.45), (0.84, 0.78), (-0.84, 0.78)], _FULL))
        for x, y, r in ((-0.53, -0.38, 0.12), (0.0, -0.73, 0.15), (0.53, -0.38, 0.12)):
            pearl: list[_Point] = []
            _ball(pearl, x, y, r)
            parts.append((pearl, _FULL))
        parts.append(([(0.0, 0.5), (0.1, 0.615), (0.0, 0.73), (-0.1, 0.615)], 0))
    else:  # "J"
        cap = _arc(-0.05, 0.45, 0.85, 0.72, math.pi, 2 * math.pi, 30)
        parts.append(([*cap, (0.8, 0.45), (-0.9, 0.45)], _MID))
        parts.append(([(-0.95, 0.42), (0.85, 0.42), (0.85, 0.72), (-0.95, 0.72)], _FULL))
        # The feather: a leaf swept up and to the right from the cap's band.
        spine = [
            (0.25 + 0.7 * t, 0.3 - 1.2 * t + 0.35 * t * t) for t in (i / 12 for i in range(13))
        ]
        width = [0.16 * math.sin(math.pi * i / 12) for i in range(13)]
        upper = [(x - w * 0.6, y - w) for (x, y), w in zip(spine, width, strict=True)]
        lower = [(x + w * 0.6, y + w) for (x, y), w in zip(spine, width, strict=True)]
        parts.append(([*upper, *reversed(lower)], _FULL))
        stud: list[_Point] = []
        _ball(stud, 0.25, 0.3, 0.1)
        parts.append((stud, 0))
    return parts


def _draw_court(canvas: Image.Image, rank: str, suit: str, g: _Geometry) -> None:
    """J/Q/K: a framed, double-ended design with the rank's headdress and a large letter."""
    s = SUPERSAMPLE
    draw = ImageDraw.Draw(canvas)
    x0, y0, x1, y1 = g.frame
    line = max(s, round(0.008 * g.w))
    draw.rectangle([x0, y0, x1, y1], fill=_TINT, outline=_FULL, width=line)
    inset = 3 * line
    draw.rectangle([x0 + inset, y0 + inset, x1 - inset, y1 - inset], outline=_MID, width=line // 2)
    fw, fh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    # Top half: headdress and a small pip beside it; the bottom half is the same turned 180°.
    motif_half = 0.3 * fw
    motif_cy = y0 + 0.17 * fh
    for flip in (False, True):
        my = motif_cy if not flip else y1 - (motif_cy - y0)
        for pts, ink in _motif(rank):
            poly = _unit(cx, my, motif_half, pts, flip)
            draw.polygon(poly, fill=ink, outline=_FULL if ink != 0 else None, width=line // 2)
        px = x0 + 0.15 * fw if not flip else x1 - 0.15 * fw
        py = y0 + 0.065 * fh if not flip else y1 - 0.065 * fh
        _draw_suit(draw, suit, px, py, 0.08 * fw, flipped=flip)
    # The letter sits on a white oval in the centre, upright, as large as the frame allows.
    cy = (y0 + y1) / 2
    rx, ry = 0.42 * fw, 0.17 * fh
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=0, outline=_FULL, width=line)
    letter = _text_mask(rank, round(0.19 * fh), 0)
    _stamp(canvas, letter, cx, cy)


@lru_cache(maxsize=64)
def _alpha_mask(width: int, height: int) -> Image.Image:
    """The card's rounded outline as an antialiased alpha channel."""
    s = SUPERSAMPLE
    g = _Geometry(width * s, height * s)
    big = Image.new("L", (width * s, height * s), 0)
    ImageDraw.Draw(big).rounded_rectangle(
        [0, 0, width * s - 1, height * s - 1], radius=round(g.radius), fill=255
    )
    return big.reduce(s)


def _check_card(rank: str, suit: str, size: tuple[int, int]) -> None:
    if rank not in RANK_NAMES:
        raise ValueError(f"unknown card rank {rank!r} (expected one of {RANK_NAMES})")
    if suit not in SUITS:
        raise ValueError(f"unknown suit {suit!r} (expected one of {SUITS})")
    if (
        not isinstance(size, tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        or min(size) < _MIN_CARD_SIDE
    ):
        raise ValueError(f"card size must be two integers >= {_MIN_CARD_SIDE}, got {size!r}")


@lru_cache(maxsize=256)
def _face(rank: str, suit: str, size: tuple[int, int]) -> Image.Image:
    """The cached RGBA face; shared, so callers must never modify it."""
    _check_card(rank, suit, size)
    width, height = size
    s = SUPERSAMPLE
    g = _Geometry(width * s, height * s)
    canvas = Image.new("L", (width * s, height * s), 0)
    draw = ImageDraw.Draw(canvas)
    draw.rounded_rectangle(
        [0, 0, width * s - 1, height * s - 1],
        radius=round(g.radius),
        outline=_BORDER,
        width=g.border * s // 2 + s,
    )
    if rank in ("J", "Q", "K"):
        _draw_court(canvas, rank, suit, g)
    else:
        _draw_pips(draw, rank, suit, g)
    _draw_corner_index(canvas, rank, suit, g)
    coverage = canvas.reduce(s)
    # Colour last: one linear mix of white and the suit's ink by coverage, the same weights in
    # every channel, so black-suit faces are exactly grey and red-suit faces exactly red tints.
    ink = RED_INK if suit in ("H", "D") else BLACK_INK
    face = Image.composite(
        Image.new("RGB", size, ink), Image.new("RGB", size, (255, 255, 255)), coverage
    )
    face.putalpha(_alpha_mask(width, height))
    return face


def render_card(rank: str, suit: str, size: tuple[int, int] = (270, 378)) -> Image.Image:
    """One card face as an RGBA image (transparent outside the rounded corners).

    ``rank`` is one of ``A 2 3 4 5 6 7 8 9 10 J Q K``, ``suit`` one of ``S H D C``. Faces are
    drawn once per ``(rank, suit, size)`` and cached; the caller gets its own copy.
    """
    return _face(rank, suit, tuple(size)).copy()


# --------------------------------------------------------------------------------------------
# Scenes


def _rgb(colour: str) -> tuple[int, int, int]:
    r, g, b = ImageColor.getrgb(colour)[:3]
    return (r, g, b)


@lru_cache(maxsize=16)
def _background(width: int, height: int, colour: str) -> Image.Image:
    return Image.new("RGB", (width, height), _rgb(colour))


@lru_cache(maxsize=512)
def _tile(rank: str, suit: str, size: tuple[int, int], colour: str) -> Image.Image:
    """The face already composited onto a patch of table colour: a scene whose cards do not
    overlap gets exactly these pixels from an alpha paste, and a plain paste is ~6x faster."""
    face = _face(rank, suit, size)
    tile = Image.new("RGB", size, _rgb(colour))
    tile.paste(face, (0, 0), face)
    return tile


def _scaled_size(style: SceneStyle) -> tuple[int, int]:
    w, h = style.card_size
    return (round(w * style.card_scale), round(h * style.card_scale))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def render_scene(
    ranks: Sequence[str],
    suits: Sequence[str],
    style: SceneStyle = _PAPER_STYLE,
    *,
    jitter_key: str = "",
) -> Image.Image:
    """The table scene: ``style``'s background with one card per position, left to right.

    ``ranks`` and ``suits`` give one card per entry of ``style.card_positions``. With
    ``rotation_deg`` or ``jitter_px`` set, card ``i`` gets an offset ``(dx, dy)`` in
    ``[-jitter_px, jitter_px]`` and an angle in ``[-rotation_deg, rotation_deg]`` (steps of
    1/1000 of the maximum) drawn in that order from ``KeyedRng(jitter_key + f"/card{i}")``;
    with both at 0, ``jitter_key`` is ignored. A moved card is clamped back onto the table if
    it would leave it. Returns a new RGB image the caller may modify.

    Cost: the paper's style and jitter copy cached tiles (~0.3 ms a scene); rotation turns each
    face bilinearly and composites it with its alpha (~16 ms a scene).
    """
    n = len(style.card_positions)
    if len(ranks) != n or len(suits) != n:
        raise ValueError(
            f"a scene needs {n} ranks and {n} suits, got {len(ranks)} and {len(suits)}"
        )
    size = _scaled_size(style)
    base_w, base_h = style.card_size
    placed: list[tuple[Image.Image, int, int, bool]] = []  # (face, x, y, rotated)
    for i, ((x, y), rank, suit) in enumerate(zip(style.card_positions, ranks, suits, strict=True)):
        face = _face(rank, suit, size)
        # Scale about the card's centre with integer maths: no float rounding in the layout.
        left = x + (base_w - size[0]) // 2
        top = y + (base_h - size[1]) // 2
        angle = 0.0
        if style.jitter_px or style.rotation_deg:
            rng = KeyedRng(jitter_key + f"/card{i}")
            # Always draw dx, dy, angle in this order, so turning one knob on or off does not
            # move the values the other one gets.
            left += rng.between(-style.jitter_px, style.jitter_px)
            top += rng.between(-style.jitter_px, style.jitter_px)
            angle = style.rotation_deg * rng.between(-1000, 1000) / 1000
        if angle:
            cx, cy = left + size[0] / 2, top + size[1] / 2
            # Bilinear: about 3x cheaper than bicubic on a 270x378 face (~4 ms against ~10 ms),
            # and at these angles the difference is a slightly softer edge.
            face = face.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
            left, top = round(cx - face.width / 2), round(cy - face.height / 2)
        if angle or style.jitter_px:
            # Keep a moved card on the table (if it fits at all): a card pushed over the edge
            # would lose its corner index, and recognition would no longer be fair.
            left = min(max(left, 0), max(0, style.width - face.width))
            top = min(max(top, 0), max(0, style.height - face.height))
        placed.append((face, left, top, bool(angle)))

    scene = _background(style.width, style.height, style.background).copy()
    boxes = [(x, y, x + f.width, y + f.height) for f, x, y, _ in placed]
    disjoint = not any(
        _overlap(boxes[i], boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
    )
    for (face, x, y, rotated), rank, suit in zip(placed, ranks, suits, strict=True):
        if disjoint and not rotated:
            scene.paste(_tile(rank, suit, size, style.background), (x, y))
        else:
            scene.paste(face, (x, y), face)
    return scene


def clear_caches() -> None:
    """Forget every cached face, tile, background and font (for cold-start timing and tests)."""
    for cached in (
        _face,
        _tile,
        _background,
        _alpha_mask,
        _text_mask,
        _cap_ratio,
    ):
        cached.cache_clear()
    imaging.clear_font_caches()
