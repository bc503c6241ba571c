"""Boundary record types that flow from generators to reports (stdlib only): frozen dataclasses
of JSON-able fields, which :mod:`gpbench.serialization` turns into JSON lines and back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Instance:
    """One problem of a task split: a pure function of ``(task, version, split, seed, index)``.

    Attributes:
        uid: stable id, a hash of the instance key (task, version, split, options, seed, index).
        task: task id, e.g. ``gp-l``.
        task_version: the task's version; any change to generation or scoring bumps it.
        split: split name, e.g. ``ood-rule``.
        seed: the instance seed (chooses which instances, not how a model decodes).
        index: position in the split's sequence for that seed.
        problem: structured payload (cards, values, target, rule; or city and route).
        reference: a correct answer in the task's answer format.
        params: the split's generation parameters (rule, sampling, shifts) for stratification.
        messages: the prompt as chat messages (``{"role", "content"}``).
        images: relative paths of images referenced by ``messages`` (vision tasks).
    """

    uid: str
    task: str
    task_version: int
    split: str
    seed: int
    index: int
    problem: JsonDict
    reference: JsonDict
    params: JsonDict
    messages: list[JsonDict]
    images: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    """The verifier's judgement of one answer.

    Attributes:
        correct: the answer solves the problem.
        status: the first failure in the task's check order, or ``correct``.
        statuses: every failure found (``[status]`` at least).
        reward: the paper's reward for this answer (penalties add as in its code).
        feedback: the text appended to the conversation after a failed attempt.
        extracted: what was read from the answer (e.g. ``formula``, ``cards``).
        flags: memorization and diagnostic flags, e.g. ``train_rule_answer``.
    """

    correct: bool
    status: str
    statuses: list[str]
    reward: float
    feedback: str
    extracted: JsonDict = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Turn:
    """One evaluated attempt of an episode.

    Attributes:
        attempt: 1-based attempt number within the episode (or decision point).
        response: the model's answer, verbatim.
        verdict: the verifier's :class:`Verdict`, as a dict.
        output_truncated: the answer was cut off at the token limit.
        prompt_tokens, completion_tokens: tokens in the prompt and generated, when reported.
        latency_s: wall time of the backend call that produced the answer.
        decision_point: 0-based decision point the attempt answered (0 on one-decision tasks).
        reward: the verdict's reward, plus the budget penalty on the step that spent the budget.
    """

    attempt: int
    response: str
    verdict: JsonDict
    output_truncated: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    decision_point: int = 0
    reward: float = 0.0


STOP_REASONS = ("solved", "budget_exhausted", "responses_ended", "error")
"""Why an episode ended: solved; every attempt of the budget failed; the recorded transcript
(``gpbench score``) ended before either; or the backend failed."""


@dataclass(frozen=True)
class Episode:
    """A whole multi-turn episode on one instance (one sample of it).

    Attributes:
        uid, task, task_version, split, seed, index: the instance it ran on.
        sample: which of k samples per instance this is (0-based).
        turns: per-attempt :class:`Turn` dicts, in order.
        correct: some attempt was correct.
        return_: the attempts' rewards plus the budget penalty if it ran out (JSON ``return``).
        attempts_used: attempts evaluated.
        first_try_correct: the first attempt was correct.
        stop_reason: one of :data:`STOP_REASONS`.
        budget: the verification budget the episode ran under.
        flags: union of the attempts' flags, sorted.
        error: what went wrong when ``stop_reason`` is ``error``.
    """

    uid: str
    task: str
    task_version: int
    split: str
    seed: int
    index: int
    sample: int
    turns: list[JsonDict]
    correct: bool
    return_: float
    attempts_used: int
    first_try_correct: bool
    stop_reason: str
    budget: int
    flags: list[str] = field(default_factory=list)
    error: str | None = None
