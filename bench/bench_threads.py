"""CPU threads against wall time: 1, 2 and more threads, with and without a competing process.

Run: .venv/bin/python bench/bench_threads.py [--repeats 2] [--threads 1,2,4] [--json out.json]

Three models, random Llamas with the tokenizer of gpbench.tiny_models: the tiny one of the
tests and the main job (0.46M parameters), a small one (hidden 256, 4 layers: ~3.7M) and a
larger one (hidden 512, 8 layers: ~28M). Two workloads, each in a fresh process that first
applies the thread count with gpbench.harness.threads.apply_threads:

- generate: the hf backend (gpbench.harness.backends.hf) answers gp-l `id` prompts, greedy,
  batch 8 (model loading not timed);
- train: optimizer steps (AdamW) on the SFT recipe's rows (prompt and reference answer, as
  gpbench.recipes.data makes them).

Sizes per model (prompts x new tokens; steps x batch) are in WORKLOADS, so that each run takes
seconds to a minute on a busy 2-core machine. --passive adds, for each count above 1, a run with
OMP_WAIT_POLICY=PASSIVE (OpenMP threads sleep instead of spinning while they wait).

Each runs alone ("idle": whatever else the machine runs, shown by its load average) and beside
a second torch process that multiplies matrices on 2 threads for the whole measurement
("busy"). The table gives the best of --repeats runs, the 1-minute load average when each
started, and a digest of the outputs (generated text; the losses), which says whether the
thread count changed the numbers. gpbench's default count on this machine is printed first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUSY = r"""
import torch
torch.set_num_threads(2)
a = torch.randn(384, 384)
while True:
    a = torch.tanh(a @ a)
"""
TIMEOUT_S = 150
# (hidden size, intermediate size, layers, heads) of the models built beside the tiny one.
SHAPES = {"small": (256, 768, 4, 4), "larger": (512, 1536, 8, 8)}
# model -> (prompts, new tokens) to generate, (steps, batch) to train
WORKLOADS = {
    "tiny": {"generate": (16, 48), "train": (3, 8)},
    "small": {"generate": (16, 48), "train": (3, 8)},
    "larger": {"generate": (8, 32), "train": (2, 4)},
}


def build_models(folder: Path) -> dict[str, Path]:
    """The tiny Llama, and the SHAPES models sharing its tokenizer (random, torch seed 0)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from gpbench.tiny_models import build_tiny_llama

    models = {"tiny": build_tiny_llama(folder / "tiny")}
    for name, (hidden, intermediate, layers, heads) in SHAPES.items():
        config = LlamaConfig.from_pretrained(models["tiny"])
        config.hidden_size, config.intermediate_size = hidden, intermediate
        config.num_hidden_layers = layers
        config.num_attention_heads = config.num_key_value_heads = heads
        config.head_dim = 64
        torch.manual_seed(0)
        models[name] = folder / name
        LlamaForCausalLM(config).save_pretrained(models[name])
        AutoTokenizer.from_pretrained(models["tiny"]).save_pretrained(models[name])
    return models


def parameter_count(model_dir: Path) -> int:
    """Parameters of a saved model (read from its safetensors header, no torch needed)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(model_dir / "model.safetensors"), "np") as weights:
        for name in weights.keys():  # noqa: SIM118 (safe_open has no __iter__)
            shape = weights.get_slice(name).get_shape()
            count = 1
            for size in shape:
                count *= size
            total += count
    return total


def worker_generate(model_dir: Path, prompts: int, max_tokens: int) -> tuple[float, str]:
    """Seconds of hf-backend generation, and a digest of the answers."""
    from gpbench.harness.backends import Request, Sampling
    from gpbench.harness.backends.hf import HFBackend
    from gpbench.tasks.registry import get_task

    backend = HFBackend(model_dir, batch_size=8, device="cpu", dtype="float32")
    instances = get_task("gp-l").dataset("id", 42, prompts)
    requests = [Request(list(i.messages), [], 0, {}) for i in instances]
    start = time.perf_counter()
    answers = backend.generate(requests, Sampling(0.0, 1.0, max_tokens))
    seconds = time.perf_counter() - start
    digest = hashlib.sha256("\x00".join(a.text for a in answers).encode()).hexdigest()
    return seconds, digest[:12]


def worker_train(model_dir: Path, steps: int, batch: int) -> tuple[float, str]:
    """Seconds of ``steps`` AdamW steps on SFT rows, and a digest of the losses."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gpbench.recipes.data import examples, sft_row
    from gpbench.tasks.registry import get_task

    task = get_task("gp-l")
    rows = [sft_row(task, e) for e in examples(task, task.dataset("train", 0, batch * steps))]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = [
        tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False) for r in rows
    ]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        inputs = tokenizer(
            texts[batch * step : batch * (step + 1)], return_tensors="pt", padding=True
        )
        labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    return seconds, hashlib.sha256(repr(losses).encode()).hexdigest()[:12]


def run_worker(args: argparse.Namespace) -> None:
    """The measuring process: apply the count, run one workload, print JSON."""
    from gpbench.harness.threads import apply_threads, describe

    threads = apply_threads(args.threads)
    first, second = (int(x) for x in args.size.split("x"))
    if args.worker == "generate":
        seconds, digest = worker_generate(Path(args.model), first, second)
    else:
        seconds, digest = worker_train(Path(args.model), first, second)
    print(json.dumps({"seconds": seconds, "digest": digest, "threads": describe(threads)}))


def measure(
    workload: str, model: Path, size: tuple[int, int], threads: int, busy: bool, passive: bool
) -> dict[str, Any]:
    """One run in a fresh process (beside a busy process when ``busy``)."""
    competitor = None
    if busy:
        competitor = subprocess.Popen([sys.executable, "-c", BUSY])
        time.sleep(1.0)  # let it reach full speed
    load = os.getloadavg()[0]
    command = [
        sys.executable,
        __file__,
        "--worker",
        workload,
        "--model",
        str(model),
        "--threads",
        str(threads),
        "--size",
        f"{size[0]}x{size[1]}",
    ]
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return {"seconds": None, "digest": "timeout", "load": load}
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    if done.returncode != 0:
        raise SystemExit(f"worker failed: {done.stderr.strip()[-2000:]}")
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result["load"] = load
    return result


def cell(
    name: str, model: Path, workload: str, count: int, busy: bool, passive: bool, repeats: int
) -> dict[str, Any]:
    """One table cell: ``repeats`` runs of one model x workload x thread count x load."""
    size = WORKLOADS[name][workload]
    runs = [measure(workload, model, size, count, busy, passive) for _ in range(repeats)]
    times = [r["seconds"] for r in runs if r["seconds"] is not None]
    return {
        "model": name,
        "workload": workload,
        "size": list(size),
        "threads": count,
        "wait_policy": "passive" if passive else "default",
        "busy": busy,
        "seconds": [r["seconds"] for r in runs],
        "best_s": min(times) if times else None,
        "load_avg_1m": [round(r["load"], 2) for r in runs],
        "digests": sorted({r["digest"] for r in runs}),
    }


def print_row(row: dict[str, Any], parameters: int) -> None:
    """One line of the table."""
    label = f"{row['model']} ({parameters / 1e6:.2f}M)"
    threads = f"{row['threads']}{'p' if row['wait_policy'] == 'passive' else ''}"
    every = "/".join("-" if t is None else f"{t:.1f}" for t in row["seconds"])
    loads = "/".join(f"{x:.1f}" for x in row["load_avg_1m"])
    best = row["best_s"]
    shown = f"{best:8.2f}" if best is not None else f">{TIMEOUT_S:7d}"
    print(
        f"{label:<16} {row['workload']:<9} {threads:>7} {'busy' if row['busy'] else 'idle':<5} "
        f"{shown} {every:<17} {loads:<10} {','.join(row['digests'])}",
        flush=True,
    )


def main() -> None:
    """Measure every model x workload x thread count x load; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs per cell (best is shown)")
    parser.add_argument("--threads", default="1,2,4", help="comma-separated thread counts")
    parser.add_argument("--models", default="tiny,small,larger")
    parser.add_argument("--workloads", default="generate,train")
    parser.add_argument("--passive", action="store_true", help="also OMP_WAIT_POLICY=PASSIVE")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--worker", choices=["generate", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        run_worker(args)
        return

    from gpbench.harness.threads import default_threads

    default = default_threads()
    counts = [int(c) for c in args.threads.split(",")]
    variants = [(c, False) for c in counts] + [(c, True) for c in counts if args.passive and c > 1]
    print(f"gpbench default: {default.count} thread(s) ({default.source}); CPUs: {os.cpu_count()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = build_models(Path(tmp))
        sizes = {name: parameter_count(path) for name, path in models.items()}
        header = (
            f"{'model':<16} {'workload':<9} {'threads':>7} {'load':<5} {'best s':>8} "
            f"{'all s':<17} {'load avg':<10} digest"
        )
        print(header + "\n" + "-" * len(header), flush=True)
        for name in args.models.split(","):
            for workload in args.workloads.split(","):
                for count, passive in variants:
                    for busy in (False, True):
                        row = cell(name, models[name], workload, count, busy, passive, args.repeats)
                        row["parameters"] = sizes[name]
                        rows.append(row)
                        print_row(row, sizes[name])
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps({"default": default.count, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
