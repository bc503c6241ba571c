"""One exception hierarchy for gpbench.

Every user-facing error says what was expected, what was found and how to fix it, in one line.
The CLI prints ``str(error)`` without a traceback and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GpbenchError(Exception):
    """Base class of every error gpbench raises on purpose (bad input, missing files, ...)."""


class UnknownTaskError(GpbenchError):
    """A task id (or task version) that the registry does not hold."""


class UnknownSplitError(GpbenchError):
    """A split name that the task does not define."""


class ConfigError(GpbenchError):
    """An option or configuration value that is invalid."""


class RecordSchemaError(GpbenchError):
    """A line of a records file that is not a valid record."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


class MissingDependencyError(GpbenchError):
    """An optional dependency that a chosen feature needs is not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed; "
            f"run: pip install 'gpbench[{extra}]'"
        )


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""`` when none is close.

    >>> did_you_mean("ood_rule", ["id", "ood-rule"])
    "; did you mean 'ood-rule'?"
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def one_line(exc: BaseException) -> str:
    """An exception's message for a one-line error: whitespace runs (line breaks included) as one
    space, at most 300 characters; the exception's type name when it has no message.

    >>> one_line(ValueError("size mismatch for w:\\n\\tshape [2] vs [3]"))
    'size mismatch for w: shape [2] vs [3]'
    >>> one_line(KeyError())
    'KeyError'
    """
    text = " ".join(str(exc).split())
    if not text:
        return type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class BackendUnavailableError(GpbenchError):
    """A model backend whose optional dependencies are not installed (the message names the install)."""


class BackendError(GpbenchError):
    """A model backend that cannot run: a checkpoint it cannot load, or memory it cannot get."""


class ModelLoadError(BackendError):
    """A checkpoint that cannot be loaded: missing folder, no config.json, bad JSON, no tokenizer."""


class BackendOutOfMemoryError(BackendError):
    """A backend ran out of memory loading a model or generating (the message says what to lower)."""


class CheckpointError(GpbenchError):
    """A checkpoint folder or series whose files or metadata cannot be read."""
