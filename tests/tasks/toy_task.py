"""A toy task, written as a new task's author would: one module implementing the TaskSpec duties.

``toy-sum``: add two numbers. ``train`` and ``id`` draw them below 10, ``ood-big`` from 10 to 99.
An answer is the sum as a number; ``train_range_answer`` flags an ood-big answer below 19, the
largest sum the training range holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gpbench.generators.rng import KeyedRng
from gpbench.records import Instance, Verdict
from gpbench.tasks.spec import SplitSpec, TaskSpec, split_spec

_PROMPT = "What is {a} + {b}? Answer with the number only."
_ASKED = re.compile(r"What is (\d{1,4}) \+ (\d{1,4})\?")


class ToySum(TaskSpec):
    """toy-sum: the sum of two numbers."""

    id = "toy-sum"
    version = 1
    modality = "text"
    description = "add two numbers (a toy task for tests)"
    splits: Mapping[str, SplitSpec] = {
        s.name: s
        for s in (
            split_spec("train", "numbers below 10", 16, 0, low=0, high=9),
            split_spec("id", "numbers below 10", 8, 42, low=0, high=9),
            split_spec("ood-big", "numbers from 10 to 99", 8, 42, low=10, high=99),
        )
    }
    max_attempts = 2
    rl_lambda = 6.0
    overlap_family = "toy-sum"
    memorization_flags: Mapping[str, tuple[str, ...]] = {"train_range_answer": ("ood-big",)}

    def build_instance(
        self,
        split: SplitSpec,
        seed: int,
        index: int,
        options: Mapping[str, Any],
        key: str,
        uid: str,
    ) -> Instance:
        """Two numbers of the split's range, drawn from the instance key."""
        rng = KeyedRng(key)
        low, high = int(split.params["low"]), int(split.params["high"])
        a, b = rng.between(low, high), rng.between(low, high)
        return Instance(
            uid=uid,
            task=self.id,
            task_version=self.version,
            split=split.name,
            seed=seed,
            index=index,
            problem={"a": a, "b": b},
            reference={"sum": a + b},
            params=self.params_for(split, options),
            messages=[{"role": "user", "content": _PROMPT.format(a=a, b=b)}],
        )

    def content_key(self, instance: Instance) -> str:
        """The two numbers in either order."""
        a, b = sorted((instance.problem["a"], instance.problem["b"]))
        return f"toy-sum/{a}+{b}"

    def chat_overlap_keys(self, prompt: str, answer: str) -> tuple[str, ...]:
        """The numbers the prompt asks to add."""
        match = _ASKED.search(prompt)
        if match is None:
            return ()
        a, b = sorted(int(n) for n in match.groups())
        return (f"toy-sum/{a}+{b}",)

    def answer_statuses(self, mode: str = "gpbench") -> tuple[str, ...]:
        """Right, a wrong number, or no number."""
        return ("correct", "wrong_sum", "unparseable")

    def verify(
        self,
        instance: Instance,
        answer: str,
        *,
        mode: str = "gpbench",
        output_truncated: bool = False,
    ) -> Verdict:
        """The first integer of the answer against the sum."""
        match = re.search(r"-?\d{1,9}", answer[:200])
        if match is None:
            return Verdict(False, "unparseable", ["unparseable"], -1.0, "Answer with a number.")
        value, expected = int(match.group()), instance.reference["sum"]
        if value == expected:
            return Verdict(True, "correct", ["correct"], 1.0, "", {"sum": value})
        flags = ["train_range_answer"] if instance.split == "ood-big" and value < 19 else []
        return Verdict(
            False, "wrong_sum", ["wrong_sum"], 0.0, "Not the sum.", {"sum": value}, flags
        )

    def reference_answer(self, instance: Instance) -> str:
        """The sum."""
        return str(instance.reference["sum"])

    def wrong_answer(self, instance: Instance, reference: str, point: int = 0) -> str:
        """The sum plus one."""
        return str(int(reference) + 1)
