"""``gpbench score``: score answers produced anywhere into a run folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from gpbench.errors import ConfigError, RecordSchemaError
from gpbench.harness.episodes import score_responses
from gpbench.harness.store import provenance, write_run
from gpbench.records import Episode, Instance
from gpbench.reports.summary import format_summary, summarize
from gpbench.serialization import from_dict, read_jsonl
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec


def _load_instances(task: TaskSpec, path: Path) -> dict[str, Instance]:
    instances: dict[str, Instance] = {}
    for number, data in read_jsonl(path):
        instance = from_dict(Instance, data, path=str(path), line=number)
        if instance.task != task.id:
            raise RecordSchemaError(
                str(path), number, f"instance of task {instance.task}, not {task.id}"
            )
        if instance.task_version != task.version:
            raise RecordSchemaError(
                str(path),
                number,
                f"instance of {task.id} version {instance.task_version}; score it with "
                f"{task.id}@{instance.task_version}",
            )
        instances[instance.uid] = instance
    if not instances:
        raise ConfigError(f"{path} holds no instances; write some with `gpbench generate`")
    return instances


def _load_responses(
    path: Path, instances: dict[str, Instance]
) -> list[tuple[Instance, int, list[str], list[bool] | None]]:
    rows = []
    seen: set[tuple[str, int]] = set()
    for number, data in read_jsonl(path):
        where = (str(path), number)
        uid = data.get("uid")
        if not isinstance(uid, str):
            raise RecordSchemaError(*where, 'each line needs "uid" (a string)')
        if uid not in instances:
            raise RecordSchemaError(*where, f"uid {uid!r} is not in the instances file")
        if "responses" in data:
            responses = data["responses"]
            if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
                raise RecordSchemaError(*where, '"responses" must be a list of strings')
        elif isinstance(data.get("response"), str):
            responses = [data["response"]]
        else:
            raise RecordSchemaError(
                *where, 'each line needs "response" (a string) or "responses" (a list of strings)'
            )
        sample = data.get("sample", 0)
        if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
            raise RecordSchemaError(*where, '"sample" must be a non-negative integer')
        if (uid, sample) in seen:
            raise RecordSchemaError(
                *where, f'uid {uid!r} sample {sample} appears twice; number samples with "sample"'
            )
        seen.add((uid, sample))
        truncated = _truncation(data.get("output_truncated"), len(responses), where)
        rows.append((instances[uid], sample, responses, truncated))
    if not rows:
        raise ConfigError(f"{path} holds no responses")
    return rows


def _truncation(value: Any, n: int, where: tuple[str, int]) -> list[bool] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return [value] * n
    if isinstance(value, list) and len(value) == n and all(isinstance(v, bool) for v in value):
        return value
    raise RecordSchemaError(
        *where, '"output_truncated" must be true/false or one boolean per response'
    )


@click.command("score")
@click.argument("task_name", metavar="TASK")
@click.option(
    "--instances",
    "instances_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Instances file written by `gpbench generate` (JSON lines).",
)
@click.option(
    "--responses",
    "responses_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help='JSON lines: {"uid", "response"} or {"uid", "responses": [attempt, ...]}; '
    'optional "sample" and "output_truncated".',
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Run folder to write (run.json + episodes.jsonl).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=None,
    help="Verification budget per episode. Default: the task's (paper: 5 for GeneralPoints).",
)
@click.option(
    "--mode",
    type=click.Choice(["gpbench", "reference"]),
    default="gpbench",
    show_default=True,
    help="reference: the paper code's scoring, quirks included (whitespace illegal, float check).",
)
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Also write the summary as JSON to this file ('-' for stdout).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
def score(
    task_name: str,
    instances_path: Path,
    responses_path: Path,
    out_dir: Path,
    max_attempts: int | None,
    mode: str,
    summary_json: Path | None,
    overwrite: bool,
) -> None:
    """Score answers produced by any tool into a run folder, and print a summary.

    Attempts are judged in order; an episode stops at its first correct attempt. Attempts past
    the budget are not scored, and an episode that spends the whole budget without success gets
    the budget penalty (-1). A transcript shorter than the budget that never succeeds ends as
    `responses_ended` without the penalty: pass --max-attempts 1 to score single answers the
    way the paper scores one-shot evaluation.

    \b
    Example:
      gpbench score gp-l --instances out/gp-l/id.jsonl --responses resp.jsonl -o runs/mine/
    """
    task = get_task(task_name)
    if mode not in task.verifier_modes:
        raise ConfigError(
            f"{task.id} has no verifier mode {mode!r} ({', '.join(task.verifier_modes)})"
        )
    budget = max_attempts or task.max_attempts
    instances = _load_instances(task, instances_path)
    rows = _load_responses(responses_path, instances)
    episodes: list[Episode] = [
        score_responses(
            task, inst, responses, budget=budget, sample=sample, mode=mode, truncated=truncated
        )
        for inst, sample, responses, truncated in rows
    ]
    splits = sorted({e.split for e in episodes})
    spec = {
        "kind": "gpbench-run",
        "backend": {"name": "external"},
        "tasks": {task.id: task.version},
        "splits": splits,
        "seeds": sorted({e.seed for e in episodes}),
        "max_attempts": budget,
        "verifier_mode": mode,
        "inputs": {"instances": str(instances_path), "responses": str(responses_path)},
        "command": " ".join(["gpbench", *sys.argv[1:]]),
        **provenance(),
    }
    write_run(out_dir, spec, episodes, overwrite=overwrite)
    summary = summarize(
        episodes,
        recognition=getattr(task, "checks_cards", False),
        per_step=task.multi_decision,
    )
    missing = len(instances) - len({e.uid for e in episodes})
    title = f"{task.id}@{task.version} {', '.join(splits)}  (mode {mode}, budget {budget})"
    click.echo(format_summary(title, summary))
    if missing:
        click.echo(f"  not scored        {missing} instances had no response")
    click.echo(f"wrote {out_dir}/run.json and episodes.jsonl ({len(episodes)} episodes)")
    if summary_json is not None:
        payload = json.dumps({"task": task.id, "splits": splits, **summary}, indent=2)
        if str(summary_json) == "-":
            click.echo(payload)
        else:
            summary_json.write_text(payload + "\n", encoding="utf-8")
