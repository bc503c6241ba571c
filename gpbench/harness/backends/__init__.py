"""Model backends behind one small batch-first protocol, and the factory that picks one.

A backend turns a batch of :class:`Request` (gpbench chat messages plus their images) into one
:class:`Completion` each. The loop (:mod:`gpbench.harness.loop`) owns conversations and episodes;
a backend only decodes.

Backends:
    ``scripted``: deterministic answers from the task's reference solver (tests, demos,
        benchmarks); no model, no heavy imports.
    ``hf``: transformers, batched, CPU or GPU, text and vision-language checkpoints.
    ``auto``: ``hf`` for now (vLLM comes later).

This module stays light: the heavy packages of a backend are imported inside the factory, and a
missing one becomes a one-line :class:`~gpbench.errors.BackendUnavailableError` naming the install.

>>> backend = create_backend("scripted", "constant:hello")
>>> backend.generate([Request([{"role": "user", "content": "hi"}], [], 0, {})], Sampling())
[Completion(text='hello', finish_reason='stop', prompt_tokens=None, completion_tokens=None, latency_s=None)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from gpbench.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Sampling:
    """Decoding settings shared by every backend.

    Attributes:
        temperature: 0 means greedy decoding; above 0, sampling at that temperature.
        top_p: nucleus sampling mass (1.0 keeps the whole distribution); ignored when greedy.
        max_tokens: new tokens per answer; an answer that reaches it ends with ``length``.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.max_tokens, bool) or self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")

    @property
    def greedy(self) -> bool:
        """Decoding takes the most likely token at every step."""
        return self.temperature == 0


@dataclass(frozen=True)
class Request:
    """One conversation to answer.

    Attributes:
        messages: gpbench chat messages ``{"role", "content"}``; content is a string or a list of
            parts ``{"type": "image", "path": ...}`` / ``{"type": "text", "text": ...}``.
        images: PIL images for the image parts, in order of appearance across ``messages``.
        seed: the request's sampling seed (derived by the harness from run seed, uid, sample and
            turn, so batching never changes it).
        meta: ``uid``, ``task``, ``decision_point``, ``attempt``, ``instance`` (the Instance) and
            whatever else the harness adds; only the scripted backend reads it.
    """

    messages: list[dict[str, Any]]
    images: list[Any]
    seed: int
    meta: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    """One answer.

    Attributes:
        text: the generated text, without the end-of-sequence token.
        finish_reason: ``stop`` (the model ended its answer) or ``length`` (cut at max_tokens).
        prompt_tokens: tokens in the rendered prompt, when the backend counts them.
        completion_tokens: tokens generated (the end-of-sequence token included), when counted.
        latency_s: wall time of the backend call (the whole batch) that produced the answer.
    """

    text: str
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None


FINISH_REASONS = ("stop", "length")


@runtime_checkable
class Backend(Protocol):
    """What the harness needs from a model: batched generation and a description of itself.

    Attributes:
        name: the backend's name (``hf``, ``scripted``, ...), recorded in run.json.
        supports_images: requests may carry image parts (vision-language model).
    """

    name: str
    supports_images: bool

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        """One completion per request, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able settings for run.json: model, fingerprint, template hash, dtype, versions."""
        ...

    def close(self) -> None:
        """Release the model (memory, GPU); the backend is unusable afterwards."""
        ...


BACKENDS = ("auto", "hf", "scripted")

# Settings each backend takes, with the converter applied to each value: the CLI hands over
# strings (``--backend-opt batch_size=4``) as readily as Python callers hand over ints.
_HF_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "batch_size": lambda v: _positive_int("batch_size", v),
    "device": str,
    "dtype": str,
    "chat_template": str,
    "trust_remote_code": lambda v: _boolean("trust_remote_code", v),
    "device_map": str,
}
_SCRIPTED_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "policy": str,
    "error_rate": lambda v: _float("error_rate", v),
    "seed": lambda v: _int("seed", v),
    # Accepted and ignored, so one set of eval options works with every backend.
    "batch_size": lambda v: _positive_int("batch_size", v),
}


def create_backend(name: str, model: str | None, **settings: Any) -> Backend:
    """The backend called ``name`` for ``model``, with backend-specific ``settings``.

    Args:
        name: ``hf``, ``scripted`` or ``auto`` (``hf`` for now).
        model: for ``hf`` a local checkpoint folder (or a hub id where a hub is reachable); for
            ``scripted`` a policy (``reference``, ``reference:0.3``, ``constant:<text>``) or None.
        settings: ``hf``: batch_size, device, dtype, chat_template, trust_remote_code,
            device_map. ``scripted``: policy, error_rate, seed (batch_size is ignored).

    Raises:
        ConfigError: unknown backend or setting, or a setting of the wrong type.
        BackendUnavailableError: the backend's packages are not installed.
        ModelLoadError: the checkpoint cannot be loaded.
    """
    if name not in BACKENDS:
        raise ConfigError(
            f"unknown backend {name!r}{did_you_mean(name, BACKENDS)} (choices: {', '.join(BACKENDS)})"
        )
    if name == "scripted":
        from gpbench.harness.backends.scripted import ScriptedBackend

        options = _settings("scripted", settings, _SCRIPTED_SETTINGS)
        options.pop("batch_size", None)
        if model is not None:
            if "policy" in options:
                raise ConfigError(
                    "scripted backend: give the policy as the model or as policy=, not both"
                )
            options["policy"] = model
        return ScriptedBackend(**options)
    if model is None:
        raise ConfigError(f"backend {name} needs a model: a checkpoint folder or a hub id")
    # "auto" will choose vLLM where it is installed and supports the architecture; today only hf.
    from gpbench.harness.backends.hf import HFBackend

    return HFBackend(model, **_settings("hf", settings, _HF_SETTINGS))


def _settings(
    backend: str, given: Mapping[str, Any], table: Mapping[str, Callable[[Any], Any]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in table:
            raise ConfigError(
                f"unknown setting {key!r} for the {backend} backend{did_you_mean(key, table)} "
                f"(settings: {', '.join(table)})"
            )
        if value is not None:
            out[key] = table[key](value)
    return out


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} expects an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} expects an integer, got {value!r}") from None


def _positive_int(name: str, value: Any) -> int:
    number = _int(name, value)
    if number < 1:
        raise ConfigError(f"{name} must be >= 1, got {number}")
    return number


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{name} expects a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} expects a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} expects a finite number, got {value!r}")
    return number


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} expects true or false, got {value!r}")


__all__ = [
    "BACKENDS",
    "FINISH_REASONS",
    "Backend",
    "Completion",
    "Request",
    "Sampling",
    "create_backend",
]
