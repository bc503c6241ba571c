"""Writing generated splits to disk: JSON lines, Parquet, Hugging Face datasets and training-ready
exports, each with a manifest.

Layout under ``DIR/<task>/`` (``<ds>`` is the split's dataset name, ``-`` replaced by ``_``
because ``datasets`` refuses ``-`` in split names: ``ood-rule`` -> ``ood_rule``):

- ``jsonl``: ``<split>.jsonl``; vision tasks add PNG files under ``<split>/images/``, referenced
  by paths relative to the JSON lines file's folder (:func:`load_split` resolves them);
- ``parquet``: ``<ds>.parquet``, images as ``datasets.Image`` (the features are in the schema);
- ``hf``: the folder is a ``DatasetDict`` (``datasets.load_from_disk("DIR/<task>")``), one
  ``save_to_disk`` folder ``<ds>/`` per split written;
- ``sft``/``grpo``: ``DatasetDict`` folders ``sft/`` and ``grpo/`` of TRL-ready rows
  (:mod:`gpbench.integrations.trl_data`); ``verl``: ``verl/<ds>.parquet``
  (:mod:`gpbench.integrations.verl`).

Every format but jsonl also gets a dataset card (``README.md``) beside its data. Every file is
written under a temporary name and renamed into place when complete, so an interrupted run never
leaves a half-written split. The manifest's ``content_sha256`` hashes the canonical JSON lines
(and decoded image pixels), so it is the same whatever the format and can be checked against a
regenerated split.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gpbench
from gpbench.errors import ConfigError, GpbenchError, MissingDependencyError
from gpbench.records import Instance
from gpbench.serialization import json_text, to_dict, to_json, write_text_atomic
from gpbench.tasks.spec import SplitDataset, TaskSpec

FORMATS: tuple[str, ...] = ("jsonl", "parquet", "hf", "sft", "grpo", "verl")
TRAINING_FORMATS: tuple[str, ...] = ("sft", "grpo", "verl")
"""Formats of training rows (one per decision point), written to their own ``<task>/<fmt>/`` folder."""
DATASET_FOLDER_FORMATS: tuple[str, ...] = ("hf", "sft", "grpo")
"""Formats written with ``datasets.save_to_disk`` into a ``DatasetDict`` folder."""
_PARQUET_BATCH = 4096
INT64_FORMATS = ("parquet", "hf")
"""Formats whose ``seed`` column is a 64-bit integer (Arrow's int64)."""
IMAGE_FEATURE = {"feature": {"_type": "Image"}, "_type": "Sequence"}
"""``datasets``' description of a list of images, as it stores it in a Parquet schema
(``Sequence`` is the spelling every ``datasets`` from 2.x to 5.x reads)."""

Progress = Callable[[int], None]
Row = tuple[Instance, str, list[bytes]]
"""An instance, its canonical JSON line and the PNG bytes of its images."""


@dataclass(frozen=True)
class WrittenSplit:
    """What :func:`write_split` wrote."""

    path: Path
    manifest_path: Path
    count: int
    content_sha256: str


def dataset_split_name(split: str) -> str:
    """A split's name in ``datasets`` files: ``-`` becomes ``_`` (``ood-rule`` -> ``ood_rule``).

    ``datasets`` accepts only split names matching ``\\w+(\\.\\w+)*``, so gpbench's ``-`` cannot
    be kept; ``_`` never occurs in gpbench's split names, so the mapping is one to one.

    >>> dataset_split_name("ood-rule")
    'ood_rule'
    """
    return split.replace("-", "_")


def format_folder(out_dir: Path, task_id: str, fmt: str) -> Path:
    """The folder a format's files go to: ``DIR/<task>``, or ``DIR/<task>/<fmt>`` for training rows."""
    folder = out_dir / task_id
    return folder / fmt if fmt in TRAINING_FORMATS else folder


def split_path(out_dir: Path, task_id: str, split: str, fmt: str) -> Path:
    """Where a split of a task goes for a format."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r} (choices: {', '.join(FORMATS)})")
    folder = format_folder(out_dir, task_id, fmt)
    if fmt == "jsonl":
        return folder / f"{split}.jsonl"
    if fmt in ("parquet", "verl"):
        return folder / f"{dataset_split_name(split)}.parquet"
    return folder / dataset_split_name(split)


def check_seed(seed: int, fmt: str) -> None:
    """Refuse a seed the format cannot store: Parquet and hf keep ``seed`` as int64.

    Any integer is a valid seed (the instance key is text), and JSON lines store it as written;
    an int64 column cannot, so such a seed is refused before anything is written rather than
    stored in another type (a column that is sometimes text would break every reader's schema).
    The training formats keep the seed inside the item's JSON text, so they take any seed.
    """
    if fmt in INT64_FORMATS and not -(2**63) <= seed < 2**63:
        raise ConfigError(
            f"--seed must be in [-2**63, 2**63) for --format {fmt} (its seed column is int64), "
            f"got {seed}; use --format jsonl for larger seeds"
        )


def check_count(n: int, fmt: str) -> None:
    """Refuse an empty split for formats that cannot hold one: a dataset of no rows has no
    columns, and neither ``datasets.load_from_disk`` nor ``load_dataset`` reads it back."""
    if n == 0 and fmt != "jsonl":
        raise ConfigError(
            f"-n 0 writes no rows, which --format {fmt} cannot store readably; "
            "use -n 1 or more, or --format jsonl"
        )


def write_split(
    task: TaskSpec,
    split: str,
    seed: int,
    n: int,
    out_dir: Path,
    *,
    fmt: str = "jsonl",
    options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> WrittenSplit:
    """Generate ``n`` instances of a split and write them, atomically, with a manifest.

    Vision tasks also get their images: PNG files under ``<split>/images/`` beside the JSON
    lines, ``datasets.Image`` columns in every other format. The manifest's ``content_sha256``
    covers the JSON lines and the decoded pixels of every image (PNG bytes may differ across
    zlib builds; pixels do not). A write that fails (a full disk, an unwritable folder) raises
    :class:`GpbenchError` naming the file and leaves nothing.
    """
    check_seed(seed, fmt)
    check_count(n, fmt)
    dataset = task.dataset(split, seed, n, options)
    target = split_path(out_dir, task.id, split, fmt)
    try:
        return _write_split(task, split, seed, n, dataset, target, fmt, progress)
    except OSError as exc:
        raise GpbenchError(f"cannot write {target}: {exc.strerror or exc}") from None


def _write_split(
    task: TaskSpec,
    split: str,
    seed: int,
    n: int,
    dataset: SplitDataset,
    target: Path,
    fmt: str,
    progress: Progress | None,
) -> WrittenSplit:
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GpbenchError(f"cannot create output folder {folder}: {exc.strerror}") from None
    hasher = hashlib.sha256()
    vision = task.modality == "vision"
    manifest_path = folder / f"{split}.manifest.json"

    def drop_old_manifest() -> None:
        # Called just before the new data replaces the old: from then until the new manifest is
        # in place there is no manifest, never one whose content_sha256 describes other data.
        manifest_path.unlink(missing_ok=True)

    def rows() -> Iterator[Row]:
        for done, instance in enumerate(dataset, start=1):
            line = to_json(instance)
            hasher.update(line.encode("utf-8") + b"\n")
            pngs: list[bytes] = []
            if vision:
                from gpbench.generators.card_art import pixel_sha256, scene_png

                for image in task.images(instance):
                    hasher.update(pixel_sha256(image).encode("ascii") + b"\n")
                    pngs.append(scene_png(image))
            yield instance, line, pngs
            if progress is not None:
                progress(done)

    image_column = "images" if vision else None
    features: dict[str, str] = {}
    row_count = n
    if fmt == "jsonl":
        images_dir = folder / split / "images" if vision else None
        _write_jsonl(target, rows(), images_dir=images_dir, before_commit=drop_old_manifest)
    elif fmt == "parquet":
        features, row_count = _write_parquet(
            target, _parquet_records(rows()), image_column, before_commit=drop_old_manifest
        )
    elif fmt == "hf":
        features, row_count = _write_dataset(
            target, _hf_records(rows()), image_column, fmt, before_commit=drop_old_manifest
        )
    elif fmt == "verl":
        from gpbench.integrations.verl import verl_records

        features, row_count = _write_parquet(
            target, verl_records(task, rows()), image_column, before_commit=drop_old_manifest
        )
    else:
        from gpbench.integrations.trl_data import trl_records

        features, row_count = _write_dataset(
            target,
            trl_records(task, fmt, rows()),
            image_column,
            fmt,
            before_commit=drop_old_manifest,
        )

    content = hasher.hexdigest()
    manifest: dict[str, Any] = {
        "gpbench_version": gpbench.__version__,
        "task": task.id,
        "task_version": task.version,
        "split": split,
        "seed": seed,
        "count": n,
        "options": dataset.options,
        "params": task.params_for(task.split(split), dataset.options),
        "format": fmt,
        "path": target.name,
        "content_sha256": content,
        "regenerate": _command(task, split, seed, n, dataset.options, fmt),
    }
    if fmt != "jsonl":
        manifest["dataset_split"] = dataset_split_name(split)
        # Training formats have a row per decision point (V-IRL: several per instance).
        manifest["rows"] = row_count
        manifest["features"] = features
    if vision:
        manifest["images"] = {
            "layout": (
                f"{split}/images/<index>/<step>.png"
                if task.multi_decision
                else f"{split}/images/<index>.png"
            )
            if fmt == "jsonl"
            else "embedded",
            "hash": "content_sha256 covers decoded RGB pixels, not PNG bytes",
            "pillow_version": _pillow_version(),
        }
    write_text_atomic(manifest_path, json_text(manifest, indent=2) + "\n")
    if fmt != "jsonl":
        from gpbench.dataset_card import write_card

        write_card(folder, task)
    return WrittenSplit(target, manifest_path, n, content)


def _pillow_version() -> str:
    import PIL

    return str(PIL.__version__)


def _command(
    task: TaskSpec, split: str, seed: int, n: int, options: Mapping[str, Any], fmt: str
) -> str:
    parts = [f"gpbench generate {task.id}@{task.version} --split {split} -n {n} --seed {seed}"]
    if fmt != "jsonl":
        parts.append(f"--format {fmt}")
    for name, value in options.items():
        if value != task.options[name].default:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            parts.append(f"-O {name}={text}")
    return " ".join(parts)


@contextlib.contextmanager
def _temporary_beside(target: Path, *, directory: bool = False) -> Iterator[Path]:
    """A temporary path next to ``target`` that is removed unless the caller renamed it."""
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        # mkstemp makes 0600 files; give the finished file the permissions open() would have.
        tmp.chmod(0o666 & ~_umask())
    try:
        yield tmp
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_jsonl(
    target: Path,
    rows: Iterator[tuple[Instance, str, list[bytes]]],
    *,
    images_dir: Path | None,
    before_commit: Callable[[], None],
) -> None:
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(_temporary_beside(target))
        tmp_images = None
        if images_dir is not None:
            images_dir.parent.mkdir(parents=True, exist_ok=True)
            tmp_images = stack.enter_context(_temporary_beside(images_dir, directory=True))
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            for instance, line, pngs in rows:
                handle.write(line)
                handle.write("\n")
                if tmp_images is not None and images_dir is not None:
                    for image_path, png in zip(instance.images, pngs, strict=True):
                        # Paths are "<split>/images/<rest>": one file per image, or a folder
                        # per instance for tasks with one image per decision point.
                        relative = Path(image_path).relative_to(
                            Path(images_dir.parent.name, "images")
                        )
                        destination = tmp_images / relative
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        destination.write_bytes(png)
        before_commit()
        if images_dir is not None and tmp_images is not None:
            _replace_folder(tmp_images, images_dir)
        tmp.replace(target)


def _replace_folder(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing a previous folder there."""
    new.chmod(0o777 & ~_umask())
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    new.rename(target)
    if old.exists():
        shutil.rmtree(old)


def _parquet_records(rows: Iterator[Row]) -> Iterator[dict[str, Any]]:
    """Instances as Parquet rows; a vision task's ``images`` become ``{"bytes", "path"}`` structs."""
    for instance, _, pngs in rows:
        row = to_dict(instance)
        if not pngs:
            # Text tasks have no image column at all: an empty one makes TRL's trainers treat
            # the data as vision data and refuse it.
            row.pop("images", None)
        else:
            # datasets.Image's storage: the PNG bytes, and the path the JSON lines would use.
            row["images"] = [
                {"bytes": png, "path": path}
                for png, path in zip(pngs, instance.images, strict=True)
            ]
        yield row


def _write_parquet(
    target: Path,
    records: Iterator[dict[str, Any]],
    image_column: str | None,
    *,
    before_commit: Callable[[], None],
) -> tuple[dict[str, str], int]:
    """Write rows to a Parquet file; ``image_column`` is typed as ``datasets``' list of images.

    ``datasets`` reads a column's feature from the ``huggingface`` entry of the Parquet schema's
    metadata (as its own writer stores it), so ``load_dataset("parquet", ...)`` decodes the
    images to PIL instead of returning raw structs. Returns each column's Arrow type as text,
    and the number of rows.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "data", "--format parquet") from None
    image_list = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    with _temporary_beside(target) as tmp:
        writer = None
        schema = None
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal writer, schema
            if schema is None:
                table = pa.Table.from_pylist(batch)
                schema = table.schema
                if image_column is not None and image_column in schema.names:
                    index = schema.get_field_index(image_column)
                    schema = schema.set(index, pa.field(image_column, image_list))
                    meta = {"info": {"features": {image_column: IMAGE_FEATURE}}}
                    schema = schema.with_metadata({"huggingface": json_text(meta)})
                table = table.cast(schema)
                writer = pq.ParquetWriter(str(tmp), schema)
            else:
                table = pa.Table.from_pylist(batch, schema=schema)
            assert writer is not None
            writer.write_table(table)
            batch.clear()

        count = 0
        try:
            for row in records:
                count += 1
                batch.append(row)
                if len(batch) == _PARQUET_BATCH:
                    flush()
            if batch or writer is None:
                flush()
        finally:
            if writer is not None:
                writer.close()
        before_commit()
        tmp.replace(target)
    assert schema is not None
    return {field.name: str(field.type) for field in schema}, count


def _hf_records(rows: Iterator[Row]) -> Iterator[dict[str, Any]]:
    """Instances as ``datasets`` rows; vision tasks get TRL-style placeholders and an image column."""
    for instance, _, pngs in rows:
        row = to_dict(instance)
        if not pngs:
            # No empty image column for text tasks (TRL's SFTTrainer refuses one).
            row.pop("images", None)
        else:
            # transformers/TRL convention: an {"type": "image"} placeholder in the messages and
            # the pictures in an "images" column.
            row["messages"] = [_placeholder_message(m) for m in instance.messages]
            row["image_paths"] = row.pop("images")
            row["images"] = [{"bytes": png, "path": None} for png in pngs]
        yield row


def _write_dataset(
    target: Path,
    records: Iterator[dict[str, Any]],
    image_column: str | None,
    fmt: str,
    *,
    before_commit: Callable[[], None],
) -> tuple[dict[str, str], int]:
    """``save_to_disk`` one split into ``target`` and list it in the folder's ``dataset_dict.json``.

    Returns each column's ``datasets`` feature as text, and the number of rows.
    """
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("datasets", "data", f"--format {fmt}") from None
    if target.exists() and any(target.iterdir()) and not (target / "dataset_info.json").exists():
        raise GpbenchError(
            f"{target} holds files that are not a saved dataset (images of a jsonl export?); "
            f"write --format {fmt} to another -o folder"
        )
    # gpbench shows its own progress (and -q silences it); datasets' bars would print per call.
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        dataset = datasets.Dataset.from_list(list(records))
        if image_column is not None and image_column in dataset.column_names:
            dataset = dataset.cast_column(image_column, datasets.Sequence(datasets.Image()))
        with _temporary_beside(target, directory=True) as tmp:
            dataset.save_to_disk(str(tmp))
            before_commit()
            _replace_folder(tmp, target)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    _write_dataset_dict(target.parent)
    return {name: str(feature) for name, feature in dataset.features.items()}, len(dataset)


def _write_dataset_dict(folder: Path) -> None:
    """Make ``folder`` a ``DatasetDict``: ``dataset_dict.json`` lists every saved split in it.

    Splits are written one ``gpbench generate`` call at a time, so the list is rebuilt from the
    folders present (each with datasets' ``dataset_info.json`` and ``state.json``) rather than
    from this call's splits alone.
    """
    splits = sorted(
        child.name
        for child in folder.iterdir()
        if child.is_dir()
        and not child.name.startswith(".")
        and (child / "dataset_info.json").is_file()
        and (child / "state.json").is_file()
    )
    write_text_atomic(folder / "dataset_dict.json", json_text({"splits": splits}) + "\n")


def _placeholder_message(message: dict[str, Any]) -> dict[str, Any]:
    content = message["content"]
    if isinstance(content, str):
        return {"role": message["role"], "content": [{"type": "text", "text": content}]}
    parts = [
        {"type": "image", "text": None}
        if part.get("type") == "image"
        else {"type": "text", "text": part.get("text")}
        for part in content
    ]
    return {"role": message["role"], "content": parts}


@dataclass(frozen=True)
class LoadedInstance:
    """An instance read back from an export, with its images opened.

    Attributes:
        instance: the instance; its ``images`` paths are absolute where they name files.
        images: the PIL images of the prompt, in the order of its image parts (empty for text).
        messages: the prompt with each image part carrying its picture as ``"image"`` (the form
            transformers' ``apply_chat_template`` and processors take).
    """

    instance: Instance
    images: list[Any]
    messages: list[dict[str, Any]]


def load_split(path: str | Path) -> list[LoadedInstance]:
    """Read a ``.jsonl`` or ``.parquet`` split written by ``gpbench generate``, images loaded.

    JSON lines name their images by paths relative to the file's own folder, so they resolve
    from any working directory; Parquet files carry the PNG bytes.

    >>> # [item] = load_split("data/gp-vl/id.jsonl")[:1]; item.images[0].size -> (1200, 1200)
    """
    path = Path(path)
    if not path.is_file():
        raise GpbenchError(f"no split file at {path}; write one with `gpbench generate`")
    if path.suffix == ".jsonl":
        from gpbench.serialization import read_records

        return [_loaded_from_files(inst, path.parent) for inst in read_records(Instance, path)]
    if path.suffix == ".parquet":
        return _load_parquet(path)
    raise ConfigError(
        f"load_split reads a .jsonl or .parquet split, got {path.name}; "
        "a --format hf folder loads with datasets.load_from_disk"
    )


def _loaded_from_files(instance: Instance, folder: Path) -> LoadedInstance:
    from PIL import Image

    resolved = {rel: str((folder / rel).resolve()) for rel in instance.images}
    images = []
    for rel in instance.images:
        if not Path(resolved[rel]).is_file():
            raise GpbenchError(
                f"image {rel} of {instance.uid} is not in {folder}; regenerate the split there"
            )
        with Image.open(resolved[rel]) as image:
            images.append(image.convert("RGB"))
    pictures = dict(zip(instance.images, images, strict=True))
    absolute = dataclasses.replace(instance, images=[resolved[r] for r in instance.images])
    return LoadedInstance(absolute, images, _with_pictures(instance.messages, pictures))


def _load_parquet(path: Path) -> list[LoadedInstance]:
    import io

    from PIL import Image

    from gpbench.serialization import from_dict

    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "data", "load_split of a .parquet file") from None
    loaded = []
    for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
        stored = row.get("images") or []
        # Vision rows hold {"bytes", "path"} structs; the instance keeps the paths.
        row["images"] = [item["path"] if isinstance(item, dict) else item for item in stored]
        # Arrow gives every content part all the keys any part has (None where it had none).
        row["messages"] = [_without_nulls(message) for message in row["messages"]]
        instance = from_dict(Instance, row, path=str(path), line=number)
        images = []
        for item in stored:
            with Image.open(io.BytesIO(item["bytes"])) as image:
                images.append(image.convert("RGB"))
        pictures = dict(zip(instance.images, images, strict=True))
        loaded.append(LoadedInstance(instance, images, _with_pictures(instance.messages, pictures)))
    return loaded


def _without_nulls(message: dict[str, Any]) -> dict[str, Any]:
    content = message["content"]
    if isinstance(content, list):
        content = [{k: v for k, v in part.items() if v is not None} for part in content]
    return {**message, "content": content}


def _with_pictures(
    messages: list[dict[str, Any]], pictures: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The messages with each image part's path swapped for its picture."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image", "image": pictures[part["path"]]}
                if part.get("type") == "image"
                else dict(part)
                for part in content
            ]
        out.append({**message, "content": content})
    return out
