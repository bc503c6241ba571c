"""Which checkpoint a run evaluated, which series it belongs to, and where it sits on the x axis.

A run's checkpoint comes from ``run.json`` (``checkpoint``: path, fingerprint and the metadata
that ``gpbench eval`` copied from the checkpoint folder or ``--meta``). Series are named by
``--series NAME=GLOB`` rules (the first rule whose glob matches the run folder, the checkpoint
path or its name wins), else by the metadata's ``method`` (``sft``, ``rl`` ...). A checkpoint
whose series or method is ``init`` (or ``base``) is the shared starting point of every series.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpbench.errors import ConfigError
from gpbench.reports.compute import INIT_METHODS, method_of, number, training_compute
from gpbench.reports.inputs import Run
from gpbench.serialization import escape_surrogates

X_AXES = ("step", "compute")
DEFAULT_SERIES = "runs"


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint a run evaluated, as recorded in its ``run.json``.

    Attributes:
        key: what identifies it: the fingerprint, else the checkpoint path, else the run folder.
        name: a short name for tables and legends.
        path: the checkpoint path or hub id (or the run folder for ``gpbench score`` runs).
        metadata: training metadata (method, step, tokens seen, compute, ...).
    """

    key: str
    name: str
    path: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str | None:
        """The training method from the metadata, lower-cased."""
        return method_of(self.metadata)


@dataclass(frozen=True)
class SeriesRule:
    """``--series NAME=GLOB``: runs matching ``pattern`` form the series ``name``."""

    name: str
    pattern: str


def parse_series(pairs: Sequence[str]) -> list[SeriesRule]:
    """``("SFT=runs/sft-*", ...)`` -> rules, in order; a name may repeat with another glob.

    >>> parse_series(["RL=runs/rl-*"])
    [SeriesRule(name='RL', pattern='runs/rl-*')]
    """
    rules = []
    for pair in pairs:
        name, sep, pattern = pair.partition("=")
        if not sep or not name.strip() or not pattern.strip():
            raise ConfigError(
                f"--series {pair!r} is not NAME=GLOB (e.g. --series SFT='runs/sft-*')"
            )
        rules.append(SeriesRule(name.strip(), pattern.strip()))
    return rules


def checkpoint_of(run: Run) -> Checkpoint:
    """The checkpoint a run evaluated (``gpbench score`` runs: the run folder stands for it)."""
    recorded = run.spec.get("checkpoint")
    if not isinstance(recorded, dict):
        folder = str(run.folder)
        return Checkpoint(key=folder, name=escape_surrogates(run.folder.name), path=folder)
    path = str(recorded.get("checkpoint") or run.folder)
    key = str(recorded.get("fingerprint") or path)
    metadata = recorded.get("metadata")
    # Names go into figure labels and tables: a surrogate (a path that is not UTF-8, an escape
    # in run.json) is shown as its escape, which every writer and font can take.
    name = escape_surrogates((Path(path).name or path) if "/" in path else path)
    return Checkpoint(key, name, path, dict(metadata) if isinstance(metadata, dict) else {})


def series_of(run: Run, checkpoint: Checkpoint, rules: Sequence[SeriesRule]) -> str:
    """The series a run belongs to: the first matching rule, else the method, else ``runs``."""
    candidates = [
        str(run.folder),
        str(run.folder.resolve()),
        run.folder.name,
        checkpoint.path,
        checkpoint.name,
    ]
    for rule in rules:
        if any(fnmatch.fnmatchcase(text, rule.pattern) for text in candidates):
            return escape_surrogates(rule.name)
    return escape_surrogates(checkpoint.method or DEFAULT_SERIES)


def is_init(series: str, checkpoint: Checkpoint) -> bool:
    """Whether a checkpoint is the shared initial point of the series (``init`` / ``base``)."""
    return series.lower() in INIT_METHODS or checkpoint.method in INIT_METHODS


def x_value(checkpoint: Checkpoint, axis: str, *, init: bool, rl_lambda: float) -> float | None:
    """Where a checkpoint sits on the x axis (``step`` or ``compute``), or None when unknown.

    The initial checkpoint without a recorded step sits at step 0.
    """
    if axis not in X_AXES:
        raise ConfigError(f"--x must be one of {', '.join(X_AXES)}, got {axis!r}")
    if axis == "step":
        step = number(checkpoint.metadata, "step")
        return 0.0 if step is None and init else step
    metadata = checkpoint.metadata
    if init and "method" not in metadata:
        metadata = {**metadata, "method": "init"}
    return training_compute(metadata, rl_lambda)
