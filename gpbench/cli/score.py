"""``gpbench score``: score answers produced anywhere into a run folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from gpbench.cli.completion import complete_task
from gpbench.errors import ConfigError, GpbenchError, RecordSchemaError
from gpbench.harness.transcripts import score_responses
from gpbench.harness.writer import write_run
from gpbench.records import Episode, Instance
from gpbench.runs.folder import provenance
from gpbench.runs.summary import format_summary, summarize
from gpbench.serialization import (
    check_writable,
    from_dict,
    read_jsonl,
    to_dict,
    to_json,
    write_text_atomic,
)
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec


def _load_instances(task: TaskSpec, path: Path) -> dict[str, Instance]:
    instances: dict[str, Instance] = {}
    lines: dict[str, int] = {}
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
        _check_generated(task, instance, str(path), number)
        if instance.uid in lines:
            raise RecordSchemaError(
                str(path),
                number,
                f"instance {instance.index} appears twice (also line "
                f"{lines[instance.uid]}); give each instance once",
            )
        lines[instance.uid] = number
        instances[instance.uid] = instance
    if not instances:
        raise ConfigError(f"{path} holds no instances; write some with `gpbench generate`")
    return instances


def _check_generated(task: TaskSpec, instance: Instance, path: str, number: int) -> None:
    """Refuse an instance line that is not what the task generates for its key.

    Scores are only comparable across runs when every instance is the task's own: an edited
    hand or reference would be scored as if it were. The key (split, seed, index and the
    options recorded in ``params``) is regenerated and the canonical JSON of both compared.
    """
    where = (path, number)
    seed, index = instance.seed, instance.index
    if not _is_int(seed) or not _is_int(index) or index < 0:
        raise RecordSchemaError(
            *where,
            f'"seed" must be an integer and "index" one >= 0, got {_snippet(seed)} and '
            f"{_snippet(index)}",
        )
    if not isinstance(instance.split, str) or not isinstance(instance.params, dict):
        raise RecordSchemaError(*where, '"split" must be a string and "params" an object')
    options = {name: instance.params[name] for name in task.options if name in instance.params}
    try:
        expected = task.instance(instance.split, instance.seed, instance.index, options)
    except GpbenchError as exc:
        raise RecordSchemaError(*where, f"its key cannot be generated: {exc}") from None
    try:
        same = to_json(instance) == to_json(expected)
    except RecursionError:
        raise RecordSchemaError(*where, "nested too deeply to be an instance") from None
    if same:
        return
    # The uid hashes the key, so it differs whenever the key was edited: name it only when
    # nothing else differs (the field that was edited tells more).
    given, generated = to_dict(instance), to_dict(expected)
    field = _first_difference(
        {**given, "uid": None}, {**generated, "uid": None}, ""
    ) or _first_difference(given, generated, "")
    raise RecordSchemaError(
        *where,
        f"instance {instance.index} is not what {task.id}@{task.version} generates for its key "
        f"({instance.split}, seed {instance.seed}, index {instance.index}): {field} holds "
        f"{_snippet(_at(given, field))}, the task gives "
        f"{_snippet(_at(generated, field))}; score instances as `gpbench generate` "
        "wrote them",
    )


def _first_difference(given: Any, expected: Any, path: str) -> str:
    """The path (``problem.cards[2]``) of the first place ``given`` differs from ``expected``.

    Walks only where both hold containers of the same kind, so its depth is the generated
    instance's (small), however deep the file's value is. Types count: ``1``, ``1.0`` and
    ``true`` are different JSON.
    """
    if type(given) is not type(expected):
        return path
    if isinstance(expected, dict):
        for key, value in expected.items():
            inner = f"{path}.{key}" if path else key
            if key not in given:
                return inner
            found = _first_difference(given[key], value, inner)
            if found:
                return found
        extra = next((key for key in given if key not in expected), None)
        return "" if extra is None else (f"{path}.{extra}" if path else str(extra))
    if isinstance(expected, list):
        for i, (item, want) in enumerate(zip(given, expected, strict=False)):
            found = _first_difference(item, want, f"{path}[{i}]")
            if found:
                return found
        return f"{path}[{min(len(given), len(expected))}]" if len(given) != len(expected) else ""
    return "" if given == expected and repr(given) == repr(expected) else path


_MISSING = object()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _at(value: Any, path: str) -> Any:
    """The value at a path from :func:`_first_difference` (``_MISSING`` where there is none)."""
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(value, list) or index >= len(value):
                return _MISSING
            value = value[index]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _snippet(value: Any) -> str:
    """A short, safe rendering of a value from a file (never a deep repr)."""
    if value is _MISSING:
        return "nothing"
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
        if "responses" in data and "response" in data:
            raise RecordSchemaError(
                *where, 'give "response" (one answer) or "responses" (every attempt), not both'
            )
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
@click.argument("task_name", metavar="TASK", shell_complete=complete_task)
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
    help="reference: the paper code's rewards, reasons and feedback exactly (strict extraction, "
    "whitespace illegal, float check, its prefix rules); gpbench: the documented lenient reading.",
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
    json_to_stdout = summary_json is not None and str(summary_json) == "-"
    if summary_json is not None and not json_to_stdout:
        check_writable(summary_json, "--summary-json")  # before anything is scored or written
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
    summary = summarize(
        episodes,
        recognition=task.reports_recognition,
        per_step=task.multi_decision,
    )
    spec["summary"] = summary  # run.json carries it, as gpbench eval's does
    try:
        write_run(out_dir, spec, episodes, overwrite=overwrite)
    except OSError as exc:  # a full disk: write_run leaves no half-written folder
        raise GpbenchError(f"cannot write run folder {out_dir}: {exc.strerror or exc}") from None
    missing = len(instances) - len({e.uid for e in episodes})
    title = f"{task.id}@{task.version} {', '.join(splits)}  (mode {mode}, budget {budget})"
    # With --summary-json -, stdout carries the JSON alone (for pipes); the rest goes to stderr.
    click.echo(format_summary(title, summary), err=json_to_stdout)
    if missing:
        click.echo(f"  not scored        {missing} instances had no response", err=json_to_stdout)
    click.echo(
        f"wrote {out_dir}/run.json and episodes.jsonl ({len(episodes)} episodes)",
        err=json_to_stdout,
    )
    if summary_json is None:
        return
    payload = json.dumps({"task": task.id, "splits": splits, **summary}, indent=2)
    if json_to_stdout:
        click.echo(payload)
        return
    try:
        write_text_atomic(summary_json, payload + "\n", parents=True)
    except GpbenchError as exc:
        raise GpbenchError(f"{exc} (the run folder {out_dir} was written)") from None
