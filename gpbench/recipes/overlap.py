"""How many evaluation instances a training file already holds, by canonical content.

Two problems are the same when the task's :meth:`~gpbench.tasks.spec.TaskSpec.content_key` is
equal: sorted card values, target and rule for GeneralPoints (so a hand in another order, with
other suits or with K where the eval has Q under J/Q/K=10, is the same problem); city and
route endpoints for V-IRL.

Reading the training file (JSON lines, leniently: a line that cannot be read is counted and
skipped, and only a file of which no line can be read is an error):

- a gpbench instance line (as ``gpbench generate`` writes: ``task``, ``problem``, ...): its
  content key, computed by its own task;
- a chat line: ``{"messages": [...]}``, ``{"prompt": ..., "completion": ...}`` (messages or
  strings) or ``{"text": ...}``. GeneralPoints: the hand is read from the paper's prompt
  (``Cards: [...]``, the J/Q/K rule sentence, the target; a gp-vl prompt has no card list, so
  the assistant answer's ``"cards"`` are used), giving the same content key. V-IRL: a chat
  line holds no city id, so its ``[Instruction]`` block is compared with each evaluation
  route's instructions (equal instructions mean the same route in practice). A line of the
  other task family, or without a readable problem, is skipped.

>>> from gpbench.tasks.registry import get_task
>>> task = get_task("gp-l")
>>> inst = task.instance("id-heldout", 42, 0)
>>> chat_keys(task, {"messages": inst.messages}) == {task.content_key(inst)}
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpbench.errors import GpbenchError, UnknownTaskError
from gpbench.records import Instance
from gpbench.serialization import from_dict, parse_json
from gpbench.tasks.answers import extract_field
from gpbench.tasks.general_points import OOD_RULE, TRAINING_RULE, hand_values
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

_TARGET = re.compile(r"expert (\d{1,6}) points card game player")
_RULE = re.compile(r"'J', 'Q', and 'K' count as '(\d+)'(, '(\d+)', and '(\d+)' respectively)?")
_CARDS = re.compile(r"Cards:\s*\[([^\]\n]{0,200})\]")
_RANK = re.compile(r"(10|[2-9AJQK])")
_INSTRUCTION = re.compile(r"\[Instruction\]\n(.*?)\n\s*\n\[", re.DOTALL)
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


def _family(task: TaskSpec) -> str:
    return "gp" if task.id.startswith("gp-") else "virl"


def _normalize(text: str) -> str:
    return " ".join(text.split())


def instruction_key(instructions: str) -> str:
    """The key of a V-IRL route by its instruction text (whitespace-insensitive)."""
    return f"virl-instructions/{_normalize(instructions)}"


def eval_keys(task: TaskSpec, instance: Instance) -> set[str]:
    """The keys under which an instance can be found in a training file."""
    keys = {task.content_key(instance)}
    if _family(task) == "virl":
        keys.add(instruction_key("\n".join(instance.problem["instructions"])))
    return keys


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


def _gp_key(task: TaskSpec, prompt: str, answer: str) -> str | None:
    """The content key of the hand a GeneralPoints chat example poses, or None."""
    target = _TARGET.search(prompt)
    rule_match = _RULE.search(prompt)
    if target is None or rule_match is None:
        return None
    rule = OOD_RULE if rule_match.group(2) else TRAINING_RULE
    if rule == TRAINING_RULE and rule_match.group(1) != "10":
        return None  # a rule gpbench does not generate
    cards_match = _CARDS.search(prompt)
    if cards_match is not None:
        ranks = _RANK.findall(cards_match.group(1))
    else:
        listed = extract_field(answer, "cards")
        ranks = [str(c) for c in listed] if isinstance(listed, list) else []
    if len(ranks) != 4:
        return None
    try:
        values = hand_values(ranks, rule)
    except ValueError:
        return None
    problem = {"values": values, "target": int(target.group(1)), "rule": rule}
    probe = Instance("", task.id, task.version, "", 0, 0, problem, {}, {}, [])
    return task.content_key(probe)


def chat_keys(task: TaskSpec, data: Mapping[str, Any]) -> set[str]:
    """Keys of the problem a chat line poses (empty when none of ``task``'s family is found)."""
    prompt, answer = _chat_texts(data)
    if _family(task) == "gp":
        key = _gp_key(task, prompt, answer)
        return {key} if key else set()
    match = _INSTRUCTION.search(prompt)
    return {instruction_key(match.group(1))} if match else set()


def instance_keys(task: TaskSpec, data: Mapping[str, Any], *, path: str, line: int) -> set[str]:
    """Keys of a gpbench instance line, computed by its own task (empty when that task is
    unknown or of another family than ``task``, or its problem cannot be read)."""
    instance = from_dict(Instance, dict(data), path=path, line=line)
    try:
        own = get_task(f"{instance.task}@{instance.task_version}")
    except UnknownTaskError:
        return set()
    if _family(own) != _family(task):
        return set()
    try:
        return eval_keys(own, instance)
    except (KeyError, TypeError, ValueError):
        return set()


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


def _primary(keys: set[str]) -> str:
    """One key per problem: V-IRL by its instructions (what chat and instance lines share)."""
    by_text = sorted(k for k in keys if k.startswith("virl-instructions/"))
    return by_text[0] if by_text else sorted(keys)[0]


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
    found.problems.add(_primary(keys))


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
        if eval_keys(task, instance) & training.keys
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
