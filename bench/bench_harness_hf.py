"""gpbench eval with the transformers backend against a plain transformers script, side by side.

Run: .venv/bin/python bench/bench_harness_hf.py [--n 200] [--max-tokens 32]

Both processes generate greedy answers for the same gp-l prompts with the same tiny model
(built offline by gpbench.tiny_models), batch 8, start-up included. Prints (a) the whole
`gpbench eval` process over the plain script (target <= 1.2x) and (b) the harness's time beyond
the backend's own generate time inside the run (target <= 5%).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = r"""
import sys, time
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from gpbench.tasks.registry import get_task
model_dir, n, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(model_dir)
tokenizer.padding_side = "left"
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
prompts = [i.messages for i in get_task("gp-l").dataset("id", 42, n)]
texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in prompts]
outputs = []
with torch.inference_mode():
    for start in range(0, len(texts), 8):
        batch = tokenizer(texts[start:start + 8], return_tensors="pt", padding=True)
        out = model.generate(**batch, max_new_tokens=max_tokens, do_sample=False)
        outputs += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
print(len(outputs))
"""


def _timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    from gpbench.tiny_models import build_tiny_llama

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_llama(Path(tmp) / "tiny")
        plain = [sys.executable, "-c", PLAIN, str(model), str(args.n), str(args.max_tokens)]
        rows = []
        for attempt in range(2):
            runs = Path(tmp) / f"runs{attempt}"
            ours = [
                sys.executable,
                "-m",
                "gpbench",
                "eval",
                "--model",
                str(model),
                "--task",
                "gp-l",
                "--split",
                "id",
                "-n",
                str(args.n),
                "--max-tokens",
                str(args.max_tokens),
                "--max-attempts",
                "1",
                "--batch-size",
                "8",
                "--runs-dir",
                str(runs),
            ]
            t_plain = _timed(plain)
            t_ours = _timed(ours)
            [folder] = list(runs.iterdir())
            loop = json.loads((folder / "run.json").read_text())["loop"]
            rows.append((t_plain, t_ours, loop))
    t_plain, t_ours, loop = min(rows, key=lambda r: r[1])
    overhead = (loop["total_seconds"] - loop["backend_seconds"]) / loop["backend_seconds"]
    print(
        f"# gpbench eval vs a plain transformers script: tiny Llama, {args.n} gp-l prompts, "
        f"greedy, {args.max_tokens} new tokens, batch 8, one machine (best of 2)"
    )
    print(f"plain transformers script, whole process      {t_plain:8.2f} s")
    print(
        f"gpbench eval (hf backend), whole process       {t_ours:8.2f} s   "
        f"ratio {t_ours / t_plain:.2f}x (target <= 1.2x)"
    )
    print(
        f"inside the run: backend generate {loop['backend_seconds']:.2f} s, loop total "
        f"{loop['total_seconds']:.2f} s, harness overhead {100 * overhead:.1f}% (target <= 5%)"
    )


if __name__ == "__main__":
    main()
