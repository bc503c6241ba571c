"""``gpbench generate --format sft|grpo``: rows TRL's ``SFTTrainer`` and ``GRPOTrainer`` take as is.

One row per decision point of each instance (GeneralPoints: one; V-IRL: one per step of the
route, the prompt carrying the true observation/action history up to it), built by
:func:`gpbench.recipes.data.examples`, the same examples the training recipes use.

- ``sft``: TRL's conversational prompt-completion format, ``prompt`` (the task's prompt as the
  user turn) and ``completion`` (the reference answer in the paper's response format as the
  assistant turn), plus ``images`` for vision tasks and nothing else. TRL computes the loss on
  the completion only for this format, with any chat template (a ``messages`` column would need
  ``assistant_only_loss`` and a template with generation markers, which most lack).
- ``grpo``: ``prompt`` (plus ``images``) and ``gpbench_item``, the JSON of the item's
  :class:`~gpbench.recipes.training_items.ItemRef`; TRL passes that column to reward functions, and
  :class:`gpbench.VerifierReward` rebuilds the instance from it.

Image parts of the prompt are ``{"type": "image"}`` placeholders, with the pictures, in order,
in the ``images`` column (the transformers/TRL convention for vision-language data).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpbench.recipes.data import REF_COLUMN, Example, examples, placeholder_messages
from gpbench.records import Instance
from gpbench.tasks.spec import TaskSpec

TRL_FORMATS = ("sft", "grpo")


def example_pngs(task: TaskSpec, example: Example, pngs: list[bytes]) -> list[bytes]:
    """The PNG bytes of the images an example's prompt shows, in the order of its image parts."""
    if task.modality != "vision":
        return []
    # One image per instance (GeneralPoints), or one per decision point (V-IRL views).
    return [pngs[example.ref.point]] if task.multi_decision else list(pngs)


def sft_record(task: TaskSpec, example: Example, pngs: list[bytes]) -> dict[str, Any]:
    """One SFT row: ``prompt``, ``completion`` and (vision tasks only) ``images``."""
    row: dict[str, Any] = {
        "prompt": placeholder_messages(example.prompt),
        "completion": [{"role": "assistant", "content": example.answer}],
    }
    if task.modality == "vision":
        row["images"] = _image_values(task, example, pngs)
    return row


def grpo_record(task: TaskSpec, example: Example, pngs: list[bytes]) -> dict[str, Any]:
    """One GRPO row: ``prompt``, (vision tasks only) ``images`` and ``gpbench_item``."""
    row: dict[str, Any] = {"prompt": placeholder_messages(example.prompt)}
    if task.modality == "vision":
        row["images"] = _image_values(task, example, pngs)
    row[REF_COLUMN] = example.ref.to_json()
    return row


def trl_records(
    task: TaskSpec, fmt: str, rows: Iterator[tuple[Instance, str, list[bytes]]]
) -> Iterator[dict[str, Any]]:
    """The ``fmt`` (``sft`` or ``grpo``) rows of every decision point of each instance."""
    build = sft_record if fmt == "sft" else grpo_record
    for instance, _, pngs in rows:
        for example in examples(task, [instance]):
            yield build(task, example, pngs)


def _image_values(task: TaskSpec, example: Example, pngs: list[bytes]) -> list[dict[str, Any]]:
    # datasets.Image's storage form; the export casts the column to a list of images.
    return [{"bytes": png, "path": None} for png in example_pngs(task, example, pngs)]
