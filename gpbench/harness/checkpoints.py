"""Checkpoint folders: a cheap fingerprint, training metadata, and series discovery (no torch).

A checkpoint is a folder with ``config.json`` beside its weights and tokenizer (the layout
``save_pretrained`` writes). Reports read only run folders, so ``gpbench eval`` copies the
fingerprint and metadata of each checkpoint into its run.json.

Fingerprint:
    sha256 over the config, generation config, tokenizer, processor, chat template and shard index
    files (whole contents) and, for each weight file (``*.safetensors``, ``*.bin``), its name,
    size and the sha256 of all its bytes: two checkpoints that differ in any weight have different
    fingerprints, so different run keys. Hashing every byte costs one read of each weight file
    (sha256 runs at roughly disk speed), so each file's hash is cached, in memory for the process
    and on disk under gpbench's cache folder (``file-sha256/``), keyed by the file's resolved
    path, device, inode, size, modification and change times: a series is hashed once, and a file
    rewritten in any way is hashed again. A file changed in the last two seconds is not cached
    (file systems with coarse timestamps could rewrite it within one timestamp tick), and a file
    that changes while it is hashed is an error. The cache only saves time: an entry that is
    unreadable, malformed or for another key is ignored and rewritten. Fingerprints carry a
    version (``gpbench-fingerprint-v2``; v1 hashed only each weight file's first and last MiB),
    so fingerprints of different versions never compare equal.

Metadata, lowest to highest precedence (each key records its ``source``):
    1. the folder name: ``checkpoint-500`` or ``sft-run-500`` gives ``step`` 500;
    2. ``trainer_state.json`` (written by the transformers Trainer and TRL): ``global_step`` as
       ``step``, ``num_input_tokens_seen`` as ``tokens_seen``, ``total_flos``;
    3. ``gpbench_checkpoint.json`` (written by gpbench's recipes): every key in it;
    4. overrides (``--meta KEY=VAL``): numbers become int or float, anything else stays text.

Checkpoint shapes:
    - a ``save_pretrained`` folder, including the ``checkpoint-N/`` folders of the transformers
      and TRL Trainers (their ``trainer_state.json`` gives the step);
    - a PEFT adapter folder (``adapter_config.json`` beside ``adapter_model.safetensors``), full
      Trainer ``checkpoint-N/`` folders of a PEFT run included: it is evaluated over its base
      model (:mod:`gpbench.harness.adapters`), and its fingerprint covers the adapter's files and
      the base checkpoint's fingerprint;
    - a sharded training checkpoint (verl's FSDP ``global_step_N/actor/`` with
      ``model_world_size_W_rank_R.pt`` files; DeepSpeed ZeRO ``global_stepN/`` with
      ``*_model_states.pt``). Backends cannot load these: ``gpbench convert`` turns one into a
      Hugging Face folder once (:mod:`gpbench.harness.convert`), and from then on the sharded
      folder stands for its cached conversion. Nothing converts silently: without a cached
      conversion, loading one is a one-line error naming the command.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import CheckpointError
from gpbench.serialization import parse_json

CONFIG_FILE = "config.json"
METADATA_FILE = "gpbench_checkpoint.json"
TRAINER_STATE_FILE = "trainer_state.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"

# Files whose whole contents decide how text becomes tokens and images become inputs (hashed
# whole by fingerprint; copied beside converted weights by gpbench.harness.convert).
TEXT_FILES = (
    CONFIG_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "spiece.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
    "generation_config.json",  # its end-of-sequence tokens end the backends' answers
)
# Shard indexes (model.safetensors.index.json) decide which weight files a model loads.
_TEXT_GLOBS = ("*.tiktoken", "additional_chat_templates/*.jinja", "*.index.json")
_WEIGHT_GLOBS = ("*.safetensors", "*.bin")
# Written by the Trainer beside the weights; it holds arguments, not weights.
_NOT_WEIGHTS = frozenset({"training_args.bin"})
_MIB = 1 << 20
_HASH_CHUNK = 8 * _MIB  # read and hashed at a time: memory stays flat on files of any size
_ANNOUNCE_BYTES = 256 * _MIB  # a weight file this large says on stderr that it is being hashed
# A file changed this recently may change again within one tick of a coarse file-system clock
# (FAT: 2 s, some network file systems: 1 s) without its times changing: hash it, never cache it.
_SETTLED_NS = 2_000_000_000
_CACHE_ENTRY_LIMIT = 4096  # bytes: a real entry is ~300; anything larger is not ours
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
FINGERPRINT_VERSION = "v2"
# checkpoint-500, sft-run-500; verl's global_step_500 and DeepSpeed's global_step500.
_STEP_IN_NAME = re.compile(r"(?:-|(?:^|[-_])(?:global_)?step[-_]?)(\d+)$")
_FSDP_SHARD = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")
_ZERO_STATES = "*model_states.pt"  # mp_rank_00_model_states.pt, zero_pp_rank_0_..._model_states.pt
logger = logging.getLogger("gpbench")
_ANNOUNCED: set[tuple[Path, Path]] = set()
# File identity (see _file_key) -> sha256 of its contents, for this process.
_FILE_HASHES: dict[tuple[str, int, int, int, int, int], str] = {}


def fingerprint(model_dir: str | Path) -> str:
    """A sha256 hex digest identifying a checkpoint folder's model, tokenizer and template.

    Stable across copies and machines (relative names only, sorted); any change to a config,
    tokenizer, chat template or shard index file, or to any byte of a weight file, changes it.
    Every weight byte is read once per file version (see the module docstring for the cache).

    A PEFT adapter folder's fingerprint covers its own files (``adapter_config.json`` included)
    and its base checkpoint's fingerprint (the base named by ``--base-model`` or by the adapter's
    config). A sharded folder (verl FSDP, DeepSpeed ZeRO) has the fingerprint of its cached
    conversion, and none before it is converted (:class:`CheckpointError` naming
    ``gpbench convert``).

    Raises:
        CheckpointError: the folder does not exist, or a weight file changed while it was hashed.
    """
    folder = _folder(model_dir)
    from gpbench.harness.adapters import find_adapter

    adapter = find_adapter(folder)
    if adapter is not None:
        digest = hashlib.sha256(f"gpbench-adapter-fingerprint-{FINGERPRINT_VERSION}\n".encode())
        hash_folder(digest, folder, (ADAPTER_CONFIG_FILE,))
        digest.update(f"base {fingerprint(adapter.base)}\n".encode())
        return digest.hexdigest()
    if find_sharded(folder) is not None:
        return fingerprint(loadable_folder(folder))
    digest = hashlib.sha256(f"gpbench-fingerprint-{FINGERPRINT_VERSION}\n".encode())
    hash_folder(digest, folder)
    return digest.hexdigest()


def hash_weight_file(digest: Any, path: Path, name: str) -> None:
    """Feed ``weights NAME SHA256`` to ``digest``: the sha256 of all the file's bytes
    (:func:`file_sha256`, cached)."""
    digest.update(f"weights {name} {file_sha256(path)}\n".encode())


def hash_folder(
    digest: Any, folder: Path, extra: Iterable[str] = (), *, weights: bool = True
) -> None:
    """Feed a folder's config, tokenizer, chat template and shard index files (whole contents;
    ``extra`` names more) and, with ``weights``, its weight files' hashes to ``digest``, sorted
    by name."""
    for path in _sorted_files(folder, (*TEXT_FILES, *extra), _TEXT_GLOBS):
        name = path.relative_to(folder).as_posix()
        digest.update(f"file {name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    if not weights:
        return
    found = [p for p in _sorted_files(folder, (), _WEIGHT_GLOBS) if p.name not in _NOT_WEIGHTS]
    for path in found:
        hash_weight_file(digest, path, path.relative_to(folder).as_posix())


def cache_root() -> Path:
    """gpbench's cache folder: ``$GPBENCH_CACHE_DIR``, ``$XDG_CACHE_HOME/gpbench`` or
    ``~/.cache/gpbench``."""
    if os.environ.get("GPBENCH_CACHE_DIR"):
        return Path(os.environ["GPBENCH_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "gpbench"
    return Path.home() / ".cache" / "gpbench"


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's whole contents, cached by the file's identity.

    The identity is the resolved path, device, inode, size, modification and change times; a
    hit in memory or in the on-disk cache (``<cache>/file-sha256/``) is used without reading
    the file. Files of 256 MiB or more are announced on the ``gpbench`` logger (and show a
    percentage on a terminal) while they are hashed.

    Raises:
        CheckpointError: the file cannot be read, or changed while it was being hashed (a
            writer still at work).
    """
    try:
        before = path.stat()
        key = _file_key(path, before)
        known = _FILE_HASHES.get(key) or _read_cached_hash(key)
        if known is not None:
            _FILE_HASHES[key] = known
            return known
        digest = _hash_contents(path, before.st_size)
        after = _file_key(path, path.stat())
    except OSError as exc:
        raise CheckpointError(
            f"cannot read {path} for the checkpoint fingerprint: {exc.strerror or exc}"
        ) from None
    if after != key:
        raise CheckpointError(
            f"{path} changed while gpbench was hashing it for the checkpoint fingerprint; wait "
            f"until whatever writes it has finished, then run again"
        )
    if time.time_ns() - max(before.st_mtime_ns, before.st_ctime_ns) > _SETTLED_NS:
        _FILE_HASHES[key] = digest
        _write_cached_hash(key, digest)
    return digest


def _file_key(path: Path, info: os.stat_result) -> tuple[str, int, int, int, int, int]:
    # The change time moves on every write and cannot be set back by tools that restore the
    # modification time (cp -p, rsync -t, touch -d), so a rewrite is seen even then.
    return (
        str(path.resolve()),
        info.st_dev,
        info.st_ino,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    )


def _hash_contents(path: Path, size: int) -> str:
    """sha256 of a file, read in fixed chunks into one buffer (memory flat on any size)."""
    digest = hashlib.sha256()
    buffer = bytearray(_HASH_CHUNK)
    view = memoryview(buffer)
    announce = size >= _ANNOUNCE_BYTES
    show = announce and sys.stderr.isatty()
    if announce:
        logger.warning(
            "note: hashing %s (%.1f GB) for the checkpoint fingerprint; once, the hash is cached",
            path,
            size / 1e9,
        )
    done, shown = 0, -1
    with path.open("rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            done += count
            percent = done * 100 // max(size, 1)
            if show and percent != shown:
                shown = percent
                sys.stderr.write(f"\rhashing {path.name}: {percent}%")
                sys.stderr.flush()
    if show:
        sys.stderr.write("\n")
    return digest.hexdigest()


def _cache_entry(key: tuple[str, int, int, int, int, int]) -> Path:
    name = hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()
    return cache_root() / "file-sha256" / f"{name}.json"


def _read_cached_hash(key: tuple[str, int, int, int, int, int]) -> str | None:
    """The cached hash of exactly this file identity, or None: a missing, unreadable, oversized,
    malformed or foreign entry is ignored (the cache only saves time, it is never trusted to
    fail a run)."""
    path = _cache_entry(key)
    try:
        # Non-blocking and regular files only: a FIFO or device planted there cannot hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, _CACHE_ENTRY_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(raw) > _CACHE_ENTRY_LIMIT:
        return None
    try:
        entry = parse_json(raw.decode("utf-8"))
    except ValueError:  # bad UTF-8 or JSON (absurd nesting included)
        return None
    if not isinstance(entry, dict) or entry.get("key") != list(key):
        return None
    digest = entry.get("sha256")
    return digest if isinstance(digest, str) and _SHA256_HEX.match(digest) else None


def _write_cached_hash(key: tuple[str, int, int, int, int, int], digest: str) -> None:
    """Store an entry atomically (a temporary file renamed over it), so concurrent processes
    never see half an entry; a cache that cannot be written only costs time."""
    path = _cache_entry(key)
    data = json.dumps({"key": list(key), "sha256": digest}).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        logger.debug("gpbench: cannot write the hash cache under %s: %s", path.parent, exc)
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).replace(path)
    except OSError as exc:
        logger.debug("gpbench: cannot write the hash cache entry %s: %s", path, exc)
        Path(tmp).unlink(missing_ok=True)


def checkpoint_metadata(
    model_dir: str | Path, overrides: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Training metadata of a checkpoint folder: step, tokens seen, method, ... and their sources.

    Returns a dict with ``path`` (the folder, absolute), the metadata keys, and ``source``
    mapping each key to where it came from (``folder name``, ``trainer_state.json``,
    ``gpbench_checkpoint.json`` or ``--meta``).

    A PEFT adapter folder adds ``adapter`` (its base model, PEFT type and rank); a sharded folder
    with a cached conversion reads the conversion's metadata (step, method, source), and one
    without has only its step from the folder name.
    """
    folder = _folder(model_dir)
    sharded = find_sharded(folder)
    if sharded is not None:
        from gpbench.harness.convert import cached_conversion

        converted = cached_conversion(sharded)
        if converted is not None:
            return checkpoint_metadata(converted, overrides)
    values: dict[str, Any] = {}
    source: dict[str, str] = {}

    def put(found: Mapping[str, Any], where: str) -> None:
        for key, value in found.items():
            if key in ("path", "source"):
                continue  # gpbench's own keys: the folder, and where each value came from
            values[key] = value
            source[key] = where

    match = _STEP_IN_NAME.search(folder.name)
    if match:
        put({"step": int(match.group(1))}, "folder name")
    elif sharded is not None and sharded.step is not None:
        put({"step": sharded.step}, "folder name")  # global_step_N/actor: the step's folder
    if (folder / ADAPTER_CONFIG_FILE).is_file():
        from gpbench.harness.adapters import adapter_summary

        put({"adapter": adapter_summary(folder)}, ADAPTER_CONFIG_FILE)
    state = _read_json(folder / TRAINER_STATE_FILE)
    if state is not None:
        renamed = {
            "global_step": "step",
            "num_input_tokens_seen": "tokens_seen",
            "total_flos": "total_flos",
        }
        # A Trainer that does not count tokens writes num_input_tokens_seen = 0: not a fact.
        put(
            {
                new: state[old]
                for old, new in renamed.items()
                if state.get(old) is not None
                and not (old == "num_input_tokens_seen" and not state[old])
            },
            TRAINER_STATE_FILE,
        )
    recorded = _read_json(folder / METADATA_FILE)
    if recorded is not None:
        put(recorded, METADATA_FILE)
    put({key: parse_meta_value(value) for key, value in (overrides or {}).items()}, "--meta")
    return {"path": str(folder.resolve()), **values, "source": source}


def parse_meta_value(text: str) -> Any:
    """A ``--meta`` value: an int or a finite float when it reads as one, else the text.

    >>> parse_meta_value("500"), parse_meta_value("1.5e9"), parse_meta_value("sft")
    (500, 1500000000.0, 'sft')
    """
    if not isinstance(text, str):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def discover_series(pattern: str) -> list[Path]:
    """The checkpoint folders a glob names, in training order (step from metadata, then name).

    A folder without glob characters that is not itself a checkpoint stands for its children
    (``ckpts/sft`` means ``ckpts/sft/*``, e.g. a Trainer's ``checkpoint-N`` folders). Folders
    holding ``config.json`` count, and so do PEFT adapter folders and sharded folders (verl's
    ``global_step_N``, named for its ``actor/``); a Trainer output folder's logs and runs
    subfolders are skipped. A sharded folder without a cached conversion is a
    :class:`CheckpointError` naming ``gpbench convert``: nothing is converted silently.
    """
    expanded = str(Path(pattern).expanduser())
    if not glob.has_magic(expanded):
        folder = Path(expanded)
        if folder.is_dir() and not _is_checkpoint(folder):
            expanded = str(folder / "*")
    # glob.glob, not Path.glob: a user's pattern may be absolute, with magic in any component.
    matches = [Path(p) for p in glob.glob(expanded) if Path(p).is_dir()]  # noqa: PTH207
    if not matches:
        raise CheckpointError(
            f"no folder matches {pattern!r}; pass checkpoint folders or a glob of them"
        )
    found: list[Path] = []
    unconverted: list[ShardedCheckpoint] = []
    for path in matches:
        sharded = find_sharded(path)
        if sharded is not None:
            from gpbench.harness.convert import cached_conversion

            if cached_conversion(sharded) is None:
                unconverted.append(sharded)
            path = sharded.folder  # global_step_N/actor stands as global_step_N
        elif not _is_checkpoint(path):
            continue
        if path not in found:
            found.append(path)
    if unconverted:
        raise CheckpointError(unconverted_message(unconverted[0], len(unconverted) - 1))
    if not found:
        raise CheckpointError(
            f"{len(matches)} folder(s) match {pattern!r} but none holds config.json or "
            f"adapter_config.json; point the glob at the checkpoint folders themselves"
        )

    def order(path: Path) -> tuple[int, float, str]:
        step = checkpoint_metadata(path).get("step")
        if isinstance(step, (int, float)) and not isinstance(step, bool):
            return (0, float(step), path.name)
        return (1, 0.0, path.name)  # folders without a step go last, by name

    return sorted(found, key=order)


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
    if (folder / CONFIG_FILE).is_file() and any(
        p.name not in _NOT_WEIGHTS for p in _sorted_files(folder, (), _WEIGHT_GLOBS)
    ):
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
    from gpbench.harness.convert import cached_conversion

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


def _is_checkpoint(folder: Path) -> bool:
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
    match = _STEP_IN_NAME.search(named.name)
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
    match = _STEP_IN_NAME.search(tag_folder.name)
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


def _folder(model_dir: str | Path) -> Path:
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {model_dir}")
    return folder


def _sorted_files(folder: Path, names: Iterable[str], patterns: Iterable[str]) -> list[Path]:
    files = {folder / name for name in names if (folder / name).is_file()}
    for pattern in patterns:
        files.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data
