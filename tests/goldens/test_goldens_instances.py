"""Golden instances: a broad pin of every task's generator, byte for byte.

Beyond ``tests/tasks/test_golden_instances.py`` (30 instances per split at seed 42): 200
indices per GeneralPoints split, a second and a third seed, sparse large indices, the
non-default options (``target``, ``sampling=deck``, ``paired=true``, their combination, and
gp-vl's visual options), and for V-IRL the messages shown at every decision point of episodes
driven by the reference answers. Images are not rendered here (their pixels depend on the font
rasteriser of the installed Pillow).
"""

from __future__ import annotations

import pytest
from goldens_compute import (
    InstanceConfig,
    instance_configs,
    instance_lines,
    reference_episode_lines,
)
from goldens_corpus import VIRL_TASKS
from goldens_support import REGENERATE_HINT, digest, load_json, short_sha

from gpbench.tasks.registry import all_tasks

GOLDEN = load_json("instances.json")
CONFIGS = {config.name: config for config in instance_configs()}


def test_every_task_split_and_config_is_pinned() -> None:
    pinned = {name for name in GOLDEN if not name.startswith("reference-episodes/")}
    assert pinned == set(CONFIGS), (
        f"configs without a golden: {sorted(set(CONFIGS) - pinned)[:5]}; goldens without a "
        f"config: {sorted(pinned - set(CONFIGS))[:5]}. {REGENERATE_HINT}"
    )
    covered = {(config.task, config.split) for config in CONFIGS.values()}
    assert covered == {(task.id, split) for task in all_tasks() for split in task.splits}


def _describe_changes(config: InstanceConfig, lines: list[bytes]) -> str:
    old = GOLDEN[config.name]["shas"].split()
    new = [short_sha(line) for line in lines]
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b]
    if len(old) != len(new):
        changed.append(min(len(old), len(new)))
    shown = []
    for position in changed[:10]:
        index = config.indices[position] if position < len(config.indices) else position
        line = lines[position].decode("utf-8") if position < len(lines) else "<missing>"
        shown.append(f"  index {index}: now {line[:240]}")
    return (
        f"{config.name}: {len(changed)} of {len(config.indices)} instances changed; the first:\n"
        + "\n".join(shown)
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_instances_match_their_goldens(name: str) -> None:
    config = CONFIGS[name]
    lines = instance_lines(config)
    if digest(lines) != GOLDEN[name]["digest"]:
        pytest.fail(
            f"{_describe_changes(config, lines)}\nA change to generated instances needs a new "
            f"task version. {REGENERATE_HINT}",
            pytrace=False,
        )


@pytest.mark.parametrize("task_id", VIRL_TASKS)
def test_reference_episode_prompts_match_their_goldens(task_id: str) -> None:
    """Every prompt of a route walked with the reference answers (history rebuilt each step)."""
    golden = GOLDEN[f"reference-episodes/{task_id}"]
    lines = reference_episode_lines(task_id)
    if digest(lines) != golden["digest"]:
        old = golden["shas"].split()
        new = [short_sha(line) for line in lines]
        first = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
            min(len(old), len(new)),
        )
        now = lines[first].decode("utf-8")[:400] if first < len(lines) else "<missing>"
        pytest.fail(
            f"{task_id}: the messages or steps of reference-driven episodes changed "
            f"({len(old)} lines pinned, {len(new)} now); first change at line {first}:\n"
            f"  now {now}\n{REGENERATE_HINT}",
            pytrace=False,
        )
