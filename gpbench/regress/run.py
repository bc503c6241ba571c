"""The Python API behind ``gpbench regress``: reach, evaluate, compare, report, update.

Each selected checkpoint of the manifest is first located (``--model-root``, then its hub id or
path) and checked for a GPU when it needs one; one it cannot reach or run is skipped with the
reason. The others are evaluated afresh through :func:`gpbench.harness.evaluate.evaluate` (runs
are never reused: the point is to exercise today's stack), and every expectation is tested as
:mod:`gpbench.regress.checks` describes.

Exit codes (:meth:`Report.exit_code`):
    0 every checked expectation passed (``inconclusive`` allowed);
    3 a regression, or a reachable checkpoint that failed to load or run;
    4 nothing was checked, or a checkpoint named with ``--only`` was skipped.
    (gpbench's usage and manifest errors exit 1, as every gpbench command does.)
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import gpbench
from gpbench.errors import BackendUnavailableError, GpbenchError, one_line
from gpbench.harness.threads import ThreadCount, apply_threads, describe
from gpbench.regress.checks import (
    NEAR_ZERO_SUCCESS,
    Comparison,
    Observation,
    compare,
    first_statuses,
    holm,
    information,
    observe,
)
from gpbench.regress.manifest import Check, Entry, Expectation, Manifest
from gpbench.stats import percent

MANIFEST_NAME = "checkpoints.md"


def packaged_data() -> Path:
    """The folder shipped inside the gpbench package: checkpoints.md and the CPU reference.

    It is package data, so it is there in an installed wheel as much as in a checkout. In the
    repository its checkpoints.md is a link to the top-level checkpoints.md (the file people
    read and edit); building the wheel copies the content.
    """
    return Path(str(files("gpbench.regress") / "data"))


def packaged_manifest() -> Path:
    """The checkpoints.md shipped with gpbench: ``gpbench regress``'s default ``--manifest``."""
    return packaged_data() / MANIFEST_NAME


EXIT_OK = 0
EXIT_REGRESSION = 3
EXIT_NOT_CHECKED = 4
DEFAULT_TOLERANCE = 0.05
# Backends that run the model in this process, on its CPU threads when there is no GPU.
_IN_PROCESS = frozenset({"hf", "vllm"})
# Rate metrics --update records beside success when success is near zero.
_SIGNAL_METRICS = ("parse_rate", "truncation_rate")

Progress = Callable[[str, int, int], None]
GpuProbe = Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class CheckResult:
    """One check of one checkpoint: its run folder, its comparisons and every observed metric."""

    check: Check
    folder: Path
    comparisons: tuple[Comparison, ...]
    observed: dict[str, Observation]
    packages: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EntryResult:
    """A checkpoint that was evaluated (``error`` set when it failed to load or run)."""

    entry: Entry
    model: str
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None

    @property
    def regressions(self) -> list[tuple[CheckResult, Comparison]]:
        """The comparisons whose verdict is ``regression``."""
        return [(r, c) for r in self.checks for c in r.comparisons if c.verdict == "regression"]


@dataclass(frozen=True)
class Skip:
    """A checkpoint not evaluated, and why (``not reachable: ...``, ``needs a GPU: ...``)."""

    name: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """Everything one ``gpbench regress`` run found."""

    manifest: Path
    alpha: float
    results: tuple[EntryResult, ...]
    skipped: tuple[Skip, ...]
    only: tuple[str, ...] = ()
    threads: ThreadCount | None = None

    def exit_code(self) -> int:
        """0, 3 or 4 (see the module docstring)."""
        if any(r.error or r.regressions for r in self.results):
            return EXIT_REGRESSION
        if not self.results or (self.only and self.skipped):
            return EXIT_NOT_CHECKED
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        """The JSON summary (``--json``)."""
        checkpoints = []
        for result in self.results:
            checkpoints.append(
                {
                    "name": result.entry.name,
                    "model": result.model,
                    "status": "error" if result.error else "checked",
                    "error": result.error,
                    "regressions": len(result.regressions),
                    "checks": [
                        {
                            "task": r.check.task,
                            "split": r.check.split,
                            "run": str(r.folder),
                            "comparisons": [c.to_json() for c in r.comparisons],
                        }
                        for r in result.checks
                    ],
                }
            )
        return {
            "manifest": str(self.manifest),
            "alpha": self.alpha,
            "exit_code": self.exit_code(),
            "regressions": sum(len(r.regressions) for r in self.results),
            "errors": sum(bool(r.error) for r in self.results),
            "checkpoints": checkpoints,
            "skipped": [{"name": s.name, "reasons": list(s.reasons)} for s in self.skipped],
            "threads": describe(self.threads) if self.threads else None,
        }


def gpu_available() -> tuple[bool, str]:
    """Whether torch sees a CUDA GPU, and a few words on what was found."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if torch.cuda.is_available():
        return True, f"{torch.cuda.device_count()} CUDA device(s)"
    return False, "no CUDA GPU is visible"


def locate(entry: Entry, base: Path, model_root: Path | None) -> tuple[str | None, str]:
    """Where to load ``entry`` from: ``(model, "")``, or ``(None, why it is not reachable)``.

    Looked up in order: ``model_root/<name>``, ``model_root/<hub id or path>``,
    ``model_root/<last part of it>`` (each must hold config.json); then the entry's own path
    or hub id (the hub, or its local cache when ``HF_HUB_OFFLINE`` is set). A relative path is
    looked for in the manifest's folder ``base``, then in :func:`packaged_data` (so a copy of the
    packaged checkpoints.md elsewhere still finds the shipped reference).
    """
    if entry.kind == "policy":
        return entry.source, ""
    if model_root is not None:
        for candidate in (
            model_root / entry.name,
            model_root / entry.source,
            model_root / Path(entry.source).name,
        ):
            if (candidate / "config.json").is_file():
                return str(candidate), ""
    if entry.kind == "path":
        path = Path(entry.source).expanduser()
        if not path.is_absolute():
            shipped = packaged_data() / path
            path = base / path
            if not (path / "config.json").is_file() and (shipped / "config.json").is_file():
                return str(shipped), ""
        if (path / "config.json").is_file():
            return str(path), ""
        where = f" (nor under --model-root {model_root})" if model_root is not None else ""
        if path.is_dir():
            return None, f"{path} holds no config.json{where}"
        build = f"; build it with: {entry.build}" if entry.build else ""
        return None, f"path missing: {path}{where}{build}"
    return _hub(entry.source)


def run_regress(
    manifest: Manifest,
    *,
    only: Sequence[str] = (),
    model_root: Path | None = None,
    runs_dir: Path = Path("runs/regress"),
    progress: Progress | None = None,
    gpu: GpuProbe | None = None,
    threads: int | None = None,
) -> Report:
    """Evaluate the manifest's checkpoints (or those named in ``only``) and compare.

    ``gpu`` probes for a GPU (default :func:`gpu_available`, called once, only when a selected
    checkpoint needs one). ``threads``: CPU threads for the models run in this process
    (:func:`gpbench.harness.threads.apply_threads`; None: gpbench's default), applied before
    the first of them loads and recorded in the report.
    """
    entries = [manifest.entry(name) for name in only] if only else list(manifest.entries)
    gpu_state: tuple[bool, str] | None = None
    applied: ThreadCount | None = None
    results: list[EntryResult] = []
    skipped: list[Skip] = []
    for entry in entries:
        reasons = []
        if entry.needs_gpu:
            gpu_state = gpu_state or (gpu or gpu_available)()
            if not gpu_state[0]:
                reasons.append(f"needs a GPU: {gpu_state[1]}")
        # The manifest's real folder: the repository's checkpoints.md is a link into the package.
        model, why = locate(entry, manifest.path.resolve().parent, model_root)
        if model is None:
            reasons.append(f"not reachable: {why}")
        if reasons or model is None:
            skipped.append(Skip(entry.name, tuple(reasons)))
            continue
        if applied is None and entry.backend in _IN_PROCESS:
            applied = apply_threads(threads)
        try:
            checks = _evaluate(entry, model, manifest.alpha, runs_dir / entry.name, progress)
        except BackendUnavailableError as exc:
            skipped.append(Skip(entry.name, (f"backend {entry.backend} unavailable: {exc}",)))
            continue
        except GpbenchError as exc:
            results.append(EntryResult(entry, model, error=str(exc)))
            continue
        results.append(EntryResult(entry, model, checks))
    return Report(
        manifest.path, manifest.alpha, tuple(results), tuple(skipped), tuple(only), applied
    )


def updated_entries(
    manifest: Manifest, report: Report, tolerance: float = DEFAULT_TOLERANCE
) -> tuple[Entry, ...]:
    """The manifest's entries with expectations re-recorded from ``report``'s runs.

    For every evaluated check: each expected metric (and each paper figure, which becomes a tested
    expectation) gets the observed rate, keeping its tolerance; a check that expects a status rate
    gets one for every first-attempt status observed; where success is near zero, parse rate,
    truncation rate and status rates are added (the signal that remains). New metrics get
    ``tolerance``. Checkpoints not evaluated are left as they are.
    """
    done = {r.entry.name: r for r in report.results if not r.error}
    entries = []
    for entry in manifest.entries:
        result = done.get(entry.name)
        if result is None:
            entries.append(entry)
            continue
        by_label = {r.check.label: r for r in result.checks}
        checks = []
        for check in entry.checks:
            check_result = by_label.get(check.label)
            if check_result is None:
                checks.append(check)
                continue
            checks.append(_recorded_check(check, check_result, tolerance))
        entries.append(replace(entry, checks=tuple(checks)))
    return tuple(entries)


def format_table(report: Report) -> str:
    """The terminal table: one line per compared metric, then the skipped checkpoints."""
    header = (
        f"{'name':<20} {'task':<8} {'split':<11} {'metric':<26} {'expected ± tol':>15} "
        f"{'observed':>17} {'p (Holm)':>9}  verdict"
    )
    lines = [header, "-" * len(header)]
    for result in report.results:
        if result.error:
            lines.append(f"{result.entry.name:<20} error: {result.error}")
            continue
        for check_result in result.checks:
            check = check_result.check
            for c in check_result.comparisons:
                if c.tol is None:
                    expected = f"paper {percent(c.expected)}"
                else:
                    expected = f"{percent(c.expected)} ± {100 * c.tol:.1f}"
                observed = f"{percent(c.observed)} ({c.k}/{c.n})"
                verdict = c.verdict + (f" ({c.direction})" if c.direction else "")
                lines.append(
                    f"{result.entry.name[:20]:<20} {check.task:<8} {check.split:<11} "
                    f"{c.metric[:26]:<26} {expected:>15} {observed:>17} "
                    f"{_p(c.p_adjusted):>9}  {verdict}"
                )
    for skip in report.skipped:
        lines.append(f"skipped {skip.name}: {'; '.join(skip.reasons)}")
    return "\n".join(lines)


def summary_line(report: Report) -> str:
    """``regress: 1 checkpoint checked, 14 expectations: 14 pass, 0 regressions; 4 skipped``."""
    comparisons = [
        c for r in report.results for cr in r.checks for c in cr.comparisons if c.verdict != "info"
    ]
    counts = {v: sum(c.verdict == v for c in comparisons) for v in ("pass", "inconclusive")}
    regressions = sum(len(r.regressions) for r in report.results)
    errors = sum(bool(r.error) for r in report.results)
    checked = len(report.results) - errors
    text = (
        f"regress: {checked} checkpoint(s) checked, {len(comparisons)} expectation(s): "
        f"{counts['pass']} pass, {counts['inconclusive']} inconclusive, "
        f"{regressions} regression(s)"
    )
    if errors:
        text += f", {errors} failed to run"
    if report.skipped:
        text += f"; {len(report.skipped)} skipped"
    return text + f" (alpha {report.alpha:g} per checkpoint, Holm-adjusted)"


def write_json(report: Report, path: Path) -> None:
    """Write the JSON summary to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


# -- internals ---------------------------------------------------------------------------------


def _hub(repo: str) -> tuple[str | None, str]:
    try:
        import huggingface_hub
    except ImportError:
        return (
            None,
            f"{repo} is a hub id and huggingface_hub is not installed (pip install 'gpbench[hf]')",
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline:
        try:
            cached = huggingface_hub.try_to_load_from_cache(repo, "config.json")
        except Exception:  # a malformed cache entry is the same as none
            cached = None
        if isinstance(cached, str):
            return repo, ""
        return None, f"the hub is offline (HF_HUB_OFFLINE=1) and {repo} is not in the local cache"
    try:
        huggingface_hub.HfApi().model_info(repo, timeout=15)
    except Exception as exc:  # the hub client raises many types (network, 404, auth, gated)
        return None, f"hub unreachable for {repo}: {one_line(exc)}"
    return repo, ""


def _evaluate(
    entry: Entry, model: str, alpha: float, runs_dir: Path, progress: Progress | None
) -> tuple[CheckResult, ...]:
    from gpbench.harness.backends import Sampling
    from gpbench.harness.evaluate import EvalConfig, evaluate
    from gpbench.runs.read import read_episodes, read_run_spec

    # Checks that differ only in their split share one backend (one model load).
    groups: dict[tuple[Any, ...], list[Check]] = {}
    for check in entry.checks:
        group = (
            check.task,
            check.n,
            check.seed,
            check.samples,
            check.temperature,
            check.top_p,
            check.max_tokens,
            check.sampling_seed,
            check.budget,
            check.mode,
        )
        groups.setdefault(group, []).append(check)
    folders: dict[str, Path] = {}
    for checks in groups.values():
        first = checks[0]
        config = EvalConfig(
            model=model,
            backend=entry.backend,
            tasks=(first.task,),
            splits=tuple(c.split for c in checks),
            n=first.n,
            seed=first.seed,
            samples=first.samples,
            sampling=Sampling(first.temperature, first.top_p, first.max_tokens),
            sampling_seed=first.sampling_seed,
            max_attempts=first.budget,
            mode=first.mode,
            runs_dir=runs_dir,
            backend_settings=dict(entry.backend_settings),
            resume=False,  # a regression run exercises today's stack: never reuse a stored run
        )
        runs, _ = evaluate(config, progress)
        for run in runs:
            folders[f"{run.task}/{run.split}"] = run.folder
    results = []
    comparisons: list[Comparison] = []
    for check in entry.checks:
        folder = folders[check.label]
        episodes = list(read_episodes(folder))
        metrics = _metric_names(check, episodes)
        observed = {name: observe(episodes, name) for name in metrics}
        key = f"gpbench/regress/{entry.name}/{check.label}"
        tested = {e.metric for e in check.expect}
        rows = [compare(observed[e.metric], e, key=key) for e in check.expect]
        rows += [information(observed[m], r) for m, r in check.paper if m not in tested]
        comparisons.extend(rows)
        packages = read_run_spec(folder).get("packages") or {}
        results.append(CheckResult(check, folder, tuple(rows), observed, dict(packages)))
    # Holm over every tested comparison of the checkpoint: alpha is per checkpoint.
    adjusted = iter(holm(comparisons, alpha))
    return tuple(
        replace(r, comparisons=tuple(next(adjusted) for _ in r.comparisons)) for r in results
    )


def _metric_names(check: Check, episodes: list[Any]) -> list[str]:
    from gpbench.tasks.registry import get_task

    names = [e.metric for e in check.expect] + [m for m, _ in check.paper]
    names += ["success", "first_try_success", *_SIGNAL_METRICS]
    names += [f"status:{s}" for s in first_statuses(episodes)]
    if getattr(get_task(check.task), "multi_decision", False):
        names.append("per_step_accuracy")
    return list(dict.fromkeys(names))


def _recorded_check(check: Check, result: CheckResult, tolerance: float) -> Check:
    tol = {e.metric: e.tol for e in check.expect}
    metrics = [e.metric for e in check.expect] + [m for m, _ in check.paper]
    success = result.observed.get("success")
    near_zero = success is not None and success.rate < NEAR_ZERO_SUCCESS
    if near_zero:
        metrics += ["success", *_SIGNAL_METRICS]
    if near_zero or any(m.startswith("status:") for m in metrics):
        metrics += sorted(m for m in result.observed if m.startswith("status:"))
    expect = tuple(
        Expectation(m, round(result.observed[m].rate, 4), tol.get(m, tolerance))
        for m in dict.fromkeys(metrics)
    )
    packages = ", ".join(
        f"{name} {result.packages[name]}"
        for name in ("torch", "transformers", "vllm")
        if result.packages.get(name)
    )
    today = datetime.date.today().isoformat()
    recorded = f"gpbench {gpbench.__version__} run {today}" + (f" ({packages})" if packages else "")
    return replace(check, expect=expect, recorded=recorded)


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<1e-6" if p < 1e-6 else f"{p:.2g}" if p < 0.01 else f"{p:.3f}"
