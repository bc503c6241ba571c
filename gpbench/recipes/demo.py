"""The embedded main job: the benchmark on models whose behaviour is known, then SFT versus RL.

Part 1, the positive controls (:mod:`gpbench.recipes.controls`, shipped in
``gpbench/assets/controls``): ``gpbench eval`` of the memorizer and the rule-follower on ``id``,
``id-heldout`` and ``ood-rule`` (``OUT/runs/controls``), their paired reading
(:func:`~gpbench.recipes.demo_results.controls_separation`: intervals, McNemar, the
``train_rule_answer`` flag; ``OUT/controls.json``) and ``gpbench report``
(``OUT/report/controls``). The job fails if the benchmark does not tell them apart.

Part 2, the study in miniature, from the rule-follower (a base that computes under both rules,
standing in for a pretrained model's prior knowledge):

1. SFT-initialise it on gp-l ``train`` under the ID rule (``OUT/init``, method ``init``);
2. continue from the init with SFT (``OUT/series/sft``) and measure that run's compute C by
   the paper's formula; continue from the init with RL (GRPO, the verifier loop in rollouts;
   ``OUT/series/rl``) with the budget C, so both series end at equal compute, each saving
   ``save_points`` checkpoints along the way;
3. ``gpbench eval`` (hf backend, greedy, the paper's 5 attempts with the verifier's feedback)
   of the init and every saved checkpoint on the three splits (``OUT/runs/study``);
4. the study's reading (:func:`~gpbench.recipes.demo_results.study_direction`: each series'
   change, RL's change minus SFT's with a paired interval and McNemar; ``OUT/study.json``) and
   ``gpbench report --x compute`` (``OUT/report/study``: ID/OOD curves by compute).

The paper's prompt, rule and answer format throughout: the rule-follower's extra ``sorted``
answer field is ignored by the verifier and recorded in its checkpoint metadata.

Threads: every stage, the ``gpbench`` subprocesses included, uses one count (``--threads``, else
gpbench's default: :mod:`gpbench.harness.threads`), recorded in ``OUT/timings.json`` and in
every checkpoint's metadata.

Launch: ``make demo`` (sets up ``.venv`` first), or ``python -m gpbench.recipes.demo --out demo``
(``--size full`` for the larger study). Hardware: 2 CPU cores. Wall time and result: see README
("The main job").
"""

from __future__ import annotations

import argparse
import csv
import functools
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
from gpbench.recipes.controls import (
    NAMES,
    SHIPPED,
    ControlSize,
    id_rule_procedure_conversations,
    shipped_control,
    train_control,
)
from gpbench.recipes.demo_results import (
    Separation,
    controls_separation,
    format_direction,
    format_separation,
    study_direction,
)
from gpbench.stats import percent

T = TypeVar("T")

TASK = "gp-l"
SPLITS = ("id", "id-heldout", "ood-rule")


@dataclass(frozen=True)
class DemoSize:
    """The pinned sizes of the main job.

    Attributes:
        controls_n: evaluation instances per split for each control (seed 42).
        init_steps: SFT steps of the initialisation from the rule-follower (batch 8, lr 1e-3):
            few, since the rule-follower already answers in the task's format, and each step on
            the ID rule alone starts to lower its ``ood-rule`` success.
        sft_steps: SFT steps of the continuation (batch 8, lr 1e-3); their compute is the RL
            run's budget.
        save_points: checkpoints saved along each series.
        rl_budget: verification budget inside RL rollouts (the paper's is 5).
        eval_n: evaluation instances per split of each study checkpoint (seed 42, the paper's).
        eval_attempts: verification budget at evaluation (the paper's: 5).
        eval_max_tokens: new tokens per answer, at evaluation and in RL rollouts (a reference
            answer is ~47 tokens, the rule-follower's with its ``sorted`` field ~60).
        train_size: training instances drawn from gp-l ``train``.
    """

    controls_n: int = 100
    init_steps: int = 5
    sft_steps: int = 120
    save_points: int = 3
    rl_budget: int = 5
    eval_n: int = 64
    eval_attempts: int = 5
    eval_max_tokens: int = 80
    train_size: int = 2000

    def __post_init__(self) -> None:
        if self.sft_steps % self.save_points:
            raise ValueError("sft_steps must be a multiple of save_points (evenly spaced saves)")


SIZES = {
    "default": DemoSize(),
    # The same study, larger: every instance of the paper's 234-hand splits, longer series.
    "full": DemoSize(controls_n=234, sft_steps=600, save_points=4, eval_n=234),
    # CI: the controls at a size where their separation still shows, a short study.
    "ci": DemoSize(
        controls_n=60,
        init_steps=4,
        sft_steps=8,
        save_points=2,
        rl_budget=2,
        eval_n=6,
        eval_attempts=2,
    ),
}
CONTROL_ATTEMPTS = 5
"""The controls are always evaluated at the paper's budget: the rule-follower's procedure tries
one template per attempt, five in all."""


OUTPUTS = ("init", "series", "runs", "report", "controls.json", "study.json", "timings.json")
"""What the job writes into its output folder (and removes first, so a rerun starts clean)."""
SEPARATION_FILE = "separation.txt"
DIRECTION_FILE = "direction.txt"
"""The paired readings, written beside the controls' and the study's reports."""


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


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


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


def _eval(
    model: str,
    runs: Path,
    n: int,
    attempts: int,
    size: DemoSize,
    threads: ThreadCount,
    *meta: str,
) -> None:
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
        str(n),
        "--max-tokens",
        str(size.eval_max_tokens),
        "--max-attempts",
        str(attempts),
        "--runs-dir",
        str(runs),
        *metas,
    )


def run_controls(
    out: Path, size: DemoSize, threads: ThreadCount, timings: dict[str, float]
) -> Separation:
    """Part 1: evaluate the shipped controls, read their separation, report them."""
    controls = {name: shipped_control(name) for name in NAMES}  # refuses altered bytes
    runs = out / "runs" / "controls"
    for name, folder in controls.items():
        _stage(
            f"controls: gpbench eval {name}",
            timings,
            functools.partial(
                _eval,
                str(folder),
                runs,
                size.controls_n,
                CONTROL_ATTEMPTS,
                size,
                threads,
                f"control={name}",
            ),
        )
    separation = controls_separation(runs, SPLITS)
    _write_json(out / "controls.json", separation.to_json())
    _stage(
        "controls: gpbench report",
        timings,
        lambda: _gpbench(
            threads,
            "report",
            str(runs),
            "-o",
            str(out / "report" / "controls"),
            "--series",
            f"memorizer={controls['memorizer']}",
            "--series",
            f"rule-follower={controls['rule-follower']}",
            "--title",
            "gpbench positive controls",
        ),
    )
    # Beside the HTML: the paired reading, which the per-checkpoint report does not compute.
    text = format_separation(separation) + "\n"
    (out / "report" / "controls" / SEPARATION_FILE).write_text(text, encoding="utf-8")
    return separation


def run_demo(
    out: Path, size: DemoSize, init: Path | None = None, threads: int | None = None
) -> dict[str, Any]:
    """Run the main job into ``out``; returns its timings and results.

    ``init``: an existing SFT checkpoint to start both series from, instead of SFT-initialising
    the rule-follower.
    ``threads``: CPU threads of every stage (None: gpbench's default).

    The controls' separation is in the summary (``controls_separated``; the reasons in
    ``OUT/controls.json``): the job runs to the end either way, and the command exits 1 when
    they were not separated.

    Raises:
        GpbenchError: a stage failed.
    """
    import datasets
    import torch
    import transformers

    from gpbench.recipes import rl

    # Progress bars of dataset preparation and weight loading would drown the stage lines.
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    timings: dict[str, float] = {}
    cuda = torch.cuda.is_available()
    count = apply_threads(threads)  # a bad GPBENCH_THREADS fails here, before anything is removed
    print(f"threads: {count.count} ({count.source})", flush=True)
    if init is not None and any(
        init.resolve().is_relative_to((out / n).resolve()) for n in OUTPUTS
    ):
        raise ConfigError(
            f"--init {init} lies in what the job rewrites in {out}; copy it elsewhere"
        )
    _clear(out)
    separation = run_controls(out, size, count, timings)
    print("\n" + format_separation(separation), flush=True)
    common = {
        "threads": count.count,
        "task": TASK,
        "train_size": size.train_size,
        "disable_tqdm": "true",
        "logging_steps": 20,
    }
    corpus = id_rule_procedure_conversations(size.train_size)
    if init is None:
        init = out / "init"
        _stage(
            "SFT initialisation of the rule-follower (ID rule)",
            timings,
            lambda: train_control(
                shipped_control("rule-follower"),
                corpus,
                init,
                _sft_size(size.init_steps, 0, size.train_size),
                STUDY_CORPUS,
                method="init",
            ),
        )
    sft_record = _stage(
        "SFT from the init (ID rule)",
        timings,
        lambda: train_control(
            init,
            corpus,
            out / "series" / "sft",
            _sft_size(size.sft_steps, 1, size.train_size),
            STUDY_CORPUS,
            save_every=size.sft_steps // size.save_points,
        ),
    )
    budget = float(sft_record["compute"]) - float(sft_record["base_checkpoint"]["compute"] or 0)
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
            "max_attempt_tokens": size.eval_max_tokens,
            # The preset pins the CPU; on a CUDA machine the study runs there (bf16 if it can).
            "use_cpu": not cuda,
            "bf16": cuda and torch.cuda.is_bf16_supported(),
            "logging_steps": 1,
        },
    )
    rl_result = _stage(
        "RL (GRPO) from the init, equal compute", timings, lambda: rl.train(rl_config)
    )
    runs = out / "runs" / "study"
    _stage(
        "gpbench eval: init",
        timings,
        lambda: _eval(
            str(init), runs, size.eval_n, size.eval_attempts, size, count, "method=init", "step=0"
        ),
    )
    _stage(
        "gpbench eval: SFT and RL checkpoints",
        timings,
        lambda: _eval(
            str(out / "series" / "*" / "checkpoint-*"),
            runs,
            size.eval_n,
            size.eval_attempts,
            size,
            count,
        ),
    )
    direction = study_direction(runs, SPLITS)
    _write_json(out / "study.json", direction.to_json())
    _stage(
        "gpbench report: the study",
        timings,
        lambda: _gpbench(
            count, "report", str(runs), "-o", str(out / "report" / "study"), "--x", "compute"
        ),
    )
    text = format_direction(direction) + "\n"
    (out / "report" / "study" / DIRECTION_FILE).write_text(text, encoding="utf-8")
    summary = {
        "size": asdict(size),
        "threads": describe(count),
        "timings_s": timings,
        "total_s": round(sum(timings.values()), 1),
        "controls_separated": separation.separated,
        "sft": {"steps": sft_record["step"], "compute": sft_record["compute"]},
        "rl": {"steps": rl_result.steps, "compute": rl_result.compute},
    }
    _write_json(out / "timings.json", summary)
    return summary


STUDY_CORPUS = {
    "name": "study-sft",
    "corpus": "gp-l train hands under J/Q/K=10 only (the ID rule), answered by the "
    "rule-follower's template procedure, one template per attempt",
}
"""What the study's SFT stages train on, recorded in their checkpoints' metadata."""


def _sft_size(steps: int, seed: int, train_size: int) -> ControlSize:
    """The study's SFT settings: batch 8, peak lr 1e-3 (warm-up then cosine)."""
    return ControlSize(
        steps=steps,
        batch_size=8,
        learning_rate=1e-3,
        train_size=train_size,
        seed=seed,
        ood_share=0.0,
    )


def print_results(out: Path) -> None:
    """The controls' and the study's readings, the study's report table in short, and where
    everything is."""
    for title, reading in (
        ("positive controls", out / "report" / "controls" / SEPARATION_FILE),
        ("the study", out / "report" / "study" / DIRECTION_FILE),
    ):
        if reading.is_file():  # written by run_demo beside each report
            print(f"\n{title}:\n{reading.read_text(encoding='utf-8')}", end="")
    table = out / "report" / "study" / "summary.csv"
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
        f"\ncontrols    {SHIPPED}/{{{','.join(NAMES)}}} (each with gpbench_checkpoint.json)"
        f"\ncheckpoints {out / 'init'}, "
        f"{out / 'series'}/{{sft,rl}}/checkpoint-* (each with gpbench_checkpoint.json)"
        f"\nruns        {out / 'runs'}/{{controls,study}}"
        f"\nreports     {out / 'report' / 'controls'}/{{report.html,separation.txt}}"
        f"\n            {out / 'report' / 'study'}/{{report.html,direction.txt}}"
        f"\ntimings     {out / 'timings.json'}"
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
    if not summary["controls_separated"]:
        parser.exit(1, "error: the benchmark did not separate its positive controls (above)\n")


if __name__ == "__main__":
    main()
