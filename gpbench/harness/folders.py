"""Checkpoint folder kinds: what a folder a user names holds, and the folder a backend loads.

One module knows the kinds of checkpoint folder (the others ask it, and it asks none of them):

- a plain model: a ``save_pretrained`` folder (``config.json`` beside weights and tokenizer),
  including a Trainer's ``checkpoint-N/``; a Hub id stands for its downloaded snapshot
  (:func:`resolve_model`);
- a PEFT adapter: ``adapter_config.json`` beside ``adapter_model.safetensors`` (or ``.bin``),
  evaluated over its base model (:func:`find_adapter` locates the base; applying it is
  :mod:`gpbench.harness.adapters`);
- a sharded training checkpoint (verl FSDP, DeepSpeed ZeRO), which no backend loads: ``gpbench
  convert`` (:mod:`gpbench.harness.convert`) writes its Hugging Face folder once into the
  conversion cache, and from then on the sharded folder stands for that cached conversion
  (:func:`loadable_folder`, :func:`cached_conversion`). Nothing converts silently.

No torch: files are only listed, read as JSON and hashed (:mod:`gpbench.harness.hashing`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpbench.errors import CheckpointError, GpbenchError, ModelLoadError, one_line
from gpbench.harness.hashing import (
    FINGERPRINT_VERSION,
    cache_root,
    hash_folder,
    hash_weight_file,
    weight_files,
)
from gpbench.serialization import parse_json

CONFIG_FILE = "config.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
METADATA_FILE = "gpbench_checkpoint.json"
FSDP_CONFIG_FILE = "fsdp_config.json"
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# Files that make a folder's tokenizer (as the hf backend's check_model_folder counts them).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "spiece.model",
    "vocab.json",
    "vocab.txt",
)
# checkpoint-500, sft-run-500; verl's global_step_500 and DeepSpeed's global_step500.
STEP_IN_NAME = re.compile(r"(?:-|(?:^|[-_])(?:global_)?step[-_]?)(\d+)$")
_FSDP_SHARD = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")
_ZERO_STATES = "*model_states.pt"  # mp_rank_00_model_states.pt, zero_pp_rank_0_..._model_states.pt
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken"]
_ANNOUNCED: set[tuple[Path, Path]] = set()
logger = logging.getLogger("gpbench")


# --- plain models: local folders and Hub ids ------------------------------------------------


def is_hub_id(text: str) -> bool:
    """``text`` reads as a Hugging Face Hub id (``owner/name``), not as a local path."""
    return bool(_HUB_ID.match(text))


def resolve_model(model: str | Path) -> Path:
    """The local folder of a checkpoint: the folder itself, or a hub id's downloaded snapshot.

    Raises ModelLoadError when it is neither a folder nor a hub id that can be fetched (or found
    in the cache when offline).
    """
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(
                f"{model} is a file, not a model folder; pass the checkpoint folder"
            )
        return path
    text = str(model)
    if not is_hub_id(text):
        raise ModelLoadError(f"model folder not found: {model}; pass a local checkpoint folder")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelLoadError(
            f"model folder not found: {model}; pass a local checkpoint folder"
        ) from None
    try:
        folder = Path(snapshot_download(text, allow_patterns=_HUB_FILES))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(text, allow_patterns=[*_HUB_FILES, "*.bin"]))
    except Exception as exc:  # the hub client raises many types (offline, 404, auth, network)
        raise ModelLoadError(
            f"model folder not found: {model}; pass a local checkpoint folder "
            f"(as a hub id it could not be fetched: {one_line(exc)})"
        ) from None
    return folder


# --- sharded training checkpoints -----------------------------------------------------------


@dataclass(frozen=True)
class ShardedCheckpoint:
    """A training checkpoint saved as one file per rank, which backends cannot load.

    Attributes:
        kind: ``verl-fsdp`` (``model_world_size_W_rank_R.pt`` files of DTensor state dicts) or
            ``deepspeed-zero`` (DeepSpeed's ``*_model_states.pt`` and ``*_optim_states.pt``).
        folder: the checkpoint as a user names it: verl's ``global_step_N`` (its ``actor/``
            holds the policy's shards), DeepSpeed's ``global_stepN`` tag folder or the folder
            holding ``latest`` and the tag folders (a Trainer's ``checkpoint-N``).
        shards: the folder holding the shard files.
        files: the files whose contents the conversion reads, sorted (FSDP: one per rank).
        world_size: ranks that saved it (FSDP), when known.
        step: the training step from the folder name (``global_step_50``), when there is one.
        hf_folder: the folder with the model's ``config.json`` and tokenizer (verl's
            ``huggingface/``; the Trainer's ``checkpoint-N`` for DeepSpeed), when found.
        method: ``rl`` for verl's ``actor/`` (the policy its PPO/GRPO trainer saves), else None.
        zero_tag: DeepSpeed's tag (the ``global_stepN`` folder name) to convert.
    """

    kind: str
    folder: Path
    shards: Path
    files: tuple[Path, ...]
    world_size: int | None
    step: int | None
    hf_folder: Path | None
    method: str | None = None
    zero_tag: str | None = None


def find_sharded(model_dir: str | Path) -> ShardedCheckpoint | None:
    """The sharded checkpoint a folder holds, or None (a loadable or unrelated folder).

    Recognised: verl FSDP (``model_world_size_W_rank_R.pt`` in the folder or in its ``actor/``)
    and DeepSpeed ZeRO (``*_model_states.pt`` in the folder, or in the tag folder named by its
    ``latest`` file, or in its only ``global_step*`` folder). A folder that also holds full
    Hugging Face weights (a Trainer that gathered them on save) is loadable, so not sharded.

    Raises:
        CheckpointError: FSDP rank files missing or of mixed world sizes; several DeepSpeed tags
            and no ``latest`` file to choose one.
    """
    folder = Path(model_dir).expanduser()
    if not folder.is_dir() or (folder / ADAPTER_CONFIG_FILE).is_file():
        return None
    if (folder / CONFIG_FILE).is_file() and weight_files(folder):
        return None
    for shards in (folder, folder / "actor"):
        found = _fsdp_files(shards)
        if found:
            return _fsdp_checkpoint(shards, found)
    return _zero_checkpoint(folder)


def loadable_folder(model_dir: str | Path) -> Path:
    """The folder a backend loads for ``model_dir``: the folder itself, or for a sharded
    checkpoint its cached conversion (announced on the ``gpbench`` logger).

    Raises:
        CheckpointError: a sharded checkpoint without a cached conversion (the message names
            the ``gpbench convert`` command to run).
    """
    folder = Path(model_dir).expanduser()
    sharded = find_sharded(folder)
    if sharded is None:
        return folder
    converted = cached_conversion(sharded)
    if converted is None:
        raise CheckpointError(unconverted_message(sharded))
    if (sharded.folder, converted) not in _ANNOUNCED:  # once per process, not per lookup
        _ANNOUNCED.add((sharded.folder, converted))
        logger.warning(
            "note: %s is a sharded %s checkpoint; using its conversion cached at %s "
            "(made by gpbench convert for exactly these shards)",
            sharded.folder,
            sharded.kind,
            converted,
        )
    return converted


def unconverted_message(sharded: ShardedCheckpoint, more: int = 0) -> str:
    """One line: the folder is sharded, backends cannot load it, and the command to run."""
    ranks = f", {sharded.world_size} ranks" if sharded.world_size else ""
    others = f" (and {more} more sharded folder(s) in this series: convert each)" if more else ""
    return (
        f"{sharded.folder} is a sharded {sharded.kind} checkpoint{ranks}, which no backend "
        f"loads; convert it once (it is not converted silently) with: "
        f"gpbench convert {sharded.folder}{others}"
    )


def is_checkpoint(folder: Path) -> bool:
    return (
        (folder / CONFIG_FILE).is_file()
        or (folder / ADAPTER_CONFIG_FILE).is_file()
        or find_sharded(folder) is not None
    )


def _fsdp_files(folder: Path) -> dict[tuple[int, int], Path]:
    if not folder.is_dir():
        return {}
    found: dict[tuple[int, int], Path] = {}
    for path in folder.iterdir():
        match = _FSDP_SHARD.match(path.name)
        if match and path.is_file():
            found[(int(match.group(1)), int(match.group(2)))] = path
    return found


def _fsdp_checkpoint(shards: Path, found: dict[tuple[int, int], Path]) -> ShardedCheckpoint:
    sizes = sorted({size for size, _ in found})
    if len(sizes) != 1:
        raise CheckpointError(
            f"{shards} holds model shards of several world sizes ({', '.join(map(str, sizes))}); "
            f"keep the files of one run"
        )
    [world] = sizes
    missing = [rank for rank in range(world) if (world, rank) not in found]
    if missing or len(found) != world:
        listed = ", ".join(map(str, missing[:8])) + (" ..." if len(missing) > 8 else "")
        raise CheckpointError(
            f"{shards} is an incomplete verl FSDP checkpoint: world size {world} but no "
            f"model_world_size_{world}_rank_R.pt for rank(s) {listed}; copy every rank's file"
        )
    # verl's PPO/GRPO trainer saves the policy in global_step_N/actor/: name the step's folder.
    named = shards.parent if shards.name == "actor" else shards
    match = STEP_IN_NAME.search(named.name)
    hf_folder = shards / "huggingface"
    return ShardedCheckpoint(
        kind="verl-fsdp",
        folder=named,
        shards=shards,
        files=tuple(found[(world, rank)] for rank in range(world)),
        world_size=world,
        step=int(match.group(1)) if match else None,
        hf_folder=hf_folder if (hf_folder / CONFIG_FILE).is_file() else None,
        method="rl" if shards.name == "actor" else None,
    )


def _zero_checkpoint(folder: Path) -> ShardedCheckpoint | None:
    if any(folder.glob(_ZERO_STATES)):
        tag_folder, root = folder, folder.parent
    else:
        tags = sorted(p for p in folder.glob("global_step*") if any(p.glob(_ZERO_STATES)))
        if not tags:
            return None
        latest = folder / "latest"
        if latest.is_file():
            tag_folder = folder / latest.read_text(encoding="utf-8").strip()
            if tag_folder not in tags:
                raise CheckpointError(
                    f"{latest} names {tag_folder.name}, which holds no DeepSpeed model states"
                )
        elif len(tags) == 1:
            tag_folder = tags[0]
        else:
            raise CheckpointError(
                f"{folder} holds DeepSpeed checkpoints {', '.join(p.name for p in tags)} and no "
                f"'latest' file; name one of those folders"
            )
        root = folder
    match = STEP_IN_NAME.search(tag_folder.name)
    hf = next((p for p in (root, tag_folder) if (p / CONFIG_FILE).is_file()), None)
    return ShardedCheckpoint(
        kind="deepspeed-zero",
        folder=folder,
        shards=tag_folder,
        files=tuple(sorted(p for p in tag_folder.glob("*.pt") if p.is_file())),
        world_size=None,
        step=int(match.group(1)) if match else None,
        hf_folder=hf,
        zero_tag=tag_folder.name,
    )


# --- the conversion cache ------------------------------------------------------------------


def default_destination(source_fingerprint: str) -> Path:
    """Where a source with this fingerprint is converted to when no ``-o`` is given."""
    return cache_root() / "converted" / source_fingerprint[:16]


def source_fingerprint(sharded: ShardedCheckpoint) -> str:
    """A sha256 identifying a sharded checkpoint: its format, every shard file's name and the
    sha256 of all its bytes (cached per file version), ``fsdp_config.json`` and its config and
    tokenizer files."""
    digest = hashlib.sha256(f"gpbench-sharded-fingerprint-{FINGERPRINT_VERSION}\n".encode())
    digest.update(f"kind {sharded.kind}\n".encode())
    for path in sharded.files:
        hash_weight_file(digest, path, path.relative_to(sharded.shards).as_posix())
    hash_folder(digest, sharded.shards, (FSDP_CONFIG_FILE,), weights=False)
    if sharded.hf_folder is not None and sharded.hf_folder != sharded.shards:
        digest.update(b"config folder\n")
        hash_folder(digest, sharded.hf_folder, weights=False)
    return digest.hexdigest()


def cached_conversion(sharded: ShardedCheckpoint) -> Path | None:
    """The cached conversion of exactly these shards, or None when there is none."""
    digest = source_fingerprint(sharded)
    folder = default_destination(digest)
    return folder if is_conversion_of(folder, digest) else None


def is_conversion_of(folder: Path, digest: str) -> bool:
    if not (folder / METADATA_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        return False
    try:
        return read_json_object(folder / METADATA_FILE).get("source_fingerprint") == digest
    except GpbenchError:
        return False


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` ({} when there is no such file); anything else is a one-line
    :class:`CheckpointError` naming the file."""
    if not path.is_file():
        return {}
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data


# --- PEFT adapters -------------------------------------------------------------------------


@dataclass(frozen=True)
class Adapter:
    """A PEFT adapter folder and the base checkpoint it is evaluated over.

    Attributes:
        folder: the adapter folder.
        base: the base checkpoint's local folder (a hub id resolved to its snapshot).
        base_name: the base as given (``--base-model`` or ``base_model_name_or_path``).
        base_from: ``--base-model`` or ``adapter_config.json``.
        tokenizer_folder: where the tokenizer and chat template load from (the adapter folder
            when it has a tokenizer, else the base).
        config: the adapter's ``adapter_config.json``.
    """

    folder: Path
    base: Path
    base_name: str
    base_from: str
    tokenizer_folder: Path
    config: dict[str, Any] = field(compare=False, repr=False)

    @property
    def peft_type(self) -> str:
        """PEFT's name of the method (``LORA``, ``IA3``, ``PROMPT_TUNING``, ...)."""
        return str(self.config.get("peft_type") or "unknown")

    @property
    def rank(self) -> int | None:
        """The largest LoRA rank in the adapter (``r`` and any ``rank_pattern`` entry)."""
        ranks = [self.config.get("r"), *dict(self.config.get("rank_pattern") or {}).values()]
        found = [int(r) for r in ranks if isinstance(r, int) and not isinstance(r, bool)]
        return max(found) if found else None

    @property
    def prompt_learning(self) -> bool:
        """A prompt-learning method (virtual tokens): nothing to merge into the weights."""
        return _prompt_learning(self.config)

    def describe(self, *, merged: bool) -> dict[str, Any]:
        """JSON-able facts for run.json: the adapter, its base, where the base came from and
        whether the backend merged the adapter into the base weights."""
        return {
            "folder": str(self.folder.resolve()),
            "base_model": self.base_name,
            "base_from": self.base_from,
            "base_path": str(self.base.resolve()),
            "peft_type": self.peft_type,
            "r": self.rank,
            "tokenizer_from": "adapter" if self.tokenizer_folder == self.folder else "base",
            "merged": merged,
        }


def read_adapter_config(folder: Path) -> dict[str, Any] | None:
    """A folder's ``adapter_config.json``, or None when it has none (not an adapter folder)."""
    path = folder / ADAPTER_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); re-save the adapter") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data


def base_model_name(
    config: Mapping[str, Any], folder: Path, base_model: str | Path | None = None
) -> tuple[str, str]:
    """The base an adapter is evaluated over and where that came from.

    Raises:
        ModelLoadError: no ``--base-model`` and the adapter's config names no base.
    """
    if base_model is not None:
        return str(base_model), "--base-model"
    name = config.get("base_model_name_or_path")
    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(
            f"the adapter {folder} names no base model (base_model_name_or_path is empty in "
            f"{ADAPTER_CONFIG_FILE}); pass the base checkpoint with --base-model DIR"
        )
    return name, ADAPTER_CONFIG_FILE


def adapter_summary(folder: Path, base_model: str | Path | None = None) -> dict[str, Any]:
    """Checkpoint metadata of an adapter folder (no base lookup): base as named, type, rank."""
    config = read_adapter_config(folder) or {}
    name = str(base_model) if base_model is not None else config.get("base_model_name_or_path")
    rank = config.get("r")
    return {
        "base_model": name if isinstance(name, str) and name else None,
        "base_from": "--base-model" if base_model is not None else ADAPTER_CONFIG_FILE,
        "peft_type": config.get("peft_type"),
        "r": rank if isinstance(rank, int) else None,
    }


def find_adapter(model_dir: str | Path, base_model: str | Path | None = None) -> Adapter | None:
    """The adapter a folder holds, with its base located, or None (not an adapter folder).

    ``base_model`` (``--base-model``) replaces the base the adapter's config names.

    Raises:
        ModelLoadError: adapter weights missing; the base not found (the message names
            ``--base-model``), not a model folder, or itself an adapter.
        CheckpointError: the base is a sharded checkpoint that was never converted.
    """
    folder = Path(model_dir).expanduser()
    config = read_adapter_config(folder)
    if config is None:
        return None
    if not any((folder / name).is_file() for name in ADAPTER_WEIGHT_FILES):
        raise ModelLoadError(
            f"{folder} has {ADAPTER_CONFIG_FILE} but no adapter weights "
            f"({' or '.join(ADAPTER_WEIGHT_FILES)}); save the adapter with save_pretrained()"
        )
    name, source = base_model_name(config, folder, base_model)
    base = _locate_base(name, source, folder)
    own_tokenizer = any((folder / file).is_file() for file in TOKENIZER_FILES)
    return Adapter(
        folder=folder,
        base=base,
        base_name=name,
        base_from=source,
        tokenizer_folder=folder if own_tokenizer else base,
        config=config,
    )


def _locate_base(name: str, source: str, adapter_folder: Path) -> Path:
    try:
        base = resolve_model(name)
    except ModelLoadError as exc:
        raise ModelLoadError(
            f"the base model {name} of the adapter {adapter_folder} (from {source}) is not "
            f"available ({exc}); pass the base checkpoint folder with --base-model DIR"
        ) from None
    base = loadable_folder(base)
    if read_adapter_config(base) is not None:
        raise ModelLoadError(
            f"the base {base} of the adapter {adapter_folder} is itself an adapter; merge it "
            f"first (gpbench convert {base}) and pass the merged folder with --base-model"
        )
    if not (base / CONFIG_FILE).is_file():
        raise ModelLoadError(
            f"the base {base} of the adapter {adapter_folder} (from {source}) is not a model "
            f"folder (no {CONFIG_FILE}); pass the base checkpoint with --base-model DIR"
        )
    return base


def _prompt_learning(config: Mapping[str, Any]) -> bool:
    # Prompt tuning, prefix tuning, P-tuning: virtual tokens, nothing to fold into weights.
    return str(config.get("peft_type", "")).upper() in {
        "PROMPT_TUNING",
        "MULTITASK_PROMPT_TUNING",
        "P_TUNING",
        "PREFIX_TUNING",
        "ADAPTION_PROMPT",
        "CPT",
    }
