"""verl: ``gpbench generate --format verl`` rows and the reward verl calls, ``compute_score``.

Rows follow verl's RL parquet schema (what its ``RLHFDataset`` reads), one row per decision point
(V-IRL: one per step of the route, with the true history in the prompt):

- ``data_source``: ``gpbench/<task>`` (verl groups its validation metrics by it);
- ``prompt``: the chat, ``[{"role": "user", "content": text}]``; for vision tasks each image
  is an ``<image>`` token in the text, the pictures in ``images`` in the same order;
- ``ability``: ``arithmetic`` (GeneralPoints) or ``navigation`` (V-IRL);
- ``reward_model``: ``{"style": "rule", "ground_truth": <item JSON>}``: the item's
  :class:`~gpbench.recipes.training_items.ItemRef` (task, split, seed, index, options, decision point),
  from which :func:`compute_score` rebuilds the instance;
- ``extra_info``: the split, index, decision point, instance uid and the reference answer (for
  people reading the data; the reward does not use it).

The paper's multi-turn revision (the verifier's feedback as the next user turn, the task's
budget, at the row's decision point) is one turn function, :func:`revision_turn`, on an episode
:func:`open_episode` starts at the row's item. Two verl components drive it:

- :class:`gpbench.integrations.verl_agent_loop.GpbenchAgentLoop`, a verl agent loop (verl 0.9's
  multi-turn API; config ``verl_agent_loop.yaml`` beside this file);
- :class:`GpbenchInteraction`, a verl multi-turn interaction, for older verl releases that still
  have ``verl.interactions`` (config ``verl_interaction.yaml``). Rows carry its
  ``interaction_kwargs``.

Apart from :class:`GpbenchInteraction`'s base class the module never imports verl, so it works
(and is tested) without it. Point verl (0.9) at it
with ``reward.custom_reward_function.path=<this file>`` and
``reward.custom_reward_function.name=compute_score``; add
``+reward.custom_reward_function.reward_kwargs.verifier_mode=reference`` for the paper code's
verifier (verl passes ``reward_kwargs`` to the function in every reward worker).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import ConfigError
from gpbench.integrations.trl_data import example_pngs
from gpbench.recipes.data import Example, examples
from gpbench.records import Instance
from gpbench.tasks.episode import EpisodeEnv
from gpbench.tasks.spec import TaskSpec

IMAGE_TOKEN = "<image>"
"""verl's placeholder for an image in a prompt's text."""

VERIFIER_MODE = "gpbench"
"""The verifier mode :func:`compute_score` uses when neither the row's ``extra_info`` nor the
call names one (``gpbench``, or ``reference`` for the paper code's quirks). A setting of this
process only: verl loads the reward file afresh in its Ray workers, so there pass
``verifier_mode`` through ``reward_kwargs`` instead."""

MODES = ("gpbench", "reference")

INTERACTION_NAME = "gpbench"
"""The interaction's name in ``verl_interaction.yaml`` and in each row's ``interaction_kwargs``."""

INTERACTION_CONFIG = Path(__file__).with_name("verl_interaction.yaml")
"""The interaction config to pass verl (``...multi_turn.interaction_config_path``)."""


def ability(task: TaskSpec) -> str:
    """The task's ``ability`` label: ``navigation`` for V-IRL, ``arithmetic`` for GeneralPoints."""
    return "navigation" if task.multi_decision else "arithmetic"


def verl_record(task: TaskSpec, example: Example, pngs: list[bytes]) -> dict[str, Any]:
    """One verl row for a decision point (``images`` only for vision tasks)."""
    ref_json = example.ref.to_json()
    row: dict[str, Any] = {
        "data_source": f"gpbench/{task.id}",
        "prompt": [
            {"role": message["role"], "content": _text_with_tokens(message["content"])}
            for message in example.prompt
        ],
        "ability": ability(task),
        "reward_model": {"style": "rule", "ground_truth": ref_json},
        "extra_info": {
            "split": example.instance.split,
            "index": example.instance.index,
            "point": example.ref.point,
            "uid": example.instance.uid,
            "reference_answer": example.answer,
            # verl's dataset hands these to the interaction's start_interaction.
            "interaction_kwargs": {"name": INTERACTION_NAME, "ground_truth": ref_json},
        },
    }
    if task.modality == "vision":
        row["images"] = [{"bytes": png, "path": None} for png in example_pngs(task, example, pngs)]
    return row


def verl_records(
    task: TaskSpec, rows: Iterator[tuple[Instance, str, list[bytes]]]
) -> Iterator[dict[str, Any]]:
    """The verl rows of every decision point of each instance."""
    for instance, _, pngs in rows:
        for example in examples(task, [instance]):
            yield verl_record(task, example, pngs)


def _text_with_tokens(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        IMAGE_TOKEN if part.get("type") == "image" else str(part.get("text") or "")
        for part in content
    )


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    verifier_mode: str | None = None,
    **_: Any,
) -> dict[str, Any]:
    """verl's custom reward: the paper's reward for one response, with the verdict's fields.

    Args:
        data_source: the row's ``data_source`` (``gpbench/<task>``).
        solution_str: the decoded response.
        ground_truth: the row's ``reward_model.ground_truth`` (the item's JSON).
        extra_info: the row's ``extra_info``; a ``verifier_mode`` there comes first.
        verifier_mode: the mode when the row names none (verl: ``reward_kwargs``); else
            :data:`VERIFIER_MODE`.

    Returns:
        ``{"score": reward, "correct": 0/1, "status": ...}``: ``score`` is exactly the verdict's
        reward (verl uses it as the reward), the rest verl logs per response. Extra keyword
        arguments newer verl versions pass are ignored.
    """
    from gpbench.recipes.rewards import judge

    mode = check_mode((extra_info or {}).get("verifier_mode") or verifier_mode or VERIFIER_MODE)
    if not data_source.startswith("gpbench/"):
        raise ConfigError(
            f"compute_score scores gpbench rows (data_source 'gpbench/<task>'), got "
            f"{data_source!r}; write the data with `gpbench generate TASK --format verl`"
        )
    verdict = judge(ground_truth, solution_str, mode=mode)
    return {
        "score": float(verdict.reward),
        "correct": float(verdict.correct),
        "status": verdict.status,
    }


def check_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`MODES`, else a one-line :class:`ConfigError`."""
    if mode not in MODES:
        raise ConfigError(f"verifier_mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def open_episode(ground_truth: str | None, mode: str, *, who: str) -> tuple[TaskSpec, EpisodeEnv]:
    """The task and a fresh episode at the item a row's ``ground_truth`` (item JSON) names.

    Args:
        ground_truth: the row's ``reward_model.ground_truth`` (also in its
            ``interaction_kwargs``).
        mode: the verifier mode (``gpbench`` or ``reference``).
        who: the component asking, for the error when the row has no ground truth.

    Returns:
        The task and its episode, positioned at the row's decision point with the task's
        budget (5 attempts for GeneralPoints, 2 per decision point for V-IRL).
    """
    from gpbench.recipes.training_items import resolve

    mode = check_mode(mode)
    if not ground_truth:
        raise ConfigError(
            f"{who} needs the row's ground_truth (the item's JSON); write the data with "
            "`gpbench generate TASK --format verl`"
        )
    task, instance, point = resolve(ground_truth)
    return task, task.episode(instance, mode=mode, start=point)


@dataclass(frozen=True)
class RevisionTurn:
    """What one model turn did in the paper's revision loop.

    Attributes:
        done: the row's decision point is over (answered correctly, or out of budget): no next
            user turn.
        next_user: the verifier's feedback after a wrong answer within the budget (the next
            user turn); empty when ``done``.
        reward: the step's reward: the verdict's reward, plus the task's budget penalty on the
            turn that spends the budget (the paper's multi-turn return is the sum over turns).
        info: the verdict's ``status`` and ``correct``, the ``decision_point`` and ``attempt``,
            and ``stop_reason`` (``solved`` or ``budget_exhausted``) when ``done``.
    """

    done: bool
    next_user: str
    reward: float
    info: dict[str, Any]


def revision_turn(env: EpisodeEnv, answer: str, *, output_truncated: bool = False) -> RevisionTurn:
    """Judge one model answer in ``env`` and say what comes next (the loop's one turn).

    Shared by :class:`GpbenchInteraction` and the agent loop, so both play the same loop:
    ``env.step(answer)``, then the verifier's feedback as the next user turn, until an answer
    is correct or the task's budget is spent at the row's decision point. A correct V-IRL
    action ends the loop even when the route goes on: the later decision points are rows of
    their own (with the true history), as in the TRL recipe's rollout, and a whole 20-odd-point
    route would not fit one response. The turns' rewards then sum to
    :func:`~gpbench.recipes.training_items.replay`'s reward, the TRL recipe's multi-turn reward.
    """
    step = env.step(answer, output_truncated=output_truncated)
    info = {"status": step.verdict.status, "correct": step.verdict.correct, **step.info}
    if step.verdict.correct or step.terminated:
        info.setdefault("stop_reason", "solved" if step.verdict.correct else "budget_exhausted")
        return RevisionTurn(True, "", float(step.reward), info)
    return RevisionTurn(False, str(step.verdict.feedback), float(step.reward), info)


class _PlainInteraction:
    """verl's ``BaseInteraction`` constructor, for when verl (with ``verl.interactions``) is absent."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.name: str = config.get("name", "interaction_agent")


def _interaction_base() -> type:
    """verl's ``BaseInteraction`` where the installed verl has it, else a plain class.

    The files are looked for before importing: verl 0.9 has no ``verl.interactions`` and
    importing verl only to find that out costs seconds in every ``--format verl`` export.
    """
    spec = importlib.util.find_spec("verl")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not any((Path(loc) / "interactions" / "base.py").is_file() for loc in locations):
        return _PlainInteraction
    from verl.interactions.base import BaseInteraction  # type: ignore[import-not-found,unused-ignore]

    base: type = BaseInteraction
    return base


@dataclass
class _Session:
    env: Any
    last_reward: float = 0.0


class GpbenchInteraction(_interaction_base()):  # type: ignore[misc]
    """The paper's multi-turn revision as a verl multi-turn interaction.

    verl calls :meth:`start_interaction` with a row's ``interaction_kwargs`` (``ground_truth``,
    the item's JSON), then :meth:`generate_response` after each model turn: the answer goes to
    the task's episode (``task.episode(instance)``, ``env.step(answer)``). A wrong answer gets
    the verifier's feedback as the next user turn until an answer is correct or the task's
    budget is spent at the row's decision point (5 attempts for GeneralPoints, 2 for a V-IRL
    decision point; :func:`revision_turn`). Each turn's score is the step's reward: the verdict's
    reward, plus the task's budget penalty on the turn that spends the budget (the paper's
    multi-turn return is their sum).

    Subclasses verl's ``BaseInteraction`` where the installed verl has one; otherwise a plain
    class with the same methods. It serves verl releases that still ship ``verl.interactions``;
    verl 0.9 has none (its multi-turn API is the agent loop:
    :class:`~gpbench.integrations.verl_agent_loop.GpbenchAgentLoop`, the same turns through
    :func:`revision_turn`).

    Config keys (``verl_interaction.yaml``): ``name`` and ``verifier_mode`` (``gpbench`` or
    ``reference``; a row's ``interaction_kwargs`` may override it).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.verifier_mode = check_mode(str(config.get("verifier_mode", VERIFIER_MODE)))
        self._sessions: dict[str, _Session] = {}

    async def start_interaction(
        self,
        instance_id: str | None = None,
        ground_truth: str | None = None,
        verifier_mode: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Open an episode on the row's item; returns the id later calls name it by."""
        from uuid import uuid4

        mode = verifier_mode or self.verifier_mode
        _, env = open_episode(ground_truth, mode, who="GpbenchInteraction (interaction_kwargs)")
        key = instance_id if instance_id is not None else str(uuid4())
        self._sessions[key] = _Session(env)
        return key

    async def generate_response(
        self, instance_id: str, messages: list[dict[str, Any]], **kwargs: Any
    ) -> tuple[bool, str, float, dict[str, Any]]:
        """Judge the last assistant turn of ``messages``.

        Returns:
            ``(should_terminate, next_user_turn, turn_score, info)``: terminate once the
            answer is correct or the budget is spent; the next turn is the verifier's
            feedback; ``info`` has the verdict's ``status`` and ``correct``, the
            ``decision_point`` and ``attempt``, and ``stop_reason`` at the end.
        """
        session = self._session(instance_id)
        answer = next(
            (
                _text_with_tokens(m["content"])
                for m in reversed(messages)
                if m["role"] == "assistant"
            ),
            "",
        )
        turn = revision_turn(session.env, answer)
        session.last_reward = turn.reward
        return turn.done, turn.next_user, turn.reward, turn.info

    async def calculate_score(self, instance_id: str | None = None, **kwargs: Any) -> float:
        """The last judged turn's score (0 before any)."""
        if instance_id is None:
            return 0.0
        return self._session(instance_id).last_reward

    async def finalize_interaction(self, instance_id: str | None = None, **kwargs: Any) -> None:
        """Forget the episode."""
        if instance_id is not None:
            self._sessions.pop(instance_id, None)

    def _session(self, instance_id: str) -> _Session:
        try:
            return self._sessions[instance_id]
        except KeyError:
            raise ConfigError(
                f"no gpbench interaction {instance_id!r}: call start_interaction first"
            ) from None
