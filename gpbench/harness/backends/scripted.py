"""A deterministic backend that answers from the task's reference solver (tests, demos, benchmarks).

Policies:
    ``reference``: the reference answer of the request's instance (at its decision point for
        multi-decision tasks), so every episode is solved on the first try.
    ``reference:<rate>``: the same, but with probability ``rate`` the task's plausible wrong
        answer (:meth:`TaskSpec.wrong_answer`), decided per request by a keyed stream of
        ``(seed, uid, request seed, decision point, attempt)``: the same request always gets the
        same answer, whatever the batching, sharding or resuming.
    ``constant:<text>``: always ``text`` (scoring a fixed answer, hostile inputs).

>>> from gpbench.tasks.registry import get_task
>>> from gpbench.harness.backends import Request, Sampling
>>> task = get_task("gp-l")
>>> inst = task.instance("id", 42, 0)
>>> meta = {"uid": inst.uid, "instance": inst, "decision_point": 0, "attempt": 1}
>>> [done] = ScriptedBackend().generate([Request(inst.messages, [], 7, meta)], Sampling())
>>> task.verify(inst, done.text).correct
True
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from gpbench.errors import ConfigError
from gpbench.generators.rng import KeyedRng
from gpbench.harness.backends import Completion, Request, Sampling
from gpbench.records import Instance
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

POLICIES = ("reference", "reference:<rate>", "constant:<text>")

_UNIT = 1 << 53  # draws in [0, 2**53) map exactly onto the doubles in [0, 1)
_CACHE_LIMIT = 65_536  # reference answers kept per backend (episodes revisit their instance)


class ScriptedBackend:
    """Answers from ``request.meta["instance"]``; no model, microseconds per request.

    Args:
        policy: ``reference``, ``reference:<rate>`` or ``constant:<text>``.
        error_rate: probability of a wrong answer under ``reference`` (or give it in the policy).
        seed: seeds the wrong-answer decisions (independent of the harness's sampling seed).
    """

    name = "scripted"
    supports_images = True

    def __init__(self, policy: str = "reference", error_rate: float = 0.0, seed: int = 0) -> None:
        self.constant: str | None = None
        if policy.startswith("constant:"):
            self.constant = policy.removeprefix("constant:")
        elif policy.startswith("reference:"):
            rate_text = policy.removeprefix("reference:")
            try:
                rate = float(rate_text)
            except ValueError:
                raise ConfigError(
                    f"scripted policy {policy!r}: the error rate after 'reference:' must be a "
                    f"number in [0, 1], e.g. reference:0.3"
                ) from None
            if error_rate and error_rate != rate:
                raise ConfigError(
                    f"scripted policy {policy!r} and error_rate={error_rate} disagree; give one"
                )
            error_rate = rate
        elif policy != "reference":
            raise ConfigError(
                f"unknown scripted policy {policy!r} (choices: {', '.join(POLICIES)})"
            )
        if not 0.0 <= error_rate <= 1.0:
            raise ConfigError(f"error_rate must be in [0, 1], got {error_rate}")
        self.policy = policy
        self.error_rate = float(error_rate)
        self.seed = int(seed)
        self._threshold = round(self.error_rate * _UNIT)
        self._answers: dict[tuple[str, int], list[str]] = {}

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        """One scripted answer per request (``sampling`` is accepted for the protocol)."""
        del sampling
        if self.constant is not None:
            done = Completion(self.constant, "stop")
            return [done] * len(requests)
        return [
            Completion(text=self._answer(request), finish_reason="stop") for request in requests
        ]

    def describe(self) -> dict[str, Any]:
        """The policy, error rate and seed (everything that decides the answers)."""
        return {
            "backend": self.name,
            "policy": self.policy,
            "error_rate": self.error_rate,
            "seed": self.seed,
        }

    def identity(self) -> dict[str, Any]:
        """The policy, error rate and seed: another error rate is another run, never a reused one."""
        # ``reference:0.3`` and ``reference`` with error_rate=0.3 answer alike: one identity.
        policy = "reference" if self.constant is None else f"constant:{self.constant}"
        return {"policy": policy, "error_rate": self.error_rate, "seed": self.seed}

    def close(self) -> None:
        """Forget cached reference answers."""
        self._answers.clear()

    def _answer(self, request: Request) -> str:
        meta = request.meta
        instance = meta.get("instance")
        if not isinstance(instance, Instance):
            raise ConfigError(
                "the scripted reference policy needs request.meta['instance'] (an Instance); "
                "use policy constant:<text> for requests without one"
            )
        point = int(meta.get("decision_point", 0))
        attempt = int(meta.get("attempt", 1))
        reference = self._references(instance)[point]
        if self._threshold and self._wrong(instance.uid, request.seed, point, attempt):
            task = _task_of(instance.task, instance.task_version)
            return task.wrong_answer(instance, reference, point)
        return reference

    def _references(self, instance: Instance) -> list[str]:
        key = (instance.uid, instance.task_version)
        answers = self._answers.get(key)
        if answers is None:
            if len(self._answers) >= _CACHE_LIMIT:
                self._answers.clear()  # bounded memory on million-instance runs
            answers = _task_of(instance.task, instance.task_version).reference_answers(instance)
            self._answers[key] = answers
        return answers

    def _wrong(self, uid: str, seed: int, point: int, attempt: int) -> bool:
        if self._threshold >= _UNIT:
            return True
        # The decision point is in the key so that errors at successive points of one route are
        # independent (with the attempt alone, attempt 1 would fail at every point or at none).
        rng = KeyedRng(f"scripted/{self.seed}/{uid}/{seed}/{point}/{attempt}")
        return rng.below(_UNIT) < self._threshold


@functools.lru_cache(maxsize=64)
def _task_of(task_id: str, version: int) -> TaskSpec:
    """The registered task an instance was generated by (looked up once per task and version)."""
    return get_task(f"{task_id}@{version}")
