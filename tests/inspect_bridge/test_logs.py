"""inspect logs of gpbench's tasks read back as gpbench Episode records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessage

from gpbench.errors import ConfigError
from gpbench.harness.transcripts import score_responses
from gpbench.inspect_bridge.logs import episodes_from_log
from gpbench.inspect_bridge.tasks import gp_l
from gpbench.tasks.registry import get_task


def _only_log(folder: Path) -> Path:
    [path] = folder.glob("*.eval")
    return path


def test_epochs_come_back_as_samples_with_gpbench_verdicts(
    mocks: Any, inspect_log_dir: Path
) -> None:
    task = get_task("gp-l")
    answers = mocks.reference_answers("gp-l", "ood-rule", 42, 2)
    inspect_eval(
        gp_l(split="ood-rule", n=2),
        model=mocks.wrong_then_right_model(answers),
        epochs=2,
        display="none",
    )
    episodes = episodes_from_log(_only_log(inspect_log_dir))
    assert sorted((e.index, e.sample) for e in episodes) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for episode in episodes:
        instance = task.instance("ood-rule", 42, episode.index)
        expected = score_responses(
            task, instance, [mocks.wrong, task.reference_answer(instance)], budget=5
        )
        assert (episode.uid, episode.correct, episode.first_try_correct) == (
            instance.uid,
            True,
            False,
        )
        assert [t["verdict"] for t in episode.turns] == [t["verdict"] for t in expected.turns]
        assert episode.return_ == expected.return_


def test_a_sample_the_model_failed_is_an_error_episode(mocks: Any, inspect_log_dir: Path) -> None:
    def broken(messages: list[ChatMessage]) -> str:
        raise RuntimeError("the server went away")

    inspect_eval(
        gp_l(n=1, budget=3), model=mocks.mock_model(broken), display="none", fail_on_error=False
    )
    [episode] = episodes_from_log(_only_log(inspect_log_dir))
    assert (episode.stop_reason, episode.turns, episode.budget) == ("error", [], 3)
    assert episode.error is not None and "the server went away" in episode.error


def test_a_log_of_another_task_is_a_one_line_error(mocks: Any, inspect_log_dir: Path) -> None:
    other = Task(dataset=[Sample(input="hello")])
    inspect_eval(other, model=mocks.wrong_model(), display="none")
    with pytest.raises(ConfigError, match="has no gpbench score") as raised:
        episodes_from_log(_only_log(inspect_log_dir))
    assert "\n" not in str(raised.value)
