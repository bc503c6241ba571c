"""Speed of the V-IRL street-view renderer: four-view images, route maps, PNG encoding.

Run with the project venv::

    .venv/bin/python bench/bench_views.py            # 12 cities per family (~20 s)
    .venv/bin/python bench/bench_views.py --quick    # 4 cities per family

What is measured, in one process pinned to one core (where the OS allows it):

a) ``render_views`` in memory (768x768, no PNG) over every decision point of one route in each
   of the cities (``train`` and ``ood`` families, the mix of mid-street points, intersections
   and landmarks the task produces): first the cold cost (caches cleared: fonts, backgrounds,
   signs), then a warm-up pass and the best of 3 timed passes. The target is >= 100 images/s.
b) ``render_route_map`` (1024x1024) for the same routes, best of 3.
c) ``scene_png`` (zlib level 1, the card renderer's default) and ``pixel_sha256`` of view
   images: ms per image and PNG size.

The report goes to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import PIL
from PIL import features

from gpbench.generators.cities import City, generate_city
from gpbench.generators.routes import DecisionPoint, Route, decision_points, sample_route
from gpbench.generators.street_views import (
    clear_caches,
    pixel_sha256,
    render_route_map,
    render_views,
    scene_png,
)

TARGET_VIEWS_PER_S = 100.0

Case = tuple[City, Route, list[DecisionPoint]]


def _cases(per_family: int) -> list[Case]:
    cases = []
    for family in ("train", "ood"):
        for i in range(per_family):
            city = generate_city(f"bench-views/{family}/{i}", family)
            route = sample_route(city, f"bench-views/{family}/{i}/route")
            if route is not None:
                points = decision_points(city, route, f"bench-views/{family}/{i}/points")
                cases.append((city, route, points))
    return cases


def _best_rate(run: Callable[[], int], repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` runs (each returns its item count)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        best = max(best, n / (time.perf_counter() - start))
    return best


def _pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cities", type=int, default=12, help="cities per family")
    parser.add_argument("--quick", action="store_true", help="4 cities per family")
    args = parser.parse_args()
    per_family = 4 if args.quick else args.cities
    pinned = _pin_to_one_core()

    print("gpbench street-view renderer benchmark")
    print(
        f"python {platform.python_version()}, pillow {PIL.__version__}, "
        f"zlib {features.version('zlib')}, freetype {features.version('freetype2')}, "
        f"{platform.machine()}, {pinned}"
    )
    cases = _cases(per_family)
    points = [(city, p) for city, _, pts in cases for p in pts]
    with_landmarks = sum(1 for _, p in points if p.landmarks)
    crossings = sum(1 for _, p in points if p.is_intersection)
    print(
        f"{len(cases)} routes, {len(points)} decision points "
        f"({with_landmarks} with landmarks, {crossings} intersections)"
    )
    print()

    # a) views
    clear_caches()
    start = time.perf_counter()
    render_views(*points[0])
    first_ms = 1000 * (time.perf_counter() - start)
    clear_caches()
    start = time.perf_counter()
    for city, point in points:
        render_views(city, point)
    cold_rate = len(points) / (time.perf_counter() - start)

    def views() -> int:
        for city, point in points:
            render_views(city, point)
        return len(points)

    views()  # warm-up
    warm_rate = _best_rate(views, 3)
    landmark_points = [(c, p) for c, p in points if p.landmarks]

    def landmark_views() -> int:
        for city, point in landmark_points:
            render_views(city, point)
        return len(landmark_points)

    landmark_rate = _best_rate(landmark_views, 3)
    verdict = "ok" if warm_rate >= TARGET_VIEWS_PER_S else "BELOW TARGET"
    print("a) render_views in memory, 768x768 (four 383x383 panels)")
    print(
        _table(
            ["what", "images/s", "ms/image"],
            [
                ["first image after clear_caches (font load, backgrounds)", "",
                 f"{first_ms:.1f}"],
                ["every point once from cold caches", f"{cold_rate:.0f}",
                 f"{1000 / cold_rate:.2f}"],
                [f"warm, all points (target >= {TARGET_VIEWS_PER_S:.0f}: {verdict})",
                 f"{warm_rate:.0f}", f"{1000 / warm_rate:.2f}"],
                ["warm, points with landmarks only", f"{landmark_rate:.0f}",
                 f"{1000 / landmark_rate:.2f}"],
            ],
        )
    )  # fmt: skip
    print()

    # b) maps
    def maps() -> int:
        for city, route, pts in cases:
            render_route_map(city, route, pts)
        return len(cases)

    map_rate = _best_rate(maps, 3)
    print("b) render_route_map, 1024x1024, with numbered decision points")
    print(_table(["maps/s", "ms/map"], [[f"{map_rate:.1f}", f"{1000 / map_rate:.1f}"]]))
    print()

    # c) PNG and hashing of view images
    sample = [render_views(c, p) for c, p in landmark_points[:16]] or [render_views(*points[0])]

    def encode() -> int:
        for image in sample:
            scene_png(image)
        return len(sample)

    def digest() -> int:
        for image in sample:
            pixel_sha256(image)
        return len(sample)

    png_rate = _best_rate(encode, 3)
    hash_rate = _best_rate(digest, 3)
    png_kb = statistics.mean(len(scene_png(image)) for image in sample) / 1024
    map_png = scene_png(render_route_map(*cases[0]))
    print(f"c) encoding and hashing, {len(sample)} view images (768x768 RGB)")
    print(
        _table(
            ["what", "ms/image", "kB"],
            [
                ["scene_png (zlib level 1)", f"{1000 / png_rate:.2f}", f"{png_kb:.0f}"],
                ["pixel_sha256", f"{1000 / hash_rate:.2f}", ""],
                ["scene_png of a 1024x1024 map (size only)", "", f"{len(map_png) / 1024:.0f}"],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
