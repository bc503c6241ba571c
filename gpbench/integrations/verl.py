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

The module never imports verl, so it works (and is tested) without it. Point verl (0.9) at it
with ``reward.custom_reward_function.path=<this file>`` and
``reward.custom_reward_function.name=compute_score``; add
``+reward.custom_reward_function.reward_kwargs.verifier_mode=reference`` for the paper code's
verifier (verl passes ``reward_kwargs`` to the function in every reward worker).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpbench.errors import ConfigError
from gpbench.integrations.trl_data import example_pngs
from gpbench.recipes.data import Example, examples
from gpbench.records import Instance
from gpbench.tasks.spec import TaskSpec

IMAGE_TOKEN = "<image>"
"""verl's placeholder for an image in a prompt's text."""

VERIFIER_MODE = "gpbench"
"""The verifier mode :func:`compute_score` uses when neither the row's ``extra_info`` nor the
call names one (``gpbench``, or ``reference`` for the paper code's quirks). A setting of this
process only: verl loads the reward file afresh in its Ray workers, so there pass
``verifier_mode`` through ``reward_kwargs`` instead."""

MODES = ("gpbench", "reference")


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

    mode = (extra_info or {}).get("verifier_mode") or verifier_mode or VERIFIER_MODE
    if mode not in MODES:
        raise ConfigError(f"verifier_mode {mode!r} is not one of {', '.join(MODES)}")
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
