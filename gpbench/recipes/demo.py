"""The embedded main job: SFT versus RL at equal compute on gp-l, end to end, with no download.

Steps (each stage's wall time is printed and written to ``OUT/timings.json``):

1. build the tiny Llama of :mod:`gpbench.tiny_models` (random weights, a BPE tokenizer trained
   in code) in ``OUT/base``;
2. SFT-initialise it on gp-l ``train`` (``OUT/init``, method ``init``);
3. continue from the init with SFT (``OUT/series/sft``) and measure that run's compute C by
   the paper's formula; continue from the init with RL (GRPO, the verifier loop in rollouts;
   ``OUT/series/rl``) with the budget C, so both series end at equal compute, each saving
   ``save_points`` checkpoints along the way;
4. ``gpbench eval`` (hf backend, greedy, the paper's 5 attempts with the verifier's feedback)
   of the init and every saved checkpoint on ``id``, ``id-heldout`` and ``ood-rule`` (``OUT/runs``);
5. ``gpbench report --x compute`` (``OUT/report/report.html``: ID/OOD curves by compute).

Threads: every stage, the ``gpbench`` subprocesses included, uses one count (``--threads``, else
gpbench's default: :mod:`gpbench.harness.threads`), recorded in ``OUT/timings.json`` and in
every checkpoint's metadata.

Launch: ``make demo`` (sets up ``.venv`` first), or ``python -m gpbench.recipes.demo --out demo``.
Hardware: 2 CPU cores. Wall time and result: see README ("The main job").
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from gpbench.errors import ConfigError, GpbenchError
from gpbench.harness.threads import ThreadCount, apply_threads, describe, thread_env
from gpbench.stats import percent

T = TypeVar("T")

TASK = "gp-l"
SPLITS = ("id", "id-heldout", "ood-rule")


@dataclass(frozen=True)
class DemoSize:
    """The pinned sizes of the main job.

    Attributes:
        init_steps: SFT steps of the initialisation (batch 8, lr 1e-3: the tiny model leaves
            its loss plateau after ~200 such steps and starts copying the cards; by 600 it
            solves some training hands, replaying their training formulas).
        sft_steps: SFT steps of the continuation (batch 8, lr 1e-3); their compute is the RL
            run's budget.
        save_points: checkpoints saved along each series.
        rl_budget: verification budget inside RL rollouts (the paper's is 5).
        eval_n: evaluation instances per split (seed 42, the paper's).
        eval_attempts: verification budget at evaluation (the paper's: 5).
        eval_max_tokens: new tokens per answer at evaluation (a reference answer is ~47).
        train_size: training instances drawn from gp-l ``train``.
    """

    init_steps: int = 600
    sft_steps: int = 150
    save_points: int = 3
    rl_budget: int = 5
    eval_n: int = 32
    eval_attempts: int = 5
    eval_max_tokens: int = 56
    train_size: int = 2000

    def __post_init__(self) -> None:
        if self.sft_steps % self.save_points:
            raise ValueError("sft_steps must be a multiple of save_points (evenly spaced saves)")


SIZES = {
    "default": DemoSize(),
    # CI: short series on top of the regress reference checkpoint (300 SFT steps of 16, the
    # fixed CI size of gpbench/regress/reference.py), passed as --init.
    "ci": DemoSize(
        init_steps=300, sft_steps=8, save_points=2, rl_budget=2, eval_n=6, eval_attempts=2
    ),
}


OUTPUTS = ("base", "init", "series", "runs", "report", "timings.json")
"""What the job writes into its output folder (and removes first, so a rerun starts clean)."""


def _clear(out: Path) -> None:
    """Remove the job's own outputs from an earlier run (nothing else in ``out``)."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _stage(name: str, timings: dict[str, float], work: Callable[[], T]) -> T:
    print(f"\n== {name}", flush=True)
    start = time.perf_counter()
    result = work()
    timings[name] = round(time.perf_counter() - start, 1)
    print(f"== {name}: {timings[name]:.0f} s", flush=True)
    return result


def _gpbench(threads: ThreadCount, *args: str) -> None:
    """Run a gpbench command in a subprocess (as a user would) on the job's thread count,
    failing loudly."""
    command = [sys.executable, "-m", "gpbench", *args]
    print("$ gpbench " + " ".join(args), flush=True)
    subprocess.run(command, check=True, env=thread_env(threads.count))


def _eval(model: str, out: Path, size: DemoSize, threads: ThreadCount, *meta: str) -> None:
    splits = [arg for split in SPLITS for arg in ("--split", split)]
    metas = [arg for pair in meta for arg in ("--meta", pair)]
    _gpbench(
        threads,
        "eval",
        "--model",
        model,
        "--backend",
        "hf",
        "--task",
        TASK,
        *splits,
        "-n",
        str(size.eval_n),
        "--max-tokens",
        str(size.eval_max_tokens),
        "--max-attempts",
        str(size.eval_attempts),
        "--runs-dir",
        str(out / "runs"),
        *metas,
    )


def run_demo(
    out: Path, size: DemoSize, init: Path | None = None, threads: int | None = None
) -> dict[str, Any]:
    """Run the main job into ``out``; returns its timings and results.

    ``init``: an existing SFT checkpoint to start both series from, instead of building the
    tiny model and SFT-initialising it (CI passes the regress reference checkpoint).
    ``threads``: CPU threads of every stage (None: gpbench's default).
    """
    import datasets
    import transformers

    from gpbench.recipes import rl, sft

    # Progress bars of dataset preparation and weight loading would drown the stage lines.
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    timings: dict[str, float] = {}
    count = apply_threads(threads)  # a bad GPBENCH_THREADS fails here, before anything is removed
    print(f"threads: {count.count} ({count.source})", flush=True)
    if init is not None and any(
        init.resolve().is_relative_to((out / n).resolve()) for n in OUTPUTS
    ):
        raise ConfigError(
            f"--init {init} lies in what the job rewrites in {out}; copy it elsewhere"
        )
    _clear(out)
    common = {
        "threads": count.count,
        "task": TASK,
        "train_size": size.train_size,
        "disable_tqdm": "true",
        "logging_steps": 20,
    }
    sft_settings = {
        "batch_size": 8,
        "per_device_batch_size": 8,
        "learning_rate": 1e-3,
        "lr_scheduler": "constant_with_warmup",
    }
    if init is None:
        init = out / "init"
        _build_init(out, size, init, {**common, **sft_settings}, timings)
    sft_config = sft.resolve(
        "tiny-cpu",
        {
            **common,
            "model": str(init),
            "output_dir": str(out / "series" / "sft"),
            "max_steps": size.sft_steps,
            "save_steps": size.sft_steps // size.save_points,
            **sft_settings,
            "warmup_steps": 0,
        },
    )
    sft_result = _stage("SFT from the init", timings, lambda: sft.train(sft_config))
    budget = sft_result.compute - float(sft_result.metadata["base_checkpoint"]["compute"] or 0)
    print(f"SFT spent {budget:.3g} FLOPs (paper's formula); RL gets the same budget", flush=True)
    rl_config = rl.resolve(
        "tiny-cpu",
        {
            **common,
            "model": str(init),
            "output_dir": str(out / "series" / "rl"),
            "compute_budget": budget,
            "save_points": size.save_points,
            "max_steps": 400,
            "budget": size.rl_budget,
            "logging_steps": 1,
        },
    )
    rl_result = _stage(
        "RL (GRPO) from the init, equal compute", timings, lambda: rl.train(rl_config)
    )
    _stage(
        "gpbench eval: init",
        timings,
        lambda: _eval(str(init), out, size, count, "method=init", "step=0"),
    )
    _stage(
        "gpbench eval: SFT and RL checkpoints",
        timings,
        lambda: _eval(str(out / "series" / "*" / "checkpoint-*"), out, size, count),
    )
    _stage(
        "gpbench report",
        timings,
        lambda: _gpbench(
            count, "report", str(out / "runs"), "-o", str(out / "report"), "--x", "compute"
        ),
    )
    summary = {
        "size": asdict(size),
        "threads": describe(count),
        "timings_s": timings,
        "total_s": round(sum(timings.values()), 1),
        "sft": {"steps": sft_result.steps, "compute": sft_result.compute},
        "rl": {"steps": rl_result.steps, "compute": rl_result.compute},
    }
    (out / "timings.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _build_init(
    out: Path, size: DemoSize, init: Path, common: dict[str, Any], timings: dict[str, float]
) -> None:
    """Stages 1 and 2: the tiny model, then its SFT initialisation (method ``init``)."""
    from gpbench.recipes import sft
    from gpbench.tiny_models import build_tiny_llama

    base = out / "base"
    _stage("build the tiny model", timings, lambda: build_tiny_llama(base))
    config = sft.resolve(
        "tiny-cpu",
        {
            **common,
            "model": str(base),
            "output_dir": str(init),
            "method": "init",
            "max_steps": size.init_steps,
            "save_strategy": "no",
        },
    )
    _stage("SFT initialisation", timings, lambda: sft.train(config))


def print_results(out: Path) -> None:
    """The report's summary table in short, and where everything is."""
    table = out / "report" / "summary.csv"
    if table.is_file():
        with table.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        print(
            f"\n{'series':<6} {'step':>4} {'compute':>9} {'split':<11} success % [95% CI]   "
            "mean return  statuses (share of attempts)"
        )
        for row in rows:
            statuses = ", ".join(
                f"{key[7:]}={float(value):.2f}"
                for key, value in row.items()
                if key.startswith("status_") and value and float(value) > 0
            )
            rate, low, high = (
                percent(float(row[k]) if row[k] else None, 5, "")
                for k in ("success", "success_low", "success_high")
            )
            print(
                f"{row['series']:<6} {row['step']:>4} {float(row['compute'] or 0):9.2e} "
                f"{row['split']:<11} {rate} [{low},{high}]  {float(row['mean_return']):11.2f}  "
                f"{statuses}"
            )
    print(
        f"\nbase model  {out / 'base'}\ncheckpoints {out / 'init'}, "
        f"{out / 'series'}/{{sft,rl}}/checkpoint-* (each with gpbench_checkpoint.json)"
        f"\nruns        {out / 'runs'}"
        f"\nreport      {out / 'report' / 'report.html'}\ntimings     {out / 'timings.json'}"
    )


def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> None:
    """``python -m gpbench.recipes.demo [--out demo] [--size default|ci] [--threads N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output folder")
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument(
        "--init", type=Path, default=None, help="start both series from this SFT checkpoint"
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        default=None,
        metavar="N",
        help="CPU threads of every stage (default: $GPBENCH_THREADS, else $OMP_NUM_THREADS, "
        "else the CPUs this process may use less those the load keeps busy: more threads than "
        "free cores make torch's threads wait for each other)",
    )
    args = parser.parse_args(argv)
    try:
        summary = run_demo(args.out, SIZES[args.size], args.init, args.threads)
    except GpbenchError as exc:
        parser.exit(1, f"error: {exc}\n")
    print_results(args.out)
    print(f"\nmain job done in {summary['total_s']:.0f} s (stages: {summary['timings_s']})")


if __name__ == "__main__":
    main()
