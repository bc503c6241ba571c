"""Training compute of a checkpoint by the paper's formula (docs/tasks.md §3), from its metadata.

The paper puts SFT and RL on one axis of training FLOPs, counting RL's sampling too:

    SFT:  6 N (D_init + D_sft)
    RL:   6 N (D_init + D_rl) + 2 N lambda D_rl     (lambda: the task's ``rl_lambda``)
    init: 6 N D_init

with N parameters and D tokens. Metadata keys read (``gpbench_checkpoint.json``, ``--meta``):
``compute`` (FLOPs; used as given when present), ``parameter_count`` (or ``parameters``,
``num_parameters``, ``n_parameters``), ``tokens_seen`` (the method's own training tokens),
``init_tokens`` (the tokens of the shared initialisation; 0 when absent, which shifts every
series of a study by the same amount) and ``method``.

>>> training_compute({"method": "sft", "parameter_count": 10, "tokens_seen": 100}, 6.0)
6000.0
>>> training_compute({"method": "rl", "parameter_count": 10, "tokens_seen": 100}, 6.0)
18000.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpbench.runs.folder import parse_meta_value

SFT_METHODS = frozenset({"sft"})
RL_METHODS = frozenset({"rl", "grpo", "ppo"})
INIT_METHODS = frozenset({"init", "base", "initial"})
_PARAMETER_KEYS = ("parameter_count", "parameters", "num_parameters", "n_parameters")


def number(metadata: Mapping[str, Any], key: str) -> float | None:
    """A metadata value as a finite float (``--meta`` values may still be text), else None.

    >>> number({"step": "500"}, "step"), number({"step": "late"}, "step"), number({}, "step")
    (500.0, None, None)
    """
    value = parse_meta_value(metadata[key]) if key in metadata else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def method_of(metadata: Mapping[str, Any]) -> str | None:
    """The training method named in the metadata, lower-cased (``sft``, ``rl``, ``init`` ...)."""
    method = metadata.get("method")
    return method.strip().lower() if isinstance(method, str) and method.strip() else None


def training_compute(metadata: Mapping[str, Any], rl_lambda: float) -> float | None:
    """FLOPs by the paper's formula, or None when the metadata lacks what it needs."""
    given = number(metadata, "compute")
    if given is not None:
        return given
    parameters = next(
        (n for key in _PARAMETER_KEYS if (n := number(metadata, key)) is not None), None
    )
    method = method_of(metadata)
    if parameters is None or method is None:
        return None
    init_tokens = number(metadata, "init_tokens") or 0.0
    tokens = number(metadata, "tokens_seen")
    if method in INIT_METHODS:
        return 6 * parameters * (init_tokens or tokens or 0.0)
    if tokens is None:
        return None
    if method in SFT_METHODS:
        return 6 * parameters * (init_tokens + tokens)
    if method in RL_METHODS:
        return 6 * parameters * (init_tokens + tokens) + 2 * parameters * rl_lambda * tokens
    return None
