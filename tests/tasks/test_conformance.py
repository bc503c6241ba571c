from __future__ import annotations

import pytest

from gpbench.records import Instance
from gpbench.tasks.conformance import check_duties, check_task
from gpbench.tasks.registry import all_tasks, get_task


@pytest.mark.parametrize("task", all_tasks(), ids=lambda t: f"{t.id}@{t.version}")
def test_every_registered_task_conforms(task: object) -> None:
    assert check_task(task) == []  # type: ignore[arg-type]


def test_checker_catches_a_broken_task(monkeypatch: pytest.MonkeyPatch) -> None:
    task = get_task("gp-l")
    original = task.build_instance

    def broken(*args: object, **kwargs: object) -> Instance:
        inst: Instance = original(*args, **kwargs)  # type: ignore[arg-type]
        return Instance(**{**inst.__dict__, "params": {}, "reference": {}})

    monkeypatch.setattr(task, "build_instance", broken)
    problems = check_task(task, n=2)
    assert any("outside the split's region" in p for p in problems)
    assert any("no reference answer" in p for p in problems)


@pytest.mark.parametrize(
    ("attribute", "value", "problem"),
    [
        ("rl_lambda", None, "rl_lambda must be a positive number"),
        ("rl_lambda", 0.0, "rl_lambda must be a positive number"),
        ("memorization_flags", {"train_rule_answer": ("ood_rule",)}, "names splits"),
        ("answer_statuses", lambda mode="gpbench": (), "answer_statuses('gpbench') is ()"),
        (
            "answer_statuses",
            lambda mode="gpbench": ("wrong_value", "correct"),
            "not the first of answer_statuses",
        ),
        ("decision_points", lambda instance: 2, "2 decision points but 1 reference answers"),
        ("reports_recognition", "yes", "reports_recognition must be true or false"),
        ("overlap_family", "", "overlap_family must name the task's family"),
        ("overlap_keys", lambda instance: (), "overlap_keys() must give the instance's keys"),
        (
            "chat_overlap_keys",
            lambda prompt, answer: (),
            "chat_overlap_keys() of its own prompt and reference answer gives ()",
        ),
        (
            "headline_metric",
            lambda split: "per_step_accuracy",
            "headline_metric('train') is 'per_step_accuracy', not one of success",
        ),
        (
            "debug_views",
            lambda instance, point=0, max_px=420: [("scene", b"")],
            "debug_views() must give DebugView(caption, PNG bytes)",
        ),
    ],
)
def test_checker_names_a_missing_duty(
    monkeypatch: pytest.MonkeyPatch, attribute: str, value: object, problem: str
) -> None:
    task = get_task("gp-l")
    monkeypatch.setattr(task, attribute, value)
    assert any(problem in p for p in check_duties(task)), check_duties(task)


def test_a_vision_task_without_debug_views_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    task = get_task("gp-vl")
    monkeypatch.setattr(task, "debug_views", lambda instance, point=0, max_px=420: [])
    assert f"{task.id}: debug_views() gives no image of a vision instance" in check_duties(task)
