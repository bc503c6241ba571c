"""How many evaluation instances a training file already holds, by canonical content.

Two problems are the same when the task's
:meth:`~gpbench.tasks.spec.TaskSpec.overlap_keys` meet: for GeneralPoints the content key (sorted
card values, target and rule, so a hand in another order, with other suits or with K where the
eval has Q under J/Q/K=10, is the same problem); for V-IRL the route's instructions and its city
and endpoints.

Reading the training file (JSON lines, leniently: a line that cannot be read is counted and
skipped, and only a file of which no line can be read is an error):

- a gpbench instance line (as ``gpbench generate`` writes: ``task``, ``problem``, ...): its
  content key, computed by its own task;
- a chat line: ``{"messages": [...]}``, ``{"prompt": ..., "completion": ...}`` (messages or
  strings) or ``{"text": ...}``: its prompt and answer text, read by the task's
  :meth:`~gpbench.tasks.spec.TaskSpec.chat_overlap_keys` (GeneralPoints reads the hand from the
  paper's prompt; V-IRL compares its ``[Instruction]`` block). A line of another task family
  (:attr:`~gpbench.tasks.spec.TaskSpec.overlap_family`), or without a readable problem, is
  skipped.

>>> from gpbench.tasks.registry import get_task
>>> task = get_task("gp-l")
>>> inst = task.instance("id-heldout", 42, 0)
>>> chat_keys(task, {"messages": inst.messages}) == (task.content_key(inst),)
True
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpbench.errors import GpbenchError, UnknownTaskError
from gpbench.records import Instance
from gpbench.serialization import from_dict, parse_json
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

MAX_EXAMPLES = 3
"""Skipped lines quoted in a report (the rest are only counted)."""


@dataclass(frozen=True)
class OverlapReport:
    """The overlap of one evaluation split with a training file.

    Attributes:
        task: the evaluation task id with its version.
        split: the evaluation split.
        seed: its instance seed.
        eval_instances: instances compared.
        overlapping: indices of evaluation instances whose problem the training file holds.
        training_lines: non-blank lines in the training file.
        instance_lines: lines read as gpbench instances.
        chat_lines: lines read as chat examples.
        distinct_problems: distinct problems (keys) found in the training file.
        skipped: lines that were not read, with ``skipped_examples`` quoting the first few.
    """

    task: str
    split: str
    seed: int
    eval_instances: int
    overlapping: list[int]
    training_lines: int
    instance_lines: int
    chat_lines: int
    distinct_problems: int
    skipped: int
    skipped_examples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Share of evaluation instances found in the training file."""
        return len(self.overlapping) / self.eval_instances if self.eval_instances else 0.0


def _texts(value: Any, roles: tuple[str, ...]) -> list[str]:
    """Text of messages (or a plain string) whose role is in ``roles``."""
    if isinstance(value, str):
        return [value]
    out: list[str] = []
    if not isinstance(value, list):
        return out
    for message in value:
        if not isinstance(message, Mapping) or message.get("role") not in roles:
            continue
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(
                str(p.get("text") or "")
                for p in content
                if isinstance(p, Mapping) and p.get("type") == "text"
            )
    return out


def _chat_texts(data: Mapping[str, Any]) -> tuple[str, str]:
    """(prompt text, answer text) of a chat line."""
    if "messages" in data:
        return (
            "\n".join(_texts(data["messages"], ("user", "system"))),
            "\n".join(_texts(data["messages"], ("assistant",))),
        )
    if "prompt" in data:
        answer = data.get("completion", data.get("response", data.get("answer", "")))
        return (
            "\n".join(_texts(data["prompt"], ("user", "system"))),
            "\n".join(_texts(answer, ("assistant",))),
        )
    text = data.get("text")
    return (text, text) if isinstance(text, str) else ("", "")


def chat_keys(task: TaskSpec, data: Mapping[str, Any]) -> tuple[str, ...]:
    """Keys of the problem a chat line poses (empty when none of ``task``'s family is found)."""
    prompt, answer = _chat_texts(data)
    return task.chat_overlap_keys(prompt, answer)


def instance_keys(
    task: TaskSpec, data: Mapping[str, Any], *, path: str, line: int
) -> tuple[str, ...]:
    """Keys of a gpbench instance line, computed by its own task (empty when that task is
    unknown or of another family than ``task``, or its problem cannot be read)."""
    instance = from_dict(Instance, dict(data), path=path, line=line)
    try:
        own = get_task(f"{instance.task}@{instance.task_version}")
    except UnknownTaskError:
        return ()
    if own.overlap_family != task.overlap_family:
        return ()
    try:
        return own.overlap_keys(instance)
    except (KeyError, TypeError, ValueError):
        return ()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their numbers; a line that is not UTF-8 fails the whole file."""
    if not path.is_file():
        raise GpbenchError(f"training file not found: {path}")
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise GpbenchError(
                        f"{path}:{number}: not UTF-8 text; give a UTF-8 JSON-lines file (one "
                        "example per line)"
                    ) from None
                if text.strip():
                    yield number, text
    except OSError as exc:
        raise GpbenchError(f"cannot read {path}: {exc.strerror or exc}") from None


@dataclass
class TrainingKeys:
    """What a training file holds, as problem keys, with counts of what was read."""

    keys: set[str] = field(default_factory=set)
    problems: set[str] = field(default_factory=set)
    lines: int = 0
    instance_lines: int = 0
    chat_lines: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    def skip(self, number: int, reason: str) -> None:
        """Count a line that was not read."""
        self.skipped += 1
        if len(self.skipped_examples) < MAX_EXAMPLES:
            self.skipped_examples.append(f"line {number}: {reason}")


def read_training_keys(path: Path, task: TaskSpec) -> TrainingKeys:
    """Read a training file leniently (see the module docstring)."""
    found = TrainingKeys()
    for number, text in _lines(path):
        found.lines += 1
        try:
            _read_line(found, task, text, str(path), number)
        except RecursionError:  # parsed, but too deep for what reads it (a hostile line)
            found.skip(number, "nested too deeply to read")
    if found.lines == 0:
        raise GpbenchError(f"{path} is empty; give a JSON-lines file with one example per line")
    if found.instance_lines + found.chat_lines == 0:
        raise GpbenchError(
            f"{path}: none of its {found.lines} lines holds a gpbench instance or a chat "
            f"example of a {task.id}-family problem ({found.skipped_examples[0]})"
        )
    return found


def _read_line(found: TrainingKeys, task: TaskSpec, text: str, path: str, number: int) -> None:
    """Count one line of a training file into ``found`` (its keys, or a skip with the reason)."""
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        found.skip(number, f"not valid JSON ({exc.msg})")
        return
    if not isinstance(data, dict):
        found.skip(number, "not a JSON object")
        return
    if "problem" in data and "task" in data:
        try:
            keys = instance_keys(task, data, path=path, line=number)
        except GpbenchError as exc:
            found.skip(number, str(exc))
            return
        if not keys:
            named = data["task"] if isinstance(data["task"], str) else type(data["task"]).__name__
            found.skip(number, f"an instance of {named[:40]!r}, not a {task.id}-family problem")
            return
        found.instance_lines += 1
    else:
        keys = chat_keys(task, data)
        if not keys:
            found.skip(number, f"no {task.id}-family problem found in it")
            return
        found.chat_lines += 1
    found.keys.update(keys)
    found.problems.add(keys[0])  # one key per problem: the one instance and chat lines share


def overlap(
    training: TrainingKeys,
    task: TaskSpec,
    split: str,
    seed: int,
    n: int,
    options: Mapping[str, Any] | None = None,
) -> OverlapReport:
    """Compare one evaluation split with what a training file holds."""
    hits = [
        instance.index
        for instance in task.dataset(split, seed, n, options)
        if training.keys.intersection(task.overlap_keys(instance))
    ]
    return OverlapReport(
        task=f"{task.id}@{task.version}",
        split=split,
        seed=seed,
        eval_instances=n,
        overlapping=hits,
        training_lines=training.lines,
        instance_lines=training.instance_lines,
        chat_lines=training.chat_lines,
        distinct_problems=len(training.problems),
        skipped=training.skipped,
        skipped_examples=list(training.skipped_examples),
    )
