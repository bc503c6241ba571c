"""gpbench's tasks in EleutherAI's lm-evaluation-harness (lm-eval 0.4.10 or newer).

Description:
    ``lm_eval --model hf --model_args pretrained=ckpt/ --apply_chat_template
    --include_path "$(gpbench lm-eval-path)" --tasks gpbench_gp_l_ood_rule`` runs a gpbench task
    split from lm-eval: the instances come from gpbench's generator (same seeds and sizes as
    ``gpbench generate``), the prompt is gpbench's user message, and every answer is judged by
    gpbench's verifier. lm-eval is single-turn: see :mod:`gpbench.lm_eval_bridge.hooks`.

    :mod:`~gpbench.lm_eval_bridge.configs` writes the YAMLs from the task registry
    (``gpbench lm-eval-export DIR``); a copy ships in the ``include`` folder of this package,
    kept equal to a fresh export by a test. Nothing here imports lm-eval: lm-eval imports the
    hooks.
"""

from __future__ import annotations

from pathlib import Path


def include_path() -> Path:
    """The folder of shipped lm-eval YAMLs, for ``lm_eval --include_path``."""
    return Path(__file__).resolve().parent / "include"
