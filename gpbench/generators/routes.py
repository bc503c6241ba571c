"""V-IRL routes through a synthetic city: legs, instructions, decision points and their actions.

Everything follows docs/tasks.md §2; the choices it leaves open are fixed here.

Routes. :func:`sample_route` picks two landmarks that stand within the visibility radius of
their nearest node (so the destination landmark is in view at the destination) and takes the
cheapest path between those nodes, where a street costs its length times a random factor in
``[1, 1 + length_jitter_percent/100]`` (drawn afresh for each attempt) and each turn adds
``turn_penalty``: near-shortest paths with few turns, like a maps service's directions; with
``length_jitter_percent=0`` and ``turn_penalty=0`` they are exact shortest paths. The path must be
simple, have ``min_turns..max_turns`` turn points and turn by 45, 90 or 135 degrees at each; else
another pair is drawn, at most ``max_attempts`` times, after which the function returns None.

Legs are maximal straight runs; a turn point is a node where the heading changes, so going
straight through an intersection is not a turn. The agent starts at the start node facing
``initial_heading``: the first leg's heading turned back by a uniformly drawn angle in
{±45, ±90, ±135}, so the first instruction is a real turn of the same kinds as the others.

Relative words (:func:`relative_word`) come from the angle wrapped into (-180, 180], negative
meaning counter-clockwise (left): below -45 ``left``, -45..0 ``slightly left``, 0..45 ``slightly
right``, above 45 ``right``; so ±45 are "slightly" and ±90, ±135 plain. 0 and 180 are not turns
and raise.

Instructions (:meth:`Route.instructions`) are one numbered line per leg: the turn sentence and
the move sentence joined by one space, e.g. ``1. First, turn left to face east. Move forward
until you reach next intersection where Blue Heron Bakery.`` A leg's landmark is the landmark
nearest its end node within the visibility radius (never the destination's, which belongs to the
last leg), else the leg has none.

Decision points (:func:`decision_points`): the start, every interpolated point ``spacing``
units apart along each leg (at distances ``spacing, 2*spacing, ...`` from the leg's start,
strictly before its end) that is at least ``end_margin`` from both ends of the leg, each
dropped with probability ``drop_percent``/100; every turn point; the destination. The heading of
a point is the one faced on arrival (the initial facing at the start, the incoming leg's
elsewhere). A point is an intersection when it is within ``intersection_radius`` of a node of
degree >= 3, or is a turn point. Actions: the start and each turn point turn to the next leg's
heading; interpolated points ``forward()``; the destination ``stop()``. Optionally
(``through_intersections=True``, not in the paper) every intersection a leg goes straight
through is also a point, always kept, with ``forward()``.

Observations name every landmark within ``visibility_radius`` as ``{name} is on your {left|right}
{front|behind}``, nearest first (ties by name), joined with ``", "`` (the prompt's ``O_i`` line
already uses ``"; "`` before the intersection sentence); none gives ``No landmarks nearby``.
:func:`relative_position` decides the words: ``front`` when the landmark is ahead or exactly
abeam, ``right`` when it is to the right or exactly on the line of travel.

>>> from gpbench.generators.cities import generate_city
>>> city = generate_city("virl-l-v1/train/0/0", "train")
>>> route = sample_route(city, "virl-l-v1/train/0/0/route")
>>> route is not None and 2 <= route.turns <= 5
True
>>> points = decision_points(city, route, "virl-l-v1/train/0/0/points")
>>> points[0].kind, points[-1].kind, points[-1].action_absolute
('start', 'destination', 'stop()')
>>> relative_word(turn_angle(315, 45)), relative_word(turn_angle(45, 315))
('right', 'left')
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpbench.generators.cities import (
    VISIBILITY_RADIUS,
    City,
    Landmark,
    compass_word,
    heading_vector,
)
from gpbench.generators.rng import KeyedRng

__all__ = [
    "ACTION_FORWARD",
    "ACTION_STOP",
    "RELATIVE_WORDS",
    "TURN_ANGLES",
    "DecisionConfig",
    "DecisionPoint",
    "Leg",
    "Route",
    "RouteConfig",
    "SeenLandmark",
    "decision_points",
    "observation_text",
    "relative_position",
    "relative_word",
    "sample_route",
    "turn_action",
    "turn_angle",
    "visible_landmarks",
    "wrap_angle",
]

RELATIVE_WORDS: tuple[str, ...] = ("left", "slightly left", "slightly right", "right")
"""The relative turn vocabulary of the ``ood-rule`` split."""
TURN_ANGLES: tuple[int, ...] = (-135, -90, -45, 45, 90, 135)
"""Every turn a route may make, in degrees (negative: counter-clockwise, to the left)."""
ACTION_FORWARD = "forward()"
ACTION_STOP = "stop()"
NO_LANDMARKS = "No landmarks nearby"
_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# Angles and words


def wrap_angle(angle: int) -> int:
    """An angle in degrees wrapped into (-180, 180]: ``270 -> -90``, ``-180 -> 180``."""
    wrapped = angle % 360
    return wrapped - 360 if wrapped > 180 else wrapped


def turn_angle(from_heading: int, to_heading: int) -> int:
    """The turn from one compass heading to another, wrapped: ``turn_angle(315, 45) == 90``."""
    return wrap_angle(to_heading - from_heading)


def relative_word(angle: int) -> str:
    """``left`` (< -45), ``slightly left`` (-45..0), ``slightly right`` (0..45), ``right`` (> 45).

    The angle is wrapped into (-180, 180] first. 0 (no turn) and 180 (a U-turn) have no word:
    routes never make them, so asking for one is a bug and raises ``ValueError``.
    """
    a = wrap_angle(angle)
    if a in (0, 180):
        raise ValueError(f"a turn of {a} degrees has no relative word (routes never turn 0 or 180)")
    if a < -45:
        return "left"
    if a < 0:
        return "slightly left"
    if a <= 45:
        return "slightly right"
    return "right"


def turn_action(to_heading: int, angle: int, vocabulary: str) -> str:
    """``turn_direction(east)`` (``absolute``) or ``turn_direction(slightly left)`` (``relative``)."""
    if vocabulary == "absolute":
        return f"turn_direction({compass_word(to_heading)})"
    if vocabulary == "relative":
        return f"turn_direction({relative_word(angle)})"
    raise ValueError(f"vocabulary must be 'absolute' or 'relative', got {vocabulary!r}")


def relative_position(x: float, y: float, heading: float, px: float, py: float) -> tuple[str, str]:
    """Where a world point lies for an agent at ``(x, y)`` facing ``heading``: ``(side, ahead)``.

    ``side`` is ``left`` or ``right`` (a point exactly on the line of travel counts as
    ``right``); ``ahead`` is ``front`` or ``behind`` (a point exactly abeam counts as ``front``).
    """
    fx, fy = heading_vector(heading)
    dx, dy = px - x, py - y
    forward = dx * fx + dy * fy
    lateral = dx * fy - dy * fx  # positive to the right (clockwise of the heading)
    side = "left" if lateral < -_EPS else "right"
    ahead = "behind" if forward < -_EPS else "front"
    return side, ahead


# --------------------------------------------------------------------------------------------
# Routes


@dataclass(frozen=True)
class RouteConfig:
    """How :func:`sample_route` picks a route.

    Attributes:
        min_turns, max_turns: inclusive range of turn points (the initial turn does not count).
        length_jitter_percent: each street's cost is its length times a random factor in
            ``[1, 1 + length_jitter_percent / 100]``, so routes vary between near-shortest paths.
        turn_penalty: cost added per turn, in length units: maps-like routes with few turns.
        max_attempts: landmark pairs tried before giving up (the function then returns None).
        landmark_radius: endpoints must stand this close to their node; a turn's landmark too.
    """

    min_turns: int = 2
    max_turns: int = 5
    length_jitter_percent: int = 40
    turn_penalty: float = 10.0
    max_attempts: int = 64
    landmark_radius: float = VISIBILITY_RADIUS

    def __post_init__(self) -> None:
        if not 1 <= self.min_turns <= self.max_turns:
            raise ValueError(
                f"need 1 <= min_turns <= max_turns, got {self.min_turns}, {self.max_turns}"
            )
        if self.length_jitter_percent < 0 or self.turn_penalty < 0:
            raise ValueError("length_jitter_percent and turn_penalty must be >= 0")
        if self.max_attempts < 1 or self.landmark_radius <= 0:
            raise ValueError("max_attempts must be >= 1 and landmark_radius > 0")


@dataclass(frozen=True)
class Leg:
    """A maximal straight run of a route.

    Attributes:
        heading: absolute compass heading of the leg.
        turn: the turn onto this leg, wrapped into (-180, 180] (first leg: from the initial facing).
        length: total length (2 decimals).
        nodes: the nodes along the leg, from its start to its end (the end is a turn point or the
            destination; the others are passed straight through).
        landmark: the landmark named at the leg's end, or None.
    """

    heading: int
    turn: int
    length: float
    nodes: tuple[int, ...]
    landmark: str | None

    def instruction(self, number: int, last: bool) -> str:
        """The numbered instruction line of this leg (see the module docstring)."""
        opening = "First, turn" if number == 1 else "Turn"
        text = (
            f"{number}. {opening} {relative_word(self.turn)} to face {compass_word(self.heading)}."
        )
        if last:
            return f"{text} Move forward until you reach destination where {self.landmark}."
        if self.landmark is None:
            return f"{text} Move forward until you reach next intersection."
        return f"{text} Move forward until you reach next intersection where {self.landmark}."

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "heading": self.heading,
            "turn": self.turn,
            "length": self.length,
            "nodes": list(self.nodes),
            "landmark": self.landmark,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Leg:
        """Rebuild from :meth:`to_json` output."""
        landmark = data.get("landmark")
        return cls(
            heading=int(data["heading"]),
            turn=int(data["turn"]),
            length=float(data["length"]),
            nodes=tuple(int(n) for n in data["nodes"]),
            landmark=None if landmark is None else str(landmark),
        )


@dataclass(frozen=True)
class Route:
    """A route from one landmark's node to another's.

    Attributes:
        city_id: the :class:`~gpbench.generators.cities.City` it runs through.
        start_landmark, destination_landmark: landmark names.
        initial_heading: the compass heading the agent faces at the start.
        nodes: every node of the path, start to destination.
        legs: the straight runs; ``len(legs) - 1`` turn points.
    """

    city_id: str
    start_landmark: str
    destination_landmark: str
    initial_heading: int
    nodes: tuple[int, ...]
    legs: tuple[Leg, ...]

    @property
    def turns(self) -> int:
        """Turn points on the path (the initial turn at the start is not one)."""
        return len(self.legs) - 1

    @property
    def length(self) -> float:
        """Total length (2 decimals)."""
        return round(sum(leg.length for leg in self.legs), 2)

    def instructions(self) -> tuple[str, ...]:
        """One numbered instruction line per leg, exactly in the paper's words."""
        last = len(self.legs) - 1
        return tuple(leg.instruction(i + 1, i == last) for i, leg in enumerate(self.legs))

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "city_id": self.city_id,
            "start_landmark": self.start_landmark,
            "destination_landmark": self.destination_landmark,
            "initial_heading": self.initial_heading,
            "nodes": list(self.nodes),
            "legs": [leg.to_json() for leg in self.legs],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Route:
        """Rebuild from :meth:`to_json` output."""
        return cls(
            city_id=str(data["city_id"]),
            start_landmark=str(data["start_landmark"]),
            destination_landmark=str(data["destination_landmark"]),
            initial_heading=int(data["initial_heading"]),
            nodes=tuple(int(n) for n in data["nodes"]),
            legs=tuple(Leg.from_json(leg) for leg in data["legs"]),
        )


def sample_route(city: City, key: str, config: RouteConfig | None = None) -> Route | None:
    """A route through ``city`` determined by ``key``, or None when no attempt qualifies.

    See the module docstring for how endpoints, paths and the initial facing are drawn. None
    means the city offers no qualifying route within ``config.max_attempts`` tries (for example,
    too few landmarks near nodes); the caller should draw another city or key.
    """
    config = config or RouteConfig()
    rng = KeyedRng(key)
    endpoints = [lm for lm in city.landmarks if _node_distance(city, lm) <= config.landmark_radius]
    if len({lm.node for lm in endpoints}) < 2:
        return None
    for _ in range(config.max_attempts):
        start, goal = rng.sample(endpoints, 2)
        jitter = config.length_jitter_percent
        costs = rng.digits(jitter + 1, len(city.streets)) if jitter else [0] * len(city.streets)
        if start.node == goal.node:
            continue
        path = _cheapest_path(city, start.node, goal.node, costs, config.turn_penalty)
        if path is None or len(set(path)) != len(path):
            continue
        headings = [_street_heading(city, a, b) for a, b in itertools.pairwise(path)]
        turns = [turn_angle(h0, h1) for h0, h1 in itertools.pairwise(headings)]
        turn_points = [t for t in turns if t != 0]
        if not config.min_turns <= len(turn_points) <= config.max_turns:
            continue
        if any(t not in TURN_ANGLES for t in turn_points):
            continue
        first_turn = rng.choice(TURN_ANGLES)
        initial = (headings[0] - first_turn) % 360
        legs = _legs(city, path, headings, initial, goal, config.landmark_radius)
        return Route(city.id, start.name, goal.name, initial, tuple(path), legs)
    return None


def _node_distance(city: City, landmark: Landmark) -> float:
    node = city.nodes[landmark.node]
    return math.hypot(landmark.x - node.x, landmark.y - node.y)


def _street_heading(city: City, a: int, b: int) -> int:
    for other, heading, _ in city.neighbours(a):
        if other == b:
            return heading
    raise AssertionError(f"no street between nodes {a} and {b}")


def _cheapest_path(
    city: City, start: int, goal: int, jitter: Sequence[int], turn_penalty: float
) -> list[int] | None:
    """Dijkstra over (node, incoming heading) states: lengths jittered, turns penalised,
    U-turns forbidden. Ties break on (node, heading), so the result is deterministic."""
    factor: dict[tuple[int, int], float] = {}
    for s, j in zip(city.streets, jitter, strict=True):
        factor[(s.u, s.v)] = factor[(s.v, s.u)] = s.length * (1.0 + j / 100.0)
    # heading -1: standing at the start, no turn charged for the first street.
    best: dict[tuple[int, int], float] = {(start, -1): 0.0}
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    queue: list[tuple[float, int, int]] = [(0.0, start, -1)]
    while queue:
        cost, node, heading = heapq.heappop(queue)
        if cost > best[(node, heading)]:
            continue
        if node == goal:
            path, state = [node], (node, heading)
            while state in parent:
                state = parent[state]
                path.append(state[0])
            return path[::-1]
        for other, out, _ in city.neighbours(node):
            extra = 0.0
            if heading >= 0 and out != heading:
                if (out - heading) % 360 == 180:
                    continue
                extra = turn_penalty
            new = cost + factor[(node, other)] + extra
            state = (other, out)
            if new < best.get(state, math.inf):
                best[state] = new
                parent[state] = (node, heading)
                heapq.heappush(queue, (new, other, out))
    return None


def _legs(
    city: City,
    path: Sequence[int],
    headings: Sequence[int],
    initial: int,
    goal: Landmark,
    radius: float,
) -> tuple[Leg, ...]:
    runs: list[list[int]] = [[path[0], path[1]]]
    run_headings = [headings[0]]
    for node, heading in zip(path[2:], headings[1:], strict=True):
        if heading == run_headings[-1]:
            runs[-1].append(node)
        else:
            runs.append([runs[-1][-1], node])
            run_headings.append(heading)
    legs = []
    previous = initial
    for i, (run, heading) in enumerate(zip(runs, run_headings, strict=True)):
        a, b = city.nodes[run[0]], city.nodes[run[-1]]
        length = round(math.hypot(b.x - a.x, b.y - a.y), 2)
        if i == len(runs) - 1:
            landmark: str | None = goal.name
        else:
            landmark = _landmark_near(city, run[-1], radius, exclude=goal.name)
        legs.append(Leg(heading, turn_angle(previous, heading), length, tuple(run), landmark))
        previous = heading
    return tuple(legs)


def _landmark_near(city: City, node_id: int, radius: float, exclude: str) -> str | None:
    node = city.nodes[node_id]
    near = [
        (math.hypot(lm.x - node.x, lm.y - node.y), lm.name)
        for lm in city.landmarks
        if lm.name != exclude
    ]
    near = [item for item in near if item[0] <= radius]
    return min(near)[1] if near else None


# --------------------------------------------------------------------------------------------
# Decision points


@dataclass(frozen=True)
class DecisionConfig:
    """How :func:`decision_points` places points along a route (defaults: the paper's rule).

    Attributes:
        spacing: distance between interpolated points.
        end_margin: no interpolated point closer than this to either end of its leg.
        drop_percent: chance (in per cent) that each interpolated point is dropped.
        visibility_radius: landmarks this close are observed.
        intersection_radius: a point this close to a node of degree >= 3 observes an intersection.
        through_intersections: also a point at every intersection a leg goes straight through
            (not in the paper; off by default).
    """

    spacing: float = 5.0
    end_margin: float = 8.0
    drop_percent: int = 50
    visibility_radius: float = VISIBILITY_RADIUS
    intersection_radius: float = 2.5
    through_intersections: bool = False

    def __post_init__(self) -> None:
        if self.spacing <= 0 or self.end_margin < 0:
            raise ValueError(
                f"need spacing > 0 and end_margin >= 0, got {self.spacing}, {self.end_margin}"
            )
        if not 0 <= self.drop_percent <= 100:
            raise ValueError(f"drop_percent must be in 0..100, got {self.drop_percent}")
        if self.visibility_radius <= 0 or self.intersection_radius < 0:
            raise ValueError("visibility_radius must be > 0 and intersection_radius >= 0")


@dataclass(frozen=True)
class SeenLandmark:
    """A landmark in view from a decision point.

    Attributes:
        name: the landmark.
        side: ``left`` or ``right``; ahead: ``front`` or ``behind`` (see :func:`relative_position`).
        distance: from the agent (2 decimals).
    """

    name: str
    side: str
    ahead: str
    distance: float

    @property
    def text(self) -> str:
        """``{name} is on your {side} {ahead}``."""
        return f"{self.name} is on your {self.side} {self.ahead}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "name": self.name,
            "side": self.side,
            "ahead": self.ahead,
            "distance": self.distance,
        }


def visible_landmarks(
    city: City, x: float, y: float, heading: float, radius: float = VISIBILITY_RADIUS
) -> tuple[SeenLandmark, ...]:
    """Landmarks within ``radius`` of ``(x, y)``, nearest first (ties by name).

    Only arithmetic and ``hypot`` are used (no libm trigonometry), so the result is the same on
    every IEEE 754 machine; a renderer wanting exact bearings computes them from the positions.
    """
    seen = []
    for lm in city.landmarks:
        distance = math.hypot(lm.x - x, lm.y - y)
        if distance <= radius:
            side, ahead = relative_position(x, y, heading, lm.x, lm.y)
            seen.append(SeenLandmark(lm.name, side, ahead, round(distance, 2)))
    seen.sort(key=lambda s: (s.distance, s.name))
    return tuple(seen)


def observation_text(seen: Sequence[SeenLandmark]) -> str:
    """The landmark observation: clauses joined by ``", "``, or ``No landmarks nearby``."""
    return ", ".join(s.text for s in seen) if seen else NO_LANDMARKS


@dataclass(frozen=True)
class DecisionPoint:
    """A point where the agent acts once.

    Attributes:
        index: position in the episode (0 = start).
        kind: ``start``, ``interpolated``, ``intersection`` (straight through; only
            with ``through_intersections``), ``turn`` or ``destination``.
        leg: index of the leg the point lies on (start: 0; a turn point: the leg it ends).
        x, y: position (2 decimals).
        heading: compass heading faced on arrival.
        distance: route distance from the start (2 decimals).
        is_intersection: whether the agent observes an intersection here.
        landmarks: the landmarks in view.
        observation: their text (:func:`observation_text`).
        action_absolute, action_relative: the ground-truth action in each vocabulary.
    """

    index: int
    kind: str
    leg: int
    x: float
    y: float
    heading: int
    distance: float
    is_intersection: bool
    landmarks: tuple[SeenLandmark, ...]
    observation: str
    action_absolute: str
    action_relative: str

    def action(self, vocabulary: str) -> str:
        """The ground-truth action in ``absolute`` (train, id, ood-spatial) or ``relative`` words."""
        if vocabulary == "absolute":
            return self.action_absolute
        if vocabulary == "relative":
            return self.action_relative
        raise ValueError(f"vocabulary must be 'absolute' or 'relative', got {vocabulary!r}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "index": self.index,
            "kind": self.kind,
            "leg": self.leg,
            "x": self.x,
            "y": self.y,
            "heading": self.heading,
            "distance": self.distance,
            "is_intersection": self.is_intersection,
            "landmarks": [s.to_json() for s in self.landmarks],
            "observation": self.observation,
            "action_absolute": self.action_absolute,
            "action_relative": self.action_relative,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DecisionPoint:
        """Rebuild from :meth:`to_json` output."""
        return cls(
            index=int(data["index"]),
            kind=str(data["kind"]),
            leg=int(data["leg"]),
            x=float(data["x"]),
            y=float(data["y"]),
            heading=int(data["heading"]),
            distance=float(data["distance"]),
            is_intersection=bool(data["is_intersection"]),
            landmarks=tuple(
                SeenLandmark(str(s["name"]), str(s["side"]), str(s["ahead"]), float(s["distance"]))
                for s in data["landmarks"]
            ),
            observation=str(data["observation"]),
            action_absolute=str(data["action_absolute"]),
            action_relative=str(data["action_relative"]),
        )


def decision_points(
    city: City, route: Route, key: str, config: DecisionConfig | None = None
) -> list[DecisionPoint]:
    """The decision points of a route with observations and ground-truth actions.

    ``key`` drives only the dropping of interpolated points. See the module docstring.
    """
    config = config or DecisionConfig()
    if route.city_id != city.id:
        raise ValueError(f"route belongs to city {route.city_id}, not {city.id}")
    rng = KeyedRng(key)
    points: list[DecisionPoint] = []

    def add(
        kind: str,
        leg: int,
        x: float,
        y: float,
        heading: int,
        along: float,
        turn_to: int | None,
        at_node: bool,
    ) -> None:
        seen = visible_landmarks(city, x, y, heading, config.visibility_radius)
        if turn_to is None:
            absolute = relative = ACTION_STOP if kind == "destination" else ACTION_FORWARD
        else:
            nxt = route.legs[turn_to]
            absolute = turn_action(nxt.heading, nxt.turn, "absolute")
            relative = turn_action(nxt.heading, nxt.turn, "relative")
        is_intersection = at_node or _near_intersection(city, route.legs[leg], x, y, config)
        points.append(
            DecisionPoint(
                len(points),
                kind,
                leg,
                round(x, 2),
                round(y, 2),
                heading,
                round(along, 2),
                is_intersection,
                seen,
                observation_text(seen),
                absolute,
                relative,
            )
        )

    start = city.nodes[route.nodes[0]]
    start_is_hub = city.degree(start.id) >= 3
    add("start", 0, start.x, start.y, route.initial_heading, 0.0, 0, start_is_hub)
    travelled = 0.0
    last = len(route.legs) - 1
    for i, leg in enumerate(route.legs):
        a = city.nodes[leg.nodes[0]]
        fx, fy = heading_vector(leg.heading)
        through = (
            [_along(city, a.x, a.y, n) for n in leg.nodes[1:-1] if city.degree(n) >= 3]
            if config.through_intersections
            else []
        )
        stops: list[tuple[float, str]] = [(d, "intersection") for d in through]
        m = 1
        while m * config.spacing < leg.length - _EPS:
            s = m * config.spacing
            m += 1
            if s < config.end_margin - _EPS or leg.length - s < config.end_margin - _EPS:
                continue
            if rng.below(100) < config.drop_percent:
                continue
            # A kept point on top of a through intersection would repeat it.
            if any(abs(s - d) < config.intersection_radius for d in through):
                continue
            stops.append((s, "interpolated"))
        stops.sort()
        for s, kind in stops:
            add(
                kind,
                i,
                a.x + s * fx,
                a.y + s * fy,
                leg.heading,
                travelled + s,
                None,
                kind == "intersection",
            )
        travelled += leg.length
        b = city.nodes[leg.nodes[-1]]
        if i < last:
            add("turn", i, b.x, b.y, leg.heading, travelled, i + 1, True)
        else:
            add("destination", i, b.x, b.y, leg.heading, travelled, None, city.degree(b.id) >= 3)
    return points


def _along(city: City, x: float, y: float, node: int) -> float:
    n = city.nodes[node]
    return math.hypot(n.x - x, n.y - y)


def _near_intersection(city: City, leg: Leg, x: float, y: float, config: DecisionConfig) -> bool:
    # Only the leg's own nodes can be this close: streets lie on a lattice at least a block apart.
    return any(
        city.degree(n) >= 3 and _along(city, x, y, n) <= config.intersection_radius
        for n in leg.nodes
    )
