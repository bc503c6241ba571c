"""Synthetic V-IRL cities and routes: geometry, families, labels, decision points, text formats."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from collections import deque
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.generators.cities import (
    COMPASS_WORDS,
    CORNER_SETBACK,
    FAMILIES,
    MAX_NODES,
    MIN_CLEARANCE,
    MIN_LANDMARK_GAP,
    MIN_NODES,
    VISIBILITY_RADIUS,
    City,
    compass_word,
    generate_city,
    heading_between,
    heading_vector,
    landmark_names,
)
from gpbench.generators.routes import (
    TURN_ANGLES,
    DecisionConfig,
    DecisionPoint,
    Route,
    RouteConfig,
    decision_points,
    observation_text,
    relative_position,
    relative_word,
    sample_route,
    turn_action,
    turn_angle,
    visible_landmarks,
    wrap_angle,
)

FAMILY_NAMES = ("train", "ood")
KEYS = [f"test-cities/{i}" for i in range(24)]

_COMPASS = "|".join(COMPASS_WORDS)
_RELATIVE = "left|right|slightly left|slightly right"
_NAME = r"[A-Za-z' ]+?"
FIRST_LINE = re.compile(rf"^1\. First, turn ({_RELATIVE}) to face ({_COMPASS})\.")
LATER_LINE = re.compile(rf"^([2-9]|[1-9][0-9])\. Turn ({_RELATIVE}) to face ({_COMPASS})\.")
MOVE_NEXT = re.compile(rf" Move forward until you reach next intersection( where {_NAME})?\.$")
MOVE_LAST = re.compile(rf" Move forward until you reach destination where {_NAME}\.$")
OBSERVATION = re.compile(
    rf"^(No landmarks nearby|{_NAME} is on your (left|right) (front|behind)"
    rf"(, {_NAME} is on your (left|right) (front|behind))*)$"
)
ABSOLUTE_ACTION = re.compile(rf"^(forward\(\)|stop\(\)|turn_direction\(({_COMPASS})\))$")
RELATIVE_ACTION = re.compile(rf"^(forward\(\)|stop\(\)|turn_direction\(({_RELATIVE})\))$")


@cache
def _city(key: str, family: str) -> City:
    return generate_city(key, family)


def _cities() -> list[City]:
    return [_city(key, family) for family in FAMILY_NAMES for key in KEYS]


def _routes() -> list[tuple[City, Route]]:
    out = []
    for city in _cities():
        route = sample_route(city, f"{city.id}/route")
        if route is not None:
            out.append((city, route))
    return out


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Determinism and JSON


def test_same_key_same_city_and_route_json() -> None:
    for family in FAMILY_NAMES:
        a, b = generate_city("det/1", family), generate_city("det/1", family)
        assert _canonical(a.to_json()) == _canonical(b.to_json())
        ra, rb = sample_route(a, "det/route"), sample_route(b, "det/route")
        assert ra is not None and rb is not None
        assert _canonical(ra.to_json()) == _canonical(rb.to_json())
        pa = [p.to_json() for p in decision_points(a, ra, "det/points")]
        pb = [p.to_json() for p in decision_points(b, rb, "det/points")]
        assert _canonical(pa) == _canonical(pb)


def test_different_keys_give_different_cities() -> None:
    for family in FAMILY_NAMES:
        jsons = {_canonical(_city(key, family).to_json()) for key in KEYS}
        ids = {_city(key, family).id for key in KEYS}
        assert len(jsons) == len(ids) == len(KEYS)


def test_city_is_independent_of_pythonhashseed() -> None:
    code = (
        "import json; from gpbench.generators.cities import generate_city;"
        "from gpbench.generators.routes import sample_route, decision_points;"
        "c = generate_city('seedcheck/7', 'ood'); r = sample_route(c, 'seedcheck/r');"
        "p = [x.to_json() for x in decision_points(c, r, 'seedcheck/p')];"
        "print(json.dumps([c.to_json(), r.to_json(), p], sort_keys=True))"
    )
    outs = []
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.append(done.stdout)
    assert outs[0] == outs[1]


def test_json_round_trips() -> None:
    for city, route in _routes()[:10]:
        city_json = json.loads(json.dumps(city.to_json()))
        assert City.from_json(city_json) == city
        assert City.from_json(city_json).to_json() == city.to_json()
        route_json = json.loads(json.dumps(route.to_json()))
        assert Route.from_json(route_json) == route
        for point in decision_points(city, route, "json"):
            point_json = json.loads(json.dumps(point.to_json()))
            assert DecisionPoint.from_json(point_json) == point


def test_city_id_is_a_content_hash_with_family_prefix() -> None:
    city = _city(KEYS[0], "train")
    assert re.fullmatch(r"train-[0-9a-f]{12}", city.id)
    assert re.fullmatch(r"ood-[0-9a-f]{12}", _city(KEYS[0], "ood").id)


# --------------------------------------------------------------------------------------------
# Street geometry


def test_every_street_runs_at_a_compass_heading_exactly() -> None:
    for city in _cities():
        for street in city.streets:
            a, b = city.nodes[street.u], city.nodes[street.v]
            assert street.heading % 45 == 0 and 0 <= street.heading < 360
            assert heading_between(a.x, a.y, b.x, b.y) == street.heading
            dx, dy = b.x - a.x, b.y - a.y
            assert dx == 0 or dy == 0 or abs(dx) == abs(dy)
            assert street.length == round(math.hypot(dx, dy), 2)
            assert isinstance(a.x, int) and isinstance(a.y, int)


def test_cities_are_connected_and_sized() -> None:
    for city in _cities():
        assert MIN_NODES <= len(city.nodes) <= MAX_NODES
        assert [n.id for n in city.nodes] == list(range(len(city.nodes)))
        reached, queue = {0}, deque([0])
        while queue:
            for other, _, _ in city.neighbours(queue.popleft()):
                if other not in reached:
                    reached.add(other)
                    queue.append(other)
        assert len(reached) == len(city.nodes)
        assert all(city.degree(n.id) >= 1 for n in city.nodes)


def _cross(ox: float, oy: float, ax: float, ay: float, bx: float, by: float) -> float:
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


def test_streets_meet_only_at_nodes_and_never_double_up() -> None:
    for city in _cities():
        for node in city.nodes:
            headings = [h for _, h, _ in city.neighbours(node.id)]
            assert len(headings) == len(set(headings))
        segments = [(city.nodes[s.u], city.nodes[s.v]) for s in city.streets]
        for (a, b), (c, d) in itertools.combinations(segments, 2):
            if {a.id, b.id} & {c.id, d.id}:
                continue
            d1 = _cross(a.x, a.y, b.x, b.y, c.x, c.y)
            d2 = _cross(a.x, a.y, b.x, b.y, d.x, d.y)
            d3 = _cross(c.x, c.y, d.x, d.y, a.x, a.y)
            d4 = _cross(c.x, c.y, d.x, d.y, b.x, b.y)
            assert not (d1 * d2 < 0 and d3 * d4 < 0), (city.id, a, b, c, d)
        # No node lies inside a street it does not end.
        for s in city.streets:
            a, b = city.nodes[s.u], city.nodes[s.v]
            for n in city.nodes:
                if n.id in (a.id, b.id):
                    continue
                on_line = _cross(a.x, a.y, b.x, b.y, n.x, n.y) == 0
                inside = min(a.x, b.x) <= n.x <= max(a.x, b.x) and min(a.y, b.y) <= n.y <= max(
                    a.y, b.y
                )
                assert not (on_line and inside)


def test_heading_vectors_and_words() -> None:
    assert heading_vector(0) == (0.0, 1.0)
    assert heading_vector(90) == (1.0, 0.0)
    assert heading_vector(180) == (0.0, -1.0)
    assert heading_vector(270) == (-1.0, 0.0)
    for h in range(0, 360, 15):
        ex, ey = heading_vector(h)
        assert ex == pytest.approx(math.sin(math.radians(h)), abs=1e-12)
        assert ey == pytest.approx(math.cos(math.radians(h)), abs=1e-12)
    assert [compass_word(h) for h in range(0, 360, 45)] == list(COMPASS_WORDS)
    assert compass_word(-45) == "northwest"
    with pytest.raises(ValueError):
        compass_word(30)
    with pytest.raises(ValueError):
        heading_between(0, 0, 2, 1)


# --------------------------------------------------------------------------------------------
# Families


def test_families_share_no_layout_block_region_or_name() -> None:
    train, ood = FAMILIES["train"], FAMILIES["ood"]
    assert set(train.layouts).isdisjoint(ood.layouts)
    assert train.block_range[1] < ood.block_range[0] or ood.block_range[1] < train.block_range[0]
    train_names, ood_names = landmark_names("train"), landmark_names("ood")
    assert len(train_names) >= 150 and len(ood_names) >= 150
    assert len(set(train_names)) == len(train_names) and len(set(ood_names)) == len(ood_names)
    assert set(train_names).isdisjoint(ood_names)


def test_generated_cities_stay_in_their_family_region() -> None:
    seen_layouts: dict[str, set[str]] = {f: set() for f in FAMILY_NAMES}
    for family in FAMILY_NAMES:
        spec = FAMILIES[family]
        pool = set(landmark_names(family))
        low, high = spec.block_range
        for key in KEYS:
            city = _city(key, family)
            assert city.family == family and city.layout in spec.layouts
            seen_layouts[family].add(city.layout)
            blocks = [v for k, v in city.params.items() if k.startswith("block")]
            assert blocks and all(low <= b <= high for b in blocks)
            names = [lm.name for lm in city.landmarks]
            assert len(names) == len(set(names)) and set(names) <= pool
            # Every street length is a block length (or a diagonal of one): the region shows in
            # the geometry itself, not only in params.
            for s in city.streets:
                assert low <= s.length <= high * math.sqrt(2) + 0.01
    for family in FAMILY_NAMES:
        assert seen_layouts[family] == set(FAMILIES[family].layouts)


_RESERVED = (
    "north",
    "south",
    "east",
    "west",
    "left",
    "right",
    "front",
    "behind",
    "intersection",
    "forward",
    "stop",
    "turn",
    "destination",
    "landmark",
)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_names_never_collide_with_the_task_vocabulary(family: str) -> None:
    for name in landmark_names(family):
        assert re.fullmatch(r"[A-Z][A-Za-z']*( [A-Za-z][A-Za-z']*)*", name), name
        lowered = name.lower()
        assert not any(word in lowered for word in _RESERVED), name


def test_unknown_family_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown city family"):
        generate_city("x", "id")


# --------------------------------------------------------------------------------------------
# Landmarks


def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def test_landmarks_stand_off_the_streets_and_apart() -> None:
    for city in _cities():
        assert len(city.landmarks) >= 8
        for lm in city.landmarks:
            for s in city.streets:
                a, b = city.nodes[s.u], city.nodes[s.v]
                assert _segment_distance(lm.x, lm.y, a.x, a.y, b.x, b.y) >= MIN_CLEARANCE - 0.01
            nearest = min(city.nodes, key=lambda n: (math.hypot(n.x - lm.x, n.y - lm.y), n.id))
            assert lm.node == nearest.id
            node = city.nodes[lm.node]
            if lm.kind == "corner":
                assert lm.bearing is not None and lm.street is None
                assert math.hypot(lm.x - node.x, lm.y - node.y) == pytest.approx(
                    CORNER_SETBACK, abs=0.01
                )
                assert city.degree(lm.node) >= 3
            else:
                assert lm.kind == "street" and lm.street is not None and lm.offset is not None
                u, v = lm.street
                a, b = city.nodes[u], city.nodes[v]
                heading = heading_between(a.x, a.y, b.x, b.y)
                ex, ey = heading_vector(heading)
                side, _ = relative_position(
                    a.x + lm.offset * ex, a.y + lm.offset * ey, heading, lm.x, lm.y
                )
                assert side == lm.side
        for p, q in itertools.combinations(city.landmarks, 2):
            assert math.hypot(p.x - q.x, p.y - q.y) >= MIN_LANDMARK_GAP - 0.01


# --------------------------------------------------------------------------------------------
# Angles and relative words


@pytest.mark.parametrize(
    ("before", "after", "angle", "word"),
    [
        (315, 45, 90, "right"),  # wraps through north
        (45, 315, -90, "left"),
        (0, 45, 45, "slightly right"),
        (0, 315, -45, "slightly left"),
        (350, 10, 20, "slightly right"),
        (10, 350, -20, "slightly left"),
        (0, 90, 90, "right"),
        (0, 270, -90, "left"),
        (0, 135, 135, "right"),
        (0, 225, -135, "left"),
        (270, 45, 135, "right"),
        (90, 315, -135, "left"),
        (180, 225, 45, "slightly right"),
        (225, 180, -45, "slightly left"),
        (0, 46, 46, "right"),
        (0, 314, -46, "left"),
    ],
)
def test_relative_words(before: int, after: int, angle: int, word: str) -> None:
    assert turn_angle(before, after) == angle
    assert relative_word(angle) == word
    assert turn_action(after, angle, "relative") == f"turn_direction({word})"


def test_wrap_angle_lands_in_half_open_interval() -> None:
    assert wrap_angle(180) == 180
    assert wrap_angle(-180) == 180
    assert wrap_angle(540) == 180
    assert wrap_angle(270) == -90
    assert wrap_angle(-270) == 90
    assert wrap_angle(360) == 0
    for a in range(-720, 721, 15):
        w = wrap_angle(a)
        assert -180 < w <= 180 and (w - a) % 360 == 0


@pytest.mark.parametrize("angle", [0, 180, -180, 360, 540])
def test_no_word_for_straight_or_u_turn(angle: int) -> None:
    with pytest.raises(ValueError):
        relative_word(angle)


@pytest.mark.parametrize(
    ("heading", "point", "expected"),
    [
        (0, (1.0, 1.0), ("right", "front")),
        (0, (-1.0, 1.0), ("left", "front")),
        (0, (1.0, -1.0), ("right", "behind")),
        (0, (-1.0, -1.0), ("left", "behind")),
        (90, (0.0, 5.0), ("left", "front")),  # north of an agent facing east: left, abeam
        (90, (0.0, -5.0), ("right", "front")),
        (180, (3.0, -1.0), ("left", "front")),
        (270, (5.0, 1.0), ("right", "behind")),
        (45, (0.0, 10.0), ("left", "front")),
        (45, (10.0, 0.0), ("right", "front")),
        (225, (10.0, 0.0), ("left", "behind")),
        (0, (0.0, 7.0), ("right", "front")),  # exactly ahead counts as right
        (0, (0.0, -7.0), ("right", "behind")),
    ],
)
def test_relative_position(
    heading: int, point: tuple[float, float], expected: tuple[str, str]
) -> None:
    assert relative_position(0.0, 0.0, heading, *point) == expected
    # Translating agent and point together changes nothing.
    assert relative_position(100.0, -40.0, heading, point[0] + 100, point[1] - 40) == expected


# --------------------------------------------------------------------------------------------
# Routes


def _check_route(city: City, route: Route, config: RouteConfig) -> None:
    assert route.city_id == city.id
    assert len(set(route.nodes)) == len(route.nodes)  # simple path
    start, goal = city.landmark(route.start_landmark), city.landmark(route.destination_landmark)
    assert route.nodes[0] == start.node and route.nodes[-1] == goal.node
    assert config.min_turns <= route.turns <= config.max_turns
    # Legs chain along the path, each straight along real streets.
    chained = [route.legs[0].nodes[0]]
    for leg in route.legs:
        assert leg.nodes[0] == chained[-1]
        for a, b in itertools.pairwise(leg.nodes):
            assert any(o == b and h == leg.heading for o, h, _ in city.neighbours(a))
        chained.extend(leg.nodes[1:])
        first, last = city.nodes[leg.nodes[0]], city.nodes[leg.nodes[-1]]
        span = math.hypot(last.x - first.x, last.y - first.y)
        assert leg.length == pytest.approx(span, abs=0.01)
    assert tuple(chained) == route.nodes
    # Every turn, the initial one included, is 45, 90 or 135 degrees; legs are maximal.
    previous = route.initial_heading
    for leg in route.legs:
        assert leg.turn in TURN_ANGLES
        assert leg.turn == turn_angle(previous, leg.heading)
        previous = leg.heading
    assert route.legs[-1].landmark == route.destination_landmark
    for leg in route.legs[:-1]:
        if leg.landmark is not None:
            end = city.nodes[leg.nodes[-1]]
            lm = city.landmark(leg.landmark)
            assert math.hypot(lm.x - end.x, lm.y - end.y) <= config.landmark_radius


def test_routes_turn_only_by_45_90_135() -> None:
    routes = _routes()
    assert len(routes) >= 0.9 * len(_cities())
    for city, route in routes:
        _check_route(city, route, RouteConfig())


def test_route_turn_bounds_are_configurable() -> None:
    config = RouteConfig(min_turns=3, max_turns=3)
    found = 0
    for city in _cities()[:12]:
        route = sample_route(city, "three", config)
        if route is not None:
            found += 1
            assert route.turns == 3
            _check_route(city, route, config)
    assert found >= 6


def test_exact_shortest_paths_option() -> None:
    config = RouteConfig(length_jitter_percent=0, turn_penalty=0.0)
    for city in _cities()[:8]:
        route = sample_route(city, "shortest", config)
        if route is not None:
            _check_route(city, route, config)


def test_route_config_validates() -> None:
    with pytest.raises(ValueError):
        RouteConfig(min_turns=3, max_turns=2)
    with pytest.raises(ValueError):
        RouteConfig(min_turns=0)
    with pytest.raises(ValueError):
        RouteConfig(turn_penalty=-1)
    with pytest.raises(ValueError):
        DecisionConfig(drop_percent=101)
    with pytest.raises(ValueError):
        DecisionConfig(spacing=0)


def test_sample_route_fails_cleanly_when_no_route_qualifies() -> None:
    city = _city(KEYS[0], "train")
    assert sample_route(city, "x", RouteConfig(min_turns=40, max_turns=40, max_attempts=3)) is None
    bare = City(city.id, city.family, city.layout, city.params, city.nodes, city.streets, ())
    assert sample_route(bare, "x") is None


# --------------------------------------------------------------------------------------------
# Instructions and observations


def test_instruction_lines_match_the_paper_formats() -> None:
    for _, route in _routes():
        lines = route.instructions()
        assert len(lines) == len(route.legs)
        for i, (line, leg) in enumerate(zip(lines, route.legs, strict=True)):
            head = (FIRST_LINE if i == 0 else LATER_LINE).match(line)
            assert head is not None, line
            assert head.group(head.lastindex or 0) == compass_word(leg.heading)
            assert f" {relative_word(leg.turn)} to face " in line
            rest = line[head.end() :]
            if i == len(lines) - 1:
                assert MOVE_LAST.fullmatch(rest), line
                assert rest.endswith(f"where {route.destination_landmark}.")
            else:
                assert MOVE_NEXT.fullmatch(rest), line
                if leg.landmark is None:
                    assert rest == " Move forward until you reach next intersection."
                else:
                    assert rest.endswith(f" where {leg.landmark}.")
            assert line.startswith(f"{i + 1}. ")


def test_instruction_exact_text() -> None:
    from gpbench.generators.routes import Leg

    first = Leg(90, -90, 40.0, (0, 1), "Blue Heron Bakery")
    assert first.instruction(1, last=False) == (
        "1. First, turn left to face east. "
        "Move forward until you reach next intersection where Blue Heron Bakery."
    )
    middle = Leg(45, -45, 40.0, (1, 2), None)
    assert middle.instruction(2, last=False) == (
        "2. Turn slightly left to face northeast. Move forward until you reach next intersection."
    )
    final = Leg(180, 135, 40.0, (2, 3), "Corner Hardware")
    assert final.instruction(3, last=True) == (
        "3. Turn right to face south. "
        "Move forward until you reach destination where Corner Hardware."
    )


def test_observation_strings_match_the_format() -> None:
    assert observation_text(()) == "No landmarks nearby"
    for city, route in _routes():
        for point in decision_points(city, route, "obs"):
            assert OBSERVATION.fullmatch(point.observation), point.observation
            assert point.observation == observation_text(point.landmarks)
            expected = visible_landmarks(city, point.x, point.y, point.heading)
            assert [s.name for s in point.landmarks] == [s.name for s in expected]
            for seen in point.landmarks:
                lm = city.landmark(seen.name)
                assert math.hypot(lm.x - point.x, lm.y - point.y) <= VISIBILITY_RADIUS + 0.01
            distances = [s.distance for s in point.landmarks]
            assert distances == sorted(distances)


def test_observation_joins_clauses_with_comma() -> None:
    city = _city(KEYS[0], "train")
    lm = city.landmarks[0]
    seen = visible_landmarks(city, lm.x, lm.y - 1.0, 0, radius=1.5)
    assert [s.text for s in seen] == [f"{lm.name} is on your right front"]
    two = visible_landmarks(city, lm.x, lm.y, 0, radius=1e6)[:2]
    assert observation_text(two) == f"{two[0].text}, {two[1].text}"


# --------------------------------------------------------------------------------------------
# Decision points


def _leg_starts(route: Route) -> list[float]:
    return [sum(leg.length for leg in route.legs[:i]) for i in range(len(route.legs))]


def _interpolation_count(length: float, spacing: float = 5.0, margin: float = 8.0) -> int:
    m, count = 1, 0
    while m * spacing < length - 1e-9:
        s = m * spacing
        if s >= margin - 1e-9 and length - s >= margin - 1e-9:
            count += 1
        m += 1
    return count


def test_decision_point_rules() -> None:
    kept = candidates = 0
    for city, route in _routes():
        points = decision_points(city, route, "rules")
        starts = _leg_starts(route)
        assert points[0].kind == "start" and points[-1].kind == "destination"
        assert [p.index for p in points] == list(range(len(points)))
        assert sum(p.kind == "start" for p in points) == 1
        assert sum(p.kind == "destination" for p in points) == 1
        assert sum(p.kind == "turn" for p in points) == route.turns
        start_node = city.nodes[route.nodes[0]]
        goal_node = city.nodes[route.nodes[-1]]
        assert (points[0].x, points[0].y) == (start_node.x, start_node.y)
        assert (points[-1].x, points[-1].y) == (goal_node.x, goal_node.y)
        assert points[0].heading == route.initial_heading
        first = route.legs[0]
        assert points[0].action_absolute == f"turn_direction({compass_word(first.heading)})"
        assert points[0].action_relative == f"turn_direction({relative_word(first.turn)})"
        assert points[-1].action_absolute == points[-1].action_relative == "stop()"
        turns = [p for p in points if p.kind == "turn"]
        for i, point in enumerate(turns):
            nxt = route.legs[i + 1]
            assert point.leg == i and point.is_intersection
            assert point.heading == route.legs[i].heading
            assert point.action_absolute == f"turn_direction({compass_word(nxt.heading)})"
            assert point.action_relative == f"turn_direction({relative_word(nxt.turn)})"
            end = city.nodes[route.legs[i].nodes[-1]]
            assert (point.x, point.y) == (end.x, end.y)
            named = route.legs[i].landmark
            if named is not None:
                assert named in point.observation
        assert route.destination_landmark in points[-1].observation
        for point in points:
            assert ABSOLUTE_ACTION.fullmatch(point.action_absolute)
            assert RELATIVE_ACTION.fullmatch(point.action_relative)
            if point.kind != "interpolated":
                continue
            leg = route.legs[point.leg]
            s = point.distance - starts[point.leg]
            assert s / 5.0 == pytest.approx(round(s / 5.0), abs=0.01)
            assert s >= 8.0 - 0.01 and leg.length - s >= 8.0 - 0.01
            assert point.heading == leg.heading
            assert point.action_absolute == point.action_relative == "forward()"
            hub = any(
                city.degree(n) >= 3
                and math.hypot(city.nodes[n].x - point.x, city.nodes[n].y - point.y) <= 2.5
                for n in leg.nodes
            )
            assert point.is_intersection == hub
        distances = [p.distance for p in points]
        assert distances == sorted(distances)
        kept += sum(p.kind == "interpolated" for p in points)
        candidates += sum(_interpolation_count(leg.length) for leg in route.legs)
    # Each interpolated point is dropped with probability 1/2.
    assert candidates > 500
    assert 0.4 < kept / candidates < 0.6


def test_drop_percent_extremes() -> None:
    for city, route in _routes()[:10]:
        everything = decision_points(city, route, "k", DecisionConfig(drop_percent=0))
        nothing = decision_points(city, route, "k", DecisionConfig(drop_percent=100))
        expected = sum(_interpolation_count(leg.length) for leg in route.legs)
        assert sum(p.kind == "interpolated" for p in everything) == expected
        assert [p.kind for p in nothing] == ["start"] + ["turn"] * route.turns + ["destination"]


def test_dropping_depends_on_the_key() -> None:
    city, route = _routes()[0]
    layouts = {
        tuple(p.distance for p in decision_points(city, route, f"drop/{i}")) for i in range(8)
    }
    assert len(layouts) > 1


def test_straight_through_intersections_get_forward() -> None:
    config = DecisionConfig(through_intersections=True)
    found = 0
    for city, route in _routes():
        points = decision_points(city, route, "through", config)
        crossings = [p for p in points if p.kind == "intersection"]
        expected = sum(1 for leg in route.legs for n in leg.nodes[1:-1] if city.degree(n) >= 3)
        assert len(crossings) == expected
        found += expected
        for p in crossings:
            assert p.is_intersection and p.action_absolute == "forward()"
        # No interpolated point duplicates a crossing.
        for p in points:
            if p.kind == "interpolated":
                assert all(abs(p.distance - c.distance) >= 2.5 - 0.01 for c in crossings)
        _walk(city, route, points)
    assert found > 0


def test_decision_points_reject_another_citys_route() -> None:
    (_, route), (other, _) = _routes()[:2]
    with pytest.raises(ValueError):
        decision_points(other, route, "k")


# --------------------------------------------------------------------------------------------
# Executing the ground truth reaches the destination


_WORD_HEADING = {word: i * 45 for i, word in enumerate(COMPASS_WORDS)}


def _walk(city: City, route: Route, points: list[DecisionPoint]) -> None:
    """Execute the absolute actions: turns set the heading, then the agent walks straight to
    the next point; ``stop()`` must come last, at the destination, after the route's length."""
    heading = points[0].heading
    x, y = points[0].x, points[0].y
    walked = 0.0
    for k, point in enumerate(points):
        assert (point.x, point.y) == pytest.approx((x, y), abs=0.02)
        assert point.heading == heading
        action = point.action_absolute
        if action == "stop()":
            assert k == len(points) - 1
            break
        match = re.fullmatch(r"turn_direction\((\w+)\)", action)
        if match:
            new = _WORD_HEADING[match.group(1)]
            assert relative_word(turn_angle(heading, new)) in point.action_relative
            assert (
                point.action_relative
                == f"turn_direction({relative_word(turn_angle(heading, new))})"
            )
            heading = new
        else:
            assert action == "forward()"
        nxt = points[k + 1]
        dx, dy = nxt.x - x, nxt.y - y
        fx, fy = heading_vector(heading)
        assert dx * fx + dy * fy > 0  # ahead
        assert abs(dx * fy - dy * fx) < 0.05  # on the line of travel
        walked += math.hypot(dx, dy)
        x, y = nxt.x, nxt.y
    else:
        raise AssertionError("no stop() action")
    goal = city.nodes[route.nodes[-1]]
    assert (x, y) == pytest.approx((goal.x, goal.y), abs=0.02)
    assert walked == pytest.approx(route.length, abs=0.1)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10**9), st.sampled_from(FAMILY_NAMES), st.integers(0, 10**6))
def test_ground_truth_actions_reach_the_destination(
    seed: int, family: str, route_seed: int
) -> None:
    city = generate_city(f"hyp/{seed}", family)
    route = sample_route(city, f"hyp/{seed}/route/{route_seed}")
    if route is None:  # a city may offer no qualifying route: that must be a clean None
        return
    _check_route(city, route, RouteConfig())
    points = decision_points(city, route, f"hyp/{seed}/points/{route_seed}")
    _walk(city, route, points)
    lines = route.instructions()
    assert FIRST_LINE.match(lines[0]) and MOVE_LAST.search(lines[-1])
