"""An instance's decision points as single training items, and episodes that start at one of them.

GeneralPoints has one decision per instance; a V-IRL route has one per decision point, each
with the true observation/action history so far (the paper's training items). A training row
carries an :class:`ItemRef` (task, split, seed, index, options, point) rather than the instance
itself: instances are pure functions of those, so the reward function rebuilds them exactly.

>>> from gpbench.tasks.registry import get_task
>>> task = get_task("virl-l")
>>> inst = task.instance("train", 0, 0)
>>> env = start_at(task, inst, 2)
>>> env.step(task.reference_answers(inst)[2]).verdict.correct
True
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpbench.records import Instance, Verdict
from gpbench.tasks.episode import EpisodeEnv, Message
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec


@dataclass(frozen=True)
class ItemRef:
    """What a training item is a function of.

    Attributes:
        task: the task id pinned to its version (``gp-l@1``).
        split: the split the instance comes from (``train``).
        seed: the instance seed.
        index: the instance index.
        options: the task options the instance was generated with.
        point: the 0-based decision point (always 0 for GeneralPoints).
    """

    task: str
    split: str
    seed: int
    index: int
    options: dict[str, Any] = field(default_factory=dict)
    point: int = 0

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal refs give equal strings."""
        return json.dumps(
            {
                "task": self.task,
                "split": self.split,
                "seed": self.seed,
                "index": self.index,
                "options": self.options,
                "point": self.point,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ItemRef:
        """The ref a :meth:`to_json` string holds."""
        data = json.loads(text)
        return cls(
            data["task"], data["split"], data["seed"], data["index"], data["options"], data["point"]
        )


def ref_of(task: TaskSpec, instance: Instance, point: int = 0) -> ItemRef:
    """The ref of one decision point of an instance."""
    options = {name: instance.params[name] for name in task.options if name in instance.params}
    return ItemRef(
        f"{task.id}@{task.version}", instance.split, instance.seed, instance.index, options, point
    )


@functools.lru_cache(maxsize=4096)
def resolve(ref_json: str) -> tuple[TaskSpec, Instance, int]:
    """The task, instance and decision point a ref's JSON names (memoised: rewards call it often)."""
    ref = ItemRef.from_json(ref_json)
    task = get_task(ref.task)
    return task, task.instance(ref.split, ref.seed, ref.index, ref.options), ref.point


def point_count(task: TaskSpec, instance: Instance) -> int:
    """Decision points in an instance (1 for one-decision tasks)."""
    return len(instance.problem["points"]) if task.multi_decision else 1


def start_at(
    task: TaskSpec,
    instance: Instance,
    point: int,
    *,
    budget: int | None = None,
    mode: str = "gpbench",
) -> EpisodeEnv:
    """An episode positioned at decision point ``point``, with its prompt (and history) ready."""
    if not 0 <= point < point_count(task, instance):
        raise ValueError(f"{instance.uid} has no decision point {point}")
    env = task.episode(instance, budget=budget, mode=mode)
    if point:
        env.decision_point = point
        env.attempt = 0
        env.messages = env.point_messages()
    return env


def point_messages(task: TaskSpec, instance: Instance, point: int) -> list[Message]:
    """The prompt at a decision point, as the evaluation harness shows it."""
    return start_at(task, instance, point).messages


@dataclass(frozen=True)
class Replay:
    """A decision point played out over a sequence of attempts.

    Attributes:
        reward: the sum of step rewards: each attempt's verdict reward, plus the task's budget
            penalty when the attempts used up the budget without a correct one (the paper's
            multi-turn return).
        verdicts: the verdict of each attempt that was judged (attempts after a correct one, or
            beyond the budget, are not).
        solved: an attempt was correct.
    """

    reward: float
    verdicts: list[Verdict]
    solved: bool


def replay(env: EpisodeEnv, attempts: Sequence[str]) -> Replay:
    """Judge attempts in order at ``env``'s decision point until one is correct or the budget ends."""
    total = 0.0
    verdicts: list[Verdict] = []
    for answer in attempts:
        step = env.step(answer)
        total += step.reward
        verdicts.append(step.verdict)
        if step.verdict.correct or step.terminated:
            break
    return Replay(total, verdicts, any(v.correct for v in verdicts))
