"""Street views and route maps of the synthetic V-IRL cities (the V-IRL-VL observation images).

The paper showed the model four Street View crops at each decision point. gpbench
draws them instead, from the city it generated (:mod:`gpbench.generators.cities`) and the decision
point the route produced (:mod:`gpbench.generators.routes`).

Four views. :func:`render_views` returns a 2x2 grid in reading order ``front`` (the heading the
agent faces), ``right`` (+90), ``back`` (+180), ``left`` (-90), each panel labelled in its top-left
corner. :func:`plan_views` decides, without drawing, what each panel shows (:class:`ViewPlan`):

- *Streets.* The streets that leave the point: those of the nearest node when one is within the
  routes' intersection radius, else the street the point lies on (its heading and the reverse).
  A view whose direction has a street is a one-point-perspective *road view*: sky, the road
  narrowing to a vanishing point, sidewalks and facades on both sides. A view with no street that
  way is a *frontage view*: the street the agent stands on runs across the foreground and the
  buildings along it stand face-on. (So a mid-street point shows road, frontage, road, frontage,
  which no intersection does.) A street at ±90 degrees of a road view cuts a gap in that side's
  facades with the crossing road running out of the picture; one at ±45 cuts a gap with a road
  receding diagonally; in a frontage view a side with no street ends the road short of the
  panel's edge (a bend or a T reads as one). At ``is_intersection`` points every view also gets
  a zebra crossing, so the routes' notion of an intersection (degree >= 3 or a turn point) is
  always visible. Intersections farther along the street are not drawn (a simplification: the
  observation's "You observe an intersection" is about the point itself).
- *Landmarks.* Exactly the landmarks the point observes (``point.landmarks``, hence the same
  visibility radius as :func:`~gpbench.generators.routes.visible_landmarks`). Each goes to the one
  view whose direction it lies within ±45 degrees of (half-open ``[-45, 45)``, so a landmark at
  exactly 45 degrees belongs to one view only), on the left or right half by the sign of its
  lateral offset (exactly ahead counts as right, as in
  :func:`~gpbench.generators.routes.relative_position`). It is drawn as a storefront at its
  perspective depth, with a frontal sign carrying its name (bold, at least ``18 px`` at the
  default size, wrapped to 2 lines, 3 at the floor, shrunk to fit) above it; nearer landmarks get
  bigger storefronts and bigger type. Every sign carries a block of the landmark's own colour
  (:func:`sign_colour`, a hash of the name into :data:`SIGN_PALETTE`), which also paints its
  storefront's awning; no style uses a palette colour, so the colour marks the landmark.

Looks. :class:`ViewStyle` holds every colour a view uses. :data:`STYLE_FAMILIES` has three
variants for the ``train`` city family (warm brick and beige, blue sky, grey asphalt, white boxed
signs) and three for ``ood`` (pastel and teal, dusk sky, brown road, dark banner signs); the two
families share no colour and neither uses a sign colour (the tests check). :func:`style_for`
picks a variant from the city id.

Route map. :func:`render_route_map` draws the whole city north up: streets, landmarks as dots
in their sign colour with their names, the route thick in :data:`ROUTE_COLOUR`, start and
destination marked, decision points dotted and numbered ``1, 2, ...`` (point ``i`` is the
prompt's ``O_{i+1}``; where points crowd, some interpolated ones go unnumbered), the initial
facing as an arrow, and a north arrow. It is for people reading results, not for the model.

Determinism. The geometry is IEEE arithmetic on the city's coordinates and the
exact unit vectors of :func:`~gpbench.generators.cities.heading_vector` (no libm trigonometry);
every polygon is rounded to integer pixels before pillow sees it; text uses the shipped DejaVu
Sans Bold through FreeType's basic layout; the only random numbers (building widths and heights,
the style variant, a landmark's colour) come from :class:`~gpbench.generators.rng.KeyedRng`. So
the same city and point give the same pixels on any machine with the same pillow and FreeType;
:func:`~gpbench.generators.imaging.pixel_sha256` hashes them.

Speed. Backgrounds (one per style, panel size, street layout, crossing and skyline), signs,
labels and fonts are cached, so a four-view image is four background copies, a few polygons and
a few sign pastes: ``bench/bench_views.py`` measured 1,000-1,600 images/s warm and 650-820/s
from cold caches (768x768, pillow 13, one shared x86-64 core; the spread is machine load); PNG
encoding (11-14 ms an image) costs ten times more than drawing.

>>> from gpbench.generators.cities import generate_city
>>> from gpbench.generators.routes import decision_points, sample_route
>>> city = generate_city("virl-city/train/3", "train")
>>> route = sample_route(city, "virl-city/train/3/route")
>>> points = decision_points(city, route, "virl-city/train/3/points")
>>> image = render_views(city, points[0])
>>> image.mode, image.size
('RGB', (768, 768))
>>> [plan.name for plan in plan_views(city, points[0])]
['front', 'right', 'back', 'left']
>>> style_for(city).family
'train'
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from gpbench.generators import imaging
from gpbench.generators.cities import City, Landmark, heading_vector
from gpbench.generators.imaging import pixel_sha256, scene_png
from gpbench.generators.rng import KeyedRng
from gpbench.generators.routes import DecisionConfig, DecisionPoint, Route

__all__ = [
    "ROUTE_COLOUR",
    "SIGN_PALETTE",
    "STYLE_FAMILIES",
    "VIEW_NAMES",
    "ViewLandmark",
    "ViewPlan",
    "ViewStyle",
    "clear_caches",
    "pixel_sha256",
    "plan_views",
    "render_route_map",
    "render_views",
    "scene_png",
    "sign_colour",
    "style_for",
]

RGB = tuple[int, int, int]

VIEW_NAMES: tuple[str, ...] = ("front", "right", "back", "left")
"""Panel names in grid reading order; panel ``i`` faces the heading plus ``90 * i`` degrees."""

SIGN_PALETTE: tuple[RGB, ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 110, 220),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (190, 245, 60),
    (0, 128, 128),
    (150, 110, 255),
    (255, 120, 170),
)
"""Landmark colours (sign block, awning, map dot): saturated and of middle lightness, so they
show on white boxed signs and on dark banners alike; no style uses any of them."""

ROUTE_COLOUR: RGB = (214, 40, 40)
"""The route's line on :func:`render_route_map`."""

# Points this close to a node stand at it: the routes' own intersection radius.
_NODE_RADIUS = DecisionConfig().intersection_radius

# Scene geometry in abstract units (the camera at the origin, looking along +depth, eye at _EYE
# above the ground). The road runs at lateral ±_ROAD, facades stand at ±_FACADE; the focal length
# is half the panel width, so a facade at depth _FACADE meets the panel's edge.
_ROAD = 1.0
_FACADE = 1.5
_EYE = 0.5
_FAR = 45.0
_NEAR = 0.35
_HORIZON = 0.5  # horizon height as a share of the panel, from the top
# A crossing street at a node: its band of depths (sidewalk to sidewalk) in road views.
_CROSS_NEAR, _CROSS_FAR = 1.05, 3.4
# Landmark depth in the scene: city units in front of the agent map onto 1.9 .. ~7 scene units,
# compressed so that the farthest visible landmark is still clearly drawn.
_LM_DEPTH0, _LM_DEPTH_PER_UNIT = 1.9, 0.26
_WIDE = 60.0  # how far side streets run out of the picture
# A 45-degree street: half its road width measured along the depth axis, the depths where it
# opens a road view's facades, and where it opens a frontage (the corner building stays).
_DIAGONAL_HALF = 0.9 * math.sqrt(2.0)
_DIAGONAL_GAP = (2.0, 5.3)
_FRONT_GAP = 0.45
_CLOSED_REACH = 0.3  # lateral where a frontage view's road ends on a side with no street
_STORE_TOP = 1.05  # storefront height (awning top)

# Sign type, as shares of the panel height (the floor is the legibility limit: 18 px at 384).
_SIGN_SIZE_NEAR = 0.078
_SIGN_SIZE_FLOOR = 18 / 384
_MIN_FONT_PX = 10
_LABEL_SIZE = 0.05


# --------------------------------------------------------------------------------------------
# Styles


def _check_rgb(value: object, name: str) -> RGB:
    if (
        not isinstance(value, tuple)
        or len(value) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    ):
        raise ValueError(f"{name} must be an (r, g, b) tuple of ints in 0..255, got {value!r}")
    return (value[0], value[1], value[2])


@dataclass(frozen=True)
class ViewStyle:
    """Every colour of a street view, and how signs look.

    Attributes:
        name: unique variant name (also keys the building layout, so variants differ in shape).
        family: the city family it belongs to (``train`` or ``ood``).
        facades: building colours, drawn in turn along each street.
        window: windows and shop windows.
        sky, road, sidewalk: the scene's large areas.
        marking: lane dashes and zebra crossings.
        sign_background, sign_text: the sign board and its lettering.
        sign_style: ``boxed`` (a framed board with a colour band on top) or ``banner`` (a
            frameless board with a colour block at its left end).
        label_background, label_text: the panel labels (``front``...) and the grid's gutters.
    """

    name: str
    family: str
    facades: tuple[RGB, ...]
    window: RGB
    sky: RGB
    road: RGB
    sidewalk: RGB
    marking: RGB
    sign_background: RGB
    sign_text: RGB
    sign_style: str
    label_background: RGB
    label_text: RGB

    def __post_init__(self) -> None:
        """Validate every colour and the sign style."""
        if self.sign_style not in ("boxed", "banner"):
            raise ValueError(f"sign_style must be 'boxed' or 'banner', got {self.sign_style!r}")
        if not isinstance(self.facades, tuple) or len(self.facades) < 2:
            raise ValueError(f"facades must be a tuple of at least 2 colours, got {self.facades!r}")
        for i, colour in enumerate(self.facades):
            _check_rgb(colour, f"facades[{i}]")
        for name in (
            "window",
            "sky",
            "road",
            "sidewalk",
            "marking",
            "sign_background",
            "sign_text",
            "label_background",
            "label_text",
        ):
            _check_rgb(getattr(self, name), name)

    def colours(self) -> tuple[RGB, ...]:
        """Every colour this style paints with (text edges blend between two of them)."""
        return (
            *self.facades,
            self.window,
            self.sky,
            self.road,
            self.sidewalk,
            self.marking,
            self.sign_background,
            self.sign_text,
            self.label_background,
            self.label_text,
        )


# What every style of a family shares: windows, road markings, signs and labels.
_FAMILY_LOOKS: dict[str, dict[str, Any]] = {
    "train": {
        "window": (62, 78, 96),
        "marking": (246, 246, 240),
        "sign_background": (252, 252, 250),
        "sign_text": (24, 24, 28),
        "sign_style": "boxed",
        "label_background": (20, 20, 24),
        "label_text": (255, 255, 255),
    },
    "ood": {
        "window": (48, 40, 70),
        "marking": (236, 214, 160),
        "sign_background": (38, 30, 52),
        "sign_text": (255, 236, 190),
        "sign_style": "banner",
        "label_background": (64, 20, 44),
        "label_text": (255, 240, 225),
    },
}


def _style(
    family: str, name: str, facades: tuple[RGB, ...], sky: RGB, road: RGB, sidewalk: RGB
) -> ViewStyle:
    """A style of ``family``: its own facades, sky, road and sidewalk, the family's other looks."""
    return ViewStyle(
        name=name,
        family=family,
        facades=facades,
        sky=sky,
        road=road,
        sidewalk=sidewalk,
        **_FAMILY_LOOKS[family],
    )


STYLE_FAMILIES: Mapping[str, tuple[ViewStyle, ...]] = {
    "train": (
        _style(
            "train",
            "train-brick",
            ((156, 72, 52), (214, 188, 148), (178, 104, 70), (226, 206, 172)),
            (136, 190, 234),
            (104, 104, 110),
            (176, 172, 166),
        ),
        _style(
            "train",
            "train-sandstone",
            ((200, 160, 112), (140, 66, 50), (232, 214, 180), (168, 120, 84)),
            (120, 178, 228),
            (92, 94, 100),
            (186, 180, 170),
        ),
        _style(
            "train",
            "train-terrace",
            ((186, 92, 64), (224, 198, 160), (150, 88, 60), (206, 176, 136)),
            (150, 198, 238),
            (112, 112, 118),
            (168, 164, 158),
        ),
    ),
    "ood": (
        _style(
            "ood",
            "ood-lagoon",
            ((64, 148, 150), (236, 178, 200), (168, 222, 200), (188, 178, 226)),
            (242, 150, 92),
            (112, 88, 66),
            (150, 128, 106),
        ),
        _style(
            "ood",
            "ood-sherbet",
            ((240, 200, 170), (80, 164, 160), (204, 170, 222), (172, 230, 214)),
            (232, 128, 104),
            (100, 80, 60),
            (160, 136, 112),
        ),
        _style(
            "ood",
            "ood-harbour",
            ((52, 130, 140), (222, 186, 214), (156, 208, 220), (246, 214, 186)),
            (250, 170, 110),
            (122, 96, 72),
            (142, 120, 100),
        ),
    ),
}
"""Three style variants per city family; the families share no colour."""


def style_for(city: City) -> ViewStyle:
    """The style of ``city``: a variant of its family's styles, chosen by its id."""
    try:
        variants = STYLE_FAMILIES[city.family]
    except KeyError:
        raise ValueError(
            f"no view styles for city family {city.family!r} (expected one of "
            f"{sorted(STYLE_FAMILIES)})"
        ) from None
    return variants[KeyedRng(f"view-style/{city.id}").below(len(variants))]


def sign_colour(name: str) -> RGB:
    """The colour block of a landmark's sign (and its awning): a hash of its name."""
    return SIGN_PALETTE[KeyedRng(f"sign-colour/{name}").below(len(SIGN_PALETTE))]


# --------------------------------------------------------------------------------------------
# What each view shows


@dataclass(frozen=True)
class ViewLandmark:
    """A landmark as one view sees it.

    Attributes:
        name: the landmark.
        side: ``left`` or ``right`` of the view's centre line.
        forward: distance along the view's direction (> 0).
        lateral: signed distance to the right of the view's centre line.
        distance: straight-line distance from the agent.
    """

    name: str
    side: str
    forward: float
    lateral: float
    distance: float


@dataclass(frozen=True)
class ViewPlan:
    """What one panel of :func:`render_views` shows.

    Attributes:
        name: ``front``, ``right``, ``back`` or ``left``.
        heading: compass heading the view faces.
        streets: angles (relative to the view, among -90, -45, 0, 45, 90) of the streets leaving
            the point that this view sees; 0 means the road goes on ahead.
        crosswalk: whether a zebra crossing is drawn (the point is an intersection).
        landmarks: the landmarks in this view, nearest first (ties by name).
    """

    name: str
    heading: int
    streets: tuple[int, ...]
    crosswalk: bool
    landmarks: tuple[ViewLandmark, ...]

    @property
    def road_ahead(self) -> bool:
        """Whether a street leaves the point in this view's direction (a road view)."""
        return 0 in self.streets


def _street_headings(city: City, point: DecisionPoint) -> tuple[int, ...]:
    """Compass headings of the streets leaving the point (see the module docstring)."""
    best: tuple[float, int] | None = None
    for node in city.nodes:
        d = math.hypot(node.x - point.x, node.y - point.y)
        if d <= _NODE_RADIUS and (best is None or (d, node.id) < best):
            best = (d, node.id)
    if best is not None:
        return tuple(sorted({h for _, h, _ in city.neighbours(best[1])}))
    return tuple(sorted({point.heading % 360, (point.heading + 180) % 360}))


def _relative(angle: int) -> int:
    wrapped = angle % 360
    return wrapped - 360 if wrapped > 180 else wrapped


def _view_landmark(lm: Landmark, point: DecisionPoint, heading: int) -> ViewLandmark | None:
    """``lm`` as the view facing ``heading`` sees it, or None when it lies in another view."""
    fx, fy = heading_vector(heading)
    dx, dy = lm.x - point.x, lm.y - point.y
    forward = dx * fx + dy * fy
    lateral = dx * fy - dy * fx  # positive to the right, as in routes.relative_position
    # Half-open [-45, 45): the four views partition the plane exactly, since a quarter turn of
    # an exact unit vector is exact and the same products decide both neighbouring views.
    if not (forward > 0 and -forward <= lateral < forward):
        return None
    side = "left" if lateral < 0 else "right"
    return ViewLandmark(lm.name, side, forward, lateral, math.hypot(dx, dy))


def plan_views(city: City, point: DecisionPoint) -> tuple[ViewPlan, ...]:
    """The four :class:`ViewPlan` of ``point`` in :data:`VIEW_NAMES` order (nothing is drawn).

    Landmarks are the ones the point observes (``point.landmarks``); each lies in exactly one view.
    """
    headings = _street_headings(city, point)
    try:
        landmarks = [city.landmark(seen.name) for seen in point.landmarks]
    except KeyError as missing:
        raise ValueError(
            f"the point sees landmark {missing.args[0]!r}, which city {city.id} does not have: "
            "pass the city its route was sampled from"
        ) from None
    plans = []
    for i, name in enumerate(VIEW_NAMES):
        heading = (point.heading + 90 * i) % 360
        relative = sorted({_relative(h - heading) for h in headings})
        seen = [v for lm in landmarks if (v := _view_landmark(lm, point, heading)) is not None]
        seen.sort(key=lambda v: (v.distance, v.name))
        plans.append(
            ViewPlan(
                name=name,
                heading=heading,
                streets=tuple(a for a in relative if a in (-90, -45, 0, 45, 90)),
                crosswalk=point.is_intersection,
                landmarks=tuple(seen),
            )
        )
    return tuple(plans)


# --------------------------------------------------------------------------------------------
# Fonts and signs


def _splits(words: Sequence[str], lines: int) -> Iterable[list[str]]:
    for cuts in itertools.combinations(range(1, len(words)), lines - 1):
        bounds = (0, *cuts, len(words))
        yield [" ".join(words[a:b]) for a, b in itertools.pairwise(bounds)]


@lru_cache(maxsize=4096)
def _fit_text(text: str, max_width: int, start: int, floor: int) -> tuple[int, tuple[str, ...]]:
    """The largest font size in ``floor..start`` and line split of ``text`` that fit
    ``max_width``: one line, else two balanced lines; three only at the floor. If nothing fits,
    the floor with the narrowest split (the sign then grows past ``max_width``)."""
    words = text.split() or [text]
    best: tuple[float, list[str]] | None = None
    for size in range(start, floor - 1, -1):
        font = imaging.font(size)
        for lines in (1, 2, 3) if size == floor else (1, 2):
            if lines > len(words):
                break
            for split in _splits(words, lines):
                width = max(font.getlength(line) for line in split)
                if width <= max_width:
                    return size, tuple(split)
                if size == floor and (best is None or width < best[0]):
                    best = (width, split)
    assert best is not None  # the floor always tries the one-line split
    return floor, tuple(best[1])


@lru_cache(maxsize=1024)
def _sign(name: str, style: ViewStyle, max_width: int, start: int, floor: int) -> Image.Image:
    """The sign board of ``name`` as an RGB image; shared, so callers must not modify it."""
    pad = max(4, start // 4)
    block = max(6, round(0.42 * start))  # the colour band (boxed) or block (banner)
    border = max(2, start // 9)  # the boxed frame (at most this thick: type only shrinks)
    if style.sign_style == "banner":
        text_room = max_width - 3 * pad - block
    else:
        text_room = max_width - 2 * pad - 2 * border
    size, lines = _fit_text(name, text_room, start, floor)
    font = imaging.font(size)
    ascent, descent = font.getmetrics()
    line_h = ascent + descent
    text_w = math.ceil(max(font.getlength(line) for line in lines))
    text_h = line_h * len(lines)
    colour = sign_colour(name)
    if style.sign_style == "boxed":
        border = max(2, size // 9)
        width = text_w + 2 * pad + 2 * border
        height = block + text_h + pad + 2 * border
        board = Image.new("RGB", (width, height), style.sign_text)
        draw = ImageDraw.Draw(board)
        draw.rectangle([border, border, width - 1 - border, height - 1 - border], fill=colour)
        draw.rectangle(
            [border, border + block, width - 1 - border, height - 1 - border],
            fill=style.sign_background,
        )
        x0, y0 = border + pad, border + block + pad // 2
    else:
        width = block + text_w + 3 * pad
        height = max(text_h + 2 * pad, 2 * block)
        board = Image.new("RGB", (width, height), style.sign_background)
        draw = ImageDraw.Draw(board)
        draw.rectangle(
            [pad // 2, pad // 2, pad // 2 + block - 1, height - 1 - pad // 2], fill=colour
        )
        x0, y0 = block + 2 * pad, (height - text_h) // 2
    for i, line in enumerate(lines):
        # Centre each line on the board, integer positions only.
        lx = x0 + (text_w - round(font.getlength(line))) // 2
        draw.text((lx, y0 + i * line_h), line, fill=style.sign_text, font=font)
    return board


@lru_cache(maxsize=64)
def _label(text: str, style: ViewStyle, height: int) -> Image.Image:
    """A panel label: ``text`` on a dark tag; shared, so callers must not modify it."""
    size = max(_MIN_FONT_PX, round(_LABEL_SIZE * height))
    font = imaging.font(size)
    pad = max(3, size // 3)
    ascent, descent = font.getmetrics()
    width = round(font.getlength(text)) + 2 * pad
    tag = Image.new("RGB", (width, ascent + descent + pad), style.label_background)
    ImageDraw.Draw(tag).text((pad, pad // 2), text, fill=style.label_text, font=font)
    return tag


# --------------------------------------------------------------------------------------------
# Scene geometry


@dataclass(frozen=True)
class _Frame:
    """Projection of a panel: world (lateral, height, depth) to integer pixels."""

    width: int
    height: int

    @property
    def cx(self) -> float:
        return self.width / 2

    @property
    def hy(self) -> float:
        return self.height * _HORIZON

    @property
    def focal(self) -> float:
        return self.width / 2

    def at(self, lateral: float, up: float, depth: float) -> tuple[int, int]:
        return (
            round(self.cx + self.focal * lateral / depth),
            round(self.hy + self.focal * (_EYE - up) / depth),
        )

    def ground(self, lateral: float, depth: float) -> tuple[int, int]:
        return self.at(lateral, 0.0, depth)


def _quad_wall(
    frame: _Frame, lateral: float, z0: float, z1: float, d0: float, d1: float
) -> list[tuple[int, int]]:
    """A rectangle on the facade plane ``lateral``: heights z0..z1, depths d0..d1."""
    return [
        frame.at(lateral, z0, d0),
        frame.at(lateral, z1, d0),
        frame.at(lateral, z1, d1),
        frame.at(lateral, z0, d1),
    ]


def _quad_ground(
    frame: _Frame, l0: float, l1: float, d0: float, d1: float
) -> list[tuple[int, int]]:
    return [frame.ground(l0, d0), frame.ground(l1, d0), frame.ground(l1, d1), frame.ground(l0, d1)]


@lru_cache(maxsize=32)
def _buildings(style: ViewStyle, kind: str) -> tuple[tuple[float, float, float, int], ...]:
    """Building runs ``(start, end, height, colour index)`` of one street side ``kind``.

    Road views (``left0``, ``right1``, ...): start and end are depths growing geometrically, so far
    buildings keep a visible width. Frontage views (``frontage0``/``frontage1``): laterals from
    -4 to 4. Drawn from KeyedRng, so each variant has its own skyline, the same everywhere.
    """
    rng = KeyedRng(f"street-views/{style.name}/{kind}")
    runs = []
    if kind.startswith("frontage"):
        pos = -4.0 + rng.between(0, 40) / 100
        i = rng.below(len(style.facades))
        while pos < 4.0:
            end = pos + rng.between(50, 95) / 100
            runs.append((pos, end, rng.between(118, 186) / 100, i % len(style.facades)))
            pos, i = end, i + 1
        return tuple(runs)
    pos = 0.6
    i = rng.below(len(style.facades))
    while pos < _FAR:
        end = pos * rng.between(135, 175) / 100
        runs.append((pos, min(end, _FAR), rng.between(170, 320) / 100, i % len(style.facades)))
        pos, i = end, i + 1
    return tuple(runs)


def _cut(
    start: float, end: float, gaps: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The parts of ``[start, end]`` outside every gap."""
    parts = [(start, end)]
    for g0, g1 in gaps:
        kept = []
        for a, b in parts:
            if g1 <= a or b <= g0:
                kept.append((a, b))
                continue
            if a < g0:
                kept.append((a, g0))
            if g1 < b:
                kept.append((g1, b))
        parts = kept
    return parts


def _side_gaps(streets: Sequence[int], sign: int) -> list[tuple[float, float]]:
    """Depth ranges where side ``sign``'s facades of a road view open onto a side street."""
    gaps = []
    if 90 * sign in streets:
        gaps.append((_CROSS_NEAR, _CROSS_FAR))
    if 45 * sign in streets:
        gaps.append(_DIAGONAL_GAP)
    return gaps


def _draw_side(
    draw: ImageDraw.ImageDraw,
    frame: _Frame,
    style: ViewStyle,
    sign: int,
    gaps: Sequence[tuple[float, float]],
    skyline: int,
) -> None:
    """The facades of side ``sign`` (-1 left, +1 right) of a road view, with windows."""
    lateral = sign * _FACADE
    # Far to near, so nearer buildings cover farther ones where the roofs converge.
    kind = f"{'left' if sign < 0 else 'right'}{skyline}"
    for start, end, top, colour in reversed(_buildings(style, kind)):
        parts = _cut(start, end, gaps)
        for d0, d1 in parts:
            draw.polygon(_quad_wall(frame, lateral, 0.0, top, d0, d1), fill=style.facades[colour])
        columns = max(1, round((end - start) / (0.35 * (start + end) / 2)))
        step = (end - start) / columns
        for c in range(columns):
            a, b = start + (c + 0.25) * step, start + (c + 0.75) * step
            if not any(d0 <= a and b <= d1 for d0, d1 in parts):
                continue
            z = 1.25
            while z + 0.3 < top:
                draw.polygon(_quad_wall(frame, lateral, z, z + 0.28, a, b), fill=style.window)
                z += 0.5


def _draw_cross_street_ground(
    draw: ImageDraw.ImageDraw, frame: _Frame, style: ViewStyle, sign: int
) -> None:
    """A street leaving at 90 degrees to side ``sign``: its band of ground out to the edge. It
    starts under the road ahead (drawn later), so no sliver of sidewalk shows between them."""
    s = sign
    draw.polygon(_quad_ground(frame, 0.0, s * _WIDE, _CROSS_NEAR, _CROSS_FAR), fill=style.sidewalk)
    draw.polygon(
        _quad_ground(frame, 0.0, s * _WIDE, _CROSS_NEAR + 0.3, _CROSS_FAR - 0.3), fill=style.road
    )


def _draw_cross_street_wall(
    draw: ImageDraw.ImageDraw, frame: _Frame, style: ViewStyle, sign: int
) -> None:
    """Across the side street, the face-on wall of the next block: low, so sky shows above the
    gap and the opening reads as a street rather than as one more facade."""
    s = sign
    far = _CROSS_FAR
    colour = style.facades[(2 if s > 0 else 1) % len(style.facades)]
    top = 1.35
    draw.polygon(
        [
            frame.at(s * _FACADE, 0.0, far),
            frame.at(s * _FACADE, top, far),
            frame.at(s * _WIDE, top, far),
            frame.at(s * _WIDE, 0.0, far),
        ],
        fill=colour,
    )
    for k in range(8):
        a = s * (_FACADE + 0.3 + 0.75 * k)
        b = a + s * 0.4
        draw.polygon(
            [
                frame.at(a, 0.75, far),
                frame.at(a, 1.05, far),
                frame.at(b, 1.05, far),
                frame.at(b, 0.75, far),
            ],
            fill=style.window,
        )


def _draw_diagonal_street(
    draw: ImageDraw.ImageDraw,
    frame: _Frame,
    style: ViewStyle,
    sign: int,
    node_depth: float,
    min_lateral: float,
) -> None:
    """A street leaving at 45 degrees to side ``sign`` from a node ``node_depth`` ahead: a strip
    of ground receding to that side's vanishing point (on the horizon at the panel's edge).

    Along the street the ground point at lateral ``l`` (towards the side) has depth
    ``node_depth + l + offset`` for an edge ``offset`` (the street's half-width measured along
    the depth axis). Each edge starts at ``min_lateral`` or where it comes into view (depth
    ``_NEAR``), whichever is later, so nothing behind the camera is projected.
    """
    half = _DIAGONAL_HALF

    def at(offset: float, lateral: float) -> tuple[int, int]:
        return frame.ground(sign * lateral, node_depth + offset + lateral)

    for offset, colour in ((half + 0.45, style.sidewalk), (half, style.road)):
        near_edge = max(min_lateral, _NEAR - node_depth + offset)
        far_edge = max(min_lateral, _NEAR - node_depth - offset)
        draw.polygon(
            [at(-offset, near_edge), at(-offset, _WIDE), at(offset, _WIDE), at(offset, far_edge)],
            fill=colour,
        )


def _crosswalk(
    frame: _Frame, draw: ImageDraw.ImageDraw, style: ViewStyle, d0: float, d1: float
) -> None:
    """Zebra stripes across the road ahead between depths d0..d1."""
    stripes = 7
    width = 2 * _ROAD / (2 * stripes - 1)
    for k in range(stripes):
        a = -_ROAD + 2 * k * width
        draw.polygon(_quad_ground(frame, a, a + width, d0, d1), fill=style.marking)


@lru_cache(maxsize=128)
def _background(
    style: ViewStyle,
    width: int,
    height: int,
    streets: tuple[int, ...],
    crosswalk: bool,
    skyline: int,
) -> Image.Image:
    """The panel without landmarks or label; shared, so callers must not modify it.

    ``skyline`` (0 or 1) picks one of two skylines, so neighbouring views do not look alike.
    """
    frame = _Frame(width, height)
    image = Image.new("RGB", (width, height), style.sky)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, round(frame.hy), width, height], fill=style.sidewalk)
    if 0 in streets:
        _draw_road_view(draw, frame, style, streets, crosswalk, skyline)
    else:
        _draw_frontage_view(draw, frame, style, streets, crosswalk, skyline)
    return image


def _draw_road_view(
    draw: ImageDraw.ImageDraw,
    frame: _Frame,
    style: ViewStyle,
    streets: tuple[int, ...],
    crosswalk: bool,
    skyline: int,
) -> None:
    """Road ahead to the vanishing point, facades both sides, side streets where they leave."""
    node_depth = (_CROSS_NEAR + _CROSS_FAR) / 2
    for sign in (-1, 1):
        if 45 * sign in streets:
            _draw_diagonal_street(draw, frame, style, sign, node_depth, 0.0)
        if 90 * sign in streets:
            _draw_cross_street_ground(draw, frame, style, sign)
    draw.polygon(_quad_ground(frame, -_ROAD, _ROAD, _NEAR, _FAR), fill=style.road)
    # Lane dashes, each 1.9x farther than the last, so they shorten towards the horizon.
    d = 1.2
    while d < 30:
        draw.polygon(_quad_ground(frame, -0.03, 0.03, d, d + 0.45 * d / 2), fill=style.marking)
        d += 0.9 * d
    for sign in (-1, 1):
        if 90 * sign in streets:
            _draw_cross_street_wall(draw, frame, style, sign)
        _draw_side(draw, frame, style, sign, _side_gaps(streets, sign), skyline)
    if crosswalk:
        _crosswalk(frame, draw, style, 0.72, 0.95)


def _draw_frontage_view(
    draw: ImageDraw.ImageDraw,
    frame: _Frame,
    style: ViewStyle,
    streets: tuple[int, ...],
    crosswalk: bool,
    skyline: int,
) -> None:
    """The street the agent stands on runs across the foreground; the buildings along it face
    the camera at depth _FACADE. A missing side (a bend or dead end) turns that half of the
    road into a corner's sidewalk; a diagonal street opens a gap receding to that side, and the
    corner building between two diagonals stays in the middle."""
    for sign in (-1, 1):
        # On a side with no street the road stops short of the panel's edge, so a bend or a
        # dead end reads as one (in true perspective the node's own pavement would fill the
        # view's width, as a 90-degree view sees lateral ±1 at depth 1 at its edges).
        reach = _WIDE if 90 * sign in streets else _CLOSED_REACH
        draw.polygon(_quad_ground(frame, 0.0, sign * reach, _NEAR, _ROAD), fill=style.road)
    for sign in (-1, 1):
        if 45 * sign in streets:
            _draw_diagonal_street(draw, frame, style, sign, 0.0, -_WIDE)
    gaps = []
    for sign in (-1, 1):
        if 45 * sign in streets:
            gaps.append((_FRONT_GAP, 10.0) if sign > 0 else (-10.0, -_FRONT_GAP))
    for start, end, top, colour in _buildings(style, f"frontage{skyline}"):
        parts = _cut(start, end, gaps)
        for a, b in parts:
            draw.polygon(
                [
                    frame.at(a, 0.0, _FACADE),
                    frame.at(a, top, _FACADE),
                    frame.at(b, top, _FACADE),
                    frame.at(b, 0.0, _FACADE),
                ],
                fill=style.facades[colour],
            )
        columns = max(1, round((end - start) / 0.3))
        step = (end - start) / columns
        for c in range(columns):
            wa, wb = start + (c + 0.25) * step, start + (c + 0.75) * step
            if not any(a <= wa and wb <= b for a, b in parts):
                continue
            z = 1.25
            while z + 0.25 < top:
                x0, y0 = frame.at(wa, z + 0.22, _FACADE)
                x1, y1 = frame.at(wb, z, _FACADE)
                draw.rectangle([x0, y0, x1, y1], fill=style.window)
                z += 0.45
    if crosswalk:
        # Stripes along the line of sight, on the road only (not past a closed side's end).
        lo = -0.9 if -90 in streets else -_CLOSED_REACH
        hi = 0.9 if 90 in streets else _CLOSED_REACH
        stripes = 5
        width = (hi - lo) / (2 * stripes - 1)
        for k in range(stripes):
            a = lo + 2 * k * width
            draw.polygon(_quad_ground(frame, a, a + width, 0.55, 0.95), fill=style.marking)


# --------------------------------------------------------------------------------------------
# Landmarks in a panel


def _scene_depth(forward: float) -> float:
    return _LM_DEPTH0 + _LM_DEPTH_PER_UNIT * forward


def _storefront(
    draw: ImageDraw.ImageDraw, frame: _Frame, style: ViewStyle, plan: ViewPlan, view: ViewLandmark
) -> tuple[int, int]:
    """Draw the landmark's shop front; return ``(centre x, top y)`` for its sign."""
    colour = sign_colour(view.name)
    sign = -1 if view.side == "left" else 1
    depth = _scene_depth(view.forward)
    if plan.road_ahead:
        # The shop spans a share of its depth, so far shops keep a visible width; it moves past
        # any side street it would stand in, so it always stands on a facade.
        half = 0.16 * depth + 0.15
        d0, d1 = depth - half, depth + half
        for g0, g1 in sorted(_side_gaps(plan.streets, sign)):
            if d0 < g1 and g0 < d1:
                d0, d1 = g1 + 0.05, g1 + 0.05 + 2 * half
        lateral = sign * _FACADE
        draw.polygon(
            _quad_wall(frame, lateral, 0.0, _STORE_TOP, d0, d1), fill=style.sign_background
        )
        inset = 0.1 * (d1 - d0)
        draw.polygon(
            _quad_wall(frame, lateral, 0.1, 0.7, d0 + inset, d1 - inset), fill=style.window
        )
        draw.polygon(_quad_wall(frame, lateral, 0.78, _STORE_TOP, d0, d1), fill=colour)
        return frame.at(lateral, _STORE_TOP, (d0 + d1) / 2)
    # Frontage: the shop sits on the face-on buildings where the landmark's line of sight meets
    # them, narrower the farther it is, and always on its own half of the panel.
    centre = _FACADE * view.lateral / view.forward
    half = 1.2 / depth
    if sign < 0:
        lo, hi = max(centre - half, -_FACADE), min(centre + half, -0.05)
    else:
        lo, hi = max(centre - half, 0.05), min(centre + half, _FACADE)
    if hi - lo < half:  # pushed against the centre line or the edge: keep its width
        lo, hi = (hi - half, hi) if sign < 0 else (lo, lo + half)
    store_top = 0.55 + 1.2 / depth
    x0, y_top = frame.at(lo, store_top, _FACADE)
    x1, y_ground = frame.at(hi, 0.0, _FACADE)
    draw.rectangle([x0, y_top, x1, y_ground], fill=style.sign_background)
    inset = max(2, (x1 - x0) // 10)
    awning = y_top + (y_ground - y_top) * 3 // 10
    draw.rectangle([x0 + inset, awning + inset, x1 - inset, y_ground - inset], fill=style.window)
    draw.rectangle([x0, y_top, x1, awning], fill=colour)
    return (x0 + x1) // 2, y_top


def _draw_landmarks(image: Image.Image, frame: _Frame, style: ViewStyle, plan: ViewPlan) -> None:
    """Storefronts and signs of the plan's landmarks, each on its own half of the panel."""
    draw = ImageDraw.Draw(image)
    w, h = frame.width, frame.height
    margin = max(3, w // 96)
    gutter = max(4, w // 64)  # signs keep this far from the centre line: sides never blur
    label = max(_MIN_FONT_PX, round(_LABEL_SIZE * h))
    top0 = 2 * margin + label + max(3, label // 3) + label // 2
    floor = max(_MIN_FONT_PX, round(_SIGN_SIZE_FLOOR * h))
    near = max(floor, round(_SIGN_SIZE_NEAR * h))
    max_w = w // 2 - margin - gutter
    for side in ("left", "right"):
        views = [v for v in plan.landmarks if v.side == side]
        # Shops far to near (nearer ones drawn over farther ones), signs near to far.
        anchors = [_storefront(draw, frame, style, plan, v) for v in reversed(views)][::-1]
        cursor = top0
        for view, (ax, ay) in zip(views, anchors, strict=True):
            # Bigger type for nearer landmarks: full size up to 6 units away, the floor at 20.
            t = min(1.0, max(0.0, (view.distance - 6.0) / 14.0))
            start = max(floor, round(near - t * (near - floor)))
            board = _sign(view.name, style, max_w, start, floor)
            if side == "left":
                lo, hi = margin, w // 2 - gutter - board.width
            else:
                lo, hi = w // 2 + gutter, w - margin - board.width
            x = min(max(ax - board.width // 2, lo), max(lo, hi))
            # Just above its shop when there is room, never over the sign of a nearer landmark.
            y = max(cursor, ay - margin - board.height)
            image.paste(board, (x, y))
            cursor = y + board.height + margin


def _panel(style: ViewStyle, width: int, height: int, index: int, plan: ViewPlan) -> Image.Image:
    """Panel ``index`` of the grid, finished (a new image)."""
    # Neighbouring panels get different skylines, so no two views look like copies.
    skyline = (index + index // 2) % 2
    background = _background(style, width, height, plan.streets, plan.crosswalk, skyline)
    image = background.copy()
    _draw_landmarks(image, _Frame(width, height), style, plan)
    m = max(3, width // 96)
    image.paste(_label(plan.name, style, height), (m, m))
    return image


def _check_size(size: object, least: int) -> None:
    if (
        not isinstance(size, tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        or min(size) < least
    ):
        raise ValueError(
            f"size must be a (width, height) tuple of integers >= {least}, got {size!r}"
        )


def render_views(
    city: City,
    point: DecisionPoint,
    style: ViewStyle | None = None,
    size: tuple[int, int] = (768, 768),
) -> Image.Image:
    """The four views at ``point`` as one RGB image: a 2x2 grid front, right / back, left.

    ``style`` defaults to :func:`style_for` the city. Each panel is ``(size - 2) // 2`` (a 2 px
    gutter in the label colour separates them); both sides must be at least 384. Returns a new
    image the caller may modify.
    """
    # Below 384 px the panels are too small for signs of legible type within their half.
    _check_size(size, 384)
    style = style or style_for(city)
    width, height = size
    gutter = 2
    pw, ph = (width - gutter) // 2, (height - gutter) // 2
    canvas = Image.new("RGB", size, style.label_background)
    for i, plan in enumerate(plan_views(city, point)):
        col, row = i % 2, i // 2
        x = 0 if col == 0 else width - pw
        y = 0 if row == 0 else height - ph
        canvas.paste(_panel(style, pw, ph, i, plan), (x, y))
    return canvas


# --------------------------------------------------------------------------------------------
# Route map

_MAP_BACKGROUND: RGB = (246, 244, 238)
_MAP_STREET: RGB = (178, 178, 184)
_MAP_INK: RGB = (36, 36, 44)
_MAP_START: RGB = (30, 150, 70)
_MAP_GOAL: RGB = (30, 70, 190)


def render_route_map(
    city: City,
    route: Route,
    points: Sequence[DecisionPoint] | None = None,
    size: tuple[int, int] = (1024, 1024),
) -> Image.Image:
    """The city north up with ``route`` on it (see the module docstring); a new RGB image.

    ``points`` (from :func:`~gpbench.generators.routes.decision_points`) are dotted and numbered
    1, 2, ... in order; without them only the route, its start and destination are marked.
    Labels go where they overlap nothing written yet (or, failing that, least); where points
    crowd, an interpolated point whose number would overlap another label stays unnumbered.
    """
    if route.city_id != city.id:
        raise ValueError(f"route belongs to city {route.city_id}, not {city.id}")
    _check_size(size, 256)
    width, height = size
    image = Image.new("RGB", size, _MAP_BACKGROUND)
    draw = ImageDraw.Draw(image)
    xs = [n.x for n in city.nodes] + [lm.x for lm in city.landmarks]
    ys = [n.y for n in city.nodes] + [lm.y for lm in city.landmarks]
    margin = max(40, min(width, height) // 10)
    span_x = max(1.0, max(xs) - min(xs))
    span_y = max(1.0, max(ys) - min(ys))
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
    ox = (width - scale * span_x) / 2 - scale * min(xs)
    oy = (height - scale * span_y) / 2 + scale * max(ys)

    def px(x: float, y: float) -> tuple[int, int]:
        return round(ox + scale * x), round(oy - scale * y)

    unit = max(1, min(width, height) // 512)
    for s in city.streets:
        a, b = city.nodes[s.u], city.nodes[s.v]
        draw.line([px(a.x, a.y), px(b.x, b.y)], fill=_MAP_STREET, width=4 * unit)
    route_pts = [px(city.nodes[n].x, city.nodes[n].y) for n in route.nodes]
    rw = 3 * unit
    draw.line(route_pts, fill=ROUTE_COLOUR, width=2 * rw)
    for x, y in route_pts:  # round joints
        draw.ellipse([x - rw, y - rw, x + rw, y + rw], fill=ROUTE_COLOUR)

    taken: list[tuple[int, int, int, int]] = []
    r = 4 * unit
    for lm in city.landmarks:
        x, y = px(lm.x, lm.y)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=sign_colour(lm.name), outline=_MAP_INK)
        taken.append((x - r, y - r, x + r, y + r))

    # The route's line counts as written, so numbers and names sit beside it, not on it.
    for (x0, y0), (x1, y1) in itertools.pairwise(route_pts):
        steps = max(1, round(math.hypot(x1 - x0, y1 - y0) / rw))
        for k in range(steps + 1):
            x, y = round(x0 + (x1 - x0) * k / steps), round(y0 + (y1 - y0) * k / steps)
            taken.append((x - rw, y - rw, x + rw, y + rw))

    spots = [] if points is None else [px(p.x, p.y) for p in points]
    pr = 2 * unit + 1
    for x, y in spots:
        draw.ellipse([x - pr, y - pr, x + pr, y + pr], fill=(255, 255, 255), outline=_MAP_INK)

    # Start (with the facing the agent starts in) and destination, over the points' dots.
    big = imaging.font(max(_MIN_FONT_PX, 8 * unit))
    start, goal = city.nodes[route.nodes[0]], city.nodes[route.nodes[-1]]
    sx, sy = px(start.x, start.y)
    fx, fy = heading_vector(route.initial_heading)
    disc = 9 * unit
    tip = (round(sx + 2.6 * disc * fx), round(sy - 2.6 * disc * fy))
    draw.line([(sx, sy), tip], fill=_MAP_START, width=2 * unit)
    _arrow_head(draw, tip, fx, fy, 6 * unit, _MAP_START)
    for (x, y), colour, letter in (
        ((sx, sy), _MAP_START, "S"),
        (px(goal.x, goal.y), _MAP_GOAL, "D"),
    ):
        draw.ellipse(
            [x - disc, y - disc, x + disc, y + disc], fill=colour, outline=_MAP_INK, width=unit
        )
        draw.text((x, y), letter, fill=(255, 255, 255), font=big, anchor="mm")
        taken.append((x - disc, y - disc, x + disc, y + disc))

    number_font = imaging.font(max(_MIN_FONT_PX, 5 * unit + 1))
    # Where points crowd (5 units apart on a long block), an interpolated point whose number
    # finds no free spot goes unnumbered rather than smudging its neighbours' numbers; the
    # start, turns and destination are always numbered.
    for i, (x, y) in enumerate(spots):
        required = points is not None and points[i].kind != "interpolated"
        _place_label(
            draw, str(i + 1), x, y, pr + 2 * unit, number_font, taken, size, ROUTE_COLOUR, required
        )

    label_font = imaging.font(max(_MIN_FONT_PX, 5 * unit + 1))
    for lm in sorted(city.landmarks, key=lambda lm: lm.name):
        x, y = px(lm.x, lm.y)
        _place_label(draw, lm.name, x, y, r + unit, label_font, taken, size, _MAP_INK)

    # North arrow, top right.
    nx, ny = width - margin // 2, margin // 2 + 10 * unit
    draw.polygon(
        [(nx, ny - 10 * unit), (nx - 6 * unit, ny + 8 * unit), (nx + 6 * unit, ny + 8 * unit)],
        fill=_MAP_INK,
    )
    draw.text((nx, ny - 12 * unit), "N", fill=_MAP_INK, font=big, anchor="ms")
    return image


def _arrow_head(
    draw: ImageDraw.ImageDraw, tip: tuple[int, int], fx: float, fy: float, size: int, colour: RGB
) -> None:
    # Screen y points down, so the direction (fx, fy) becomes (fx, -fy); the sides its normal.
    dx, dy = fx, -fy
    bx, by = tip[0] - size * dx, tip[1] - size * dy
    draw.polygon(
        [
            tip,
            (round(bx - 0.6 * size * dy), round(by + 0.6 * size * dx)),
            (round(bx + 0.6 * size * dy), round(by - 0.6 * size * dx)),
        ],
        fill=colour,
    )


def _place_label(
    draw: ImageDraw.ImageDraw,
    text: str,
    x: int,
    y: int,
    gap: int,
    font: ImageFont.FreeTypeFont,
    taken: list[tuple[int, int, int, int]],
    size: tuple[int, int],
    ink: RGB,
    required: bool = True,
) -> None:
    """Write ``text`` on a background patch beside ``(x, y)`` at the first of 8 spots that
    overlaps nothing written (else, if ``required``, the least crowded; if not, nowhere), and
    record its box."""
    left, top, right, bottom = font.getbbox(text)
    tw, th = int(right - left) + 2, int(bottom - top) + 2
    spots = [
        (x + gap, y - th // 2),
        (x - gap - tw, y - th // 2),
        (x - tw // 2, y - gap - th),
        (x - tw // 2, y + gap),
        (x + gap, y - gap - th),
        (x + gap, y + gap),
        (x - gap - tw, y - gap - th),
        (x - gap - tw, y + gap),
    ]

    def crowding(box: tuple[int, int, int, int]) -> int:
        off_image = box[0] < 0 or box[1] < 0 or box[2] > size[0] or box[3] > size[1]
        out = 10**6 if off_image else 0
        for t in taken:
            w = min(box[2], t[2]) - max(box[0], t[0])
            h = min(box[3], t[3]) - max(box[1], t[1])
            if w > 0 and h > 0:
                out += w * h
        return out

    boxes = [(sx, sy, sx + tw, sy + th) for sx, sy in spots]
    box = min(boxes, key=crowding)  # min keeps the first of equals: the preferred spot
    if not required and crowding(box):
        return
    draw.rectangle(box, fill=_MAP_BACKGROUND)
    draw.text((box[0] + 1 - left, box[1] + 1 - top), text, fill=ink, font=font)
    taken.append(box)


def clear_caches() -> None:
    """Forget every cached font, sign, label, background and panel (for cold-start timing)."""
    for cached in (_fit_text, _sign, _label, _background, _buildings):
        cached.cache_clear()
    imaging.clear_font_caches()
