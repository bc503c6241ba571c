"""Shared pieces of the lm-eval bridge tests: scoring through `gpbench score` (the tiny
checkpoints are tests/conftest.py's)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.runs.read import read_episodes
from gpbench.tasks.registry import get_task

# (instance uid, decision point) -> the verdict `gpbench score` gave the answer there.
ScoreItems = Callable[
    [str, str, int, int, Mapping[tuple[str, int], str]], dict[tuple[str, int], Any]
]


@pytest.fixture
def score_items(tmp_path: Path) -> ScoreItems:
    """Score answers to single-turn items with the `gpbench score` command.

    Instances are written by `gpbench generate`; an answer at decision point k of a route is
    scored as the last attempt of a transcript whose first k attempts are the reference answers,
    so the verdict is `gpbench score`'s at that point with the true history (one sample per
    point). Returns the verdict dicts keyed like the answers.
    """

    def run(
        task_id: str, split: str, seed: int, n: int, answers: Mapping[tuple[str, int], str]
    ) -> dict[tuple[str, int], Any]:
        runner = CliRunner()
        data = tmp_path / "data"
        result = runner.invoke(
            cli,
            [
                *("generate", task_id, "--split", split, "-n", str(n), "--seed", str(seed)),
                *("-o", str(data), "--quiet"),
            ],
        )
        assert result.exit_code == 0, result.output
        instances_path = data / task_id / f"{split}.jsonl"
        task = get_task(task_id)
        by_uid = {
            row["uid"]: row
            for row in map(json.loads, instances_path.read_text(encoding="utf-8").splitlines())
        }
        lines = []
        for (uid, point), answer in answers.items():
            instance = task.instance(split, seed, by_uid[uid]["index"])
            assert instance.uid == uid
            prior = task.reference_answers(instance)[:point]
            lines.append({"uid": uid, "sample": point, "responses": [*prior, answer]})
        responses = tmp_path / "responses.jsonl"
        responses.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        run_dir = tmp_path / "run"
        result = runner.invoke(
            cli,
            [
                *("score", task_id, "--instances", str(instances_path)),
                *("--responses", str(responses), "--max-attempts", "1"),
                *("-o", str(run_dir), "--overwrite"),
            ],
        )
        assert result.exit_code == 0, result.output
        verdicts = {}
        for episode in read_episodes(run_dir):
            last = episode.turns[-1]
            assert last["decision_point"] == episode.sample  # the answer judged at its point
            verdicts[(episode.uid, episode.sample)] = last["verdict"]
        assert set(verdicts) == set(answers)
        return verdicts

    return run


def _metrics_of(metric_names: list[str], verdict: Mapping[str, Any]) -> dict[str, float]:
    expected = {"success": float(verdict["correct"]), "reward": float(verdict["reward"])}
    for name in metric_names:
        if name.startswith("status_"):
            expected[name] = float(verdict["status"] == name.removeprefix("status_"))
        elif name.startswith("flag_"):
            expected[name] = float(name.removeprefix("flag_") in verdict["flags"])
    return expected


@pytest.fixture
def metrics_of() -> Callable[[list[str], Mapping[str, Any]], dict[str, float]]:
    """The lm-eval metrics (by name) that a `gpbench score` verdict stands for."""
    return _metrics_of
