"""How fast this machine runs plain Python, so benchmark figures from different machines compare.

Targets in the benchmarks are absolute rates on one core, and a shared cloud core's speed drifts
from minute to minute (the same code measured 10-20% apart within an hour here). Each benchmark
prints this reference time beside its figures, so a reader can tell a slow machine from slow code.
"""

from __future__ import annotations

import time

REFERENCE_LOOP = 10_000_000
"""Iterations of ``total += i`` in a function (local variables)."""


def python_loop_seconds(repeats: int = 3) -> float:
    """The best of ``repeats`` timings of a plain-Python accumulation loop."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        total = 0
        for i in range(REFERENCE_LOOP):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


def describe() -> str:
    """One line for a benchmark's header."""
    return (
        f"plain-Python reference: {REFERENCE_LOOP:,} loop iterations in "
        f"{python_loop_seconds():.2f} s (compare machines by this before comparing rates)"
    )
