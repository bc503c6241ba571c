"""Synthetic V-IRL cities: street graphs at the 8 compass headings, with named landmarks.

The paper navigated real New York streets with Street View; gpbench generates cities instead
(docs/tasks.md §2, docs/design.md §4). A city is a pure function of a key string and a *family*:

- ``train`` (the ID family of ``train``/``id``/``id-heldout``): layouts ``grid`` and
  ``skewed_grid``, block lengths in ``30..60`` units, names from ``assets/landmarks/train.txt``.
- ``ood`` (the ``ood-spatial`` family): layouts ``radial`` and ``irregular``, block lengths in
  ``70..110`` units, names from ``assets/landmarks/ood.txt``.

The two families share no layout generator, no block-length region and no landmark name
(:data:`FAMILIES`; the tests check all three).

Geometry. x points east, y north, in abstract metres. Headings are compass degrees, clockwise
from north: 0 = north, 45 = northeast, ..., 315 = northwest. Every layout is built on an integer
lattice whose streets are single lattice steps in one of the 8 directions; node coordinates are
lattice coordinates times integer block lengths (the same length on both axes whenever the
layout has diagonal streets), so every street's heading is a multiple of 45 *exactly* and node
coordinates are integers. Each node has at most one street per heading, and no two diagonal
streets cross (the graph is planar: streets meet only at nodes). Only the largest connected
component is kept; a layout that leaves fewer than :data:`MIN_NODES` or more than
:data:`MAX_NODES` nodes is redrawn from a derived key (bounded; the attempt number is in
``params``).

Nodes are numbered in reading order (north to south, then west to east). A node of degree 2 is a
bend or a straight pass-through, not an intersection; an *intersection* has degree 3 or more.

Landmarks. Each name is used once per city. A ``corner`` landmark stands :data:`CORNER_SETBACK`
units from a node along the bisector of a gap between two of its streets (so it is never on a
street); a ``street`` landmark stands :data:`STREET_SETBACK` units to the ``left`` or ``right``
(as seen going from the street's ``u`` to its ``v``) of a point ``offset`` units along the
street. Every landmark keeps at least :data:`MIN_CLEARANCE` from every street and
:data:`MIN_LANDMARK_GAP` from every other landmark. Positions are rounded to 2 decimals.

Everything here is deterministic: randomness comes only from
:class:`gpbench.generators.rng.KeyedRng`, and nothing iterates a set where order matters.

>>> city = generate_city("virl-l-v1/train/0/0", "train")
>>> city.family, city.layout in ("grid", "skewed_grid")
('train', True)
>>> all(street.heading % 45 == 0 for street in city.streets)
True
>>> City.from_json(city.to_json()) == city
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import Any

from gpbench.generators.rng import KeyedRng, content_hash

__all__ = [
    "COMPASS_WORDS",
    "CORNER_SETBACK",
    "FAMILIES",
    "HEADINGS",
    "MAX_NODES",
    "MIN_CLEARANCE",
    "MIN_LANDMARK_GAP",
    "MIN_NODES",
    "STREET_SETBACK",
    "VISIBILITY_RADIUS",
    "City",
    "FamilySpec",
    "Landmark",
    "Node",
    "Street",
    "compass_word",
    "generate_city",
    "heading_between",
    "heading_vector",
    "landmark_names",
]

HEADINGS: tuple[int, ...] = (0, 45, 90, 135, 180, 225, 270, 315)
"""The 8 compass headings in degrees, clockwise from north."""
COMPASS_WORDS: tuple[str, ...] = (
    "north",
    "northeast",
    "east",
    "southeast",
    "south",
    "southwest",
    "west",
    "northwest",
)
"""Compass words indexed by ``heading // 45``."""

MIN_NODES = 20
"""Fewest nodes a city may have (after keeping the largest component)."""
MAX_NODES = 60
"""Most nodes a city may have."""
VISIBILITY_RADIUS = 20.0
"""Landmarks within this distance of the agent are observed (and can name an intersection)."""
CORNER_SETBACK = 10.0
"""Distance of a corner landmark from its node: inside the visibility radius of that node."""
STREET_SETBACK = 8.0
"""Distance of a street landmark from the street's centre line."""
MIN_CLEARANCE = 3.0
"""Least distance of any landmark from any street, so no landmark stands on a road."""
MIN_LANDMARK_GAP = 6.0
"""Least distance between two landmarks, so two signs never stand on top of each other."""

_LAYOUT_ATTEMPTS = 32
_PLACEMENT_TRIES = 24

# Lattice step -> compass heading. A step is (dx, dy) with dx, dy in {-1, 0, 1}.
_STEP_HEADING: dict[tuple[int, int], int] = {
    (0, 1): 0,
    (1, 1): 45,
    (1, 0): 90,
    (1, -1): 135,
    (0, -1): 180,
    (-1, -1): 225,
    (-1, 0): 270,
    (-1, 1): 315,
}
_SQRT_HALF = math.sqrt(0.5)
_COS_22_5 = math.sqrt(2.0 + math.sqrt(2.0)) / 2.0
_SIN_22_5 = math.sqrt(2.0 - math.sqrt(2.0)) / 2.0
# (sin, cos) of 0, 22.5, 45 and 67.5 degrees; the other quadrants follow by quarter turns.
_QUADRANT = ((0.0, 1.0), (_SIN_22_5, _COS_22_5), (_SQRT_HALF, _SQRT_HALF), (_COS_22_5, _SIN_22_5))


def _quarter_turns(east: float, north: float, turns: int) -> tuple[float, float]:
    for _ in range(turns):  # a clockwise quarter turn maps (e, n) to (n, -e)
        east, north = north, -east
    return east + 0.0, north + 0.0  # + 0.0 turns -0.0 into 0.0


_EXACT_VECTORS: tuple[tuple[float, float], ...] = tuple(
    _quarter_turns(e, n, q) for q in range(4) for e, n in _QUADRANT
)
"""Unit vectors of 0, 22.5, ..., 337.5 degrees."""


def compass_word(heading: int) -> str:
    """``0 -> 'north'``, ``45 -> 'northeast'``, ..., ``315 -> 'northwest'``."""
    if heading % 45:
        raise ValueError(f"heading must be a multiple of 45 degrees, got {heading}")
    return COMPASS_WORDS[(heading % 360) // 45]


def heading_vector(heading: float) -> tuple[float, float]:
    """Unit vector ``(east, north)`` of a compass heading in degrees.

    Multiples of 22.5 (every street heading and every corner-landmark bearing) use components
    built from ``sqrt`` alone, which IEEE 754 rounds exactly, so positions do not depend on the
    platform's trigonometry; axis headings give exact 0 and 1, so a point straight ahead has a
    lateral offset of exactly 0.
    """
    h = heading % 360
    if (h * 2) % 45 == 0:
        east, north = _EXACT_VECTORS[int(h * 2) // 45]
        return east, north
    rad = math.radians(h)
    return math.sin(rad), math.cos(rad)


def heading_between(x0: float, y0: float, x1: float, y1: float) -> int:
    """The compass heading from one point to another; raises unless it is a multiple of 45."""
    dx, dy = x1 - x0, y1 - y0
    if dx == 0 and dy == 0:
        raise ValueError("no heading between a point and itself")
    if dx != 0 and dy != 0 and abs(dx) != abs(dy):
        raise ValueError(f"({dx}, {dy}) is not along one of the 8 compass headings")
    return _STEP_HEADING[(_sign(dx), _sign(dy))]


def _sign(v: float) -> int:
    return (v > 0) - (v < 0)


# --------------------------------------------------------------------------------------------
# Families and landmark names


@dataclass(frozen=True)
class FamilySpec:
    """A family of cities: which layouts, which block lengths, which names.

    Attributes:
        name: ``train`` or ``ood``.
        layouts: layout generators this family draws from (uniformly).
        block_range: inclusive range of every block length (``block*`` entries of ``params``).
        names_file: landmark name list under ``gpbench/assets/landmarks/``.
    """

    name: str
    layouts: tuple[str, ...]
    block_range: tuple[int, int]
    names_file: str

    def __post_init__(self) -> None:
        unknown = [layout for layout in self.layouts if layout not in _LAYOUTS]
        if not self.layouts or unknown:
            raise ValueError(
                f"layouts must be a non-empty subset of {sorted(_LAYOUTS)}, got {self.layouts!r}"
            )
        low, high = self.block_range
        # A corner landmark stands CORNER_SETBACK from its node and is seen from
        # VISIBILITY_RADIUS away: shorter blocks would let one landmark name two neighbouring
        # intersections.
        if not CORNER_SETBACK + VISIBILITY_RADIUS <= low <= high:
            raise ValueError(
                f"block_range must satisfy {CORNER_SETBACK + VISIBILITY_RADIUS:g} <= low <= high, "
                f"got {self.block_range}"
            )


@dataclass
class _Lattice:
    """What a layout generator returns: unit-step streets on an integer lattice and its scale."""

    edges: list[tuple[tuple[int, int], tuple[int, int]]]
    scale: tuple[int, int]
    params: dict[str, int]


def _grid(rng: KeyedRng, low: int, high: int) -> _Lattice:
    """A rectangular grid (north-south and east-west streets only) with a few streets closed."""
    cols, rows = rng.between(5, 8), rng.between(4, 7)
    block_x, block_y = rng.between(low, high), rng.between(low, high)
    closed = rng.between(5, 15)
    edges = []
    for j in range(rows):
        for i in range(cols):
            if i + 1 < cols:
                edges.append(((i, j), (i + 1, j)))
            if j + 1 < rows:
                edges.append(((i, j), (i, j + 1)))
    kept = [e for e in edges if rng.below(100) >= closed]
    params = {"cols": cols, "rows": rows, "block_x": block_x, "block_y": block_y}
    return _Lattice(kept, (block_x, block_y), params | {"closed_percent": closed})


def _skewed_grid(rng: KeyedRng, low: int, high: int) -> _Lattice:
    """A sheared grid: east-west streets crossed by diagonal avenues, some cut by north streets.

    Grid point ``(i, j)`` sits at lattice ``(i + shear * j, j)``: rows run east-west, the avenues
    joining ``(i, j)`` to ``(i, j + 1)`` run northeast (shear +1) or northwest (shear -1), and the
    optional cross streets ``(i, j)``-``(i - shear, j + 1)`` run due north. Each parallelogram
    gets at most its short (north) diagonal, so streets never cross.
    """
    cols, rows = rng.between(5, 7), rng.between(4, 6)
    block = rng.between(low, high)
    shear = rng.choice((1, -1))
    north_percent = rng.between(30, 70)
    closed = rng.between(5, 15)

    def at(i: int, j: int) -> tuple[int, int]:
        return i + shear * j, j

    edges = []
    for j in range(rows):
        for i in range(cols):
            if i + 1 < cols:
                edges.append((at(i, j), at(i + 1, j)))
            if j + 1 < rows:
                edges.append((at(i, j), at(i, j + 1)))
                if 0 <= i - shear < cols and rng.below(100) < north_percent:
                    edges.append((at(i, j), at(i - shear, j + 1)))
    kept = [e for e in edges if rng.below(100) >= closed]
    params = {"cols": cols, "rows": rows, "block": block, "shear": shear}
    return _Lattice(
        kept, (block, block), params | {"north_percent": north_percent, "closed_percent": closed}
    )


def _radial(rng: KeyedRng, low: int, high: int) -> _Lattice:
    """Square ring roads around a centre, crossed by 8 radial avenues, with some spokes.

    Ring ``k`` is the square of lattice points with ``max(|x|, |y|) == k``; the 8 avenues run
    from the centre along the compass headings and meet every ring at a corner or a side's
    midpoint. Optional spokes join a ring's side point straight inward to the next ring. Some
    ring segments are closed; avenues never are, so the centre stays reachable.
    """
    # Two rings leave 25 nodes where nearly every route crosses the centre in one turn.
    rings = 3
    block = rng.between(low, high)
    spoke_percent = rng.between(30, 70)
    closed = rng.between(0, 15)
    edges: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for step in sorted(_STEP_HEADING, key=lambda s: _STEP_HEADING[s]):
        dx, dy = step
        for k in range(rings):
            edges.append(((k * dx, k * dy), ((k + 1) * dx, (k + 1) * dy)))
    for k in range(1, rings + 1):
        for a in range(-k, k):
            ring = [((a, k), (a + 1, k)), ((a, -k), (a + 1, -k))]
            ring += [((k, a), (k, a + 1)), ((-k, a), (-k, a + 1))]
            edges.extend(e for e in ring if rng.below(100) >= closed)
        for a in range(-k + 1, k):
            if a == 0 or k == 1:
                continue  # on an avenue already, or ring 1 (whose points are all on avenues)
            for outer, inner in (
                ((a, k), (a, k - 1)),
                ((a, -k), (a, -k + 1)),
                ((k, a), (k - 1, a)),
                ((-k, a), (-k + 1, a)),
            ):
                if rng.below(100) < spoke_percent:
                    edges.append((inner, outer))
    params = {"rings": rings, "block": block, "spoke_percent": spoke_percent}
    return _Lattice(edges, (block, block), params | {"closed_percent": closed})


def _irregular(rng: KeyedRng, low: int, high: int) -> _Lattice:
    """An organic street net: a thinned lattice with missing blocks and scattered diagonals.

    Lattice points drop out, orthogonal streets survive with some probability, and a share of
    cells get one diagonal of a random orientation (never both, so diagonals never cross).
    """
    cols, rows = rng.between(5, 7), rng.between(5, 7)
    block = rng.between(low, high)
    gone_percent = rng.between(5, 20)
    keep_percent = rng.between(60, 85)
    diagonal_percent = rng.between(20, 45)
    present = [[rng.below(100) >= gone_percent for _ in range(rows)] for _ in range(cols)]
    edges = []
    for j in range(rows):
        for i in range(cols):
            for di, dj in ((1, 0), (0, 1)):
                a, b = i + di, j + dj
                # The draw happens only for streets that can exist, as in the nested form.
                joinable = a < cols and b < rows and present[i][j] and present[a][b]
                if joinable and rng.below(100) < keep_percent:
                    edges.append(((i, j), (a, b)))
            if i + 1 < cols and j + 1 < rows and rng.below(100) < diagonal_percent:
                if rng.below(2):
                    p, q = (i, j), (i + 1, j + 1)
                else:
                    p, q = (i + 1, j), (i, j + 1)
                if present[p[0]][p[1]] and present[q[0]][q[1]]:
                    edges.append((p, q))
    params = {"cols": cols, "rows": rows, "block": block, "gone_percent": gone_percent}
    params |= {"keep_percent": keep_percent, "diagonal_percent": diagonal_percent}
    return _Lattice(edges, (block, block), params)


_LAYOUTS: dict[str, Callable[[KeyedRng, int, int], _Lattice]] = {
    "grid": _grid,
    "skewed_grid": _skewed_grid,
    "radial": _radial,
    "irregular": _irregular,
}

FAMILIES: Mapping[str, FamilySpec] = {
    "train": FamilySpec("train", ("grid", "skewed_grid"), (30, 60), "train.txt"),
    "ood": FamilySpec("ood", ("radial", "irregular"), (70, 110), "ood.txt"),
}
"""The two city families. They share no layout, no block-length region and no name."""


@lru_cache(maxsize=8)
def landmark_names(family: str) -> tuple[str, ...]:
    """The landmark names a family draws from, in file order (blank lines and ``#`` skipped)."""
    spec = _family(family)
    # importlib.resources finds the list in any install (wheel, zip, editable checkout).
    text = (files("gpbench") / "assets" / "landmarks" / spec.names_file).read_text("utf-8")
    names = tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate landmark names in {spec.names_file}")
    return names


def _family(family: str) -> FamilySpec:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(
            f"unknown city family {family!r} (expected one of {sorted(FAMILIES)})"
        ) from None


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Node:
    """A street node: an intersection (degree >= 3), a bend, a pass-through or a dead end."""

    id: int
    x: int
    y: int


@dataclass(frozen=True)
class Street:
    """A straight street segment from node ``u`` to node ``v`` (``u < v``); ``heading`` is u -> v."""

    u: int
    v: int
    heading: int
    length: float


@dataclass(frozen=True)
class Landmark:
    """A named place.

    Attributes:
        name: unique within the city.
        kind: ``corner`` (beside a node) or ``street`` (beside a street segment).
        x, y: where the landmark stands (rounded to 2 decimals).
        node: the nearest node (ties: the lowest id); routes start and end at landmarks' nodes.
        street: ``(u, v)`` of the street a ``street`` landmark stands beside, else None.
        offset: distance from ``u`` along that street, else None.
        side: ``left`` or ``right`` of that street going from ``u`` to ``v``, else None.
        bearing: compass bearing (degrees) from ``node`` to a ``corner`` landmark, else None.
    """

    name: str
    kind: str
    x: float
    y: float
    node: int
    street: tuple[int, int] | None = None
    offset: float | None = None
    side: str | None = None
    bearing: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``street`` as a 2-item list)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "x": self.x,
            "y": self.y,
            "node": self.node,
            "street": list(self.street) if self.street is not None else None,
            "offset": self.offset,
            "side": self.side,
            "bearing": self.bearing,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Landmark:
        """Rebuild from :meth:`to_json` output."""
        street = data.get("street")
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            x=float(data["x"]),
            y=float(data["y"]),
            node=int(data["node"]),
            street=(int(street[0]), int(street[1])) if street is not None else None,
            offset=_opt_float(data.get("offset")),
            side=None if data.get("side") is None else str(data["side"]),
            bearing=_opt_float(data.get("bearing")),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class City:
    """A generated city: street graph, landmarks and the parameters that made it.

    Node ``i`` is ``nodes[i]``. ``params`` holds the layout generator's integer parameters
    (block lengths are the ``block*`` entries) and ``attempt`` (how many layouts were redrawn).
    """

    id: str
    family: str
    layout: str
    params: Mapping[str, int]
    nodes: tuple[Node, ...]
    streets: tuple[Street, ...]
    landmarks: tuple[Landmark, ...]
    _adjacency: dict[int, list[tuple[int, int, float]]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _by_name: dict[str, Landmark] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        adjacency: dict[int, list[tuple[int, int, float]]] = {n.id: [] for n in self.nodes}
        for s in self.streets:
            adjacency[s.u].append((s.v, s.heading, s.length))
            adjacency[s.v].append((s.u, (s.heading + 180) % 360, s.length))
        for links in adjacency.values():
            links.sort(key=lambda link: link[1])
        # Derived lookups on a frozen record: set once here, never part of equality or JSON.
        object.__setattr__(self, "_adjacency", adjacency)
        object.__setattr__(self, "_by_name", {lm.name: lm for lm in self.landmarks})

    def neighbours(self, node: int) -> list[tuple[int, int, float]]:
        """``(other node, heading from this node, length)`` of each street, by heading."""
        return list(self._adjacency[node])

    def degree(self, node: int) -> int:
        """How many streets meet at a node (3 or more: an intersection)."""
        return len(self._adjacency[node])

    def landmark(self, name: str) -> Landmark:
        """The landmark with this name (KeyError if none)."""
        return self._by_name[name]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict holding everything needed to draw or navigate the city."""
        return {
            "id": self.id,
            "family": self.family,
            "layout": self.layout,
            "params": dict(self.params),
            "nodes": [[n.id, n.x, n.y] for n in self.nodes],
            "streets": [[s.u, s.v, s.heading, s.length] for s in self.streets],
            "landmarks": [lm.to_json() for lm in self.landmarks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> City:
        """Rebuild from :meth:`to_json` output."""
        return cls(
            id=str(data["id"]),
            family=str(data["family"]),
            layout=str(data["layout"]),
            params={str(k): int(v) for k, v in data["params"].items()},
            nodes=tuple(Node(int(i), int(x), int(y)) for i, x, y in data["nodes"]),
            streets=tuple(
                Street(int(u), int(v), int(h), float(length)) for u, v, h, length in data["streets"]
            ),
            landmarks=tuple(Landmark.from_json(lm) for lm in data["landmarks"]),
        )


# --------------------------------------------------------------------------------------------
# Generation


def generate_city(key: str, family: str) -> City:
    """The city of a family that ``key`` determines (same key, same city, on every machine).

    The layout is drawn uniformly from the family's layouts; a layout whose largest component
    falls outside ``MIN_NODES..MAX_NODES`` nodes is redrawn from ``f"{key}/layout{n}"``.
    Landmarks come from a separate stream, so changing how they are placed never changes streets.
    """
    spec = _family(family)
    low, high = spec.block_range
    graph = None
    for attempt in range(_LAYOUT_ATTEMPTS):
        rng = KeyedRng(f"{key}/layout{attempt}")
        layout = rng.choice(spec.layouts)
        lattice = _LAYOUTS[layout](rng, low, high)
        graph = _build_graph(lattice)
        if graph is not None:
            break
    if graph is None:  # pragma: no cover - each layout rarely leaves too few nodes
        raise RuntimeError(
            f"no city of {MIN_NODES}..{MAX_NODES} nodes in {_LAYOUT_ATTEMPTS} layouts for {key!r}"
        )
    nodes, streets = graph
    params = dict(lattice.params) | {"attempt": attempt}
    landmarks = _place_landmarks(
        KeyedRng(f"{key}/landmarks"), nodes, streets, landmark_names(family)
    )
    draft = City("", family, layout, params, nodes, streets, landmarks)
    # The id is a hash of the content, so two splits holding the same city can be detected.
    canonical = json.dumps(draft.to_json() | {"id": None}, sort_keys=True, separators=(",", ":"))
    return City(
        f"{family}-{content_hash(canonical, 12)}", family, layout, params, nodes, streets, landmarks
    )


def _build_graph(lattice: _Lattice) -> tuple[tuple[Node, ...], tuple[Street, ...]] | None:
    """Largest component of the lattice streets as numbered nodes and streets, or None if its
    size is out of range."""
    adjacency: dict[tuple[int, int], list[tuple[int, int]]] = {}
    seen_edges: set[tuple[tuple[int, int], tuple[int, int]]] = set()
    for p, q in lattice.edges:
        step = (q[0] - p[0], q[1] - p[1])
        if step not in _STEP_HEADING:
            raise AssertionError(f"layout produced a non-unit street {p} -> {q}")
        edge = (min(p, q), max(p, q))
        if edge in seen_edges:
            continue
        seen_edges.add(edge)
        adjacency.setdefault(p, []).append(q)
        adjacency.setdefault(q, []).append(p)

    best: list[tuple[int, int]] = []
    assigned: set[tuple[int, int]] = set()
    for start in sorted(adjacency):
        if start in assigned:
            continue
        component, stack = [start], [start]
        assigned.add(start)
        while stack:
            for nxt in adjacency[stack.pop()]:
                if nxt not in assigned:
                    assigned.add(nxt)
                    component.append(nxt)
                    stack.append(nxt)
        if len(component) > len(best):
            best = component
    if not MIN_NODES <= len(best) <= MAX_NODES:
        return None

    sx, sy = lattice.scale
    order = sorted(best, key=lambda p: (-p[1], p[0]))  # reading order: north first, then west
    ids = {p: i for i, p in enumerate(order)}
    nodes = tuple(Node(ids[p], p[0] * sx, p[1] * sy) for p in order)
    streets = []
    for p in order:
        for q in adjacency[p]:
            u, v = ids[p], ids[q]
            if u < v:
                a, b = nodes[u], nodes[v]
                length = round(math.hypot(b.x - a.x, b.y - a.y), 2)
                streets.append(Street(u, v, heading_between(a.x, a.y, b.x, b.y), length))
    streets.sort(key=lambda s: (s.u, s.v))
    return nodes, tuple(streets)


def _place_landmarks(
    rng: KeyedRng, nodes: Sequence[Node], streets: Sequence[Street], pool: Sequence[str]
) -> tuple[Landmark, ...]:
    """Draw names and place each as a corner or street landmark (see the module docstring).

    The first four are corners at intersections, so every city has route endpoints; the rest are
    corners or street landmarks with equal odds. A name that finds no free spot is dropped.
    """
    degree: dict[int, list[int]] = {n.id: [] for n in nodes}
    for s in streets:
        degree[s.u].append(s.heading)
        degree[s.v].append((s.heading + 180) % 360)
    hubs = [n.id for n in nodes if len(degree[n.id]) >= 3] or [n.id for n in nodes]
    count = min(len(pool), max(8, len(nodes) * rng.between(50, 80) // 100))
    names = rng.sample(pool, count)
    placed: list[Landmark] = []
    for i, name in enumerate(names):
        corner = i < 4 or rng.below(2) == 0
        for _ in range(_PLACEMENT_TRIES):
            if corner:
                node = nodes[rng.choice(hubs)]
                bearing = _corner_bearing(rng, sorted(degree[node.id]))
                ex, ey = heading_vector(bearing)
                x, y = node.x + CORNER_SETBACK * ex, node.y + CORNER_SETBACK * ey
                extra: dict[str, Any] = {"bearing": bearing}
                kind = "corner"
            else:
                street = rng.choice(streets)
                a = nodes[street.u]
                offset = round(street.length * rng.between(30, 70) / 100, 2)
                side = rng.choice(("left", "right"))
                fx, fy = heading_vector(street.heading)
                # Right of a heading is the heading turned 90 degrees clockwise.
                rx, ry = heading_vector(street.heading + (90 if side == "right" else 270))
                x = a.x + offset * fx + STREET_SETBACK * rx
                y = a.y + offset * fy + STREET_SETBACK * ry
                extra = {"street": (street.u, street.v), "offset": offset, "side": side}
                kind = "street"
            x, y = round(x, 2), round(y, 2)
            if _clear(x, y, nodes, streets, placed):
                nearest = min(nodes, key=lambda n: (math.hypot(n.x - x, n.y - y), n.id))
                placed.append(Landmark(name, kind, x, y, nearest.id, **extra))
                break
    return tuple(placed)


def _corner_bearing(rng: KeyedRng, headings: list[int]) -> float:
    """The bisector of a random angular gap between consecutive streets at a node."""
    if not headings:
        return float(rng.choice(HEADINGS) + 22.5)
    gaps = []
    for i, h in enumerate(headings):
        nxt = headings[(i + 1) % len(headings)]
        width = (nxt - h) % 360 or 360
        gaps.append((h + width / 2) % 360)
    return float(rng.choice(gaps))


def _clear(
    x: float, y: float, nodes: Sequence[Node], streets: Sequence[Street], placed: Sequence[Landmark]
) -> bool:
    """Whether a landmark at ``(x, y)`` keeps its distance from every street and landmark."""
    for s in streets:
        a, b = nodes[s.u], nodes[s.v]
        if _segment_distance(x, y, a.x, a.y, b.x, b.y) < MIN_CLEARANCE:
            return False
    return all(math.hypot(lm.x - x, lm.y - y) >= MIN_LANDMARK_GAP for lm in placed)


def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    """Distance from a point to a segment."""
    dx, dy = bx - ax, by - ay
    t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)
    t = max(0.0, min(1.0, t))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))
