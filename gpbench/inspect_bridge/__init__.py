"""gpbench's tasks in UK AISI's inspect_ai (0.3.285 or newer): ``inspect eval gpbench/gp_l``.

Description:
    Installing gpbench with the ``inspect`` extra registers its tasks with inspect through the
    ``inspect_ai`` entry point, so ``inspect eval gpbench/gp_l -T split=ood-rule --model ...``
    runs a split: the samples come from gpbench's generator (the same instances, seeds and sizes
    as ``gpbench generate``), the paper's multi-turn revision runs as a solver loop (the verifier's
    feedback is the next user turn, within the task's budget) and gpbench's verifier is the
    scorer. See :mod:`gpbench.inspect_bridge.bridge` for what each part does and
    :mod:`gpbench.inspect_bridge.tasks` for the task parameters (``-T``).

    :func:`gpbench.inspect_bridge.logs.episodes_from_log` reads such a log back as gpbench's
    Episode records (inspect's epochs are the samples per instance).

    Nothing in this package file imports inspect_ai; the modules do.
"""

from __future__ import annotations

INSPECT_TASKS = {"gp_l": "gp-l", "gp_vl": "gp-vl", "virl_l": "virl-l", "virl_vl": "virl-vl"}
"""inspect task name (after ``gpbench/``) -> gpbench task id; inspect names are Python
identifiers, so the dash becomes an underscore."""
