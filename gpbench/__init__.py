"""gpbench: "SFT Memorizes, RL Generalizes" (Chu et al., 2025) as a benchmark anyone can run.

Procedural GeneralPoints and V-IRL tasks with in-distribution and out-of-distribution splits,
an exact verifier, and tools to evaluate and compare checkpoints.

The names a user's script imports are here, and only these are promised to stay put (the modules
behind them may move):

- tasks: :func:`get_task`, :func:`all_tasks`, :func:`task_ids`, :class:`TaskSpec`,
  :func:`check_task` (the conformance check a new task passes);
- records: :class:`Instance`, :class:`Verdict`, :class:`Episode`;
- data: :func:`write_split`, :func:`load_split` (an exported split with its images);
- evaluation: :func:`evaluate` with :class:`EvalConfig`, :func:`score_responses` (recorded
  answers scored as an episode), :func:`read_episodes` (a run folder's episodes),
  :func:`compare_runs`, :func:`build_report` with :class:`ReportConfig`;
- training: :class:`VerifierReward` (the paper's reward as a TRL reward function),
  :func:`reward_functions` (it and the format shaping terms);
- :class:`GpbenchError`, the base of every error gpbench raises for a user to fix.

>>> import gpbench
>>> task = gpbench.get_task("gp-l")
>>> task.verify(task.instance("id", 42, 0), "no formula here").correct
False
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Where each public name lives. They are imported on first use (PEP 562), so `import gpbench`
# (and the CLI, which imports it) stays as light as the task generators: torch and the report's
# plotting stack load only when a name that needs them is used.
_LAZY = {
    "get_task": "gpbench.tasks.registry",
    "all_tasks": "gpbench.tasks.registry",
    "task_ids": "gpbench.tasks.registry",
    "TaskSpec": "gpbench.tasks.spec",
    "check_task": "gpbench.tasks.conformance",
    "Instance": "gpbench.records",
    "Verdict": "gpbench.records",
    "Episode": "gpbench.records",
    "write_split": "gpbench.export",
    "load_split": "gpbench.export",
    "evaluate": "gpbench.harness.evaluate",
    "EvalConfig": "gpbench.harness.evaluate",
    "score_responses": "gpbench.harness.transcripts",
    "read_episodes": "gpbench.runs.read",
    "compare_runs": "gpbench.reports.compare",
    "build_report": "gpbench.reports.build",
    "ReportConfig": "gpbench.reports.build",
    "VerifierReward": "gpbench.recipes.rewards",
    "reward_functions": "gpbench.recipes.rewards",
    "GpbenchError": "gpbench.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gpbench' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
