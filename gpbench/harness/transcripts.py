"""Driving a task's episode with recorded attempts, and closing it as an :class:`Episode`.

The same code serves ``gpbench score`` (attempts recorded elsewhere) and the evaluation loop:
attempts go to the task's episode protocol (:mod:`gpbench.tasks.episode`) in order until it
terminates; attempts after that are not scored.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpbench.records import Episode, Instance, Turn
from gpbench.serialization import to_dict
from gpbench.tasks.episode import EpisodeEnv, Step
from gpbench.tasks.spec import TaskSpec


def turn_from_step(
    step: Step,
    response: str,
    *,
    output_truncated: bool = False,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_s: float | None = None,
) -> Turn:
    """The record of one attempt."""
    info = step.info
    return Turn(
        attempt=int(info["attempt"]),
        response=response,
        verdict=to_dict(step.verdict),
        output_truncated=output_truncated,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_s=latency_s,
        decision_point=int(info["decision_point"]),
        reward=step.reward,
    )


def close_episode(
    env: EpisodeEnv, turns: Sequence[Turn], *, sample: int = 0, error: str | None = None
) -> Episode:
    """The Episode record of an environment after its turns."""
    instance: Instance = env.instance
    if error is not None:
        stop = "error"
    elif env.terminated:
        stop = env.stop_reason or "budget_exhausted"
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
        correct=stop == "solved",
        return_=sum(t.reward for t in turns),
        attempts_used=len(turns),
        # Solved without a single failed attempt (for one-decision tasks: the first try).
        first_try_correct=stop == "solved" and all(t.verdict["correct"] for t in turns),
        stop_reason=stop,
        budget=env.budget,
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
    """Score recorded attempts in order until the episode terminates."""
    env = task.episode(instance, budget=budget, mode=mode)
    turns: list[Turn] = []
    for i, response in enumerate(responses):
        if env.terminated:
            break
        cut = bool(truncated[i]) if truncated is not None else False
        step = env.step(response, output_truncated=cut)
        turns.append(turn_from_step(step, response, output_truncated=cut))
    return close_episode(env, turns, sample=sample)
