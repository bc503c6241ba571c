"""gpbench: "SFT Memorizes, RL Generalizes" (Chu et al., 2025) as a benchmark anyone can run.

Procedural GeneralPoints and V-IRL tasks with in-distribution and out-of-distribution splits,
an exact verifier, and tools to evaluate and compare checkpoints.

The names a training script imports are here: :func:`load_split` (an exported split with its
images) and :class:`VerifierReward` (the paper's reward as a TRL reward function).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["VerifierReward", "__version__", "load_split"]

# Where each public name lives. They are imported on first use (PEP 562), so `import gpbench`
# (and the CLI, which imports it) stays as light as the task generators.
_LAZY = {
    "load_split": "gpbench.export",
    "VerifierReward": "gpbench.recipes.rewards",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gpbench' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
