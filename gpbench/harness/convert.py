"""``gpbench convert``: a sharded training checkpoint or a PEFT adapter -> a Hugging Face folder.

Backends load ``save_pretrained`` folders. Trainers that shard their state across ranks save
something else; ``gpbench convert SRC [-o DST]`` turns it into a ``save_pretrained`` folder once,
explicitly (evaluation never converts on its own), and records where it came from.

Sources:
    verl FSDP: ``global_step_N/actor/`` (or the ``global_step_N/`` above it) with one
        ``model_world_size_W_rank_R.pt`` per rank, ``huggingface/`` (config and tokenizer) and,
        in newer verl, ``fsdp_config.json`` (``FSDP_version``, ``world_size``). Each rank's file
        is a ``torch.save`` of the model's sharded state dict: DTensors (FSDP2's
        ``fully_shard``, and FSDP1 with a device mesh, which verl always passes). A DTensor holds
        its rank's piece (``_local_tensor``), the device mesh (the global ranks laid out in
        mesh dimensions) and one placement per mesh dimension: ``Shard(d)`` pieces are joined
        with ``torch.cat`` along tensor dimension ``d`` in mesh order (FSDP: ``Shard(0)``,
        uneven pieces last), ``Replicate`` takes the first, and nested meshes (HSDP's
        ``(ddp, fsdp)``) fold from the innermost dimension out; only the ranks a join needs are
        read. The joined shape is checked against the DTensor's global shape. Plain tensors are
        replicated values and come from rank 0. ``Partial`` and strided placements (FSDP with
        tensor parallelism) are refused. Unlike verl's own merger, which casts to bfloat16, the
        weights keep the dtype they were saved in (float32 master weights stay float32), so the
        conversion is exact.
    DeepSpeed ZeRO: ``global_stepN/`` with ``*_model_states.pt`` and ``*_optim_states.pt`` (or
        the folder holding it and ``latest``, as a Trainer's ``checkpoint-N/``), converted with
        DeepSpeed's own ``get_fp32_state_dict_from_zero_checkpoint`` (``pip install deepspeed``;
        a CPU install is enough). The config and tokenizer come from the folder holding the tag
        folder (a Trainer's ``checkpoint-N/``).
    PEFT adapter folder: the base model with the adapter merged into it (``merge_and_unload``),
        for servers without adapter support or PEFT methods vLLM does not serve.

    ``--config-from DIR`` names a folder with the ``config.json`` and tokenizer when the source
    has none (verl saved without ``huggingface/``; a bare DeepSpeed folder).

Destination:
    ``-o DST``, or by default ``<cache>/converted/<first 16 hex digits of the source
    fingerprint>/`` where ``<cache>`` is ``$GPBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpbench``,
    else ``~/.cache/gpbench`` (on a cluster, point ``GPBENCH_CACHE_DIR`` at a shared file system).
    The source fingerprint covers every byte of every shard file (hashed once per file version,
    cached as :func:`gpbench.harness.hashing.file_sha256` describes) plus the config and
    tokenizer files, so a conversion is found again for exactly those shards: ``gpbench eval
    --model SRC`` then loads the cached conversion (and says so on stderr). Converting again
    reuses it. A conversion written with ``-o`` elsewhere is evaluated by its own path.
    Conversions cached by gpbench before its v2 fingerprints (which hashed only each shard's
    first and last MiB) are not found again: convert once more.

Metadata:
    ``gpbench_checkpoint.json`` in the converted folder keeps the training facts: ``step`` (from
    the folder name, or ``trainer_state.json``, which is copied along when the source has one),
    ``method`` when known (``rl`` for verl's ``actor/``, the policy its PPO/GRPO trainer saves;
    ``--meta method=sft`` otherwise), ``converted_from`` (the source's absolute path),
    ``source_fingerprint``, ``source_format``, ``world_size``, ``fsdp_version``, and any
    ``gpbench_checkpoint.json`` the source had.

Nothing half-written, nothing unchecked:
    Everything is written into a temporary folder beside the destination, loaded back strictly
    there as the hf backend loads it (:func:`gpbench.harness.weights.load_pretrained`: every
    tensor present, none left over, shapes equal), and only then renamed into place; a failure
    or an interrupt removes it.

Trust:
    The shard files are Python pickles. verl's FSDP rank files are read as plain tensors and
    DTensors only (``torch.load(weights_only=True)`` once ``torch.distributed.tensor`` is
    imported, which registers DTensor, its device mesh and placements as safe): a rank file
    whose pickle refers to anything else is refused without being run. ``--trust-pickles``
    (``trust_pickles=True``) reads them with full unpickling instead, as verl's own merger does,
    for files saved by older torch versions; a hostile file could then run code. DeepSpeed's
    ``zero_to_fp32`` always unpickles fully (its files hold DeepSpeed objects, not only tensors),
    so converting a ZeRO checkpoint needs ``--trust-pickles``.
"""

from __future__ import annotations

import datetime
import functools
import gc
import json
import logging
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gpbench
from gpbench.errors import CheckpointError, ConfigError, ModelLoadError, one_line
from gpbench.harness.adapters import apply_adapter
from gpbench.harness.checkpoints import TRAINER_STATE_FILE, fingerprint
from gpbench.harness.folders import (
    CONFIG_FILE,
    FSDP_CONFIG_FILE,
    METADATA_FILE,
    Adapter,
    ShardedCheckpoint,
    default_destination,
    find_adapter,
    find_sharded,
    is_conversion_of,
    read_json_object,
    source_fingerprint,
)
from gpbench.harness.hashing import TEXT_FILES
from gpbench.harness.weights import load_pretrained, pickle_offence
from gpbench.runs.folder import parse_meta_value

__all__ = ["Conversion", "convert", "merge_fsdp_shards"]

# Tokenizer, processor, template and generation files copied beside the converted weights.
_PROCESSING_FILES = (
    *(name for name in TEXT_FILES if name != CONFIG_FILE),  # config.json is written by save
    "video_preprocessor_config.json",
)
_PROCESSING_GLOBS = ("*.tiktoken", "*.py", "additional_chat_templates/*")


@dataclass(frozen=True)
class Conversion:
    """A converted checkpoint.

    Attributes:
        source: the folder converted.
        folder: the Hugging Face folder written (or found).
        kind: ``verl-fsdp``, ``deepspeed-zero`` or ``peft-adapter``.
        source_fingerprint: what identifies the source (the cache key).
        step: the training step recorded, when known.
        reused: an existing conversion of exactly this source was found; nothing was written.
    """

    source: Path
    folder: Path
    kind: str
    source_fingerprint: str
    step: int | None
    reused: bool


def convert(
    source: str | Path,
    out: str | Path | None = None,
    *,
    config_from: str | Path | None = None,
    meta: Mapping[str, str] | None = None,
    overwrite: bool = False,
    trust_pickles: bool = False,
) -> Conversion:
    """Convert a sharded checkpoint (or merge an adapter) into a Hugging Face folder.

    Args:
        source: verl's ``global_step_N`` (or its ``actor/``), a DeepSpeed ZeRO folder, or a PEFT
            adapter folder.
        out: the folder to write; default: the cache (see the module docstring).
        config_from: a folder with ``config.json`` and the tokenizer, when the source has none.
        meta: metadata overrides (``--meta KEY=VAL``), e.g. ``method=sft``.
        overwrite: replace ``out`` when it holds something else.
        trust_pickles: unpickle shard files fully (``--trust-pickles``; see "Trust" in the
            module docstring); without it they load as plain tensors and DTensors only.

    Raises:
        CheckpointError: not a convertible folder; incomplete or unreadable shards; a shard
            whose pickle holds more than tensors, or a ZeRO checkpoint, without
            ``trust_pickles``; DeepSpeed not installed for a ZeRO checkpoint; ``out`` taken.
        ModelLoadError: the config cannot be read, the shards do not fit the architecture, or
            the written folder does not load back strictly.
    """
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {source}")
    adapter = find_adapter(folder)
    sharded = None if adapter is not None else find_sharded(folder)
    if adapter is None and sharded is None:
        if (folder / CONFIG_FILE).is_file():
            raise CheckpointError(
                f"{folder} is already a Hugging Face folder; evaluate it directly "
                f"(gpbench eval --model {folder})"
            )
        raise CheckpointError(
            f"{folder} is neither a sharded checkpoint (verl's model_world_size_W_rank_R.pt "
            f"files, DeepSpeed's *_model_states.pt) nor a PEFT adapter folder; nothing to convert"
        )
    write: Callable[[Path], int | None]
    if adapter is not None:
        digest, kind, step = fingerprint(folder), "peft-adapter", None
        write = functools.partial(_merge_adapter, adapter, digest, meta)
    elif sharded is not None:
        digest, kind, step = source_fingerprint(sharded), sharded.kind, sharded.step
        write = functools.partial(
            _convert_sharded, sharded, config_from, digest, meta, trust_pickles
        )
    target = Path(out).expanduser() if out is not None else default_destination(digest)
    if is_conversion_of(target, digest) and not overwrite:
        return Conversion(folder, target, kind, digest, _recorded_step(target), reused=True)
    if target.exists() and not overwrite and (target.is_file() or any(target.iterdir())):
        raise CheckpointError(
            f"{target} exists and is not a conversion of {folder}; pass --overwrite or another -o"
        )
    step = _write_atomically(target, write, digest, overwrite=overwrite) or step
    return Conversion(folder, target, kind, digest, step, reused=False)


def merge_fsdp_shards(files: Sequence[Path], *, trust_pickles: bool = False) -> dict[str, Any]:
    """The full state dict of verl FSDP rank files (``files[r]`` is rank r's), as torch tensors
    in the dtype they were saved in (see the module docstring for how pieces join).

    The files load as plain tensors and DTensors only, unless ``trust_pickles`` (see "Trust" in
    the module docstring).

    Raises:
        CheckpointError: a file that cannot be read, whose pickle holds more than tensors
            (without ``trust_pickles``), or pieces that do not join.
    """
    import torch

    # Importing torch.distributed.tensor registers DTensor, DeviceMesh and the placements as
    # safe for torch.load(weights_only=True).
    from torch.distributed.tensor import DTensor

    first = _load_rank(files[0], trust_pickles)
    needed: set[int] = {0}
    for key, value in first.items():
        if isinstance(value, DTensor):
            needed.update(_mesh_ranks(key, value, len(files)))
    loaded = {
        0: first,
        **{rank: _load_rank(files[rank], trust_pickles) for rank in sorted(needed - {0})},
    }
    merged: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, DTensor):
            merged[key] = _join(key, value, loaded, files)
        elif type(value) is torch.Tensor or isinstance(value, torch.nn.Parameter):
            merged[key] = value  # not sharded: the same on every rank
        elif isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{files[0]}: {key} is a {type(value).__name__} (FSDP1 without a device mesh), "
                f"which gpbench cannot join without a process group; convert it with verl's "
                f"model merger (python -m verl.model_merger merge --backend fsdp)"
            )
        else:
            raise CheckpointError(
                f"{files[0]}: {key} holds a {type(value).__name__}, not a tensor; is this a "
                f"model state dict (model_world_size_W_rank_R.pt, not optim_ or extra_state_)?"
            )
    return merged


# -- verl FSDP ------------------------------------------------------------------------------


def _load_rank(path: Path, trust_pickles: bool) -> dict[str, Any]:
    import torch

    try:
        # Unpickling a DeviceMesh without its process groups logs a warning per file that
        # concerns torch.compile only.
        with _quiet("torch.distributed.device_mesh"):
            state = torch.load(path, map_location="cpu", weights_only=not trust_pickles, mmap=True)
    except pickle.UnpicklingError as exc:
        if trust_pickles:
            raise CheckpointError(
                f"cannot read {path}: {one_line(exc)}; copy the rank file again"
            ) from None
        raise CheckpointError(_pickle_refusal(path, exc)) from None
    except Exception as exc:  # zipfile, torch and (trusted) pickle raise many types on a bad file
        raise CheckpointError(
            f"cannot read {path}: {one_line(exc)}; copy the rank file again"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a model state dict")
    return state


def _walk(
    key: str,
    tensor: Any,
    visit: Callable[[int], Any],
    join: Callable[[list[Any], int], Any],
) -> Any:
    """Fold a DTensor's device mesh: ``visit(rank)`` at the leaves, ``join(pieces, dim)`` at a
    ``Shard(dim)`` mesh dimension; a ``Replicate`` dimension keeps its first entry."""
    mesh = tensor.device_mesh.mesh
    placements = tuple(tensor.placements)

    def fold(sub: Any, depth: int) -> Any:
        if depth == len(placements):
            return visit(int(sub))
        placement = placements[depth]
        if placement.is_replicate():
            return fold(sub[0], depth + 1)
        if type(placement).__name__ == "Shard":
            return join([fold(part, depth + 1) for part in sub], int(placement.dim))
        raise CheckpointError(
            f"{key} has a {type(placement).__name__} placement ({placement}) on mesh dimension "
            f"{depth}; gpbench joins Shard "
            f"and Replicate placements only (FSDP without tensor parallelism)"
        )

    return fold(mesh, 0)


def _mesh_ranks(key: str, tensor: Any, world_size: int) -> set[int]:
    ranks: set[int] = set()

    def visit(rank: int) -> None:
        if not 0 <= rank < world_size:
            raise CheckpointError(
                f"{key} lives on rank {rank} of a device mesh, but the checkpoint has rank "
                f"files 0..{world_size - 1}"
            )
        ranks.add(rank)

    _walk(key, tensor, visit, lambda pieces, dim: None)
    return ranks


def _join(
    key: str, tensor: Any, loaded: Mapping[int, Mapping[str, Any]], files: Sequence[Path]
) -> Any:
    import torch
    from torch.distributed.tensor import DTensor

    def visit(rank: int) -> Any:
        piece = loaded[rank].get(key)
        if not isinstance(piece, DTensor):
            raise CheckpointError(f"{files[rank]} has no DTensor {key}, which rank 0's file has")
        return piece._local_tensor

    full = _walk(key, tensor, visit, lambda pieces, dim: torch.cat(pieces, dim=dim))
    if tuple(full.shape) != tuple(tensor.shape):
        raise CheckpointError(
            f"{key}: the rank pieces join to shape {tuple(full.shape)}, but the tensor's global "
            f"shape is {tuple(tensor.shape)}; the rank files are from different saves?"
        )
    return full.contiguous()


# -- DeepSpeed ZeRO -------------------------------------------------------------------------


def _zero_state_dict(sharded: ShardedCheckpoint, trust_pickles: bool) -> dict[str, Any]:
    if not trust_pickles:
        raise CheckpointError(
            f"{sharded.folder} is a DeepSpeed ZeRO checkpoint; DeepSpeed's zero_to_fp32 "
            f"unpickles its files fully (they hold DeepSpeed objects, not only tensors), and a "
            f"hostile file could run code then; if you trust these files, convert with "
            f"gpbench convert {sharded.folder} --trust-pickles"
        )
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError:
        raise CheckpointError(
            f"{sharded.folder} is a DeepSpeed ZeRO checkpoint; converting it needs DeepSpeed's "
            f"zero_to_fp32, which is not installed: run pip install deepspeed (CPU is enough), "
            f"then gpbench convert {sharded.folder} again"
        ) from None
    try:
        state = get_fp32_state_dict_from_zero_checkpoint(
            str(sharded.shards.parent), tag=sharded.zero_tag
        )
    except Exception as exc:  # DeepSpeed raises ValueError, FileNotFoundError, KeyError, ...
        raise CheckpointError(f"DeepSpeed cannot read {sharded.shards}: {one_line(exc)}") from None
    return dict(state)


# -- writing --------------------------------------------------------------------------------


def _config_folder(sharded: ShardedCheckpoint, config_from: str | Path | None) -> Path:
    if config_from is not None:
        folder = Path(config_from).expanduser()
        if not (folder / CONFIG_FILE).is_file():
            raise ConfigError(f"--config-from {config_from}: no {CONFIG_FILE} there")
        return folder
    if sharded.hf_folder is None:
        where = "huggingface/ beside the rank files" if sharded.kind == "verl-fsdp" else "it"
        raise CheckpointError(
            f"{sharded.folder} has no {CONFIG_FILE} ({where}); pass the model's config and "
            f"tokenizer folder (e.g. the base model) with --config-from DIR"
        )
    return sharded.hf_folder


def _auto_class(config: Any) -> Any:
    """The transformers auto class the hf backend loads this config's model with."""
    import transformers

    from gpbench.harness.backends.chat import is_vision_language

    if is_vision_language(config, transformers):
        return transformers.AutoModelForImageTextToText
    return transformers.AutoModelForCausalLM


def _read_config(folder: Path) -> Any:
    import transformers

    try:
        return transformers.AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot read {folder / CONFIG_FILE}: {one_line(exc)}") from None


def _verify_loads(out: Path, origin: str) -> None:
    """Load the written folder back strictly, as the hf backend will, before it is renamed into
    place: a conversion that would evaluate with missing or random weights is never kept."""
    auto = _auto_class(_read_config(out))
    try:
        model = load_pretrained(auto, out, dtype="auto")
    except ModelLoadError as exc:
        raise ModelLoadError(
            f"the conversion of {origin} does not load back strictly, so it was not kept: {exc}"
        ) from None
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"the conversion of {origin} does not load back, so it was not kept: {one_line(exc)}"
        ) from None
    del model
    gc.collect()


def _save_model(state: dict[str, Any], hf: Path, out: Path, *, origin: str) -> None:
    """Instantiate the architecture of ``hf``'s config without memory (meta device), give it
    the tensors of ``state`` and ``save_pretrained`` it into ``out``."""
    import torch

    config = _read_config(hf)
    auto = _auto_class(config)
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    dtype = next(iter(dtypes)) if len(dtypes) == 1 else torch.float32
    with torch.device("meta"):
        model = auto.from_config(config, dtype=dtype)
    result = model.load_state_dict(state, strict=False, assign=True)
    if result.unexpected_keys:
        shown = ", ".join(sorted(result.unexpected_keys)[:3])
        raise ModelLoadError(
            f"{len(result.unexpected_keys)} tensor(s) of {origin} are not parameters of "
            f"{type(model).__name__} ({shown}, ...); wrong config? pass the right one with "
            f"--config-from (a LoRA run's shards need verl's own merger)"
        )
    model.tie_weights()
    missing = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if missing:
        raise ModelLoadError(
            f"{origin} lacks {len(missing)} parameter(s) of {type(model).__name__} "
            f"({', '.join(missing[:3])}, ...); wrong config? pass the right one with --config-from"
        )
    model.save_pretrained(out)


def _copy_processing(source: Path, out: Path) -> None:
    names = [source / name for name in _PROCESSING_FILES]
    for pattern in _PROCESSING_GLOBS:
        names.extend(source.glob(pattern))
    for path in names:
        if path.is_file():
            target = out / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _convert_sharded(
    sharded: ShardedCheckpoint,
    config_from: str | Path | None,
    digest: str,
    meta: Mapping[str, str] | None,
    trust_pickles: bool,
    out: Path,
) -> int | None:
    hf = _config_folder(sharded, config_from)
    if sharded.kind == "verl-fsdp":
        state = merge_fsdp_shards(sharded.files, trust_pickles=trust_pickles)
    else:
        state = _zero_state_dict(sharded, trust_pickles)
    _save_model(state, hf, out, origin=str(sharded.folder))
    del state  # the merged tensors: free them before the written folder is loaded back
    _copy_processing(hf, out)
    _verify_loads(out, str(sharded.folder))
    # What the trainer recorded wins over what the folder's name and layout suggest.
    record: dict[str, Any] = {"step": sharded.step, "method": sharded.method}
    for folder in (hf, sharded.folder, sharded.shards):
        record.update(read_json_object(folder / METADATA_FILE))
    state_file = next(
        (
            p / TRAINER_STATE_FILE
            for p in (sharded.folder, hf)
            if (p / TRAINER_STATE_FILE).is_file()
        ),
        None,
    )
    if state_file is not None:
        shutil.copyfile(state_file, out / TRAINER_STATE_FILE)
        step = read_json_object(state_file).get("global_step")
        if record["step"] is None and isinstance(step, int):
            record["step"] = step
    fsdp = read_json_object(sharded.shards / FSDP_CONFIG_FILE)
    record.update(
        {
            "converted_from": str(sharded.folder.resolve()),
            "source_fingerprint": digest,
            "source_format": sharded.kind,
            "world_size": fsdp.get("world_size", sharded.world_size),
            "fsdp_version": fsdp.get("FSDP_version"),
            "config_from": str(hf.resolve()),
        }
    )
    return _finish_metadata(out, record, meta)


def _finish_metadata(
    out: Path, record: dict[str, Any], meta: Mapping[str, str] | None
) -> int | None:
    record.update({key: parse_meta_value(value) for key, value in (meta or {}).items()})
    record = {key: value for key, value in record.items() if value is not None}
    record["conversion"] = _provenance()
    _write_json(out / METADATA_FILE, record)
    step = record.get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def _merge_adapter(
    adapter: Adapter, digest: str, meta: Mapping[str, str] | None, out: Path
) -> int | None:

    auto = _auto_class(_read_config(adapter.base))
    try:
        base = load_pretrained(auto, adapter.base, dtype="auto")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load the base {adapter.base}: {one_line(exc)}") from None
    merged = apply_adapter(base, adapter)
    if type(merged).__module__.startswith("peft"):
        raise CheckpointError(
            f"a {adapter.peft_type} adapter has nothing to merge into the weights; evaluate the "
            f"adapter folder itself with --backend hf"
        )
    merged.save_pretrained(out)
    del merged, base  # free the merged model before the written folder is loaded back
    _copy_processing(adapter.base, out)
    if adapter.tokenizer_folder != adapter.base:
        _copy_processing(adapter.tokenizer_folder, out)
    _verify_loads(out, str(adapter.folder))
    record = read_json_object(adapter.folder / METADATA_FILE)
    if (adapter.folder / TRAINER_STATE_FILE).is_file():
        shutil.copyfile(adapter.folder / TRAINER_STATE_FILE, out / TRAINER_STATE_FILE)
        step = read_json_object(adapter.folder / TRAINER_STATE_FILE).get("global_step")
        record.setdefault("step", step)
    record.update(
        {
            "merged_from": str(adapter.folder.resolve()),
            "source_fingerprint": digest,
            "source_format": "peft-adapter",
            "adapter": adapter.describe(merged=True),
            "base_fingerprint": fingerprint(adapter.base),
        }
    )
    return _finish_metadata(out, record, meta)


def _write_atomically(
    target: Path, write: Callable[[Path], int | None], digest: str, *, overwrite: bool
) -> int | None:
    """Run ``write`` into a temporary folder beside ``target``, then rename it into place (the
    folder it replaces is removed only after the rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    old = target.parent / f".{tmp.name.removesuffix('.partial')}.old"
    try:
        step = write(tmp)
        if target.exists() and is_conversion_of(target, digest) and not overwrite:
            shutil.rmtree(tmp)  # another process converted the same source meanwhile
            return step
        if target.exists():
            target.replace(old)
        try:
            tmp.replace(target)
        except OSError:
            if old.exists():
                old.replace(target)  # put back what was there
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old.is_dir():
        shutil.rmtree(old)
    elif old.exists():
        old.unlink()
    return step


def _recorded_step(folder: Path) -> int | None:
    step = read_json_object(folder / METADATA_FILE).get("step")
    return step if isinstance(step, int) else None


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _provenance() -> dict[str, Any]:
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "tool": "gpbench convert",
        "gpbench_version": gpbench.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "packages": {name: version(name) for name in ("torch", "transformers", "peft")},
    }


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _pickle_refusal(path: Path, exc: BaseException) -> str:
    """One line for a rank file that torch refused to load as plain tensors and DTensors."""
    return (
        f"refusing {path}: gpbench reads shard files as plain tensors and DTensors only, and "
        f"{pickle_offence(exc)}, which could run code when unpickled; if you trust this "
        f"checkpoint (saved by your own training run), convert it with --trust-pickles"
    )
