"""Model backends behind one small batch-first protocol, and the factory that picks one.

A backend turns a batch of :class:`Request` (gpbench chat messages plus their images) into one
:class:`Completion` each. The loop (:mod:`gpbench.harness.loop`) owns conversations and episodes;
a backend only decodes.

Backends:
    ``scripted``: deterministic answers from the task's reference solver (tests, demos,
        benchmarks); no model, no heavy imports.
    ``hf``: transformers, batched, CPU or GPU, text and vision-language checkpoints.
    ``vllm``: ``vllm.LLM`` in process (tensor/pipeline parallel, prefix caching); data parallel
        as several processes on ``--shard`` slices.
    ``openai``: any OpenAI-compatible server (``vllm serve``, ...), concurrent requests with
        retry and backoff.
    ``auto``: ``vllm`` when it is installed, a CUDA GPU is visible and vLLM runs the
        architecture; else ``hf`` (with a one-line note on the ``gpbench`` logger when vLLM was
        there but could not take the model, e.g. Llama-3.2-Vision).

This module stays light: the heavy packages of a backend are imported inside the factory, and a
missing one becomes a one-line :class:`~gpbench.errors.BackendUnavailableError` naming the install.

>>> backend = create_backend("scripted", "constant:hello")
>>> backend.generate([Request([{"role": "user", "content": "hi"}], [], 0, {})], Sampling())
[Completion(text='hello', finish_reason='stop', prompt_tokens=None, completion_tokens=None, latency_s=None)]
"""

from __future__ import annotations

import logging
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

    def identity(self) -> dict[str, Any]:
        """What decides the answers beyond the checkpoint's weights, JSON-able, for the run key.

        Two backends with equal identities (and equal checkpoints) answer alike, so a complete
        run of one is reused for the other; anything that can change an answer (dtype, chat
        template, the server behind a URL, a scripted error rate) belongs here, and nothing
        that cannot (batch size, concurrency, timeouts). A wrapper must forward it.
        """
        ...

    def close(self) -> None:
        """Release the model (memory, GPU); the backend is unusable afterwards."""
        ...


BACKENDS = ("auto", "hf", "vllm", "openai", "scripted")

# The fields of an in-process backend's description that decide its answers.
_ANSWER_FIELDS = ("chat_template_sha256", "dtype", "device", "max_model_len", "trust_remote_code")


def in_process_identity(described: dict[str, Any]) -> dict[str, Any]:
    """The answer-deciding part of an in-process backend's ``describe()``.

    The device keeps only its kind: ``cuda:0`` and ``cuda:1`` answer alike, a CPU and a GPU may
    not (other kernels, other rounding).
    """
    picked = {name: described[name] for name in _ANSWER_FIELDS if name in described}
    device = picked.get("device")
    if isinstance(device, str):
        picked["device"] = device.split(":", 1)[0]
    return picked


logger = logging.getLogger("gpbench")

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
_VLLM_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "dtype": str,
    "max_model_len": lambda v: _positive_int("max_model_len", v),
    "gpu_memory_utilization": lambda v: _float("gpu_memory_utilization", v),
    "tensor_parallel_size": lambda v: _positive_int("tensor_parallel_size", v),
    "pipeline_parallel_size": lambda v: _positive_int("pipeline_parallel_size", v),
    "enforce_eager": lambda v: _boolean("enforce_eager", v),
    "enable_prefix_caching": lambda v: _boolean("enable_prefix_caching", v),
    "max_num_seqs": lambda v: _positive_int("max_num_seqs", v),
    "chat_template": str,
    "trust_remote_code": lambda v: _boolean("trust_remote_code", v),
    "seed": lambda v: _int("seed", v),
    # Accepted and ignored: vLLM schedules its own batches.
    "batch_size": lambda v: _positive_int("batch_size", v),
}
_OPENAI_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "base_url": str,
    "api_key": str,
    "concurrency": lambda v: _positive_int("concurrency", v),
    "timeout": lambda v: _float("timeout", v),
    "max_retries": lambda v: _int("max_retries", v),
    "backoff": lambda v: _float("backoff", v),
    "max_backoff": lambda v: _float("max_backoff", v),
    "max_response_bytes": lambda v: _positive_int("max_response_bytes", v),
    "images": lambda v: _boolean("images", v),
    # Accepted and ignored: requests go out `concurrency` at a time.
    "batch_size": lambda v: _positive_int("batch_size", v),
}
_SCRIPTED_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "policy": str,
    "error_rate": lambda v: _float("error_rate", v),
    "seed": lambda v: _int("seed", v),
    # Accepted and ignored, so one set of eval options works with every backend.
    "batch_size": lambda v: _positive_int("batch_size", v),
}


def create_backend(
    name: str, model: str | None, *, base_model: str | None = None, **settings: Any
) -> Backend:
    """The backend called ``name`` for ``model``, with backend-specific ``settings``.

    Args:
        name: ``auto``, ``hf``, ``vllm``, ``openai`` or ``scripted``.
        model: for ``hf`` and ``vllm`` a local checkpoint folder (or a hub id where a hub is
            reachable); for ``openai`` the name the server serves the model under; for
            ``scripted`` a policy (``reference``, ``reference:0.3``, ``constant:<text>``) or None.
        base_model: for a PEFT adapter folder loaded by ``hf`` or ``vllm``, the base checkpoint
            to apply it to instead of the one its config names (``--base-model``).
        settings: ``hf``: batch_size, device, dtype, chat_template, trust_remote_code,
            device_map. ``vllm``: dtype, max_model_len, gpu_memory_utilization,
            tensor_parallel_size, pipeline_parallel_size, enforce_eager, enable_prefix_caching,
            max_num_seqs, chat_template, trust_remote_code, seed. ``openai``: base_url
            (required), api_key, concurrency, timeout, max_retries, backoff, max_backoff,
            max_response_bytes, images.
            ``scripted``: policy, error_rate, seed. batch_size is accepted by every backend and
            used by ``hf`` only. ``auto`` takes the settings of the backend it picks.

    Raises:
        ConfigError: unknown backend or setting, or a setting of the wrong type.
        BackendUnavailableError: the backend's packages are not installed.
        ModelLoadError: the checkpoint cannot be loaded.
    """
    if name not in BACKENDS:
        raise ConfigError(
            f"unknown backend {name!r}{did_you_mean(name, BACKENDS)} (choices: {', '.join(BACKENDS)})"
        )
    if base_model is not None and name in ("openai", "scripted"):
        raise ConfigError(
            f"--base-model is for adapter folders loaded by gpbench, not --backend {name}"
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
        if name == "openai":
            raise ConfigError("backend openai needs a model: the name the server serves it under")
        raise ConfigError(f"backend {name} needs a model: a checkpoint folder or a hub id")
    if name == "openai":
        from gpbench.harness.backends.openai_api import OpenAIBackend

        options = _settings("openai", settings, _OPENAI_SETTINGS)
        options.pop("batch_size", None)
        if "base_url" not in options:
            raise ConfigError(
                "backend openai needs the server's URL: --base-url http://HOST:PORT/v1 "
                "(or base_url=)"
            )
        return OpenAIBackend(model, **options)
    if name == "auto":
        name = resolve_auto(model, settings, base_model)
    if name == "vllm":
        from gpbench.harness.backends.vllm import VLLMBackend

        options = _settings("vllm", settings, _VLLM_SETTINGS)
        options.pop("batch_size", None)
        return VLLMBackend(model, base_model=base_model, **options)
    from gpbench.harness.backends.hf import HFBackend

    return HFBackend(model, base_model=base_model, **_settings("hf", settings, _HF_SETTINGS))


def resolve_auto(model: str, settings: Mapping[str, Any], base_model: str | None = None) -> str:
    """The backend ``auto`` stands for: ``vllm`` or ``hf``.

    ``hf`` when an hf-only setting is given (device, device_map); otherwise the choice of
    :func:`gpbench.harness.backends.vllm.choose_auto`, logged on the ``gpbench`` logger (a
    warning, shown as one line, when vLLM was there but could not take the model).

    Raises:
        ConfigError: settings of both backends, or a vllm-only setting when hf was picked.
    """
    given = [key for key, value in settings.items() if value is not None]
    hf_only = [key for key in given if key in _HF_SETTINGS and key not in _VLLM_SETTINGS]
    vllm_only = [key for key in given if key in _VLLM_SETTINGS and key not in _HF_SETTINGS]
    if hf_only and vllm_only:
        raise ConfigError(
            f"auto backend: {', '.join(hf_only)} is an hf setting and {', '.join(vllm_only)} a "
            f"vllm setting; pass --backend hf or --backend vllm"
        )
    if hf_only:
        return "hf"  # the user configured hf explicitly (device, device_map)
    from gpbench.harness.backends.vllm import choose_auto

    chosen, why, worth_a_note = choose_auto(model, base_model)
    if chosen == "hf" and vllm_only:
        raise ConfigError(
            f"auto backend picked hf ({why}), but {', '.join(vllm_only)} is a vllm setting; "
            f"drop it, or pass --backend vllm"
        )
    if worth_a_note:
        logger.warning("note: --backend auto picked %s: %s", chosen, why)
    else:
        logger.info("--backend auto picked %s: %s", chosen, why)
    return chosen


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
    "resolve_auto",
]
