from __future__ import annotations

import pytest

from gpbench.records import Instance
from gpbench.tasks.conformance import check_task
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
