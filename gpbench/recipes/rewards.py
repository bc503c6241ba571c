"""Reward functions for TRL's GRPOTrainer, from gpbench's verifier (plain batch functions).

:class:`VerifierReward` is the paper's reward and nothing else:

- single-turn (one answer per prompt): the verdict's reward for that answer, exactly
  ``task.verify(...).reward`` (GeneralPoints +5 / -1 / -2 per kind / -3, gp-vl -1.5 first;
  V-IRL +1 / -1 / -1.5 at the item's decision point);
- multi-turn (the rollout played the verifier loop and passes the ``attempts`` it made): the
  episode's return at the decision point, i.e. the sum of the attempts' rewards plus the task's
  budget penalty (-1) when every attempt of the budget failed, as gpbench's episodes count it.

Shaping is never mixed in. Each shaping term is its own named reward function (TRL logs it
under ``rewards/<name>`` and adds it with its weight), chosen by name in the recipe config and
recorded there; the paper used none, so the presets use none.

>>> from gpbench.recipes.data import REF_COLUMN, examples, rl_row
>>> from gpbench.tasks.registry import get_task
>>> task = get_task("gp-l")
>>> ex = next(iter(examples(task, task.dataset("train", 0, 1))))
>>> reward = VerifierReward()
>>> reward([ex.prompt], [ex.answer], **{REF_COLUMN: [ex.ref.to_json()]})
[5.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gpbench.errors import ConfigError, did_you_mean
from gpbench.recipes.data import REF_COLUMN
from gpbench.recipes.training_items import Replay, replay, resolve
from gpbench.records import Verdict
from gpbench.serialization import parse_json

UNREADABLE_STATUSES = frozenset({"illegal_formula", "unparseable"})
"""Statuses meaning the verifier found no answer in the task's format."""


def completion_text(completion: Any) -> str:
    """The answer text of a TRL completion: a string, or ``[{"role": "assistant", ...}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else ""
        if isinstance(content, list):  # content parts (vision-language processors)
            return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""
    return ""


def judge(ref_json: str, answer: str, *, mode: str = "gpbench") -> Verdict:
    """The verifier's verdict on one answer at the item's decision point."""
    task, instance, point = resolve(ref_json)
    return task.episode(instance, mode=mode, start=point).judge(answer, output_truncated=False)


def play(ref_json: str, attempts: Sequence[str], *, budget: int, mode: str = "gpbench") -> Replay:
    """The item's decision point played over ``attempts`` with the verification budget."""
    task, instance, point = resolve(ref_json)
    return replay(task.episode(instance, budget=budget, mode=mode, start=point), attempts)


def _attempts(value: Any) -> list[str] | None:
    """The rollout's attempts for one completion (JSON text or a list), None when single-turn."""
    if value is None:
        return None
    attempts = parse_json(value) if isinstance(value, str) else value
    return [str(a) for a in attempts]


class _PerCompletion:
    """A TRL reward function that judges each completion: one verdict for a single-turn
    completion, the replay of its attempts for a multi-turn one; :meth:`value` turns the
    verdicts (and the episode's reward) into the number reported."""

    def __init__(self, name: str, mode: str, budget: int) -> None:
        self.__name__ = name  # TRL names logged rewards after this
        self.mode = mode
        self.budget = budget

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        attempts: Sequence[Any] | None = None,
        **columns: Any,
    ) -> list[float]:
        """One value per completion; ``columns[REF_COLUMN]`` names each completion's item."""
        refs = columns.get(REF_COLUMN)
        if refs is None:
            # TRL passes the dataset's extra columns as keyword arguments; without this one
            # there is no instance to verify against.
            raise ConfigError(
                f"{self.__name__} needs the dataset's {REF_COLUMN!r} column (got columns: "
                f"{', '.join(sorted(columns)) or 'none'}); train on `gpbench generate TASK "
                "--format grpo` rows, which carry it"
            )
        values = []
        for i, completion in enumerate(completions):
            tried = _attempts(attempts[i]) if attempts is not None else None
            if tried is None:
                verdict = judge(refs[i], completion_text(completion), mode=self.mode)
                values.append(self.value([verdict], float(verdict.reward)))
            else:
                replayed = play(refs[i], tried, budget=self.budget, mode=self.mode)
                values.append(self.value(replayed.verdicts, replayed.reward))
        return values

    def value(self, verdicts: Sequence[Verdict], reward: float) -> float:
        """The number for one completion."""
        raise NotImplementedError


class VerifierReward(_PerCompletion):
    """The paper's reward from gpbench's verifier, as a TRL reward function.

    Args:
        mode: verifier mode (``gpbench``, or ``reference`` for the paper code's quirks).
        budget: verification budget for multi-turn completions (attempts per decision point).
    """

    def __init__(self, mode: str = "gpbench", budget: int = 1) -> None:
        super().__init__("gpbench_verifier", mode, budget)

    def value(self, verdicts: Sequence[Verdict], reward: float) -> float:
        """The episode's reward (a single verdict's reward for a single-turn completion)."""
        return reward


class FormatShaping(_PerCompletion):
    """Shaping, not the paper's reward: ``weight`` times the share of attempts in the task's format.

    An attempt is in format when the verifier read an answer from it (its status is neither
    ``illegal_formula`` nor ``unparseable``), right or wrong.
    """

    def __init__(self, weight: float, mode: str = "gpbench", budget: int = 1) -> None:
        super().__init__("shaping_format", mode, budget)
        self.weight = weight

    def value(self, verdicts: Sequence[Verdict], reward: float) -> float:
        """``weight`` times the share of readable attempts."""
        readable = sum(v.status not in UNREADABLE_STATUSES for v in verdicts)
        return self.weight * readable / max(1, len(verdicts))


SHAPING: dict[str, Callable[..., FormatShaping]] = {"format": FormatShaping}
"""Shaping terms by name (``--set shaping=format:0.5``); none by default."""


def reward_functions(
    shaping: dict[str, float], *, mode: str = "gpbench", budget: int = 1
) -> list[VerifierReward | FormatShaping]:
    """The verifier reward first, then each named shaping term with its weight."""
    funcs: list[VerifierReward | FormatShaping] = [VerifierReward(mode, budget)]
    for name, weight in shaping.items():
        if name not in SHAPING:
            raise ConfigError(
                f"unknown shaping {name!r}{did_you_mean(name, SHAPING)} (choices: {', '.join(SHAPING)})"
            )
        funcs.append(SHAPING[name](weight, mode, budget))
    return funcs
