"""Run-folder builders for the report tests: a checkpoint series with metadata, and small runs.

Runs are real: the scripted backend (``reference:<error rate>``) drives ``gpbench.harness``'s
evaluation, or recorded answers are scored by the tasks' verifiers; the run folders are then
rewritten with :func:`gpbench.harness.writer.write_run` to carry a checkpoint's identity and
training metadata, as ``gpbench eval`` records it for a real checkpoint folder.

The gp-l study: an initial checkpoint and two SFT and two RL checkpoints, on ``id`` and
``ood-rule``. SFT gets better in distribution and worse out of it, more and more of its OOD
failures applying the training rule (J/Q/K = 10); RL improves on both.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpbench.generators.cards import card_value, rank_from_name, solve
from gpbench.generators.rng import KeyedRng
from gpbench.harness.evaluate import EvalConfig, evaluate
from gpbench.harness.transcripts import score_responses
from gpbench.harness.writer import write_run
from gpbench.records import Episode, Instance
from gpbench.runs.folder import provenance
from gpbench.runs.read import read_episodes, read_run_spec
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

Answers = Callable[[TaskSpec, Instance], list[str]]


@dataclass(frozen=True)
class StudyCheckpoint:
    """One checkpoint of the gp-l study and how it behaves."""

    name: str
    method: str
    step: int
    id_error: float  # scripted error rate on id
    ood_correct: float  # share of ood-rule instances solved at the first try
    ood_memorized: float  # share of failed ood-rule attempts that apply the training rule


STUDY = (
    StudyCheckpoint("init", "init", 0, 0.5, 0.45, 0.2),
    StudyCheckpoint("sft-100", "sft", 100, 0.3, 0.3, 0.5),
    StudyCheckpoint("sft-200", "sft", 200, 0.1, 0.15, 0.8),
    StudyCheckpoint("rl-100", "rl", 100, 0.4, 0.55, 0.15),
    StudyCheckpoint("rl-200", "rl", 200, 0.3, 0.65, 0.1),
)
STUDY_N = 40
ID_BUDGET = 2  # a small budget on id, so that in-distribution success differs per checkpoint
PARAMETERS = 1_000_000
INIT_TOKENS = 50_000
TOKENS_PER_STEP = 1_000


def study_metadata(c: StudyCheckpoint) -> dict[str, Any]:
    """Checkpoint metadata as a recipe writes it (method, step, tokens, parameter count)."""
    return {
        "path": f"/ckpts/{c.method}/{c.name}",
        "method": c.method,
        "step": c.step,
        "tokens_seen": c.step * TOKENS_PER_STEP,
        "init_tokens": INIT_TOKENS,
        "parameter_count": PARAMETERS,
    }


def identify(
    source: Path, target: Path, checkpoint: str, metadata: dict[str, Any], **spec: Any
) -> Path:
    """Rewrite a run folder as a run of ``checkpoint`` with ``metadata`` (then drop the source)."""
    run_spec = read_run_spec(source)
    run_spec["checkpoint"] = {
        "checkpoint": checkpoint,
        "fingerprint": hashlib.sha256(checkpoint.encode()).hexdigest(),
        "metadata": metadata,
    }
    run_spec.update(spec)
    write_run(target, run_spec, list(read_episodes(source)))
    shutil.rmtree(source)
    return target


def scripted_run(
    root: Path,
    name: str,
    *,
    task: str,
    split: str,
    n: int,
    error_rate: float,
    checkpoint: str,
    metadata: dict[str, Any],
    samples: int = 1,
    seed: int | None = None,
    max_attempts: int | None = None,
) -> Path:
    """A run of the scripted backend at ``error_rate``, recorded as ``checkpoint``'s."""
    scratch = root / ".scratch" / name
    config = EvalConfig(
        model=f"reference:{error_rate}",
        backend="scripted",
        tasks=(task,),
        splits=(split,),
        n=n,
        seed=seed,
        samples=samples,
        max_attempts=max_attempts,
        runs_dir=scratch,
    )
    [result], _ = evaluate(config)
    target = identify(result.folder, root / name, checkpoint, metadata)
    shutil.rmtree(scratch)
    return target


def scored_run(
    root: Path,
    name: str,
    *,
    task_name: str,
    split: str,
    n: int,
    answers: Answers,
    checkpoint: str | None,
    metadata: dict[str, Any] | None = None,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
) -> Path:
    """A run of recorded answers (``answers(task, instance)`` gives each attempt in order)."""
    task = get_task(task_name)
    spec_split = task.split(split)
    chosen_seed = spec_split.paper_seed if seed is None else seed
    resolved = task.resolve_options(options or {})
    episodes: list[Episode] = [
        score_responses(task, instance, answers(task, instance), budget=task.max_attempts)
        for instance in task.dataset(split, chosen_seed, n, resolved)
    ]
    spec: dict[str, Any] = {
        "kind": "gpbench-run",
        "backend": {"name": "external"},
        "tasks": {task.id: task.version},
        "splits": [split],
        "seeds": [chosen_seed],
        "max_attempts": task.max_attempts,
        "verifier_mode": "gpbench",
        "options": resolved,
        "status": "complete",
        **provenance(),
    }
    if checkpoint is not None:
        spec["checkpoint"] = {
            "checkpoint": checkpoint,
            "fingerprint": hashlib.sha256(checkpoint.encode()).hexdigest(),
            "metadata": metadata or {},
        }
    write_run(root / name, spec, episodes)
    return root / name


def _draw(key: str) -> float:
    return KeyedRng(key).below(1 << 30) / (1 << 30)


def wrong(reference: str) -> str:
    """The reference answer with its formula replaced by a legal wrong one."""
    return reference.replace(reference.split('"formula": "')[1].split('"')[0], "1+1")


def training_rule_answer(instance: Instance) -> str | None:
    """A formula right under J/Q/K = 10 (wrong under the ood rule), or None if none exists."""
    cards = instance.problem["cards"]
    values = [card_value(rank_from_name(c), (10, 10, 10)) for c in cards]
    formula = solve(values, instance.problem["target"])
    if formula is None:
        return None
    return f'{{"cards": {cards!r}, "number": {values}, "formula": "{formula}={instance.problem["target"]}"}}'


def ood_answers(c: StudyCheckpoint) -> Answers:
    """ood-rule attempts of a study checkpoint: solved first try, after feedback, or never."""

    def answers(task: TaskSpec, instance: Instance) -> list[str]:
        reference = task.reference_answer(instance)
        u = _draw(f"study/{c.name}/{instance.uid}")
        if u < c.ood_correct:
            return [reference]
        if u < c.ood_correct + 0.1:
            return [wrong(reference), reference]
        attempts = []
        for attempt in range(task.max_attempts):
            memorized = training_rule_answer(instance)
            replay = _draw(f"study/{c.name}/{instance.uid}/{attempt}") < c.ood_memorized
            attempts.append(memorized if replay and memorized else wrong(reference))
        return attempts

    return answers


def misread_cards(task: TaskSpec, instance: Instance) -> list[str]:
    """gp-vl: misread the cards on every other instance's first attempt, then answer right."""
    reference = task.reference_answer(instance)
    if instance.index % 2:
        return [reference]
    cards = instance.problem["cards"]
    misread = reference.replace(json.dumps(cards), json.dumps(["2", "2", "2", "2"]), 1)
    assert misread != reference
    return [misread, reference]


def vocabulary_mixups(task: TaskSpec, instance: Instance) -> list[str]:
    """virl ood-rule: at each turn, first a compass word (the training vocabulary), then right."""
    out = []
    for reference in task.reference_answers(instance):
        if "turn_direction(" in reference:
            start = reference.index("turn_direction(")
            end = reference.index(")", start)
            out.append(reference[:start] + "turn_direction(north" + reference[end:])
        out.append(reference)
    return out


def raw_episodes(folder: Path) -> list[dict[str, Any]]:
    """A run's episodes as plain JSON (tests count from these, not through gpbench.reports)."""
    import json

    lines = (folder / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def run_named(root: Path, name: str) -> Path:
    """The run folder ``name`` under ``root``."""
    folder = root / name
    assert (folder / "run.json").is_file(), folder
    return folder


def flagged_failures(episodes: Sequence[dict[str, Any]], flag: str) -> tuple[int, int]:
    """(failed attempts carrying ``flag``, failed attempts), counted from raw JSON."""
    failed = [t for e in episodes for t in e["turns"] if not t["verdict"]["correct"]]
    return sum(flag in t["verdict"]["flags"] for t in failed), len(failed)


def build_study(base: Path) -> Path:
    """``runs/`` of the gp-l study: 5 checkpoints x (id, ood-rule), one run folder each."""
    root = base / "runs"
    for c in STUDY:
        metadata = study_metadata(c)
        scripted_run(
            root,
            f"{c.name}__gp-l__id",
            task="gp-l",
            split="id",
            n=STUDY_N,
            error_rate=c.id_error,
            max_attempts=ID_BUDGET,
            checkpoint=metadata["path"],
            metadata=metadata,
        )
        scored_run(
            root,
            f"{c.name}__gp-l__ood-rule",
            task_name="gp-l",
            split="ood-rule",
            n=STUDY_N,
            answers=ood_answers(c),
            checkpoint=metadata["path"],
            metadata=metadata,
        )
    shutil.rmtree(root / ".scratch", ignore_errors=True)
    return root


def build_mixed_runs(base: Path) -> Path:
    """Small runs of gp-vl, virl-l and virl-vl (text and image scenes, per-step metrics)."""
    root = base / "runs"
    scored_run(
        root,
        "vlm__gp-vl__ood-color",
        task_name="gp-vl",
        split="ood-color",
        n=6,
        answers=misread_cards,
        checkpoint="/ckpts/vlm",
        metadata={"method": "sft", "step": 10},
    )
    scored_run(
        root,
        "nav__virl-l__ood-rule",
        task_name="virl-l",
        split="ood-rule",
        n=3,
        answers=vocabulary_mixups,
        checkpoint="/ckpts/nav",
        metadata={"method": "sft", "step": 10},
    )
    scripted_run(
        root,
        "nav-vl__virl-vl__ood-spatial",
        task="virl-vl",
        split="ood-spatial",
        n=2,
        error_rate=0.2,
        checkpoint="/ckpts/nav-vl",
        metadata={"method": "rl", "step": 5},
    )
    shutil.rmtree(root / ".scratch", ignore_errors=True)
    return root
