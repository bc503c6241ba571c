"""The memorization flags of TASKS.md §5: which task family produces each, on which splits."""

from __future__ import annotations

MEMORIZATION_FLAGS = ("train_rule_answer", "verbatim_training_formula", "train_vocabulary_action")
"""Flags that say an answer replays the training distribution, in report order."""

FLAG_SPLITS: dict[str, tuple[str, ...]] = {
    # Under the training rule these answers are right, so they are failures only where the
    # rule changed: the share of OOD failures they explain is measured on ood-rule.
    "train_rule_answer": ("ood-rule",),
    "verbatim_training_formula": ("ood-rule",),
    "train_vocabulary_action": ("ood-rule",),
}
"""The splits on which a flag marks a failure that the training distribution explains."""

_GENERAL_POINTS_FLAGS = ("train_rule_answer", "verbatim_training_formula")
_NAVIGATION_FLAGS = ("train_vocabulary_action",)


def task_flags(multi_decision: bool) -> tuple[str, ...]:
    """The memorization flags a task family produces (V-IRL is the multi-decision family).

    >>> task_flags(False), task_flags(True)
    (('train_rule_answer', 'verbatim_training_formula'), ('train_vocabulary_action',))
    """
    return _NAVIGATION_FLAGS if multi_decision else _GENERAL_POINTS_FLAGS
