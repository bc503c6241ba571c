"""The inspect tasks' parameters and their registration through the ``inspect_ai`` entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import Task

from gpbench.errors import ConfigError, UnknownSplitError
from gpbench.inspect_bridge import INSPECT_TASKS
from gpbench.inspect_bridge.tasks import gp_l, gp_vl, virl_l, virl_vl
from gpbench.tasks.registry import get_task, task_ids


def test_every_gpbench_task_has_an_inspect_task() -> None:
    assert sorted(INSPECT_TASKS.values()) == sorted(task_ids())
    made = {
        name: factory(n=1)
        for name, factory in zip(INSPECT_TASKS, (gp_l, gp_vl, virl_l, virl_vl), strict=True)
    }
    for name, task in made.items():
        assert isinstance(task, Task)
        assert task.name == f"gpbench/{name}"
        assert task.metadata is not None
        assert task.metadata["gpbench_task"].startswith(INSPECT_TASKS[name] + "@")


def test_defaults_are_the_splits_paper_seed_and_size() -> None:
    spec = get_task("virl-l").split("ood-spatial")
    task = virl_l(split="ood-spatial")
    assert len(task.dataset) == spec.paper_size
    assert {s.metadata["seed"] for s in task.dataset if s.metadata} == {spec.paper_seed}


def test_options_come_as_a_mapping_or_as_json_text() -> None:
    for options in ({"rotation": 30}, '{"rotation": 30}'):
        [sample] = gp_vl(n=1, options=options).dataset
        assert sample.metadata is not None
        assert sample.metadata["options"]["rotation"] == 30.0
        assert "[rotation=30.0]" in sample.metadata["instance_key"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"split": "ood_rule"}, UnknownSplitError, "did you mean 'ood-rule'"),
        ({"mode": "paper"}, ConfigError, "-T mode=one of gpbench, reference"),
        ({"budget": 0}, ConfigError, "budget must be an integer >= 1"),
        ({"budget": "two"}, ConfigError, "budget must be an integer >= 1"),
        ({"n": 0}, ConfigError, "n must be >= 1"),
        ({"seed": "x"}, ConfigError, "seed must be an integer"),
        ({"options": "{rotation"}, ConfigError, "-T options is not a mapping"),
        ({"options": [1]}, ConfigError, "-T options must be a mapping"),
        ({"options": {"rotaton": 3}}, ConfigError, "did you mean 'rotation'"),
    ],
)
def test_bad_parameters_are_one_line_errors(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        gp_vl(**{"n": 1, **kwargs})
    assert "\n" not in str(raised.value)


# Run in a fresh interpreter that has not imported the bridge: inspect must find
# "gpbench/gp_l" through the entry point, as `inspect eval gpbench/gp_l` does.
_BY_NAME = """
import json, sys
from importlib.metadata import entry_points
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from gpbench.tasks.registry import get_task

task = get_task("gp-l")
split = task.split("ood-rule")
answers = {
    i.messages[0]["content"]: task.reference_answer(i)
    for i in task.dataset("ood-rule", split.paper_seed, 2)
}

def answer(messages, *_):
    out = ModelOutput.from_content(model="mockllm", content=answers[messages[0].text])
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out

points = [p.value for p in entry_points(group="inspect_ai") if p.name == "gpbench"]
loaded_before = "gpbench.inspect_bridge.tasks" in sys.modules
[log] = inspect_eval(
    "gpbench/gp_l",
    task_args={"split": "ood-rule", "n": 2},
    model=get_model("mockllm/model", custom_outputs=answer),
    display="none",
)
success = [s for s in log.results.scores if s.name == "success"][0].metrics["mean"].value
print(json.dumps({"points": points, "before": loaded_before, "task": log.eval.task, "n": len(log.samples),
                  "success": success}))
"""


def test_inspect_resolves_gpbench_tasks_by_name(inspect_log_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BY_NAME],
        capture_output=True,
        text=True,
        timeout=300,
        # Outside the checkout, as a user runs it: with the checkout first on sys.path (what
        # `python -c` does there), inspect takes "gpbench/gp_l" for a path into the source tree,
        # and a stale gpbench.egg-info there would hide the installed entry points.
        cwd=inspect_log_dir.parent,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {
        "points": ["gpbench.inspect_bridge.tasks"],
        "before": False,
        "task": "gpbench/gp_l",
        "n": 2,
        "success": 1.0,
    }
    assert list(inspect_log_dir.glob("*.eval"))  # the subprocess inherited INSPECT_LOG_DIR


def test_the_readmes_command_line_parameters_reach_the_task() -> None:
    from inspect_ai._util.config import parse_cli_args

    args = parse_cli_args(["split=ood-rule", "n=2", "seed=9", "options={rotation: 30}"])
    samples = list(gp_vl(**args).dataset)
    assert [s.metadata["index"] for s in samples if s.metadata] == [0, 1]
    assert all(s.metadata and s.metadata["seed"] == 9 for s in samples)
    with pytest.raises(ConfigError, match="one split per task"):
        gp_vl(**parse_cli_args(["split=id,ood-rule"]))
