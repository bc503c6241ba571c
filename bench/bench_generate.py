"""gpbench generation throughput vs reasoning-gym's puzzle24, and gpbench's streaming memory.

Run with the benchmark venv (``bash bench/setup_bench_env.sh`` makes it)::

    .venv-bench/bin/python bench/bench_generate.py            # full size (~4 min)
    .venv-bench/bin/python bench/bench_generate.py --quick    # counts / 10, a smoke test

What is measured, all on one core in one process (the memory run in a child process):

a) gpbench gp-l ``id``, ``ood-rule`` and ``id-heldout``: instances/s of
   ``gpbench.export.write_split`` into a temporary folder, the function (and arguments) that
   ``gpbench generate`` calls, so generation, JSON encoding, hashing and writing are all counted;
   and the generate-only rate (``task.dataset(...)`` + ``gpbench.serialization.to_json``).
   One warm-up run per split (it fills the solver's memo, as the first thousands of instances of
   any real run do), then the best of 3. One run of the real ``gpbench generate`` command is
   timed too, interpreter start-up included.
b) reasoning-gym ``puzzle24``: ``reasoning_gym.create_dataset("puzzle24", size=N, seed=42)``
   iterated once (it builds each item with sympy, ~10 items/s), after a 3-item warm-up on a
   seed whose items do not overlap the measured ones.
c) the ratio gpbench / puzzle24, against the target of at least 1000x.
d) peak RSS and wall time of a child process that streams 1,000,000 gp-l ``train`` instances to
   JSON lines with ``write_split``; target below 500 MB. The child runs first, while this
   process is still small, since on Linux a child's ``ru_maxrss`` starts at its parent's RSS;
   its own ``VmHWM`` and RSS samples taken while it streams are printed beside it.

The report goes to stdout, progress notes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import gpbench
from gpbench.export import write_split
from gpbench.serialization import to_json
from gpbench.tasks.registry import get_task

TASK = "gp-l"
SEED = 42  # the paper's seed for the evaluation splits (and the `id` default of `gpbench generate`)
TRAIN_SEED = 0  # gp-l train's default seed
RG_SEED = 42
RG_WARMUP_SEED = 1_000_000  # Random(seed + idx): items 1_000_000.. never meet the measured 42..
TARGET_RATIO = 1000.0
TARGET_RSS_MB = 500.0
GP_SPLITS = ("id", "ood-rule", "id-heldout")
REPEATS = 3

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent


@dataclass(frozen=True)
class Timing:
    """A measured rate: ``n`` items in ``seconds`` (the best of ``runs``)."""

    label: str
    n: int
    seconds: float
    runs: int

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")


def best_of(repeats: int, run: Callable[[], int]) -> tuple[float, int]:
    """The smallest wall time of ``repeats`` calls of ``run`` and the count it returned."""
    best = float("inf")
    count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


# --- a) gpbench -------------------------------------------------------------------------------


def gp_write(
    split: str, seed: int, n: int, out_dir: Path, on_progress: Callable[[int], None] | None = None
) -> int:
    """``write_split`` as ``gpbench generate`` calls it (no options, a progress callback)."""
    task = get_task(TASK)
    done = [0]

    def progress(k: int) -> None:  # what the CLI's callback does when no bar is drawn
        done[0] = k
        if on_progress is not None:
            on_progress(k)

    written = write_split(task, split, seed, n, out_dir, fmt="jsonl", options={}, progress=progress)
    return written.count


def gp_generate_only(split: str, seed: int, n: int) -> int:
    """Instances built and encoded to canonical JSON, nothing written."""
    task = get_task(TASK)
    count = 0
    for instance in task.dataset(split, seed, n):
        to_json(instance)
        count += 1
    return count


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def bench_gpbench(n: int, repeats: int, tmp: Path) -> list[tuple[str, Timing, Timing]]:
    """(split, write_split timing, generate-only timing) for each benchmarked split."""
    rows: list[tuple[str, Timing, Timing]] = []
    for split in GP_SPLITS:
        out_dir = tmp / f"gp-{split}"
        # Warm-up: imports, the solver's memo (keyed by value multiset), file-system paths.
        gp_write(split, SEED, min(n, 5000), out_dir)
        gp_generate_only(split, SEED, min(n, 2000))
        w_seconds, w_count = best_of(repeats, partial(gp_write, split, SEED, n, out_dir))
        written = out_dir / TASK / f"{split}.jsonl"
        lines = count_lines(written)
        if lines != n or w_count != n:
            raise SystemExit(f"{written}: expected {n} lines, found {lines}")
        g_seconds, g_count = best_of(repeats, partial(gp_generate_only, split, SEED, n))
        rows.append(
            (
                split,
                Timing(f"gpbench {split}: write_split -> JSONL", w_count, w_seconds, repeats),
                Timing(f"gpbench {split}: generate + to_json", g_count, g_seconds, repeats),
            )
        )
        shutil.rmtree(out_dir, ignore_errors=True)
    return rows


def bench_cli(n: int, tmp: Path) -> Timing | None:
    """One run of the real ``gpbench generate`` command (interpreter start-up included)."""
    exe = Path(sys.executable).with_name("gpbench")
    if not exe.exists():
        return None
    out_dir = tmp / "cli"
    cmd = [str(exe), "generate", TASK, "--split", "id", "-n", str(n), "--seed", str(SEED)]
    cmd += ["-o", str(out_dir), "--quiet"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - start
    lines = count_lines(out_dir / TASK / "id.jsonl")
    shutil.rmtree(out_dir, ignore_errors=True)
    return Timing("gpbench id: `gpbench generate` CLI, incl. start-up", lines, seconds, 1)


# --- b) reasoning-gym -------------------------------------------------------------------------


def bench_puzzle24(n: int, max_seconds: float) -> Timing:
    """Iterate ``create_dataset("puzzle24", size=n, seed=42)``; stop early past ``max_seconds``."""
    # Imported here, not at the top: the memory child must not load reasoning-gym and sympy.
    reasoning_gym = importlib.import_module("reasoning_gym")

    warm = reasoning_gym.create_dataset("puzzle24", size=3, seed=RG_WARMUP_SEED)
    for _ in warm:
        pass
    dataset = reasoning_gym.create_dataset("puzzle24", size=n, seed=RG_SEED)
    count = 0
    start = time.perf_counter()
    for item in dataset:
        if not item["question"] or not item["answer"]:
            raise SystemExit(f"puzzle24 item {count} is empty: {item!r}")
        count += 1
        if time.perf_counter() - start > max_seconds:
            break
    seconds = time.perf_counter() - start
    return Timing("reasoning-gym puzzle24: create_dataset, iterate", count, seconds, 1)


# --- d) memory --------------------------------------------------------------------------------


def proc_status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``); None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def child_stream(n: int, out_dir: Path) -> None:
    """In the child: stream ``n`` train instances to JSONL; print one JSON line of results."""
    hwm_start_kb = proc_status_kb("VmHWM")
    samples: list[tuple[int, int | None]] = []  # (instances written, RSS in kB)
    every = max(1, n // 10)

    def sample(k: int) -> None:
        if k % every == 0:
            samples.append((k, proc_status_kb("VmRSS")))

    start = time.perf_counter()
    count = gp_write("train", TRAIN_SEED, n, out_dir, on_progress=sample)
    seconds = time.perf_counter() - start
    path = out_dir / TASK / "train.jsonl"
    report = {
        "count": count,
        "seconds": seconds,
        "bytes": path.stat().st_size,
        "lines": count_lines(path),
        "hwm_start_kb": hwm_start_kb,
        "hwm_peak_kb": proc_status_kb("VmHWM"),
        "ru_maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_samples": samples,
    }
    print(json.dumps(report), flush=True)


def bench_memory(n: int, tmp: Path) -> dict[str, Any]:
    """Run :func:`child_stream` in a fresh interpreter; its peak RSS as the parent sees it.

    Run it before this process grows: on Linux a child's ``ru_maxrss`` starts at its parent's
    RSS when it is spawned (the high-water mark of the memory it leaves at ``exec``), so a parent
    that had loaded reasoning-gym (~115 MB) would set a floor. ``VmHWM`` of the child's
    ``/proc/self/status`` counts only the child's own memory and is reported beside it.
    """
    out_dir = tmp / "memory"
    before_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-stream", str(n), str(out_dir)]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if report["lines"] != n:
        raise SystemExit(f"memory run: expected {n} lines, found {report['lines']}")
    # RUSAGE_CHILDREN's ru_maxrss is the largest over all waited-for children; this is the first.
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report["ru_maxrss_children_kb"] = children_kb if children_kb > before_kb else None
    report["parent_rss_kb"] = proc_status_kb("VmRSS")
    report["wall"] = wall
    shutil.rmtree(out_dir, ignore_errors=True)
    return report


# --- report -----------------------------------------------------------------------------------


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:,.1f}"


def print_machine() -> None:
    print("== machine")
    print(f"nproc {usable_cores()} ({cpu_model()}), {platform.machine()}, {platform.system()}")
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}) {sys.executable}"
    )
    print(f"gpbench {gpbench.__version__}, reasoning-gym {package_version('reasoning-gym')}")
    print("single process, single core: no multiprocessing, no threads")
    print()


def print_table(rows: list[Timing], baseline: Timing) -> None:
    width = max(len(row.label) for row in rows)
    header = (
        f"{'measurement':<{width}} {'n':>7} {'runs':>9} {'seconds':>7} {'items/s':>8} "
        f"{'vs puzzle24':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = "1x" if row is baseline else f"{row.rate / baseline.rate:,.0f}x"
        runs = f"best of {row.runs}" if row.runs > 1 else "1"
        print(
            f"{row.label:<{width}} {row.n:>7,} {runs:>9} {row.seconds:>7.2f} "
            f"{fmt_rate(row.rate):>8} {ratio:>11}"
        )


def print_commands(args: argparse.Namespace) -> None:
    script = Path(__file__).resolve().relative_to(REPO)
    flags = " --quick" if args.quick else ""
    flags += " --skip-memory" if args.skip_memory else ""
    print("== reproduce (from the repository root)")
    print("bash bench/setup_bench_env.sh")
    print(f".venv-bench/bin/python {script}{flags}")
    cli = f"gpbench generate {TASK} --split id -n {args.gp_n} --seed {SEED} -o out/"
    print(f"# the gp-l id file of (a), by the CLI: {cli}")
    print()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="scale every count down 10x")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 1M streaming run")
    parser.add_argument("--gp-n", type=int, default=50_000, help="gpbench instances per run")
    parser.add_argument("--rg-n", type=int, default=200, help="puzzle24 items (one run)")
    parser.add_argument(
        "--rg-max-seconds", type=float, default=60.0, help="stop puzzle24 early past this"
    )
    parser.add_argument(
        "--memory-n", type=int, default=1_000_000, help="train instances streamed in (d)"
    )
    parser.add_argument("--tmpdir", type=Path, default=None, help="scratch folder (default: TMP)")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--child-stream", nargs=2, metavar=("N", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.gp_n = max(1, args.gp_n // 10)
        args.rg_n = max(1, args.rg_n // 10)
        args.memory_n = max(1, args.memory_n // 10)
    return args


def kib_to_mb(kib: float) -> float:
    """``ru_maxrss`` and ``/proc`` sizes are KiB on Linux; MB here are 10**6 bytes."""
    return kib * 1024 / 1e6


def note(text: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def print_memory(mem: dict[str, Any]) -> bool:
    """Print the memory run; True when the peak is under the target."""
    children_kb = mem["ru_maxrss_children_kb"]
    own_kb = mem["hwm_peak_kb"]
    peak_kb = max(k for k in (children_kb, own_kb, mem["ru_maxrss_self_kb"]) if k is not None)
    peak_mb = kib_to_mb(peak_kb)
    rate = mem["count"] / mem["seconds"]
    print(
        f"{mem['count']:,} instances, {mem['bytes'] / 1e9:.2f} GB JSONL: wall {mem['wall']:.1f} s "
        f"incl. start-up (write_split {mem['seconds']:.1f} s, {fmt_rate(rate)}/s)"
    )
    seen = f"{kib_to_mb(children_kb):.1f} MB" if children_kb is not None else "n/a"
    print(f"peak RSS, child's ru_maxrss (getrusage RUSAGE_CHILDREN): {seen}")
    if own_kb is not None:
        start_kb = mem["hwm_start_kb"]
        print(
            f"peak RSS, child's own VmHWM: {kib_to_mb(own_kb):.1f} MB "
            f"({kib_to_mb(start_kb):.1f} MB after imports, before generating)"
        )
    samples = [f"{k // 1000}k:{kib_to_mb(v):.0f}" for k, v in mem["rss_samples"] if v is not None]
    if samples:
        print(f"RSS (MB) at instances written: {' '.join(samples)}")
    ok = peak_mb < TARGET_RSS_MB
    print(f"target < {TARGET_RSS_MB:,.0f} MB: {'MET' if ok else 'NOT MET'} ({peak_mb:.1f} MB)")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_stream:
        child_stream(int(args.child_stream[0]), Path(args.child_stream[1]))
        return 0

    misses: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gpbench-bench-", dir=args.tmpdir) as name:
        tmp = Path(name)
        # The memory child runs first, while this process is small (see bench_memory).
        mem = None
        if not args.skip_memory:
            note(f"(d) streaming {args.memory_n:,} gp-l train instances in a subprocess ...")
            mem = bench_memory(args.memory_n, tmp)
        note(f"(a) gpbench: {', '.join(GP_SPLITS)}, {args.gp_n:,} instances, best of {REPEATS} ...")
        gp_rows = bench_gpbench(args.gp_n, REPEATS, tmp)
        cli = bench_cli(args.gp_n, tmp)
        note(f"(b) reasoning-gym puzzle24, {args.rg_n:,} items ...")
        rg = bench_puzzle24(args.rg_n, args.rg_max_seconds)

    print(f"# gpbench generation benchmark{' (--quick: counts / 10)' if args.quick else ''}")
    print()
    print_machine()
    print_commands(args)

    print("== (a, b) throughput, one core")
    rows = [timing for _, write, gen in gp_rows for timing in (write, gen)]
    if cli is not None:
        rows.append(cli)
    rows.append(rg)
    print_table(rows, rg)
    print()

    id_write, id_gen = gp_rows[0][1], gp_rows[0][2]
    ratio = id_write.rate / rg.rate
    met = ratio >= TARGET_RATIO
    print("== (c) ratio gpbench / reasoning-gym puzzle24")
    print(
        f"gp-l id, write_split -> JSONL: {fmt_rate(id_write.rate)}/s vs {fmt_rate(rg.rate)}/s "
        f"= {ratio:,.0f}x (generate + to_json only: {id_gen.rate / rg.rate:,.0f}x)"
    )
    per_split = ", ".join(f"{split} {write.rate / rg.rate:,.0f}x" for split, write, _ in gp_rows)
    print(f"write_split per split: {per_split}")
    print(f"target >= {TARGET_RATIO:,.0f}x (gp-l id, write_split): {'MET' if met else 'NOT MET'}")
    if not met:
        misses.append("ratio")
    print()

    print("== (d) memory: stream gp-l train to JSONL with write_split, in a subprocess")
    if mem is None:
        print("skipped (--skip-memory)")
    elif not print_memory(mem):
        misses.append("memory")
    if args.quick:
        print()
        print("(--quick is a smoke test: quote the full-size run, not these numbers)")
    return 1 if misses and args.fail_on_miss else 0


if __name__ == "__main__":
    sys.exit(main())
