"""The episode protocol every task offers, Gymnasium-style: ``reset()`` then ``step(answer)``.

The harness (evaluation) and the recipes (RL rollouts) drive episodes the same way: ask the model
for an answer to :attr:`EpisodeEnv.messages`, pass it to :meth:`EpisodeEnv.step`, repeat until
``terminated``. Running out of the verification budget terminates the episode with
``budget_exhausted`` (and the task's budget penalty in that step's reward); gpbench never asks
for an extra answer it would discard. ``truncated`` stays False: episodes here end only by their
own rules. An answer cut off at the token limit is flagged ``output_truncated`` in its verdict.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from gpbench.records import Instance, Verdict

Message = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """What one answer did to an episode.

    Attributes:
        verdict: the verifier's judgement of the answer.
        reward: the verdict's reward plus the budget penalty when this step spent the budget.
        terminated: the episode is over (solved, or out of budget).
        truncated: always False (kept apart from ``terminated`` as in Gymnasium).
        info: ``decision_point`` (0-based) and ``attempt`` (1-based within it), ``stop_reason``
            once terminated.
    """

    verdict: Verdict
    reward: float
    terminated: bool
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class EpisodeEnv(abc.ABC):
    """One episode on one instance."""

    def __init__(
        self, task: Any, instance: Instance, *, budget: int, penalty: float, mode: str
    ) -> None:
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        self.task = task
        self.instance = instance
        self.budget = budget
        self.penalty = penalty
        self.mode = mode
        self.terminated = False
        self.stop_reason: str | None = None
        self.decision_point = 0
        self.attempt = 0  # attempts made at the current decision point
        self.messages: list[Message] = []

    def reset(self, seed: int | None = None) -> list[Message]:
        """Start (again) from the first prompt; returns the messages to answer.

        ``seed`` is accepted for the Gymnasium contract; the instance fixes everything.
        """
        del seed
        self.terminated = False
        self.stop_reason = None
        self.decision_point = 0
        self.attempt = 0
        self.messages = self.first_messages()
        return self.messages

    def step(self, answer: str, *, output_truncated: bool = False) -> Step:
        """Judge ``answer`` at the current decision point and advance the episode."""
        if self.terminated:
            raise RuntimeError("step() on a terminated episode; call reset() first")
        if not self.messages:
            self.reset()
        self.attempt += 1
        verdict = self.judge(answer, output_truncated=output_truncated)
        info: dict[str, Any] = {"decision_point": self.decision_point, "attempt": self.attempt}
        reward = verdict.reward
        if verdict.correct:
            if self.advance():
                self.terminated, self.stop_reason = True, "solved"
            else:
                self.decision_point += 1
                self.attempt = 0
                self.messages = self.point_messages()
        elif self.attempt >= self.budget:
            self.terminated, self.stop_reason = True, "budget_exhausted"
            reward += self.penalty
        else:
            self.messages = [
                *self.messages,
                {"role": "assistant", "content": answer},
                {"role": "user", "content": verdict.feedback},
            ]
        if self.terminated:
            info["stop_reason"] = self.stop_reason
        return Step(verdict=verdict, reward=reward, terminated=self.terminated, info=info)

    def first_messages(self) -> list[Message]:
        """The first prompt: a copy of the instance's own messages (records stay untouched).

        Messages are dicts whose content is a string or a list of flat part dicts, so copying
        two levels is a full copy, at a tenth of ``copy.deepcopy``'s cost.
        """
        return [
            {
                **message,
                "content": [dict(part) for part in content]
                if isinstance(content := message["content"], list)
                else content,
            }
            for message in self.instance.messages
        ]

    def point_messages(self) -> list[Message]:
        """The prompt at a new decision point (multi-decision tasks rebuild it with history)."""
        return self.first_messages()

    def advance(self) -> bool:
        """After a correct answer: True when that solved the episode."""
        return True

    @abc.abstractmethod
    def judge(self, answer: str, *, output_truncated: bool) -> Verdict:
        """Verify an answer at the current decision point."""


class SingleDecisionEpisode(EpisodeEnv):
    """An episode with one decision (GeneralPoints): revise until correct or out of budget."""

    def judge(self, answer: str, *, output_truncated: bool) -> Verdict:
        """The task's verifier."""
        result: Verdict = self.task.verify(
            self.instance, answer, mode=self.mode, output_truncated=output_truncated
        )
        return result
