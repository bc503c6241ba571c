"""Speed of the GP-VL card renderer: scenes in memory, PNG encoding, cold card faces.

Run with the project venv::

    .venv/bin/python bench/bench_render.py            # 2,000 hands (~35 s)
    .venv/bin/python bench/bench_render.py --quick    # 300 hands, fewer PNG repeats

What is measured, in one process pinned to one core (where the OS allows it):

a) Cold card faces: the first ``render_card`` after ``clear_caches()`` (it also loads the font),
   then the mean over all 52 faces drawn from empty caches.
b) ``render_scene`` in memory (no PNG) over random hands (ranks and suits from ``KeyedRng``,
   all four suits so every face and tile is used): one warm-up pass fills the face caches, then
   the best of 3 passes. The paper's style (the target is >= 500 scenes/s), the jitter knob
   (still the cached-tile path) and the rotation knob (a bilinear rotation per card, a few
   hundred hands only) are timed separately; ``pixel_sha256`` per scene too.
c) ``scene_png`` at every zlib level 0..9 (optimize off) on a fixed set of 8 scenes: encodes/s
   and PNG size; then levels 0, 1 and 6 again with the bytes written to a temporary file and
   fsync'ed, since a 4 MB level-0 file costs more to write than a 40 kB level-1 file.

The report goes to stdout.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import PIL
from PIL import Image, features

from gpbench.generators.card_art import (
    PNG_COMPRESS_LEVEL,
    SceneStyle,
    clear_caches,
    pixel_sha256,
    render_card,
    render_scene,
    scene_png,
)
from gpbench.generators.cards import RANK_NAMES, SUITS
from gpbench.generators.rng import KeyedRng

TARGET_SCENES_PER_S = 500.0

Hand = tuple[list[str], list[str]]


def _hands(count: int, key: str) -> list[Hand]:
    rng = KeyedRng(key)
    return [
        ([rng.choice(RANK_NAMES) for _ in range(4)], [rng.choice(SUITS) for _ in range(4)])
        for _ in range(count)
    ]


def _best_rate(run: Callable[[], int], repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` runs (each returns its item count)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        best = max(best, n / (time.perf_counter() - start))
    return best


def _scenes(hands: list[Hand], style: SceneStyle) -> Callable[[], int]:
    def run() -> int:
        for i, (ranks, suits) in enumerate(hands):
            render_scene(ranks, suits, style, jitter_key=f"bench/{i}")
        return len(hands)

    return run


def _pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=2000, help="random hands per scene pass")
    parser.add_argument("--quick", action="store_true", help="300 hands, fewer PNG repeats")
    args = parser.parse_args()
    n_hands = 300 if args.quick else args.hands
    png_repeats = 2 if args.quick else 5
    pinned = _pin_to_one_core()

    print("gpbench card renderer benchmark")
    print(
        f"python {platform.python_version()}, pillow {PIL.__version__}, "
        f"zlib {features.version('zlib')}, freetype {features.version('freetype2')}, "
        f"{platform.machine()}, {pinned}"
    )
    print()

    # a) cold faces
    clear_caches()
    start = time.perf_counter()
    render_card("K", "S")
    first_ms = 1000 * (time.perf_counter() - start)
    clear_caches()
    render_card("A", "S")  # load the font once, so the mean below is drawing only
    per_face: list[float] = []
    for rank in RANK_NAMES:
        for suit in SUITS:
            start = time.perf_counter()
            render_card(rank, suit)
            per_face.append(1000 * (time.perf_counter() - start))
    print("a) card faces, cold (270x378, drawn at 4x and box-reduced)")
    print(
        _table(
            ["what", "ms"],
            [
                ["first face after clear_caches (incl. font load)", f"{first_ms:.1f}"],
                ["mean over 52 faces", f"{statistics.mean(per_face):.1f}"],
                ["slowest of 52 faces", f"{max(per_face):.1f}"],
                ["all 52 faces", f"{sum(per_face):.0f}"],
            ],
        )
    )
    print()

    # b) scenes in memory
    hands = _hands(n_hands, "bench-render/hands")
    paper = SceneStyle()
    jitter = SceneStyle(jitter_px=10)
    rotation = SceneStyle(rotation_deg=8, jitter_px=10)
    rot_hands = hands[: min(len(hands), 200)]
    _scenes(hands, paper)()  # warm-up: every face and tile of the deck is drawn here
    _scenes(hands, jitter)()
    _scenes(rot_hands[:10], rotation)()
    paper_rate = _best_rate(_scenes(hands, paper), 3)
    jitter_rate = _best_rate(_scenes(hands, jitter), 3)
    rotation_rate = _best_rate(_scenes(rot_hands, rotation), 2)
    scene = render_scene(*hands[0])

    def _hash_run() -> int:
        for _ in range(100):
            pixel_sha256(scene)
        return 100

    hash_rate = _best_rate(_hash_run, 3)
    verdict = "ok" if paper_rate >= TARGET_SCENES_PER_S else "BELOW TARGET"
    print(f"b) render_scene in memory, 1200x1200, {n_hands} random hands, faces cached")
    print(
        _table(
            ["style", "scenes/s", "ms/scene"],
            [
                [f"paper default (target >= {TARGET_SCENES_PER_S:.0f}: {verdict})",
                 f"{paper_rate:.0f}", f"{1000 / paper_rate:.2f}"],
                ["jitter_px=10", f"{jitter_rate:.0f}", f"{1000 / jitter_rate:.2f}"],
                [f"rotation_deg=8, jitter_px=10 ({len(rot_hands)} hands)",
                 f"{rotation_rate:.0f}", f"{1000 / rotation_rate:.2f}"],
                ["pixel_sha256 of a scene (hashes/s)", f"{hash_rate:.0f}", f"{1000 / hash_rate:.2f}"],
            ],
        )
    )  # fmt: skip
    print()

    # c) PNG encoding
    samples = [render_scene(*h) for h in _hands(8, "bench-render/png")]
    rows = []
    rates: dict[int, float] = {}
    for level in range(10):

        def _encode(level: int = level) -> int:
            for image in samples:
                scene_png(image, compress_level=level)
            return len(samples)

        rates[level] = _best_rate(_encode, png_repeats)
        size = statistics.mean(len(scene_png(im, compress_level=level)) for im in samples)
        mark = " <- default" if level == PNG_COMPRESS_LEVEL else ""
        rows.append(
            [f"{level}{mark}", f"{rates[level]:.1f}", f"{1000 / rates[level]:.1f}",
             f"{size / 1024:.0f}"]
        )  # fmt: skip
    print("c) scene_png, 1200x1200 RGB, optimize off, 8 scenes")
    print(_table(["level", "encodes/s", "ms/encode", "kB/png"], rows))
    fastest = max(rates, key=lambda k: rates[k])
    print(f"   fastest level: {fastest}; default: {PNG_COMPRESS_LEVEL}")
    print()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.png"
        for level in (0, 1, 6):

            def _encode_write(level: int = level) -> int:
                for image in samples:
                    data = scene_png(image, compress_level=level)
                    with path.open("wb") as handle:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                return len(samples)

            rate = _best_rate(_encode_write, png_repeats)
            rows.append([str(level), f"{rate:.1f}", f"{1000 / rate:.1f}"])
    print("   encode + write + fsync to a temporary file")
    print(_table(["level", "pngs/s", "ms/png"], rows))
    print()
    print(
        f"end to end at the default level: ~{1 / (1 / paper_rate + 1 / rates[PNG_COMPRESS_LEVEL]):.0f}"
        " scenes/s rendered and encoded (one core)"
    )
    # A decoded PNG must hash like the image it came from (what manifests rely on).
    with Image.open(io.BytesIO(scene_png(scene))) as decoded:
        assert pixel_sha256(decoded) == pixel_sha256(scene)
    return 0


if __name__ == "__main__":
    sys.exit(main())
