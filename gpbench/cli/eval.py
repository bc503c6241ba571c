"""``gpbench eval``: evaluate a checkpoint (or a series of them) on task splits."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gpbench.cli.completion import complete_split, complete_task
from gpbench.cli.options import meta_option, parse_meta, parse_options, parse_pairs, task_option
from gpbench.errors import ConfigError
from gpbench.harness.threads import apply_threads, resolve_threads, threads_option
from gpbench.runs.read import read_run_spec
from gpbench.serialization import json_text
from gpbench.stats import percent

if TYPE_CHECKING:
    from gpbench.harness.evaluate import RunProgress


@click.command("eval")
@click.option(
    "--model",
    required=True,
    help="Checkpoint folder, hub id, or a quoted glob of a "
    "checkpoint series ('ckpts/sft/checkpoint-*'). Scripted backend: a policy such as "
    "'reference' or 'reference:0.3' (error rate).",
)
@click.option(
    "--task",
    "tasks",
    multiple=True,
    metavar="TASK",
    shell_complete=complete_task,
    help="Task to run (repeatable). Default: every task that has the split(s) and "
    "that the model can take.",
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="SPLIT",
    shell_complete=complete_split,
    help="Split to run (repeatable). Default: every evaluation split.",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "hf", "vllm", "openai", "scripted"]),
    default="auto",
    show_default=True,
    help="auto picks vllm when it is installed with a CUDA GPU and runs the architecture, "
    "else hf. openai: a server such as `vllm serve` (see --base-url).",
)
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="openai backend: the server's API root, e.g. http://localhost:8000/v1; --model is "
    "then the name it serves the model under.",
)
@click.option(
    "--api-key",
    default=None,
    envvar="OPENAI_API_KEY",
    show_envvar=True,
    help="openai backend: the server's API key (default: EMPTY, as `vllm serve` expects).",
)
@click.option(
    "--backend-opt",
    "backend_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Backend setting (repeatable). vllm: max_model_len, gpu_memory_utilization, "
    "tensor_parallel_size, pipeline_parallel_size, enforce_eager, enable_prefix_caching, "
    "max_num_seqs, trust_remote_code, seed. openai: concurrency, timeout, max_retries, backoff, "
    "max_backoff, images (true for a vision-language server). hf: device_map, trust_remote_code.",
)
@click.option(
    "-n",
    "--limit",
    "count",
    type=click.IntRange(min=1),
    default=None,
    help="Instances per split (--limit as in lm-eval and inspect). Default: the paper's size "
    "(GP 234, V-IRL 48/18).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Instance seed: which problems are drawn. Default: the paper's (GP 42, V-IRL 12). "
    "Decoding is seeded by --sampling-seed.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Samples per instance (intervals then use a bootstrap over instances).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="0 = greedy.",
)
@click.option("--top-p", type=click.FloatRange(min=0, max=1), default=1.0, show_default=True)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="New tokens per answer (the paper: 256).",
)
@click.option(
    "--sampling-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds decoding; each request's seed derives from it, the uid and the turn.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=None,
    help="Verification budget. Default: the task's (GP 5; V-IRL 2 per decision point).",
)
@click.option(
    "--paper",
    is_flag=True,
    help="The paper's evaluation end to end. Sets: --mode reference (the paper code's "
    "rewards and feedback); decoding from the checkpoint's generation_config.json "
    "(temperature and top-p when it samples, else greedy; greedy for --backend scripted); "
    "--max-tokens 256; the paper's instances (-n and --seed: GP 234 at seed 42, V-IRL 48 or "
    "18 at seed 12), one sample each, the task's budget (GP 5 attempts, V-IRL 2 per decision "
    "point). With it, -n, --seed, --temperature, --top-p and --max-attempts are errors, and so "
    "are --mode, --max-tokens and --samples with another value.",
)
@click.option(
    "--mode",
    type=click.Choice(["gpbench", "reference"]),
    default="gpbench",
    show_default=True,
    help="Verifier mode. reference: the paper code's rewards, reasons and feedback exactly; "
    "gpbench: its documented, more lenient reading of answers.",
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Where run folders go.",
)
@click.option(
    "--shard",
    default="0/1",
    show_default=True,
    metavar="i/N",
    help="Evaluate instances whose index %% N == i (for several processes/machines).",
)
@meta_option("Checkpoint metadata (method, step, tokens, ...) when the folder lacks it.")
@click.option(
    "--base-model",
    default=None,
    metavar="DIR",
    help="PEFT adapter folders: the base checkpoint to apply them to (default: the "
    "base_model_name_or_path in their adapter_config.json).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="hf backend: prompts per generate call.",
)
@click.option("--dtype", default=None, help="hf, vllm backends: float32, bfloat16, float16.")
@click.option("--device", default=None, help="hf backend: cpu, cuda, cuda:1 ...")
@click.option(
    "--chat-template",
    default=None,
    help="hf, vllm backends: a Jinja chat template string or file, or 'plain'.",
)
@task_option()
@click.option(
    "--resume/--restart",
    default=True,
    show_default=True,
    help="Skip complete identical runs and resume interrupted ones, or start afresh.",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress on stderr (the table and warnings are still printed).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the runs' summaries as one JSON document on stdout (the table and run "
    "folders go to stderr), for scripts and pipes.",
)
@threads_option
def eval_command(**kw: Any) -> None:
    """Evaluate a checkpoint (or a series) on task splits; prints success with 95% intervals.

    Each checkpoint x task x split becomes a run folder (run.json + episodes.jsonl) in
    --runs-dir. Re-running the same command skips complete runs and resumes interrupted ones
    (nothing lost or doubled).

    \b
    Examples:
      gpbench eval --model ckpt/ --split ood-rule
      gpbench eval --model 'ckpts/sft/checkpoint-*' --task gp-l --split id --split ood-rule
      gpbench eval --model reference:0.3 --backend scripted --split ood-rule
      gpbench eval --backend vllm --model ckpt/ --backend-opt tensor_parallel_size=2
      gpbench eval --backend openai --base-url http://localhost:8000/v1 --model ckpt/

    Data parallel: run one process per GPU, each with its own --shard i/N, then
    `gpbench merge` the run folders.

    Progress goes to stderr per turn: requests answered of the turn, tokens generated,
    episodes finished and the time left (a live line on a terminal, else a line every 30 s).
    After every turn the answers of the episodes still in flight are on disk, so a killed run
    loses at most the turn in progress, and a run folder takes one writer at a time.
    """
    from gpbench.harness.backends import Sampling
    from gpbench.harness.evaluate import EvalConfig, evaluate, parse_shard

    # Before any model loads (torch takes its inter-op count once); backends that run no model
    # in this process need no torch import for it.
    if kw["backend"] != "scripted":
        _check_not_a_policy(kw["model"])
    in_process = kw["backend"] not in ("scripted", "openai")
    (apply_threads if in_process else resolve_threads)(kw["threads"])
    settings: dict[str, Any] = {"batch_size": kw["batch_size"]}
    for name in ("dtype", "device", "chat_template"):
        if kw[name] is not None:
            settings[name] = kw[name]
    settings.update(parse_pairs(kw["backend_pairs"], "--backend-opt", "--backend-opt seed=1"))
    if kw["backend"] == "openai":
        settings["base_url"] = kw["base_url"]
        settings["api_key"] = kw["api_key"]
    elif kw["base_url"] is not None:
        raise ConfigError("--base-url is for --backend openai")
    sampling = Sampling(kw["temperature"], kw["top_p"], kw["max_tokens"])
    if kw["paper"]:
        _check_paper_flags(kw, click.get_current_context())
        kw["mode"] = "reference"
        if kw["backend"] == "scripted":  # no checkpoint, so no generation config: greedy
            sampling = Sampling(0.0, 1.0, PAPER_MAX_TOKENS)
        else:
            from gpbench.harness.backends.hf import paper_sampling

            sampling = paper_sampling(Path(kw["model"]), PAPER_MAX_TOKENS, kw["base_model"])
    config = EvalConfig(
        model=kw["model"],
        base_model=kw["base_model"],
        backend=kw["backend"],
        tasks=tuple(kw["tasks"]),
        splits=tuple(kw["splits"]),
        n=kw["count"],
        seed=kw["seed"],
        samples=kw["samples"],
        sampling=sampling,
        sampling_seed=kw["sampling_seed"],
        max_attempts=kw["max_attempts"],
        mode=kw["mode"],
        runs_dir=kw["runs_dir"],
        shard=parse_shard(kw["shard"]),
        meta=parse_meta(kw["meta_pairs"]),
        backend_settings=settings,
        options=parse_options(kw["option_pairs"]),
        resume=kw["resume"],
    )
    if kw["base_model"] is not None:
        _check_base_model(kw["model"], kw["backend"])
    show = None if kw["quiet"] else ProgressPrinter(sys.stderr.isatty())
    try:
        results, skipped = evaluate(config, on_progress=show)
    finally:
        if show is not None:
            show.end_line()
    human = kw["as_json"]  # with --json, stdout carries the JSON alone
    click.echo(_table(results), err=human)
    for item in skipped:
        click.echo(f"skipped {item.task} {item.split}: {item.reason}", err=human)
    for result in results:
        note = " (already complete, reused)" if result.reused else ""
        click.echo(f"run {result.folder}{note}", err=human)
    click.echo(_seeds_line(results), err=human)
    if kw["as_json"]:
        click.echo(json_text(_json_document(results, skipped), indent=2))


def _check_not_a_policy(model: str) -> None:
    """``--model reference:0.3`` without ``--backend scripted`` names a scripted policy, not a
    folder: say so before the loader's "folder not found"."""
    looks_like_policy = model == "reference" or model.startswith(("reference:", "constant:"))
    if looks_like_policy and not Path(model).exists():
        raise ConfigError(
            f"--model {model} is a scripted policy, not a checkpoint; add --backend scripted"
        )


def _seeds_line(results: list[Any]) -> str:
    """Which seed did what: instance seeds pick the problems, the sampling seed the decoding."""
    if not results:
        return "no runs"
    specs = [read_run_spec(r.folder) for r in results]
    seeds = sorted({seed for spec in specs for seed in spec.get("seeds", [])})
    sampling = sorted({str(spec.get("sampling_seed")) for spec in specs})
    temperature = {spec.get("sampling", {}).get("temperature") for spec in specs}
    decoding = "greedy" if temperature == {0.0} else "sampled"
    return (
        f"seeds: instances drawn with --seed {', '.join(map(str, seeds))}; "
        f"decoding {decoding}, --sampling-seed {', '.join(sampling)}"
    )


def _json_document(results: list[Any], skipped: list[Any]) -> dict[str, Any]:
    return {
        "runs": [
            {
                "checkpoint": r.checkpoint,
                "task": r.task,
                "split": r.split,
                "folder": str(r.folder),
                "reused": r.reused,
                "summary": r.summary,
            }
            for r in results
        ],
        "skipped": [{"task": s.task, "split": s.split, "reason": s.reason} for s in skipped],
    }


class ProgressPrinter:
    """Progress on stderr: a line rewritten in place on a terminal, else a line when a run
    starts, every ``period`` seconds and when it ends."""

    def __init__(self, live: bool, period: float = 30.0) -> None:
        self.live = live
        self.period = period
        self._label: str | None = None
        self._printed_at = 0.0
        self._width = 0

    def __call__(self, event: RunProgress) -> None:
        text = format_progress(event)
        ended = event.episodes_done >= event.episodes_total
        if self.live:
            if event.label != self._label:
                self.end_line()
            click.echo("\r" + text.ljust(self._width), err=True, nl=False)
            self._width = len(text)
            self._label = event.label
            if ended:
                self.end_line()
            return
        now = time.monotonic()
        if event.label != self._label or ended or now - self._printed_at >= self.period:
            click.echo(text, err=True)
            self._printed_at = now
            self._label = None if ended else event.label

    def end_line(self) -> None:
        """Finish a live line (so what follows starts on a line of its own)."""
        if self.live and self._width:
            click.echo(err=True)
        self._width = 0
        self._label = None


def format_progress(event: RunProgress) -> str:
    """``[1/1] ckpt gp-l id: turn 3, 234/234 requests, 45,120 tokens, 12/234 episodes, ...``."""
    parts = []
    if event.turn:
        parts.append(f"turn {event.turn}, {event.requests_done}/{event.requests_total} requests")
        if event.tokens:
            parts.append(f"{event.tokens:,} tokens")
    parts.append(f"{event.episodes_done}/{event.episodes_total} episodes")
    if event.turn:
        parts.append(f"{_clock(event.elapsed_s)} elapsed")
    if event.eta_s is not None and event.episodes_done < event.episodes_total:
        parts.append(f"ETA {'<= ' if event.eta_is_bound else '~'}{_clock(event.eta_s)}")
    return f"{event.label}: {', '.join(parts)}"


def _clock(seconds: float) -> str:
    """``4:05`` or ``1:02:03``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


PAPER_MAX_TOKENS = 256
"""New tokens per answer in the paper's evaluation."""

# What --paper sets: flag, the one value an explicit flag may repeat (None: any value given
# contradicts it) and what --paper does instead, for the error.
_PAPER_FIXES: dict[str, tuple[str, object, str]] = {
    "mode": ("--mode", "reference", "scores in reference mode"),
    "max_tokens": ("--max-tokens", PAPER_MAX_TOKENS, "allows 256 new tokens"),
    "temperature": ("--temperature", None, "reads the checkpoint's generation config"),
    "top_p": ("--top-p", None, "reads the checkpoint's generation config"),
    "count": ("-n", None, "runs the paper's instances"),
    "seed": ("--seed", None, "runs the paper's instances"),
    "samples": ("--samples", 1, "draws one sample per instance"),
    "max_attempts": ("--max-attempts", None, "uses the task's budget"),
}


def _check_paper_flags(kw: dict[str, Any], context: click.Context) -> None:
    """Refuse, in one line, a flag given with ``--paper`` that contradicts what it sets."""
    for name, (flag, allowed, instead) in _PAPER_FIXES.items():
        if context.get_parameter_source(name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        if allowed is None or kw[name] != allowed:
            raise ConfigError(
                f"{flag} {kw[name]} contradicts --paper, which {instead}; drop {flag} or --paper"
            )


def _check_base_model(model: str, backend: str) -> None:
    """``--base-model`` is for adapter folders only: refuse it where it would be ignored."""
    if backend in ("scripted", "openai"):
        raise ConfigError(
            f"--base-model is for adapter folders loaded by gpbench, not --backend {backend}"
        )
    from gpbench.harness.evaluate import checkpoints
    from gpbench.harness.folders import ADAPTER_CONFIG_FILE

    if not any((Path(c) / ADAPTER_CONFIG_FILE).is_file() for c in checkpoints(model, backend)):
        raise ConfigError(
            f"--base-model is for PEFT adapter folders (adapter_config.json) and {model} holds "
            f"none; drop --base-model"
        )


def _table(results: list[Any]) -> str:
    header = (
        f"{'checkpoint':<22} {'task':<8} {'split':<12} {'n':>5} {'success % [95% CI]':<22} "
        f"{'1st try':>7} {'per-step':>8} {'trunc':>6}  statuses / flags"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        s = r.summary
        ok = s["success"]
        rate, low, high = (percent(x, 5, "") for x in (ok["rate"], *ok["ci95"]))
        ci = f"{rate} [{low},{high}]"
        step = s.get("per_step_accuracy")
        per_step = percent(step["rate"], 5, "") if step else "-"
        extra = dict(s["statuses"])
        extra.update(s["flags"])
        if "recognition_accuracy" in s:
            extra["recognition%"] = round(100 * s["recognition_accuracy"], 1)
        by_attempt = s.get("success_by_attempt")
        if by_attempt:
            extra["by-attempt%"] = "/".join(f"{100 * v:.0f}" for v in by_attempt.values())
        name = Path(r.checkpoint).name or r.checkpoint
        lines.append(
            f"{name[:22]:<22} {r.task:<8} {r.split:<12} {s['episodes']:>5} {ci:<22} "
            f"{percent(s['first_try_success']['rate'], 5, ''):>7} {per_step:>8} "
            f"{percent(s['truncation_rate'], 5, ''):>6}  "
            + ", ".join(f"{k}={v}" for k, v in extra.items())
        )
    return "\n".join(lines)
