"""The memorization flags of every registered task, in report order (each task declares its own)."""

from __future__ import annotations

from gpbench.tasks.registry import all_tasks


def memorization_flags() -> tuple[str, ...]:
    """Every registered task's memorization flags, in registry order, each once.

    >>> memorization_flags()
    ('train_rule_answer', 'verbatim_training_formula', 'train_vocabulary_action')
    """
    return tuple(dict.fromkeys(flag for task in all_tasks() for flag in task.memorization_flags))
