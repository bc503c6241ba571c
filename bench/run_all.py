"""The user-facing performance figures in one table: what a user of gpbench waits for.

Run from the repository root, with the project venv and one thread::

    OMP_NUM_THREADS=1 .venv/bin/python bench/run_all.py           # a few minutes on 2 cores
    OMP_NUM_THREADS=1 .venv/bin/python bench/run_all.py --quick   # smaller counts, a smoke test

Four figures, each against its target:

1. the gp-l verifier on a seeded mix of model-like answers (``bench_verify.py``'s mix):
   verdicts/s, a floor far above what any model generates;
2. ``evaluate`` with the scripted backend (no model), single-turn gp-l, records written:
   episodes/s, a floor so the harness never limits a fast backend;
3. with the transformers backend and the tiny Llama of ``gpbench.tiny_models``: the harness's
   time beyond the backend's generate, as a share of the generate time (from the run's
   ``run.json``), and
4. the whole ``gpbench eval`` process against a plain transformers script doing the same greedy
   generation (start-up included), both from ``bench_harness_hf.py``.

Rates are best-of-N (a shared machine's speed drifts; the fastest pass is the one least slowed
by other jobs). The first line is ``calibrate.py``'s plain-Python reference time: compare
machines by it before comparing rates. The table is Markdown, ready for the README. The exit
status is 1 when a figure misses its target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bench_harness
import bench_harness_hf
import bench_verify
import calibrate

from gpbench.tasks.registry import get_task


@dataclass(frozen=True)
class Figure:
    """One row of the table."""

    what: str
    measured: str
    target: str
    met: bool


def verifier_figure(answers: int, repeats: int) -> Figure:
    """Verdicts/s of gp-l ``task.verify`` over the benchmark's seeded answer mix."""
    task = get_task(bench_verify.TASK)
    instances = bench_verify.load_instances(task, bench_verify.INSTANCES_PER_SPLIT)
    cases = bench_verify.build_mix(task, instances, answers, bench_verify.SEED)
    bench_verify.run_cases(task, cases)  # warm-up: the solver's memo
    seconds, count = bench_verify.best_of(repeats, lambda: bench_verify.run_cases(task, cases))
    rate = count / seconds
    floor = bench_verify.TARGET_RATE
    return Figure(
        f"gp-l verifier, {count:,} model-like answers (40% right, 40% wrong, 20% hostile)",
        f"{rate:,.0f} verdicts/s",
        f">= {floor:,.0f}/s",
        rate >= floor,
    )


def scripted_figure(episodes: int, repeats: int) -> Figure:
    """Single-turn gp-l episodes/s of ``evaluate`` with the scripted backend, records written."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_harness.run_eval(200, 1, 0.0, root / "warm")
        seconds = min(
            bench_harness.run_eval(episodes, 1, 0.0, root / f"run{i}")[0] for i in range(repeats)
        )
    rate = episodes / seconds
    return Figure(
        f"`evaluate`, scripted backend (no model), {episodes:,} single-turn gp-l episodes",
        f"{rate:,.0f} episodes/s",
        f">= {bench_harness.FLOOR:,}/s",
        rate >= bench_harness.FLOOR,
    )


def hf_figures(prompts: int, max_tokens: int, attempts: int) -> list[Figure]:
    """The harness's share of the hf backend's generate time, and the whole-process ratio."""
    best = bench_harness_hf.measure(prompts, max_tokens, attempts)
    setting = f"tiny Llama, {prompts} gp-l prompts, greedy, {max_tokens} tokens, batch 8"
    return [
        Figure(
            f"`gpbench eval` hf backend: harness time beyond generate ({setting})",
            f"{best.harness_share:.1%} of {best.backend_s:.2f} s",
            f"<= {bench_harness_hf.SHARE_TARGET:.0%}",
            best.harness_share <= bench_harness_hf.SHARE_TARGET,
        ),
        Figure(
            "whole `gpbench eval` process vs a plain transformers script (same work, "
            "start-up included)",
            f"{best.ours_s:.2f} s vs {best.plain_s:.2f} s ({best.ratio:.2f}x)",
            f"<= {bench_harness_hf.RATIO_TARGET}x",
            best.ratio <= bench_harness_hf.RATIO_TARGET,
        ),
    ]


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table."""
    lines = ["| what | measured | target | met |", "|---|---|---|---|"]
    lines += [
        f"| {f.what} | {f.measured} | {f.target} | {'yes' if f.met else 'NO'} |" for f in figures
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts: a smoke test")
    args = parser.parse_args(argv)
    answers, episodes, prompts, repeats = (
        (2_000, 1_000, 48, 2) if args.quick else (20_000, 10_000, 200, 5)
    )
    print(f"# {calibrate.describe()}", flush=True)
    figures = [verifier_figure(answers, repeats), scripted_figure(episodes, repeats)]
    figures += hf_figures(prompts, max_tokens=32, attempts=2 if args.quick else 3)
    print(table(figures))
    if args.quick:
        print("(--quick is a smoke test: quote the full-size run, not these numbers)")
    return 0 if all(f.met for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
