"""Checkpoint folders: a cheap fingerprint, training metadata, and series discovery (no torch).

A checkpoint is a folder with ``config.json`` beside its weights and tokenizer (the layout
``save_pretrained`` writes). Reports read only run folders, so ``gpbench eval`` copies the
fingerprint and metadata of each checkpoint into its run.json.

Fingerprint:
    sha256 over the config, generation config, tokenizer, processor, chat template and shard index
    files (whole contents) and, for each weight file (``*.safetensors``, ``*.bin``), its name,
    size and the sha256 of all its bytes: two checkpoints that differ in any weight have different
    fingerprints, so different run keys. Each file's hash is cached per file version
    (:mod:`gpbench.harness.hashing`), so a series is hashed once. Fingerprints carry a version
    (``gpbench-fingerprint-v2``; v1 hashed only each weight file's first and last MiB), so
    fingerprints of different versions never compare equal.

Metadata, lowest to highest precedence (each key records its ``source``):
    1. the folder name: ``checkpoint-500`` or ``sft-run-500`` gives ``step`` 500;
    2. ``trainer_state.json`` (written by the transformers Trainer and TRL): ``global_step`` as
       ``step``, ``num_input_tokens_seen`` as ``tokens_seen``, ``total_flos``;
    3. ``gpbench_checkpoint.json`` (written by gpbench's recipes): every key in it;
    4. overrides (``--meta KEY=VAL``): numbers become int or float, anything else stays text.

Checkpoint shapes (the folder kinds of :mod:`gpbench.harness.folders`):
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpbench.errors import CheckpointError
from gpbench.harness.folders import (
    ADAPTER_CONFIG_FILE,
    METADATA_FILE,
    STEP_IN_NAME,
    ShardedCheckpoint,
    adapter_summary,
    cached_conversion,
    find_adapter,
    find_sharded,
    is_checkpoint,
    loadable_folder,
    read_json_object,
    unconverted_message,
)
from gpbench.harness.hashing import FINGERPRINT_VERSION, hash_folder
from gpbench.runs.folder import parse_meta_value

TRAINER_STATE_FILE = "trainer_state.json"


def fingerprint(model_dir: str | Path, base_model: str | Path | None = None) -> str:
    """A sha256 hex digest identifying a checkpoint folder's model, tokenizer and template.

    Stable across copies and machines (relative names only, sorted); any change to a config,
    tokenizer, chat template or shard index file, or to any byte of a weight file, changes it.
    Every weight byte is read once per file version (see the module docstring for the cache).

    A PEFT adapter folder's fingerprint covers its own files (``adapter_config.json`` included)
    and its base checkpoint's fingerprint (the base ``base_model``, ``--base-model``, or else the
    one the adapter's config names). A sharded folder (verl FSDP, DeepSpeed ZeRO) has the
    fingerprint of its cached conversion, and none before it is converted
    (:class:`CheckpointError` naming ``gpbench convert``).

    Raises:
        CheckpointError: the folder does not exist, or a weight file changed while it was hashed.
    """
    folder = _folder(model_dir)
    adapter = find_adapter(folder, base_model)
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


def checkpoint_metadata(
    model_dir: str | Path,
    overrides: Mapping[str, str] | None = None,
    base_model: str | Path | None = None,
) -> dict[str, Any]:
    """Training metadata of a checkpoint folder: step, tokens seen, method, ... and their sources.

    Returns a dict with ``path`` (the folder, absolute), the metadata keys, and ``source``
    mapping each key to where it came from (``folder name``, ``trainer_state.json``,
    ``gpbench_checkpoint.json`` or ``--meta``).

    A PEFT adapter folder adds ``adapter`` (its base model, ``base_model`` where given, PEFT type
    and rank); a sharded folder with a cached conversion reads the conversion's metadata (step,
    method, source), and one without has only its step from the folder name.
    """
    folder = _folder(model_dir)
    sharded = find_sharded(folder)
    if sharded is not None:
        converted = cached_conversion(sharded)
        if converted is not None:
            return checkpoint_metadata(converted, overrides, base_model)
    values: dict[str, Any] = {}
    source: dict[str, str] = {}

    def put(found: Mapping[str, Any], where: str) -> None:
        for key, value in found.items():
            if key in ("path", "source"):
                continue  # gpbench's own keys: the folder, and where each value came from
            values[key] = value
            source[key] = where

    match = STEP_IN_NAME.search(folder.name)
    if match:
        put({"step": int(match.group(1))}, "folder name")
    elif sharded is not None and sharded.step is not None:
        put({"step": sharded.step}, "folder name")  # global_step_N/actor: the step's folder
    if (folder / ADAPTER_CONFIG_FILE).is_file():
        put({"adapter": adapter_summary(folder, base_model)}, ADAPTER_CONFIG_FILE)
    state = read_json_object(folder / TRAINER_STATE_FILE)
    if state:
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
    put(read_json_object(folder / METADATA_FILE), METADATA_FILE)
    put({key: parse_meta_value(value) for key, value in (overrides or {}).items()}, "--meta")
    return {"path": str(folder.resolve()), **values, "source": source}


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
        if folder.is_dir() and not is_checkpoint(folder):
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
            if cached_conversion(sharded) is None:
                unconverted.append(sharded)
            path = sharded.folder  # global_step_N/actor stands as global_step_N
        elif not is_checkpoint(path):
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


def _folder(model_dir: str | Path) -> Path:
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {model_dir}")
    return folder
