"""Training data from gpbench tasks: ``train`` instances as chat examples in the paper's format.

Each decision point of a training instance becomes one example: the prompt the evaluation
harness shows at that point (the paper's prompt; for V-IRL with the true observation/action
history so far) and the reference answer in the paper's response format (a JSON object with
``cards``/``number``/``formula``, or ``current observation``/``current instruction``/``action``).

Rows for TRL (:func:`sft_row`, :func:`rl_row`) use its conversational prompt-completion format,
so the SFT loss falls on the answer only. Image parts become ``{"type": "image"}`` placeholders
with the pictures in an ``images`` column, the transformers/TRL convention for vision-language
data. :func:`messages_row` is the plain ``{"messages": [...]}`` form of an example, the kind of
line ``gpbench overlap`` reads back.

>>> from gpbench.tasks.registry import get_task
>>> task = get_task("gp-l")
>>> example = next(iter(examples(task, task.dataset("train", 0, 1))))
>>> print(example.answer)
{
  "cards": ['3', 'J', '9', '2'],
  "number": [3, 10, 9, 2],
  "formula": "2+3+9+10=24",
}
>>> task.verify(example.instance, example.answer).correct
True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from gpbench.recipes.training_items import ItemRef, ref_of
from gpbench.records import Instance
from gpbench.tasks.episode import Message
from gpbench.tasks.spec import TaskSpec

REF_COLUMN = "gpbench_item"
"""The dataset column holding each row's :class:`~gpbench.recipes.training_items.ItemRef` as JSON."""


@dataclass(frozen=True)
class Example:
    """One decision point of a training instance with its reference answer.

    Attributes:
        ref: what the example is a function of (task, split, seed, index, options, point).
        instance: the instance.
        prompt: the messages shown at the decision point (image parts carry relative paths).
        answer: the reference answer in the paper's response format.
    """

    ref: ItemRef
    instance: Instance
    prompt: list[Message]
    answer: str


def examples(task: TaskSpec, instances: Iterable[Instance]) -> Iterator[Example]:
    """One example per decision point of each instance, in order."""
    for instance in instances:
        answers = task.reference_answers(instance)
        for point in range(task.decision_points(instance)):
            yield Example(
                ref_of(task, instance, point),
                instance,
                task.episode(instance, start=point).messages,
                answers[point],
            )


def placeholder_messages(messages: list[Message]) -> list[Message]:
    """Messages with image parts as ``{"type": "image"}`` placeholders (TRL's convention)."""
    out: list[Message] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image"}
                if part.get("type") == "image"
                else {"type": "text", "text": part["text"]}
                for part in content
            ]
        out.append({"role": message["role"], "content": content})
    return out


def example_images(task: TaskSpec, example: Example) -> list[Any]:
    """The PIL images an example's prompt shows, in the order of its image parts."""
    if task.modality != "vision":
        return []
    rendered = task.images(example.instance)
    # One image per instance (GeneralPoints), or one per decision point (V-IRL views).
    return [rendered[example.ref.point]] if task.multi_decision else list(rendered)


def sft_row(task: TaskSpec, example: Example) -> dict[str, Any]:
    """A TRL conversational prompt-completion row (plus ``images`` for vision tasks)."""
    row: dict[str, Any] = {
        "prompt": placeholder_messages(example.prompt),
        "completion": [{"role": "assistant", "content": example.answer}],
        REF_COLUMN: example.ref.to_json(),
    }
    if task.modality == "vision":
        row["images"] = example_images(task, example)
    return row


def rl_row(task: TaskSpec, example: Example) -> dict[str, Any]:
    """A TRL GRPO prompt row: the prompt and the ref the verifier reward rebuilds it from."""
    row = sft_row(task, example)
    del row["completion"]
    return row


def messages_row(example: Example) -> dict[str, Any]:
    """The example as one ``{"messages": [user..., assistant]}`` chat line (text parts only)."""
    return {
        "messages": [
            *placeholder_messages(example.prompt),
            {"role": "assistant", "content": example.answer},
        ]
    }
