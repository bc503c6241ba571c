"""Street views and route maps: determinism, landmark placement, intersections, styles, maps."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from functools import cache

import pytest
from PIL import Image, ImageChops

from gpbench.generators import street_views
from gpbench.generators.cities import City, generate_city, heading_vector, landmark_names
from gpbench.generators.routes import (
    DecisionPoint,
    Route,
    decision_points,
    relative_position,
    sample_route,
)
from gpbench.generators.street_views import (
    ROUTE_COLOUR,
    SIGN_PALETTE,
    STYLE_FAMILIES,
    VIEW_NAMES,
    ViewStyle,
    clear_caches,
    pixel_sha256,
    plan_views,
    render_route_map,
    render_views,
    sign_colour,
    style_for,
)

SIZE = (768, 768)
GUTTER = 2
PANEL = (SIZE[0] - GUTTER) // 2


@cache
def _train_city() -> tuple[City, Route, tuple[DecisionPoint, ...]]:
    city = generate_city("virl-city/train/3", "train")
    route = sample_route(city, "virl-city/train/3/route")
    assert route is not None
    return city, route, tuple(decision_points(city, route, "virl-city/train/3/points"))


@cache
def _cities(family: str, count: int) -> tuple[tuple[City, tuple[DecisionPoint, ...]], ...]:
    out = []
    for i in range(count):
        city = generate_city(f"test-views/{family}/{i}", family)
        route = sample_route(city, f"test-views/{family}/{i}/route")
        if route is not None:
            points = decision_points(city, route, f"test-views/{family}/{i}/points")
            out.append((city, tuple(points)))
    return tuple(out)


def _all_points() -> Iterator[tuple[City, DecisionPoint]]:
    for family in ("train", "ood"):
        for city, points in _cities(family, 6):
            for point in points:
                yield city, point


def _panel(image: Image.Image, index: int) -> Image.Image:
    """Panel ``index`` (VIEW_NAMES order) of a default-size view grid."""
    col, row = index % 2, index // 2
    x = 0 if col == 0 else SIZE[0] - PANEL
    y = 0 if row == 0 else SIZE[1] - PANEL
    return image.crop((x, y, x + PANEL, y + PANEL))


def _colours(image: Image.Image) -> dict[tuple[int, int, int], int]:
    """Pixel count of every colour in ``image``."""
    counted = image.getcolors(maxcolors=image.width * image.height)
    assert counted is not None
    out: dict[tuple[int, int, int], int] = {}
    for n, colour in counted:
        assert isinstance(colour, tuple)
        out[(colour[0], colour[1], colour[2])] = n
    return out


def _count(image: Image.Image, colour: tuple[int, int, int]) -> int:
    return _colours(image).get(colour, 0)


def _columns_with(image: Image.Image, colour: tuple[int, int, int]) -> tuple[int, int]:
    """Leftmost and rightmost x of the pixels of exactly ``colour``."""
    bands = [
        band.point(lambda v, c=c: 255 if v == c else 0)
        for band, c in zip(image.split(), colour, strict=True)
    ]
    box = ImageChops.multiply(ImageChops.multiply(bands[0], bands[1]), bands[2]).getbbox()
    assert box is not None, f"no pixel of {colour}"
    return box[0], box[2] - 1


# --- determinism ---------------------------------------------------------------------------

_CHILD = """
from gpbench.generators.cities import generate_city
from gpbench.generators.routes import decision_points, sample_route
from gpbench.generators.street_views import pixel_sha256, render_route_map, render_views
for family, i in (("train", 3), ("ood", 1)):
    city = generate_city(f"virl-city/{family}/{i}", family)
    route = sample_route(city, f"virl-city/{family}/{i}/route")
    points = decision_points(city, route, f"virl-city/{family}/{i}/points")
    for point in points[:4]:
        print(pixel_sha256(render_views(city, point)))
    print(pixel_sha256(render_route_map(city, route, points)))
"""


def _hashes_here() -> list[str]:
    out = []
    for family, i in (("train", 3), ("ood", 1)):
        city = generate_city(f"virl-city/{family}/{i}", family)
        route = sample_route(city, f"virl-city/{family}/{i}/route")
        assert route is not None
        points = decision_points(city, route, f"virl-city/{family}/{i}/points")
        out += [pixel_sha256(render_views(city, point)) for point in points[:4]]
        out.append(pixel_sha256(render_route_map(city, route, points)))
    return out


def test_same_point_gives_same_pixels_even_from_cold_caches() -> None:
    city, route, points = _train_city()
    clear_caches()
    first = [pixel_sha256(render_views(city, p)) for p in points[:6]]
    again = [pixel_sha256(render_views(city, p)) for p in points[:6]]  # warm caches
    clear_caches()
    cold = [pixel_sha256(render_views(city, p)) for p in points[:6]]
    assert first == again == cold
    assert pixel_sha256(render_route_map(city, route, points)) == pixel_sha256(
        render_route_map(city, route, points)
    )


def test_pixels_do_not_depend_on_the_hash_seed() -> None:
    here = _hashes_here()
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == here


def test_caller_may_modify_the_returned_image() -> None:
    city, _, points = _train_city()
    image = render_views(city, points[0])
    before = pixel_sha256(render_views(city, points[0]))
    image.paste((0, 0, 0), (0, 0, image.width, image.height))
    assert pixel_sha256(render_views(city, points[0])) == before


# --- which view shows a landmark ------------------------------------------------------------


def test_every_observed_landmark_is_in_exactly_one_view_on_the_side_the_text_says() -> None:
    checked = 0
    for city, point in _all_points():
        plans = plan_views(city, point)
        for seen in point.landmarks:
            where = [
                (i, v)
                for i, plan in enumerate(plans)
                for v in plan.landmarks
                if v.name == seen.name
            ]
            assert len(where) == 1, (point, seen)
            index, view = where[0]
            lm = city.landmark(seen.name)
            # Exactly on a boundary the text and the view each pick one side by their own rule.
            fx, fy = heading_vector(point.heading)
            dx, dy = lm.x - point.x, lm.y - point.y
            if dx * fx + dy * fy == 0 or dx * fy - dy * fx == 0:
                continue
            side, ahead = relative_position(point.x, point.y, point.heading, lm.x, lm.y)
            assert (side, ahead) == (seen.side, seen.ahead)
            name = VIEW_NAMES[index]
            if name == "front":
                assert (ahead, view.side) == ("front", side)
            elif name == "back":
                assert ahead == "behind" and view.side != side
            elif name == "right":
                assert side == "right" and view.side == ("left" if ahead == "front" else "right")
            else:
                assert side == "left" and view.side == ("right" if ahead == "front" else "left")
            checked += 1
    assert checked > 30


def test_a_landmark_in_front_shows_its_colour_in_the_front_panel_and_not_the_back() -> None:
    city, _, points = _train_city()
    chosen = None
    for point in points:
        front, _, back, _ = plan_views(city, point)
        back_colours = {sign_colour(v.name) for v in back.landmarks}
        for view in front.landmarks:
            if sign_colour(view.name) not in back_colours:
                chosen = (point, view)
                break
        if chosen:
            break
    assert chosen is not None, "no point of this route has a landmark in front"
    point, view = chosen
    colour = sign_colour(view.name)
    image = render_views(city, point)
    front_panel, back_panel = _panel(image, 0), _panel(image, 2)
    assert _count(front_panel, colour) >= 100
    assert _count(back_panel, colour) == 0
    # ... and on the half of the front panel the landmark is on.
    left, right = _columns_with(front_panel, colour)
    if view.side == "left":
        assert right < PANEL // 2
    else:
        assert left > PANEL // 2


def test_every_landmark_colour_is_in_its_panel_on_its_half_and_nowhere_it_should_not_be() -> None:
    checked = 0
    for city, point in itertools.islice(_all_points(), 400):
        if not point.landmarks:
            continue
        plans = plan_views(city, point)
        image = render_views(city, point)
        for index, plan in enumerate(plans):
            panel = _panel(image, index)
            counts = _colours(panel)
            here = {sign_colour(v.name) for v in plan.landmarks}
            for colour in SIGN_PALETTE:
                if colour not in here:
                    assert colour not in counts, (point.index, plan.name, colour)
            for view in plan.landmarks:
                colour = sign_colour(view.name)
                assert counts.get(colour, 0) >= 40
                same_colour = [v for v in plan.landmarks if sign_colour(v.name) == colour]
                if len(same_colour) == 1:
                    left, right = _columns_with(panel, colour)
                    assert right < PANEL // 2 if view.side == "left" else left > PANEL // 2
                checked += 1
    assert checked > 30


def test_signs_are_legible_at_the_default_size_for_every_landmark_name() -> None:
    half = PANEL // 2
    floor = round(street_views._SIGN_SIZE_FLOOR * PANEL)
    assert floor >= 18
    for family in ("train", "ood"):
        style = STYLE_FAMILIES[family][0]
        for name in landmark_names(family):
            size, lines = street_views._fit_text(name, half - 40, 30, floor)
            assert size >= 18 and 1 <= len(lines) <= 3
            assert " ".join(lines) == name
            board = street_views._sign(name, style, half - 10, 30, floor)
            assert board.width <= half - 10, name


# --- intersections --------------------------------------------------------------------------


def _side_street_pixels(city: City, point: DecisionPoint) -> int:
    """Road-coloured pixels in the outer tenth of each panel between the horizon and the
    curb line: facades and sidewalks there, unless a side street opens the view."""
    image = render_views(city, point)
    road = style_for(city).road
    total = 0
    for index in range(4):
        panel = _panel(image, index)
        top, bottom = PANEL // 2, PANEL * 68 // 100
        for box in ((0, top, PANEL // 10, bottom), (PANEL - PANEL // 10, top, PANEL, bottom)):
            total += _count(panel.crop(box), road)
    return total


def test_intersection_views_show_side_streets_and_mid_street_views_do_not() -> None:
    city, _, points = _train_city()
    mid = [p for p in points if not p.is_intersection and p.kind == "interpolated"]
    hubs = [
        p
        for p in points
        if p.is_intersection
        and any((n.x, n.y) == (p.x, p.y) and city.degree(n.id) >= 3 for n in city.nodes)
    ]
    assert mid and hubs
    for point in mid:
        assert _side_street_pixels(city, point) == 0
        assert [plan.road_ahead for plan in plan_views(city, point)] == [True, False, True, False]
    for point in hubs:
        assert _side_street_pixels(city, point) > 1000


def test_intersections_get_a_crosswalk_and_mid_street_points_none() -> None:
    city, _, points = _train_city()
    marking = style_for(city).marking
    for point in points:
        image = render_views(city, point)
        bottom = image.crop((0, PANEL * 3 // 4, PANEL, PANEL))  # the front panel's foreground
        stripes = _count(bottom, marking)
        if point.is_intersection:
            assert stripes > 2000, point
        else:
            assert stripes < 300, point  # lane dashes only


# --- styles ---------------------------------------------------------------------------------


def test_style_families_share_no_colour_and_never_use_a_sign_colour() -> None:
    train = {c for style in STYLE_FAMILIES["train"] for c in style.colours()}
    ood = {c for style in STYLE_FAMILIES["ood"] for c in style.colours()}
    assert not train & ood
    assert not (train | ood) & set(SIGN_PALETTE)
    assert len(set(SIGN_PALETTE)) == len(SIGN_PALETTE)
    assert {s.sign_style for s in STYLE_FAMILIES["train"]} == {"boxed"}
    assert {s.sign_style for s in STYLE_FAMILIES["ood"]} == {"banner"}
    assert len({s.name for f in STYLE_FAMILIES.values() for s in f}) == 6


def test_style_for_is_deterministic_within_the_family_and_uses_every_variant() -> None:
    for family in ("train", "ood"):
        seen = set()
        for city, _ in _cities(family, 6):
            style = style_for(city)
            assert style in STYLE_FAMILIES[family]
            assert style_for(City.from_json(city.to_json())) == style
            seen.add(style.name)
        more = [style_for(generate_city(f"styles/{family}/{i}", family)).name for i in range(12)]
        assert seen | set(more) == {s.name for s in STYLE_FAMILIES[family]}


def test_ood_views_use_ood_colours() -> None:
    city, points = _cities("ood", 6)[0]
    image = render_views(city, points[0])
    train = {c for style in STYLE_FAMILIES["train"] for c in style.colours()}
    counted = image.getcolors(maxcolors=image.width * image.height)
    assert counted is not None
    assert not {c for _, c in counted} & train


def test_bad_styles_and_sizes_are_rejected() -> None:
    base = STYLE_FAMILIES["train"][0]
    with pytest.raises(ValueError, match="sign_style"):
        ViewStyle(**{**base.__dict__, "sign_style": "neon"})
    with pytest.raises(ValueError, match="sky"):
        ViewStyle(**{**base.__dict__, "sky": (300, 0, 0)})
    city, route, points = _train_city()
    with pytest.raises(ValueError, match="size"):
        render_views(city, points[0], size=(64, 64))
    with pytest.raises(ValueError, match="size"):
        render_views(city, points[0], size=(768, 300))
    with pytest.raises(ValueError, match="size"):
        render_route_map(city, route, size=(100, 100))
    seeing = next(p for p in points if p.landmarks)
    with pytest.raises(ValueError, match="does not have"):
        render_views(generate_city("virl-city/ood/1", "ood"), seeing)


# --- sizes and the map ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(768, 768), (512, 384), (1001, 999)])
def test_views_are_rgb_of_the_requested_size(size: tuple[int, int]) -> None:
    city, _, points = _train_city()
    image = render_views(city, points[-1], size=size)
    assert image.mode == "RGB" and image.size == size


def test_map_has_the_route_start_and_destination() -> None:
    city, route, points = _train_city()
    image = render_route_map(city, route, points)
    assert image.mode == "RGB" and image.size == (1024, 1024)
    assert _count(image, ROUTE_COLOUR) > 3000
    assert _count(image, street_views._MAP_START) > 200
    assert _count(image, street_views._MAP_GOAL) > 200
    small = render_route_map(city, route, size=(512, 400))
    assert small.size == (512, 400) and _count(small, ROUTE_COLOUR) > 500
    other = generate_city("virl-city/train/4", "train")
    with pytest.raises(ValueError, match="route belongs"):
        render_route_map(other, route)
