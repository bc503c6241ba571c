"""Shared pieces of the inspect_ai bridge tests: offline mock models that answer like a policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpbench.tasks.registry import get_task

try:
    from inspect_ai.model import (
        ChatMessage,
        ContentImage,
        ContentText,
        Model,
        ModelOutput,
        ModelUsage,
        get_model,
    )

    from gpbench.inspect_bridge.bridge import InstanceImages, chat_messages
except ImportError:  # without the inspect extra there is nothing here to test
    collect_ignore_glob = ["test_*.py"]

WRONG = "I give up."
"""An answer no task's verifier accepts."""


@pytest.fixture(autouse=True)
def inspect_log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every eval writes its log under the test's own folder."""
    folder = tmp_path / "inspect-logs"
    monkeypatch.setenv("INSPECT_LOG_DIR", str(folder))
    return folder


def prompt_key(message: ChatMessage) -> str:
    """A message's content as one string, image data URIs included (gp-vl prompts share text)."""
    if isinstance(message.content, str):
        return message.content
    return "".join(
        part.image
        if isinstance(part, ContentImage)
        else part.text
        if isinstance(part, ContentText)
        else ""
        for part in message.content
    )


def reference_answers(task_name: str, split: str, seed: int, n: int) -> dict[str, str]:
    """The first prompt of every decision point of ``n`` instances -> its reference answer."""
    task = get_task(task_name)
    answers: dict[str, str] = {}
    for instance in task.dataset(split, seed, n):
        images = InstanceImages(task, instance)
        for point, answer in enumerate(task.reference_answers(instance)):
            first = chat_messages(task.episode(instance, start=point).messages, images)[0]
            answers[prompt_key(first)] = answer
    return answers


def _output(text: str) -> ModelOutput:
    output = ModelOutput.from_content(model="mockllm", content=text)
    # With usage set the mock model does not count tokens (tiktoken would download its table).
    output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return output


def mock_model(answer: Callable[[list[ChatMessage]], str]) -> Model:
    """inspect's mock model answering ``answer(conversation)`` to every request."""

    def generate(messages: list[ChatMessage], *_: Any) -> ModelOutput:
        return _output(answer(messages))

    return get_model("mockllm/model", custom_outputs=generate)


def right_model(answers: dict[str, str]) -> Model:
    """Answers every decision point correctly at once."""
    return mock_model(lambda messages: answers[prompt_key(messages[0])])


def wrong_then_right_model(answers: dict[str, str]) -> Model:
    """A wrong first answer at every decision point, the right one after the feedback."""
    return mock_model(
        lambda messages: answers[prompt_key(messages[0])] if len(messages) > 1 else WRONG
    )


def wrong_model() -> Model:
    """Never right."""
    return mock_model(lambda messages: WRONG)


class Mocks:
    """The helpers above, for tests (conftest modules are not imported by name)."""

    wrong = WRONG
    prompt_key = staticmethod(prompt_key)
    reference_answers = staticmethod(reference_answers)
    mock_model = staticmethod(mock_model)
    right_model = staticmethod(right_model)
    wrong_then_right_model = staticmethod(wrong_then_right_model)
    wrong_model = staticmethod(wrong_model)


@pytest.fixture
def mocks() -> Mocks:
    """Mock models and the reference answers they give."""
    return Mocks()
