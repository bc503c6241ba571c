"""Checkpoint folders: a cheap fingerprint, training metadata, and series discovery (no torch).

A checkpoint is a folder with ``config.json`` beside its weights and tokenizer (the layout
``save_pretrained`` writes). Reports read only run folders, so ``gpbench eval`` copies the
fingerprint and metadata of each checkpoint into its run.json.

Fingerprint:
    sha256 over the config, tokenizer, processor and chat template files (whole contents) and, for
    each weight file (``*.safetensors``, ``*.bin``), its name, size and the sha256 of its first
    and last MiB. Reading two MiB per shard keeps it fast on 70B checkpoints, and it still tells
    apart the checkpoints of one training run, which share every config file but no weights.

Metadata, lowest to highest precedence (each key records its ``source``):
    1. the folder name: ``checkpoint-500`` or ``sft-run-500`` gives ``step`` 500;
    2. ``trainer_state.json`` (written by the transformers Trainer and TRL): ``global_step`` as
       ``step``, ``num_input_tokens_seen`` as ``tokens_seen``, ``total_flos``;
    3. ``gpbench_checkpoint.json`` (written by gpbench's recipes): every key in it;
    4. overrides (``--meta KEY=VAL``): numbers become int or float, anything else stays text.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gpbench.errors import CheckpointError

CONFIG_FILE = "config.json"
METADATA_FILE = "gpbench_checkpoint.json"
TRAINER_STATE_FILE = "trainer_state.json"

# Files whose whole contents decide how text becomes tokens and images become inputs.
_TEXT_FILES = (
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
)
_TEXT_GLOBS = ("*.tiktoken", "additional_chat_templates/*.jinja")
_WEIGHT_GLOBS = ("*.safetensors", "*.bin")
# Written by the Trainer beside the weights; it holds arguments, not weights.
_NOT_WEIGHTS = frozenset({"training_args.bin"})
_MIB = 1 << 20
_STEP_IN_NAME = re.compile(r"-(\d+)$")


def fingerprint(model_dir: str | Path) -> str:
    """A sha256 hex digest identifying a checkpoint folder's model, tokenizer and template.

    Stable across copies and machines (relative names only, sorted); any change to a config,
    tokenizer or chat template file, or to a weight file's size or first or last MiB, changes it.
    """
    folder = _folder(model_dir)
    digest = hashlib.sha256(b"gpbench-fingerprint-v1\n")
    for path in _sorted_files(folder, _TEXT_FILES, _TEXT_GLOBS):
        name = path.relative_to(folder).as_posix()
        digest.update(f"file {name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    weights = [p for p in _sorted_files(folder, (), _WEIGHT_GLOBS) if p.name not in _NOT_WEIGHTS]
    for path in weights:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = hashlib.sha256(handle.read(_MIB)).hexdigest()
            handle.seek(max(0, size - _MIB))
            tail = hashlib.sha256(handle.read(_MIB)).hexdigest()
        name = path.relative_to(folder).as_posix()
        digest.update(f"weights {name} {size} {head} {tail}\n".encode())
    return digest.hexdigest()


def checkpoint_metadata(
    model_dir: str | Path, overrides: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Training metadata of a checkpoint folder: step, tokens seen, method, ... and their sources.

    Returns a dict with ``path`` (the folder, absolute), the metadata keys, and ``source``
    mapping each key to where it came from (``folder name``, ``trainer_state.json``,
    ``gpbench_checkpoint.json`` or ``--meta``).
    """
    folder = _folder(model_dir)
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
    (``ckpts/sft`` means ``ckpts/sft/*``). Only folders holding ``config.json`` count, so a
    Trainer output folder's logs and runs subfolders are skipped.
    """
    expanded = str(Path(pattern).expanduser())
    if not glob.has_magic(expanded):
        folder = Path(expanded)
        if folder.is_dir() and not (folder / CONFIG_FILE).is_file():
            expanded = str(folder / "*")
    # glob.glob, not Path.glob: a user's pattern may be absolute, with magic in any component.
    matches = [Path(p) for p in glob.glob(expanded) if Path(p).is_dir()]  # noqa: PTH207
    if not matches:
        raise CheckpointError(
            f"no folder matches {pattern!r}; pass checkpoint folders or a glob of them"
        )
    found = [p for p in matches if (p / CONFIG_FILE).is_file()]
    if not found:
        raise CheckpointError(
            f"{len(matches)} folder(s) match {pattern!r} but none holds config.json; "
            f"point the glob at the checkpoint folders themselves"
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


def _sorted_files(folder: Path, names: Iterable[str], patterns: Iterable[str]) -> list[Path]:
    files = {folder / name for name in names if (folder / name).is_file()}
    for pattern in patterns:
        files.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data
