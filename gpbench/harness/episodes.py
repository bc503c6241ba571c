"""Turning a sequence of attempts into an Episode: budget, rewards, stop reason.

The same rules serve ``gpbench score`` (attempts recorded elsewhere) and the evaluation loop:
attempts are judged in order until one is correct or the verification budget is spent; when the
budget runs out the task's budget penalty is added without asking the model for an answer that
would be discarded (the paper's code generated one: same rewards, fewer calls).
"""

from __future__ import annotations

from collections.abc import Sequence

from gpbench.records import Episode, Instance, Turn
from gpbench.serialization import to_dict
from gpbench.tasks.spec import TaskSpec


def judge_attempt(
    task: TaskSpec,
    instance: Instance,
    attempt: int,
    response: str,
    *,
    mode: str = "gpbench",
    output_truncated: bool = False,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_s: float | None = None,
) -> Turn:
    """Verify one attempt and wrap it as a :class:`Turn`."""
    verdict = task.verify(instance, response, mode=mode, output_truncated=output_truncated)
    return Turn(
        attempt=attempt,
        response=response,
        verdict=to_dict(verdict),
        output_truncated=output_truncated,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_s=latency_s,
    )


def finish_episode(
    task: TaskSpec,
    instance: Instance,
    turns: Sequence[Turn],
    *,
    budget: int,
    sample: int = 0,
    error: str | None = None,
) -> Episode:
    """Close an episode from its judged turns (at most ``budget`` of them)."""
    if len(turns) > budget:
        raise ValueError(f"{len(turns)} turns exceed the budget of {budget}")
    correct = any(t.verdict["correct"] for t in turns)
    total = sum(float(t.verdict["reward"]) for t in turns)
    if error is not None:
        stop = "error"
    elif correct:
        stop = "solved"
    elif len(turns) == budget:
        stop = "budget_exhausted"
        total += task.budget_penalty
    else:
        stop = "responses_ended"
    flags = sorted({flag for t in turns for flag in t.verdict.get("flags", [])})
    return Episode(
        uid=instance.uid,
        task=instance.task,
        task_version=instance.task_version,
        split=instance.split,
        seed=instance.seed,
        index=instance.index,
        sample=sample,
        turns=[to_dict(t) for t in turns],
        correct=correct,
        return_=total,
        attempts_used=len(turns),
        first_try_correct=bool(turns) and bool(turns[0].verdict["correct"]),
        stop_reason=stop,
        budget=budget,
        flags=flags,
        error=error,
    )


def score_responses(
    task: TaskSpec,
    instance: Instance,
    responses: Sequence[str],
    *,
    budget: int,
    sample: int = 0,
    mode: str = "gpbench",
    truncated: Sequence[bool] | None = None,
) -> Episode:
    """Score recorded attempts in order: stop at the first correct one or at the budget."""
    turns: list[Turn] = []
    for attempt, response in enumerate(responses[:budget], start=1):
        cut = bool(truncated[attempt - 1]) if truncated is not None else False
        turn = judge_attempt(task, instance, attempt, response, mode=mode, output_truncated=cut)
        turns.append(turn)
        if turn.verdict["correct"]:
            break
    return finish_episode(task, instance, turns, budget=budget, sample=sample)
