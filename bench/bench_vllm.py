"""The harness on vLLM against vLLM alone, side by side on one engine (CPU build, tiny model).

Run (in the CPU build's venv, set up by scripts/setup_vllm_cpu.sh):
    .venv-vllm/bin/python bench/bench_vllm.py [--n 234] [--max-tokens 256 32] [--turns 3]

Measures, with the tiny Llama of gpbench.tiny_models (built offline) and one vLLM engine, for
each answer length in ``--max-tokens`` (the paper's 256, and a short 32):
(a) vLLM's own ``LLM.generate`` on the n gp-l prompts, already rendered with the chat template,
    greedy: what a plain vLLM script spends;
(b) ``gpbench.harness.evaluate`` on the same n instances with budget 1 through the vllm backend:
    instances generated, prompts rendered, one generate call, answers decoded and verified,
    episodes written and flushed, summary computed.
The harness's overhead is (b - a) / a; target <= 5%. The prefix cache is emptied
before every timed run (else a run would reuse the previous one's KV cache), the two alternate
(each goes first every other time), and the best of ``--repeats`` is kept for each. The
harness's time is also split: inside vLLM's ``LLM.generate``, in the backend around it
(rendering, decoding), and in the rest of evaluate; its "own share" (outside over inside, within
one run) is free of the run-to-run noise of a shared machine.
(c) A multi-turn run (budget ``--turns``; the random model never solves a hand, so every episode
    takes every turn): vLLM calls must equal the number of turns, not episodes x turns.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from gpbench.harness.backends import Backend, Sampling, create_backend
from gpbench.harness.loop import request_seed


class _Shared:
    """The one engine for every run: evaluate() closes its backend, this one stays open."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.supports_images = backend.supports_images

    def generate(self, requests: Any, sampling: Sampling) -> Any:
        return self.backend.generate(requests, sampling)

    def describe(self) -> dict[str, Any]:
        return self.backend.describe()

    def identity(self) -> dict[str, Any]:
        return self.backend.identity()

    def close(self) -> None:
        pass


class _Timed:
    """Wraps the engine's ``generate`` to add up the time spent inside it."""

    def __init__(self, generate: Any) -> None:
        self.generate = generate
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.generate(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=234, help="the paper's gp-l ID size")
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[256, 32])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import gpbench.harness.evaluate as evaluate_module
    from gpbench.harness.evaluate import EvalConfig, evaluate
    from gpbench.runs.read import read_episodes, read_run_spec
    from gpbench.tasks.registry import get_task
    from gpbench.tiny_models import build_tiny_llama

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_llama(root / "tiny")
        started = time.perf_counter()
        backend = create_backend(
            "vllm", str(model), dtype="float32", enforce_eager=True, max_model_len=2048
        )
        startup = time.perf_counter() - started
        shared = _Shared(backend)
        evaluate_module.create_backend = lambda *a, **k: shared
        # The plain script's side: vLLM's own objects, on the same engine.
        from transformers import AutoTokenizer
        from vllm import SamplingParams

        llm: Any = backend._llm  # the backend's engine: same weights, same cache
        inner = _Timed(llm.generate)
        llm.generate = inner
        tokenizer: Any = AutoTokenizer.from_pretrained(model)
        instances = list(get_task("gp-l").dataset("id", 42, args.n))
        prompts = [
            {
                "prompt": tokenizer.apply_chat_template(
                    inst.messages, tokenize=False, add_generation_prompt=True
                )
            }
            for inst in instances
        ]

        def plain(max_tokens: int) -> float:
            params = [
                SamplingParams(
                    temperature=0.0, max_tokens=max_tokens, seed=request_seed(0, inst.uid, 0, 0)
                )
                for inst in instances
            ]
            llm.reset_prefix_cache()
            start = time.perf_counter()
            outputs = inner.generate(
                prompts, params, use_tqdm=False, tokenization_kwargs={"add_special_tokens": False}
            )
            seconds = time.perf_counter() - start
            assert len(outputs) == args.n
            return seconds

        def harness(max_tokens: int, budget: int, label: str) -> dict[str, Any]:
            llm.reset_prefix_cache()
            config = EvalConfig(
                model=str(model),
                backend="vllm",
                tasks=("gp-l",),
                splits=("id",),
                n=args.n,
                sampling=Sampling(max_tokens=max_tokens),
                max_attempts=budget,
                runs_dir=root / label,
                resume=False,
            )
            inner.seconds = 0.0
            start = time.perf_counter()
            [result], _ = evaluate(config)
            seconds = time.perf_counter() - start
            loop = read_run_spec(result.folder)["loop"]
            return {
                "seconds": seconds,
                "inside_vllm": inner.seconds,
                "backend": loop["backend_seconds"],
                "loop": loop,
                "turns": max(len(e.turns) for e in read_episodes(result.folder)),
            }

        plain(16)  # warm-up: the first calls pay for kernels and allocations
        harness(16, 1, "warm")
        rows = []
        for max_tokens in args.max_tokens:
            plain_times, runs = [], []
            for i in range(args.repeats):
                # Alternate which side goes first, so that drift on a shared machine is not
                # charged to one side.
                if i % 2:
                    runs.append(harness(max_tokens, 1, f"single-{max_tokens}-{i}"))
                    plain_times.append(plain(max_tokens))
                else:
                    plain_times.append(plain(max_tokens))
                    runs.append(harness(max_tokens, 1, f"single-{max_tokens}-{i}"))
            rows.append((max_tokens, plain_times, runs))
        multi = harness(min(args.max_tokens), args.turns, "multi")
        backend.close()

    print(f"# gpbench on vLLM (CPU build, tiny Llama, gp-l id x {args.n}, greedy, budget 1;")
    print(f"# best of {args.repeats}; engine start-up {startup:.1f} s, not counted)")
    print(
        f"{'max_tokens':>10} {'vLLM alone':>11} {'gpbench':>9} {'overhead':>9} {'own share':>10}"
        f"   gpbench split: inside LLM.generate / backend around it / rest of evaluate"
    )
    for max_tokens, plain_times, runs in rows:
        best_plain = min(plain_times)
        best = min(runs, key=lambda r: r["seconds"])
        overhead = (best["seconds"] - best_plain) / best_plain
        around = best["backend"] - best["inside_vllm"]
        rest = best["seconds"] - best["backend"]
        # The harness's own time in the same run, over vLLM's: immune to run-to-run noise.
        share = (around + rest) / best["inside_vllm"]
        print(
            f"{max_tokens:>10} {best_plain:>10.2f}s {best['seconds']:>8.2f}s "
            f"{100 * overhead:>+8.1f}% {100 * share:>9.1f}%   {best['inside_vllm']:.2f} s / "
            f"{1000 * around:.0f} ms / {1000 * rest:.0f} ms"
        )
    print(
        "target: <= 5%. overhead = (gpbench - vLLM alone) / vLLM alone, across runs; own share ="
        " gpbench's time outside LLM.generate / inside it, within one run"
    )
    calls, requests, turns = (
        multi["loop"]["backend_calls"],
        multi["loop"]["requests"],
        multi["turns"],
    )
    print(
        f"multi-turn (budget {args.turns}): {calls} vLLM calls for {turns} turns x {args.n} "
        f"episodes ({requests} requests)"
    )
    if calls != turns:
        raise SystemExit(f"expected {turns} backend calls (one per turn), got {calls}")


if __name__ == "__main__":  # vLLM starts an engine process
    main()
