"""Training items: one decision point of an instance each, named by a ref, and replayed attempts.

A task says how many decision points an instance has (``task.decision_points``) and starts an
episode at any of them (``task.episode(instance, start=point)``, with the true history so far:
the paper's training items). A training row carries an :class:`ItemRef` (task, split, seed,
index, options, point) rather than the instance itself: instances are pure functions of those,
so the reward function rebuilds them exactly.

>>> from gpbench.tasks.registry import get_task
>>> task = get_task("virl-l")
>>> inst = task.instance("train", 0, 0)
>>> ref = ref_of(task, inst, 2)
>>> again, instance, point = resolve(ref.to_json())
>>> env = again.episode(instance, start=point)
>>> replay(env, [task.reference_answers(inst)[2]]).solved
True
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpbench.records import Instance, Verdict
from gpbench.tasks.episode import EpisodeEnv
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
