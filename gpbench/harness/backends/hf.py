"""The transformers backend: batched generation on CPU or GPU, text and vision-language models.

Loading:
    A local checkpoint folder (``save_pretrained`` layout), or a hub id where a hub is reachable
    (or cached, with ``HF_HUB_OFFLINE=1``). Text models load with ``AutoTokenizer`` +
    ``AutoModelForCausalLM``; vision-language models (the config has a ``vision_config``, or its
    type maps only to an image-text-to-text model) with ``AutoProcessor`` +
    ``AutoModelForImageTextToText``, and then ``supports_images`` is True. A PEFT adapter folder
    loads over its base model, merged (:mod:`gpbench.harness.adapters`); a sharded training
    checkpoint loads through its cached ``gpbench convert`` conversion, or not at all. Weights
    load strictly (:mod:`gpbench.harness.weights`): a checkpoint whose weights do not fit the
    architecture its config names (a ``module.`` prefix, another architecture's config, a
    missing tensor or shard, a truncated file) is refused in one line, never evaluated with
    random parameters, and so is an adapter whose tensors do not fit its base.

Prompts:
    The checkpoint's chat template (the processor's for vision-language models), or the
    ``chat_template`` setting: a Jinja string, a file, or ``plain`` (``User: ... Assistant:``, for
    base text models without one). Its sha256 goes to run.json. gpbench image parts become
    ``{"type": "image"}`` placeholders and the PIL images go through the processor.

Decoding:
    Batches of ``batch_size`` requests (shortest prompts together, to waste little on padding),
    left-padded. Greedy when ``temperature == 0``; otherwise sampling seeded with
    ``torch.manual_seed`` from the first request's seed in the batch. Exact reproducibility is
    promised only for greedy decoding at batch size 1 on one machine: padding and batch
    composition change floating-point results. Only gpbench's :class:`Sampling` decides decoding:
    penalties and truncations from the checkpoint's ``generation_config.json`` are switched off
    (vLLM and transformers then agree); :func:`paper_sampling` reads its temperature and top_p for
    ``--paper``. An answer that reaches ``max_tokens`` without an end-of-sequence token finishes
    with ``length``. When a batch runs out of memory it is split in halves (and later batches use
    the smaller size); one request that does not fit raises :class:`BackendOutOfMemoryError`.

Settings:
    ``batch_size`` (8), ``device`` (``cuda`` when available, else ``cpu``), ``dtype`` (float32
    on CPU, bfloat16 on GPU; or float16, ``auto`` = the checkpoint's), ``chat_template``,
    ``trust_remote_code`` (False), ``device_map`` (e.g. ``auto`` to spread a model over GPUs).

Importing this module is light (no torch): the heavy imports happen when a backend is built.
"""

from __future__ import annotations

import gc
import glob
import json
import time
from collections.abc import Sequence
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
from gpbench.harness.adapters import apply_adapter
from gpbench.harness.backends import Completion, Request, Sampling, in_process_identity
from gpbench.harness.backends.chat import (
    default_template,
    is_vision_language,
    package_version,
    resolve_template,
    template_message,
    template_sha256,
)
from gpbench.harness.checkpoints import discover_series, fingerprint
from gpbench.harness.folders import CONFIG_FILE, find_adapter, loadable_folder, resolve_model
from gpbench.harness.weights import check_weight_files, load_pretrained
from gpbench.serialization import parse_json

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "spiece.model",
    "vocab.json",
    "vocab.txt",
)
_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "auto": "auto",
}
# Decoding knobs a checkpoint's generation_config.json may set, at the values that switch them
# off: gpbench's Sampling (temperature, top_p, max_tokens) is the whole decoding specification.
_NEUTRAL_GENERATION = {
    "num_beams": 1,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "min_length": 0,
    "length_penalty": 1.0,
}
_PACKAGES = ("torch", "transformers", "tokenizers", "accelerate")


def paper_sampling(
    model_dir: str | Path, max_tokens: int = 256, base_model: str | None = None
) -> Sampling:
    """The checkpoint's own decoding settings (``--paper``): its generation_config.json's
    temperature and top_p when it samples (``do_sample``), else greedy; ``max_tokens`` 256.

    A glob of checkpoint folders reads the first checkpoint of the series. An adapter without
    its own generation config decodes as its base (``base_model``, else the one it names).
    """
    text = str(model_dir)
    if not Path(text).expanduser().exists() and glob.has_magic(text):
        folder = discover_series(text)[0]
    else:
        folder = resolve_model(text)
    folder = loadable_folder(folder)
    adapter = find_adapter(folder, base_model)
    if adapter is not None and not (folder / "generation_config.json").is_file():
        folder = adapter.base  # an adapter decodes as its base model does
    path = folder / "generation_config.json"
    if not path.is_file():
        return Sampling(0.0, 1.0, max_tokens)
    data = _read_json(path)
    if not data.get("do_sample"):
        return Sampling(0.0, 1.0, max_tokens)
    temperature = data.get("temperature")
    top_p = data.get("top_p")
    return Sampling(
        1.0 if temperature is None else float(temperature),
        1.0 if top_p is None else float(top_p),
        max_tokens,
    )


def check_model_folder(folder: Path) -> dict[str, Any]:
    """The folder's config.json, after checking that it is a loadable checkpoint's (no torch):
    a config, a tokenizer, and weight files that are whole (a shard index's shards all there,
    safetensors files not truncated: :func:`gpbench.harness.weights.check_weight_files`)."""
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ModelLoadError(f"{folder} is not a model folder (no config.json)")
    config = _read_json(config_path)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES) and not any(
        folder.glob("*.tiktoken")
    ):
        raise ModelLoadError(
            f"{folder} has no tokenizer (no tokenizer.json, tokenizer_config.json or "
            f"tokenizer.model); save it beside the weights with tokenizer.save_pretrained()"
        )
    check_weight_files(folder, config)
    return config


class HFBackend:
    """transformers ``generate`` behind the gpbench backend protocol (see the module docstring)."""

    name = "hf"

    def __init__(
        self,
        model: str | Path,
        *,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str | None = None,
        chat_template: str | None = None,
        trust_remote_code: bool = False,
        device_map: str | None = None,
        base_model: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model_arg = str(model)
        self.path = loadable_folder(resolve_model(model))  # sharded: its cached conversion
        # A PEFT adapter folder: the base's config and weights, then the adapter (adapters.py).
        self.adapter = find_adapter(self.path, base_model)
        self.tokenizer_path = self.path
        if self.adapter is not None:
            self.path, self.tokenizer_path = self.adapter.base, self.adapter.tokenizer_folder
        raw_config = check_model_folder(self.path)
        torch, transformers = _import_heavy()
        self._torch: Any = torch
        self._transformers: Any = transformers
        self.batch_size = batch_size
        self._batch_now = batch_size  # shrinks after an out-of-memory split
        self.device_map = device_map
        self.device = _device(torch, device)
        self.dtype_name = _dtype_name(dtype, self.device)
        self.trust_remote_code = trust_remote_code
        self.fingerprint = (
            fingerprint(self.adapter.folder, base_model) if self.adapter else fingerprint(self.path)
        )

        try:
            config = transformers.AutoConfig.from_pretrained(
                self.path, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError, KeyError) as exc:
            model_type = raw_config.get("model_type")
            raise ModelLoadError(
                f"cannot read {self.path / CONFIG_FILE} (model_type {model_type!r}): "
                f"{one_line(exc)}; a newer transformers or trust_remote_code=true may help"
            ) from None
        self.model_type = str(getattr(config, "model_type", ""))
        self.architectures = list(getattr(config, "architectures", None) or [])
        self.supports_images = is_vision_language(config, transformers)

        self._processor, self._tokenizer = self._load_processing(transformers)
        own_template = default_template(self._processor, self._tokenizer)
        self.chat_template, self.chat_template_source = resolve_template(
            chat_template, own_template, self.path
        )
        self.chat_template_sha256 = template_sha256(self.chat_template)
        self._model: Any = self._load_weights(torch, transformers, device_map)
        self.dtype_name = str(self._model.dtype).removeprefix("torch.")
        self.eos_token_ids = _end_tokens(self._model, self._tokenizer, self.path)
        self.pad_token_id = int(self._tokenizer.pad_token_id)
        # Knobs the checkpoint turns on that gpbench turns off (recorded in describe()).
        own = self._model.generation_config
        self._neutral: dict[str, Any] = {
            key: value
            for key, value in _NEUTRAL_GENERATION.items()
            if getattr(own, key, None) not in (None, value)
        }
        if getattr(own, "min_p", None) is not None:
            self._neutral["min_p"] = 0.0  # None would be refilled from the checkpoint's value

    def _load_processing(self, transformers: Any) -> tuple[Any, Any]:
        """The processor (vision-language models only) and the tokenizer, left-padding."""
        processor: Any = None
        try:
            if self.supports_images:
                processor = transformers.AutoProcessor.from_pretrained(
                    self.tokenizer_path, trust_remote_code=self.trust_remote_code
                )
                tokenizer = getattr(processor, "tokenizer", None)
                if tokenizer is None:
                    raise ValueError("the processor has no tokenizer")
            else:
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    self.tokenizer_path, trust_remote_code=self.trust_remote_code
                )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            what = "processor" if self.supports_images else "tokenizer"
            raise ModelLoadError(
                f"cannot load the {what} of {self.path}: {one_line(exc)}; save it beside the "
                f"weights ({what}.save_pretrained)"
            ) from None
        # Decoder-only models continue from the last position, so pad on the left.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ModelLoadError(
                    f"the tokenizer of {self.path} has neither a pad nor an end-of-sequence token"
                )
            tokenizer.pad_token = tokenizer.eos_token
        return processor, tokenizer

    def _load_weights(self, torch: Any, transformers: Any, device_map: str | None) -> Any:
        """The model in eval mode on its device, its weights (and adapter) checked to fit it
        exactly (:func:`gpbench.harness.weights.load_pretrained`); out of memory becomes one
        line of advice."""
        auto_class = (
            transformers.AutoModelForImageTextToText
            if self.supports_images
            else transformers.AutoModelForCausalLM
        )
        torch_dtype = "auto" if self.dtype_name == "auto" else getattr(torch, self.dtype_name)
        kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": self.trust_remote_code}
        if device_map is not None:
            kwargs["device_map"] = device_map
        try:
            model = load_pretrained(auto_class, self.path, **kwargs)
            if self.adapter is not None:
                model = apply_adapter(model, self.adapter)  # merged into the weights
            if device_map is None:
                model = model.to(self.device)
        except (RuntimeError, MemoryError) as exc:
            if _is_oom(exc):
                self._free()
                raise BackendOutOfMemoryError(
                    f"out of memory loading {self.path} on {self.device} as {self.dtype_name}: "
                    f"use dtype=bfloat16, a GPU (device=cuda) or device_map=auto"
                ) from None
            raise ModelLoadError(
                f"cannot load the weights of {self.path}: {one_line(exc)}"
            ) from None
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(
                f"cannot load the weights of {self.path}: {one_line(exc)}"
            ) from None
        self._check_vocabulary(model)
        model.eval()
        return model

    def _check_vocabulary(self, model: Any) -> None:
        """Refuse a tokenizer that makes token ids the model has no embedding for (another
        model's tokenizer): generation would fail on the first such id with an IndexError."""
        embeddings = model.get_input_embeddings()
        rows = getattr(embeddings, "num_embeddings", None)
        tokens = len(self._tokenizer)
        if isinstance(rows, int) and tokens > rows:
            raise ModelLoadError(
                f"the tokenizer of {self.tokenizer_path} has {tokens} tokens but the model's "
                f"embeddings in {self.path} have {rows} rows: ids from {rows} on cannot be "
                f"embedded; the tokenizer belongs to another model (or the resized embeddings "
                f"were not saved)"
            )

    # -- protocol ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        """One completion per request, in order (see the module docstring for batching)."""
        if self._model is None:
            raise BackendError("hf backend: generate() after close()")
        prompts = [self._render(request) for request in requests]
        # Similar lengths together: less padding, so faster; a pure function of the requests.
        order = sorted(range(len(requests)), key=lambda i: (len(prompts[i]), i))
        results: list[Completion | None] = [None] * len(requests)
        start = 0
        while start < len(order):
            chunk = order[start : start + self._batch_now]
            start += len(chunk)
            done = self._generate_chunk(
                [prompts[i] for i in chunk], [requests[i] for i in chunk], sampling
            )
            for i, completion in zip(chunk, done, strict=True):
                results[i] = completion
        return [c for c in results if c is not None]

    def describe(self) -> dict[str, Any]:
        """Everything that decides this backend's outputs, JSON-able, for run.json."""
        return {
            "backend": self.name,
            "model": self.model_arg,
            "model_path": str(self.path.resolve()),
            "adapter": self.adapter.describe(merged=not self.adapter.prompt_learning)
            if self.adapter
            else None,
            "fingerprint": self.fingerprint,
            "model_type": self.model_type,
            "architectures": self.architectures,
            "supports_images": self.supports_images,
            "chat_template_sha256": self.chat_template_sha256,
            "chat_template_source": self.chat_template_source,
            "dtype": self.dtype_name,
            "device": self.device,
            "device_map": self.device_map,
            "batch_size": self.batch_size,
            "padding_side": "left",
            "eos_token_ids": self.eos_token_ids,
            "pad_token_id": self.pad_token_id,
            "generation_overrides": dict(self._neutral),
            "trust_remote_code": self.trust_remote_code,
            "packages": {name: package_version(name) for name in _PACKAGES},
        }

    def identity(self) -> dict[str, Any]:
        """What decides the answers beyond the weights: dtype, device kind, chat template, ..."""
        return in_process_identity(self.describe())

    def close(self) -> None:
        """Drop the model and free its memory (GPU memory included)."""
        self._model = None
        self._processor = None
        self._free()

    # -- internals --------------------------------------------------------------------------

    def _render(self, request: Request) -> str:
        messages = [self._convert(message) for message in request.messages]
        owner = self._processor if self.supports_images else self._tokenizer
        try:
            text = owner.apply_chat_template(
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
        return str(text)

    def _convert(self, message: dict[str, Any]) -> dict[str, Any]:
        return template_message(
            message, vision=self.supports_images, model=f"{self.path} ({self.model_type})"
        )

    def _generate_chunk(
        self, prompts: list[str], requests: list[Request], sampling: Sampling
    ) -> list[Completion]:
        try:
            return self._run_batch(prompts, requests, sampling)
        except (RuntimeError, MemoryError) as exc:
            if not _is_oom(exc):
                raise
        self._free()
        if len(prompts) == 1:
            raise BackendOutOfMemoryError(
                f"out of memory generating one answer of up to {sampling.max_tokens} tokens on "
                f"{self.device} ({self.dtype_name}): lower max_tokens, use dtype=bfloat16 or a "
                f"larger GPU"
            )
        half = len(prompts) // 2
        self._batch_now = min(self._batch_now, half)
        return self._generate_chunk(
            prompts[:half], requests[:half], sampling
        ) + self._generate_chunk(prompts[half:], requests[half:], sampling)

    def _run_batch(
        self, prompts: list[str], requests: list[Request], sampling: Sampling
    ) -> list[Completion]:
        torch = self._torch
        started = time.perf_counter()
        if self.supports_images:
            image_lists = [list(request.images) for request in requests]
            images: Any = None
            if all(image_lists):
                images = image_lists  # one list per prompt: what every processor accepts
            elif any(image_lists):
                images = [image for group in image_lists for image in group]
            inputs = self._processor(
                text=prompts,
                images=images,
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
        else:
            # The chat template writes the special tokens itself (as apply_chat_template does).
            inputs = self._tokenizer(
                prompts, return_tensors="pt", padding=True, add_special_tokens=False
            )
        inputs = inputs.to(self._model.device)
        generation = self._generation_config(sampling)
        if not sampling.greedy:
            torch.manual_seed(requests[0].seed)
        with torch.inference_mode():
            output = self._model.generate(**inputs, generation_config=generation)
        prompt_width = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_width:].tolist()
        prompt_counts = inputs["attention_mask"].sum(dim=1).tolist()
        latency = time.perf_counter() - started
        completions = []
        eos = set(self.eos_token_ids)
        for row, prompt_count in zip(new_tokens, prompt_counts, strict=True):
            end = next((i for i, token in enumerate(row) if token in eos), None)
            kept = row if end is None else row[:end]
            text = self._tokenizer.decode(kept, skip_special_tokens=True)
            completions.append(
                Completion(
                    text=text,
                    finish_reason="length" if end is None else "stop",
                    prompt_tokens=int(prompt_count),
                    completion_tokens=len(row) if end is None else end + 1,
                    latency_s=latency,
                )
            )
        return completions

    def _generation_config(self, sampling: Sampling) -> Any:
        settings: dict[str, Any] = {
            **self._neutral,
            "max_new_tokens": sampling.max_tokens,
            "pad_token_id": self.pad_token_id,
            "eos_token_id": self.eos_token_ids,
        }
        if sampling.greedy:
            # The library defaults for the sampling knobs: ignored when greedy, and no warnings.
            settings.update(do_sample=False, temperature=1.0, top_p=1.0, top_k=50)
        else:
            settings.update(
                do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0
            )
        return self._transformers.GenerationConfig(**settings)

    def _free(self) -> None:
        gc.collect()
        torch = self._torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _end_tokens(model: Any, tokenizer: Any, folder: Path) -> list[int]:
    """Every token that ends an answer: the generation config's (chat models often list
    several, e.g. end-of-turn and end-of-text) and the tokenizer's."""
    found: list[int] = []
    for source in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        for token in source if isinstance(source, (list, tuple)) else [source]:
            if token is not None and int(token) not in found:
                found.append(int(token))
    if not found:
        raise ModelLoadError(
            f"{folder} defines no end-of-sequence token (generation_config or tokenizer)"
        )
    return found


def _import_heavy() -> tuple[Any, Any]:
    try:
        import torch
    except ImportError:
        raise BackendUnavailableError(
            "the hf backend needs torch, which is not installed; install torch first (CPU: pip "
            "install torch --index-url https://download.pytorch.org/whl/cpu), then "
            "pip install 'gpbench[hf]'"
        ) from None
    try:
        import transformers
    except ImportError:
        raise BackendUnavailableError(
            "the hf backend needs transformers, which is not installed; run: pip install 'gpbench[hf]'"
        ) from None
    return torch, transformers


def _device(torch: Any, device: str | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device} asked for, but torch sees no CUDA GPU (a CPU build of torch, or no "
            f"driver); use device=cpu"
        )
    return str(parsed)


def _dtype_name(dtype: str | None, device: str) -> str:
    if dtype is None:
        # float32 on CPU: bfloat16 matmuls are slow on most CPUs and change greedy outputs.
        return "float32" if device == "cpu" else "bfloat16"
    try:
        return _DTYPES[dtype.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown dtype {dtype!r} (choices: float32, bfloat16, float16, auto)"
        ) from None


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    # torch.OutOfMemoryError on GPUs; a plain RuntimeError from the CPU allocator.
    return type(exc).__name__ == "OutOfMemoryError" or any(
        words in text for words in ("out of memory", "not enough memory")
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); re-save the checkpoint") from None
    except UnicodeDecodeError:
        raise ModelLoadError(f"{path} is not UTF-8 text; re-save the checkpoint") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data
