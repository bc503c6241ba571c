"""Strict weight loading: weights that do not fit their model are refused, never evaluated.

transformers' ``from_pretrained`` loads the tensors whose names fit the architecture the config
names and gives every other parameter fresh random values, with only a logged warning. A
checkpoint saved from a wrapper (``module.`` of DDP, ``_orig_mod.`` of ``torch.compile``), with
a config of another architecture, or with a tensor missing would then be evaluated as a random
model and its numbers reported as the checkpoint's. gpbench loads through :func:`load_pretrained`
instead, which refuses such a checkpoint in one line that names a few of the keys and the likely
cause.

Allowed, because transformers itself leaves them out of its ``missing_keys`` and
``unexpected_keys`` (``modeling_utils`` in transformers 5): weights tied to another parameter
and saved once (an ``lm_head`` tied to the embeddings); the patterns of the architecture's
``_keys_to_ignore_on_load_missing`` and ``_keys_to_ignore_on_load_unexpected`` (its submodules'
included); stale ``rotary_emb.inv_freq`` and ``position_ids`` buffers of older checkpoints; and
tensors renamed by the architecture's checkpoint conversion mapping (older Llava layouts) or
loaded through its ``base_model_prefix`` (a bare base model's weights under a head). Anything
else left in those lists, any shape mismatch and any loading error refuses the checkpoint.

Before anything is loaded (no torch), :func:`check_weight_files` checks the files transformers
will read: a shard index (``model.safetensors.index.json``) must name shards that exist, inside
the folder, and that hold the tensors it maps to them; every safetensors file must have a
readable header whose tensors the file's size covers (a truncated download is named as one).
Pickled weights (``pytorch_model.bin``) load only as plain tensors (``torch.load`` with
``weights_only=True``, as transformers does); one that holds anything else is refused with the
advice to re-save it as safetensors with a tool one trusts.
"""

from __future__ import annotations

import pickle
import re
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gpbench.errors import ModelLoadError
from gpbench.serialization import parse_json

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PICKLE_WEIGHTS = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"
# safetensors' own limit on its JSON header (safetensors/src/tensor.rs, MAX_HEADER_SIZE).
_MAX_HEADER = 100_000_000
_SHOWN = 3  # keys named in a message
# Prefixes that wrappers put before every parameter name when their state_dict() is saved.
_WRAPPERS = {
    "module": "a DistributedDataParallel or DeepSpeed wrapper (model.module)",
    "_orig_mod": "a torch.compile wrapper",
    "_fsdp_wrapped_module": "an FSDP wrapper",
    "_checkpoint_wrapped_module": "an activation-checkpointing wrapper",
}
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def check_weight_files(folder: Path, config: Mapping[str, Any] | None = None) -> list[Path]:
    """The weight files transformers will read from ``folder``, after checking they are whole.

    The files are chosen as transformers chooses them: the config's ``transformers_weights``
    when it names one, else ``model.safetensors``, its shard index, ``pytorch_model.bin`` or
    its shard index, in that order. An empty list means the folder has none of them.

    Raises:
        ModelLoadError: an index that is not valid, names a file outside the folder or a shard
            that is missing; a safetensors file that is truncated or not a safetensors file; a
            shard that lacks tensors its index maps to it.
    """
    named = (config or {}).get("transformers_weights")
    candidates = [named] if isinstance(named, str) and named else []
    candidates += [SAFE_WEIGHTS, SAFE_INDEX, PICKLE_WEIGHTS, PICKLE_INDEX]
    for name in candidates:
        path = _inside(folder, name, "config.json's transformers_weights")
        if not path.is_file():
            continue
        if name.endswith(".index.json"):
            return _check_index(folder, path)
        if path.suffix == ".safetensors":
            safetensors_names(path)
        return [path]
    return []


def safetensors_names(path: Path) -> set[str]:
    """The tensor names in a safetensors file's header, after checking that the file's size
    covers every tensor the header describes (no torch; reads only the header).

    Raises:
        ModelLoadError: not a safetensors file, or truncated.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ModelLoadError(_truncated(path, f"it holds {size} bytes, not even a header"))
        (length,) = struct.unpack("<Q", head)
        if length > _MAX_HEADER:
            raise ModelLoadError(
                f"{path} is not a safetensors file (its first bytes announce a header of "
                f"{length} bytes); re-save or copy the weights again"
            )
        if 8 + length > size:
            raise ModelLoadError(
                _truncated(path, f"its header alone needs {8 + length} bytes, it holds {size}")
            )
        raw = handle.read(length)
    try:
        header = parse_json(raw.decode("utf-8"))
    except ValueError:
        raise ModelLoadError(
            f"{path} is not a safetensors file (its header is not JSON); re-save or copy the "
            f"weights again"
        ) from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path} is not a safetensors file (its header is not an object)")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise ModelLoadError(
                f"{path} is not a valid safetensors file (tensor {name!r} has no data offsets); "
                f"re-save or copy the weights again"
            )
        end = max(end, offsets[1])
    data = size - 8 - length
    if end > data:
        raise ModelLoadError(
            _truncated(path, f"its header describes {end} bytes of tensors, it holds {data}")
        )
    return {name for name in header if name != "__metadata__"}


def load_pretrained(auto_class: Any, folder: Path, **kwargs: Any) -> Any:
    """``auto_class.from_pretrained(folder, **kwargs)``, refusing weights that do not fit.

    Raises:
        ModelLoadError: no weight files; broken files (see :func:`check_weight_files`); a pickle
            that holds more than tensors; any missing, unexpected or mis-shaped weight (the
            message names a few keys and the likely cause).
    Out-of-memory and other errors of transformers propagate for the caller to word.
    """
    config = _read_config(folder)
    if not check_weight_files(folder, config):
        raise ModelLoadError(
            f"{folder} has no weights ({SAFE_WEIGHTS}, {SAFE_INDEX}, {PICKLE_WEIGHTS} or "
            f"{PICKLE_INDEX}); save the model with save_pretrained()"
        )
    from safetensors import SafetensorError

    try:
        # ignore_mismatched_sizes: mis-shaped weights come back in the loading info (to be
        # refused below with their shapes) instead of as a multi-line report and exception.
        model, info = auto_class.from_pretrained(
            folder, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
        )
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(pickle_refusal(folder, exc)) from None
    except SafetensorError as exc:
        raise ModelLoadError(
            f"cannot read the safetensors weights of {folder}: {_first_line(exc)}; copy or "
            f"re-save them"
        ) from None
    except (RuntimeError, OSError, ValueError) as exc:
        if "weights_only" in str(exc):  # torch's refusal of a pickle, as another type
            raise ModelLoadError(pickle_refusal(folder, exc)) from None
        raise
    check_fit(info, model, folder)
    return model


def check_fit(info: Mapping[str, Any], model: Any, folder: Path) -> None:
    """Refuse a loaded model whose loading info lists missing, unexpected or mis-shaped weights
    or errors (what transformers returns with ``output_loading_info=True``).

    Raises:
        ModelLoadError: one line naming counts, a few keys of each kind and the likely cause.
    """
    missing = sorted(str(k) for k in info.get("missing_keys") or ())
    unexpected = sorted(str(k) for k in info.get("unexpected_keys") or ())
    mismatched = sorted(info.get("mismatched_keys") or (), key=lambda item: str(item[0]))
    errors = [str(e) for e in info.get("error_msgs") or ()]
    if not (missing or unexpected or mismatched or errors):
        return
    architecture = type(model).__name__
    config = getattr(model, "config", None)
    declared = ", ".join(getattr(config, "architectures", None) or []) or "no architectures"
    model_type = getattr(config, "model_type", None)
    parts = []
    if missing:
        parts.append(f"{len(missing)} parameter(s) missing from the weights ({shown(missing)})")
    if unexpected:
        parts.append(
            f"{len(unexpected)} tensor(s) in the weights that {architecture} has no place for "
            f"({shown(unexpected)})"
        )
    if mismatched:
        listed = ", ".join(
            f"{name}: {tuple(theirs)} in the weights, {tuple(ours)} in the model"
            for name, theirs, ours in mismatched[:_SHOWN]
        )
        more = ", ..." if len(mismatched) > _SHOWN else ""
        parts.append(f"{len(mismatched)} tensor(s) of another shape ({listed}{more})")
    if errors:
        parts.append(f"loading errors ({' '.join(errors[0].split())[:200]})")
    expected = len(model.state_dict())
    cause = likely_cause(missing, unexpected, bool(mismatched), expected, declared)
    raise ModelLoadError(
        f"refusing the weights of {folder}: they do not fit {architecture} (config.json: "
        f"{declared}, model_type {model_type!r}): {'; '.join(parts)}; likely cause: {cause}; "
        f"transformers would have given the missing parameters random values"
    )


def likely_cause(
    missing: list[str],
    unexpected: list[str],
    mismatched: bool,
    expected: int,
    declared: str,
) -> str:
    """The most likely reason weights do not fit, in words, from the keys that do not."""
    wrapper = _wrapper_prefix(unexpected)
    if wrapper is not None:
        return (
            f"every name carries the {wrapper + '.'!r} prefix of {_WRAPPERS[wrapper]}: the state "
            f"dict was saved from the wrapper; strip the prefix from every name, or save the "
            f"unwrapped model with save_pretrained()"
        )
    extra, lacking = _shifted_prefix(missing, unexpected)
    if extra is not None:
        return (
            f"the names carry an extra {extra!r} prefix (saved from an outer module); strip it "
            f"from every name, or save the model itself with save_pretrained()"
        )
    if lacking is not None:
        return (
            f"the names lack the {lacking!r} prefix the architecture expects (saved from an "
            f"inner module, or a config of another architecture)"
        )
    if unexpected and all(name.startswith("v_head.") for name in unexpected) and not missing:
        return "a value head (v_head.*) saved by an RL trainer; save the policy model alone"
    if missing and unexpected and len(missing) * 2 >= expected:
        return (
            f"config.json ({declared}) belongs to another architecture than the weights "
            f"(copied from another model?); put the config saved with these weights beside them"
        )
    if missing and len(missing) * 2 >= expected:
        return "the weight files hold few of the model's tensors: a partial or truncated save"
    if mismatched:
        return (
            "config.json sizes (vocab_size, hidden_size, ...) differ from the weights': the config "
            "of another size of the architecture"
        )
    if missing and not unexpected:
        return (
            "the weight files lack some tensors: a partial save or a shard set from different "
            "saves, or a config of a larger variant (more layers) than the weights"
        )
    if unexpected and not missing:
        return (
            "the weights hold tensors this architecture lacks: a config of a smaller variant "
            "(fewer layers), or extra heads saved with the model"
        )
    return "config.json and the weights are of different variants or versions of the model"


def shown(keys: list[str]) -> str:
    """The first few of ``keys``, comma-separated, with ``...`` when there are more."""
    return ", ".join(keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")


def pickle_refusal(folder: Path, exc: BaseException) -> str:
    """One line for pickled weights that torch refused to load as plain tensors. It never
    suggests unpickling them fully (torch's own message does): that could run their code."""
    return (
        f"refusing the pickled weights of {folder} ({PICKLE_WEIGHTS} or its shards): gpbench "
        f"loads pickles only as plain tensors, and {pickle_offence(exc)}, which could run code "
        f"when unpickled; "
        f"convert them to safetensors where they were made, with a tool you trust (loaded "
        f"there, transformers' save_pretrained writes model.safetensors)"
    )


def pickle_offence(exc: BaseException) -> str:
    """What torch's weights-only unpickler refused, in words (``it refers to posix.system``)."""
    found = _GLOBAL.search(str(exc))
    return f"it refers to {found.group(1)}" if found else "it is unreadable or holds objects"


def _check_index(folder: Path, index: Path) -> list[Path]:
    try:
        data = parse_json(index.read_text(encoding="utf-8"))
    except ValueError:
        raise ModelLoadError(
            f"{index} is not valid JSON; copy the checkpoint's index file again"
        ) from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelLoadError(f"{index} has no weight_map; copy the checkpoint's index file again")
    by_shard: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str):
            raise ModelLoadError(f"{index} maps {tensor!r} to {shard!r}, not a file name")
        by_shard.setdefault(shard, []).append(str(tensor))
    shards = {name: _inside(folder, name, index.name) for name in by_shard}
    absent = sorted(name for name, path in shards.items() if not path.is_file())
    if absent:
        tensors = sorted(t for name in absent for t in by_shard[name])
        raise ModelLoadError(
            f"{folder} is missing {len(absent)} of the {len(shards)} shard(s) that "
            f"{index.name} lists ({shown(absent)}), holding {len(tensors)} tensor(s) "
            f"({shown(tensors)}): a partial download or copy; copy every shard"
        )
    for name, path in sorted(shards.items()):
        if path.suffix != ".safetensors":
            continue
        lacking = sorted(set(by_shard[name]) - safetensors_names(path))
        if lacking:
            raise ModelLoadError(
                f"{path} lacks {len(lacking)} tensor(s) that {index.name} maps to it "
                f"({shown(lacking)}): the shards and the index are from different saves; copy "
                f"the checkpoint again"
            )
    return [shards[name] for name in sorted(shards)]


def _inside(folder: Path, name: str, source: str) -> Path:
    """``folder / name``, refusing a name that leaves the folder (hostile index or config)."""
    path = Path(name)
    if path.is_absolute() or ".." in path.parts:
        raise ModelLoadError(
            f"{source} in {folder} names {name!r}, which is outside the checkpoint folder; "
            f"weight files must be inside it"
        )
    return folder / path


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        data = parse_json((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # the loader reports a missing or broken config in its own words
    return data if isinstance(data, dict) else {}


def _wrapper_prefix(unexpected: Iterable[str]) -> str | None:
    """The wrapper whose name is a component of most unexpected keys (half or more)."""
    names = list(unexpected)
    counts: Counter[str] = Counter()
    for name in names:
        parts = set(name.split("."))
        counts.update(wrapper for wrapper in _WRAPPERS if wrapper in parts)
    if not counts:
        return None
    wrapper, count = counts.most_common(1)[0]
    return wrapper if count * 2 >= len(names) else None


def _shifted_prefix(missing: list[str], unexpected: list[str]) -> tuple[str | None, str | None]:
    """A prefix that, removed from the unexpected keys (``extra``) or from the missing keys
    (``lacking``), turns half or more of them into the other kind."""
    want, have = set(missing), set(unexpected)
    extra = _common_prefix(unexpected, want)
    if extra is not None:
        return extra, None
    return None, _common_prefix(missing, have)


def _common_prefix(names: list[str], targets: set[str]) -> str | None:
    counts: Counter[str] = Counter()
    for name in names:
        for position, char in enumerate(name):
            if char == "." and name[position + 1 :] in targets:
                counts[name[: position + 1]] += 1
                break
    if not counts:
        return None
    prefix, count = counts.most_common(1)[0]
    return prefix if count * 2 >= len(names) else None


def _truncated(path: Path, detail: str) -> str:
    return (
        f"{path} is truncated ({detail}): an interrupted download or copy; copy the file again "
        f"from where the checkpoint was saved"
    )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
