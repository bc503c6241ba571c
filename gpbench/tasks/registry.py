"""The explicit table of task ids and versions -> task specs (no registration by import side effect).

Old versions stay in the table after a bump, so ``gp-l@1`` keeps generating the instances that
earlier runs used.
"""

from __future__ import annotations

import functools

from gpbench.errors import UnknownTaskError, did_you_mean
from gpbench.tasks.general_points import GeneralPointsText
from gpbench.tasks.gp_vision import GeneralPointsVision
from gpbench.tasks.navigation import NavigationText
from gpbench.tasks.navigation_vision import NavigationVision
from gpbench.tasks.spec import TaskSpec

_TASKS: dict[tuple[str, int], TaskSpec] = {
    (task.id, task.version): task
    for task in (
        GeneralPointsText(),
        GeneralPointsVision(),
        NavigationText(),
        NavigationVision(),
    )
}


def task_ids() -> list[str]:
    """Registered task ids, in table order (each listed once)."""
    return list(dict.fromkeys(task_id for task_id, _ in _TASKS))


def latest_version(task_id: str) -> int:
    """The newest registered version of a task id."""
    versions = [v for t, v in _TASKS if t == task_id]
    if not versions:
        raise _unknown(task_id)
    return max(versions)


@functools.lru_cache(maxsize=256)
def get_task(name: str) -> TaskSpec:
    """The task called ``name`` (``gp-l``, or ``gp-l@1`` for a pinned version)."""
    task_id, _, version_text = name.partition("@")
    version = latest_version(task_id)
    if version_text:
        try:
            version = int(version_text.removeprefix("v"))
        except ValueError:
            raise UnknownTaskError(
                f"bad task version in {name!r}: write {task_id}@N with N an integer"
            ) from None
    try:
        return _TASKS[(task_id, version)]
    except KeyError:
        known = sorted(v for t, v in _TASKS if t == task_id)
        raise UnknownTaskError(
            f"{task_id} has no version {version} (versions: {', '.join(map(str, known))})"
        ) from None


def all_tasks() -> list[TaskSpec]:
    """The latest version of every registered task."""
    return [get_task(task_id) for task_id in task_ids()]


def _unknown(task_id: str) -> UnknownTaskError:
    choices = task_ids()
    return UnknownTaskError(
        f"unknown task {task_id!r}{did_you_mean(task_id, choices)} (choices: {', '.join(choices)})"
    )
