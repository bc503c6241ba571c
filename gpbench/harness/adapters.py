"""PEFT adapter folders (LoRA and the other PEFT methods) evaluated over their base model.

Finding an adapter folder and its base is :func:`gpbench.harness.folders.find_adapter`; this
module applies the adapter (hf backend, ``gpbench convert``) or hands it to vLLM.

An adapter folder holds ``adapter_config.json`` and ``adapter_model.safetensors`` (or ``.bin``),
as ``PeftModel.save_pretrained`` writes them; a Trainer's ``checkpoint-N/`` of a PEFT run is one
too (with the tokenizer and ``trainer_state.json`` beside). Importing this module is light: peft,
torch and vLLM are imported when an adapter is applied.

Base model:
    ``--base-model DIR`` (Python: ``EvalConfig(base_model=DIR)``), else
    ``base_model_name_or_path`` from ``adapter_config.json``: a local folder, or a hub id where a
    hub is reachable. A base that cannot be found is a one-line :class:`ModelLoadError` naming
    ``--base-model``. The base may be a sharded checkpoint with a cached conversion; it may not be
    another adapter (merge that one first: ``gpbench convert ADAPTER``).

Tokenizer and chat template:
    The adapter folder's own when it has a tokenizer (a Trainer saves it there, often with the
    chat template the run trained with), else the base's.

Fingerprint:
    :func:`gpbench.harness.checkpoints.fingerprint` of an adapter folder covers its files
    (``adapter_config.json`` and the adapter weights included) and the base checkpoint's
    fingerprint, so the same adapter over another base is another run.

hf backend:
    The base loads as any checkpoint (same dtype, device and device_map; strictly, as
    :mod:`gpbench.harness.weights` loads every checkpoint), then ``PeftModel.from_pretrained``
    applies the adapter and ``merge_and_unload`` folds it into the base weights once: generation
    then costs what the base's costs, and answers equal those of the merged model saved as a full
    checkpoint (up to float rounding of the merge in low precision). PEFT methods that cannot
    merge (prompt learning) stay wrapped. An adapter whose tensors do not all fit the base's
    adapter modules, or that leaves some of them without weights, is refused in one line: PEFT
    itself only warns (about missing ones; unexpected ones it drops silently), and the run would
    then evaluate the bare base, or the base with freshly initialised adapter weights.

vLLM backend (LoRA only, vLLM's own LoRA support):
    The engine starts on the base with :func:`vllm_lora_settings` (``enable_lora=True``,
    ``max_lora_rank`` the smallest rank vLLM accepts that covers the adapter's, ``max_loras=1``,
    and ``tokenizer=`` the adapter folder when it has its own tokenizer), and every
    ``LLM.generate`` call passes ``lora_request=`` :func:`vllm_lora_request`. Other PEFT types,
    DoRA and ``modules_to_save`` are refused with the two ways out: ``--backend hf``, or
    ``gpbench convert ADAPTER`` (a merged full folder that vLLM loads as any checkpoint).
"""

from __future__ import annotations

from typing import Any

from gpbench.errors import BackendUnavailableError, MissingDependencyError, ModelLoadError, one_line
from gpbench.harness.folders import Adapter
from gpbench.harness.weights import shown

# The ranks vLLM's LoRAConfig accepts for max_lora_rank (vllm.config.lora.MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def apply_adapter(model: Any, adapter: Adapter, *, merge: bool = True) -> Any:
    """``model`` (the base, loaded) with the adapter applied, merged into its weights when the
    PEFT method can merge (see the module docstring).

    Raises:
        MissingDependencyError: peft is not installed.
        ModelLoadError: peft cannot apply the adapter to this base (other architecture or
            shapes: the wrong base, most likely), or the adapter's tensors do not all fit the
            base's adapter modules (see the module docstring).
    """
    try:
        from peft import PeftModel
    except ImportError:
        raise MissingDependencyError("peft", "peft", "evaluating a PEFT adapter folder") from None
    try:
        wrapped = PeftModel.from_pretrained(model, str(adapter.folder), is_trainable=False)
        # from_pretrained drops PEFT's load result; loading the same file into the same adapter
        # again is PEFT's public way to get it (the adapter is small next to the base).
        result = wrapped.load_adapter(str(adapter.folder), "default", is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError) as exc:
        raise ModelLoadError(
            f"cannot apply the adapter {adapter.folder} to the base {adapter.base} "
            f"({adapter.base_from}): {one_line(exc)}; is it the base the adapter was trained "
            f"on? pass the right one with --base-model"
        ) from None
    consumed = _prompt_encoder_keys(wrapped) if adapter.prompt_learning else set()
    unexpected = [key for key in result.unexpected_keys if key not in consumed]
    check_adapter_fit(adapter, list(result.missing_keys), unexpected)
    if not merge or adapter.prompt_learning:
        return wrapped
    return wrapped.merge_and_unload()


def check_adapter_fit(adapter: Adapter, missing: list[str], unexpected: list[str]) -> None:
    """Refuse an adapter whose tensors PEFT found no place for in the base (``unexpected``), or
    that left adapter parameters of the base without weights (``missing``: PEFT's load result
    lists only the adapter's own parameters there).

    Raises:
        ModelLoadError: one line naming counts, a few keys and the way out.
    """
    # Shared parameters PEFT keeps outside the layers and never saves per layer (as PEFT's own
    # from_pretrained filters them before it warns).
    missing = sorted(k for k in missing if not _shared_adapter_parameter(k))
    unexpected = sorted(unexpected)
    if not missing and not unexpected:
        return
    parts = []
    if unexpected:
        parts.append(
            f"{len(unexpected)} adapter tensor(s) fit no adapter module of the base "
            f"({shown(unexpected)})"
        )
    if missing:
        parts.append(
            f"{len(missing)} adapter parameter(s) of the base are not in the file "
            f"({shown(missing)})"
        )
    raise ModelLoadError(
        f"refusing the adapter {adapter.folder} over the base {adapter.base} "
        f"({adapter.base_from}): {'; '.join(parts)}; PEFT would evaluate the base with these "
        f"adapter weights left out or freshly initialised; is it the base the adapter was "
        f"trained on (the same architecture and number of layers)? pass the right one with "
        f"--base-model"
    )


def vllm_lora_settings(adapter: Adapter) -> dict[str, Any]:
    """``vllm.LLM`` settings that let the base serve this LoRA adapter (start it on
    ``adapter.base``): ``enable_lora``, ``max_lora_rank``, ``max_loras`` and, when the adapter
    folder has its own tokenizer, ``tokenizer``.

    Raises:
        BackendUnavailableError: not something vLLM's LoRA support serves (another PEFT type,
            DoRA, ``modules_to_save``, a rank above vLLM's largest).
    """
    reason = _vllm_refusal(adapter)
    if reason is not None:
        raise BackendUnavailableError(
            f"vLLM cannot serve the adapter {adapter.folder}: {reason}; use --backend hf, or "
            f"merge it once with `gpbench convert {adapter.folder}` and evaluate the merged folder"
        )
    rank = adapter.rank or 1
    settings: dict[str, Any] = {
        "enable_lora": True,
        "max_lora_rank": next(r for r in VLLM_LORA_RANKS if r >= rank),
        "max_loras": 1,
    }
    if adapter.tokenizer_folder != adapter.base:
        settings["tokenizer"] = str(adapter.tokenizer_folder)
    return settings


def vllm_lora_request(adapter: Adapter) -> Any:
    """The ``vllm.lora.request.LoRARequest`` to pass as ``LLM.generate(..., lora_request=)``."""
    try:
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise BackendUnavailableError(
            "serving a LoRA adapter with vLLM needs vLLM, which is not installed; use --backend hf"
        ) from None
    return LoRARequest(adapter.folder.name or "adapter", 1, str(adapter.folder.resolve()))


def _vllm_refusal(adapter: Adapter) -> str | None:
    if adapter.peft_type != "LORA":
        return f"it is a {adapter.peft_type} adapter and vLLM serves LoRA only"
    if adapter.config.get("use_dora"):
        return "it is a DoRA adapter (use_dora), which vLLM does not serve"
    if adapter.config.get("modules_to_save"):
        saved = ", ".join(map(str, adapter.config["modules_to_save"]))
        return f"it trains whole modules too (modules_to_save: {saved})"
    rank = adapter.rank or 1
    if rank > VLLM_LORA_RANKS[-1]:
        return f"its rank {rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]})"
    return None


def _prompt_encoder_keys(wrapped: Any) -> set[str]:
    """The saved names a prompt-learning adapter's prompt encoder takes. PEFT loads them into
    the encoder apart from (and after) the model's load_state_dict, which therefore lists them
    as unexpected; the encoder's own load is strict (PEFT's ``_load_adapter_state_dict``)."""
    names = {"prompt_embeddings"}
    encoders = getattr(wrapped, "prompt_encoder", None)
    if encoders is not None and "default" in encoders:
        names.update(encoders["default"].state_dict())
    return names


def _shared_adapter_parameter(key: str) -> bool:
    # VB-LoRA's vector bank, prompt encoders, TinyLoRA's layer-level references (PEFT 0.21,
    # PeftModel.from_pretrained: is_shared_parameter).
    return "vblora_vector_bank" in key or "prompt_encoder" in key or ".tinylora_v." in key
