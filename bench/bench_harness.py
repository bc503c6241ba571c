"""Harness overhead with the scripted backend: single-turn gp-l episodes/s, records written.

Run: .venv/bin/python bench/bench_harness.py [--n 20000]

Measures, side by side in one run on one core: (a) the whole `evaluate` path (instances
generated, episodes rolled out, verified, appended and flushed to episodes.jsonl, summary read
back) with budget 1; (b) the same with the paper's budget of 5 and a 40% error rate (multi-turn);
(c) the backend's own time inside the loop, so the harness's share is visible. Each is the best of
5 runs (the machine's speed drifts from second to second; the fastest run is the one least slowed
by other jobs). Floor: >= 2,000 single-turn episodes/s end to end (what users wait for is the
model; this only guards against the harness becoming the bottleneck of a fast backend).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import calibrate

from gpbench.harness.evaluate import EvalConfig, evaluate
from gpbench.runs.read import read_run_spec

RUNS = 5  # per configuration; the best counts
FLOOR = 2_000  # single-turn episodes/s


def run_eval(n: int, budget: int, rate: float, root: Path) -> tuple[float, dict[str, float]]:
    """Seconds of one ``evaluate`` of ``n`` gp-l ``id`` episodes, and the run's loop figures."""
    config = EvalConfig(
        model=f"reference:{rate}",
        backend="scripted",
        tasks=("gp-l",),
        splits=("id",),
        n=n,
        max_attempts=budget,
        runs_dir=root,
        resume=False,
    )
    start = time.perf_counter()
    [result], _ = evaluate(config)
    seconds = time.perf_counter() - start
    loop = read_run_spec(result.folder)["loop"]
    return seconds, loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_eval(500, 1, 0.0, root / "warm")
        rows = []
        for label, budget, rate in (
            ("single-turn, budget 1", 1, 0.0),
            ("multi-turn, budget 5, 40% wrong", 5, 0.4),
        ):
            best = min(
                (run_eval(args.n, budget, rate, root / f"{budget}-{i}") for i in range(RUNS)),
                key=lambda r: r[0],
            )
            seconds, loop = best
            rows.append((label, seconds, loop))
    print(f"# gpbench harness benchmark (scripted backend, gp-l id, one core, best of {RUNS})")
    print(f"# {calibrate.describe()}")
    print(
        f"{'run':<34} {'episodes':>9} {'seconds':>8} {'episodes/s':>11} "
        f"{'backend calls':>13} {'requests':>9} {'backend s':>9}"
    )
    for label, seconds, loop in rows:
        print(
            f"{label:<34} {args.n:>9,} {seconds:>8.2f} {args.n / seconds:>11,.0f} "
            f"{loop['backend_calls']:>13} {loop['requests']:>9,} {loop['backend_seconds']:>9.2f}"
        )
    single = args.n / rows[0][1]
    print(
        f"floor >= {FLOOR:,} single-turn episodes/s end to end: "
        f"{'MET' if single >= FLOOR else 'NOT MET'} ({single:,.0f}/s)"
    )
    print(json.dumps({"single_turn_eps": round(single)}))


if __name__ == "__main__":
    main()
