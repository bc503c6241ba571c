"""Writing generated splits to disk: JSON lines, Parquet or a Hugging Face dataset, plus a manifest.

Files (DESIGN.md §5): ``DIR/<task>/<split>.jsonl`` and ``DIR/<task>/<split>.manifest.json``;
``--format parquet`` writes ``<split>.parquet``; ``--format hf`` writes the folder
``DIR/<task>/<split>/`` with ``datasets.save_to_disk``. Every file is written under a temporary
name and renamed into place when complete, so an interrupted run never leaves a half-written split.
The manifest's ``content_sha256`` hashes the canonical JSON lines, so it is the same whatever the
format and can be checked against a regenerated split.
"""

from __future__ import annotations

import contextlib
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

FORMATS: tuple[str, ...] = ("jsonl", "parquet", "hf")
_PARQUET_BATCH = 4096
INT64_FORMATS = ("parquet", "hf")
"""Formats whose ``seed`` column is a 64-bit integer (Arrow's int64)."""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class WrittenSplit:
    """What :func:`write_split` wrote."""

    path: Path
    manifest_path: Path
    count: int
    content_sha256: str


def split_path(out_dir: Path, task_id: str, split: str, fmt: str) -> Path:
    """Where a split of a task goes for a format."""
    folder = out_dir / task_id
    if fmt == "jsonl":
        return folder / f"{split}.jsonl"
    if fmt == "parquet":
        return folder / f"{split}.parquet"
    if fmt == "hf":
        return folder / split
    raise ConfigError(f"unknown format {fmt!r} (choices: {', '.join(FORMATS)})")


def check_seed(seed: int, fmt: str) -> None:
    """Refuse a seed the format cannot store: Parquet and hf keep ``seed`` as int64.

    Any integer is a valid seed (the instance key is text), and JSON lines store it as written;
    an int64 column cannot, so such a seed is refused before anything is written rather than
    stored in another type (a column that is sometimes text would break every reader's schema).
    """
    if fmt in INT64_FORMATS and not -(2**63) <= seed < 2**63:
        raise ConfigError(
            f"--seed must be in [-2**63, 2**63) for --format {fmt} (its seed column is int64), "
            f"got {seed}; use --format jsonl for larger seeds"
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
    lines, PNG bytes in an ``image_bytes`` column for Parquet, ``datasets.Image`` for hf. The
    manifest's ``content_sha256`` covers the JSON lines and the decoded pixels of every image
    (PNG bytes may differ across zlib builds; pixels do not). A write that fails (a full disk,
    an unwritable folder) raises :class:`GpbenchError` naming the file and leaves nothing.
    """
    check_seed(seed, fmt)
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

    def rows() -> Iterator[tuple[Instance, str, list[bytes]]]:
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

    if fmt == "jsonl":
        images_dir = folder / split / "images" if vision else None
        _write_jsonl(target, rows(), images_dir=images_dir, before_commit=drop_old_manifest)
    elif fmt == "parquet":
        _write_parquet(target, rows(), with_images=vision, before_commit=drop_old_manifest)
    else:
        _write_hf(target, rows(), with_images=vision, before_commit=drop_old_manifest)

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
        "regenerate": _command(task, split, seed, n, dataset.options),
    }
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
    return WrittenSplit(target, manifest_path, n, content)


def _pillow_version() -> str:
    import PIL

    return str(PIL.__version__)


def _command(task: TaskSpec, split: str, seed: int, n: int, options: Mapping[str, Any]) -> str:
    parts = [f"gpbench generate {task.id}@{task.version} --split {split} -n {n} --seed {seed}"]
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


def _write_parquet(
    target: Path,
    rows: Iterator[tuple[Instance, str, list[bytes]]],
    *,
    with_images: bool,
    before_commit: Callable[[], None],
) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "data", "--format parquet") from None
    with _temporary_beside(target) as tmp:
        writer = None
        schema = None
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal writer, schema
            table = pa.Table.from_pylist(batch, schema=schema)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(str(tmp), schema)
            writer.write_table(table)
            batch.clear()

        try:
            for instance, _, pngs in rows:
                row = to_dict(instance)
                if with_images:
                    row["image_bytes"] = pngs
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


def _write_hf(
    target: Path,
    rows: Iterator[tuple[Instance, str, list[bytes]]],
    *,
    with_images: bool,
    before_commit: Callable[[], None],
) -> None:
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("datasets", "data", "--format hf") from None
    if target.exists() and any(target.iterdir()) and not (target / "dataset_info.json").exists():
        raise GpbenchError(
            f"{target} holds files that are not a saved dataset (images of a jsonl export?); "
            "write --format hf to another -o folder"
        )
    records = []
    for instance, _, pngs in rows:
        row = to_dict(instance)
        if with_images:
            # transformers/TRL convention: an {"type": "image"} placeholder in the messages and
            # the pictures in an "images" column.
            row["messages"] = [_placeholder_message(m) for m in instance.messages]
            row["image_paths"] = row.pop("images")
            row["images"] = [{"bytes": png, "path": None} for png in pngs]
        records.append(row)
    dataset = datasets.Dataset.from_list(records)
    if with_images:
        dataset = dataset.cast_column("images", datasets.Sequence(datasets.Image()))
    with _temporary_beside(target, directory=True) as tmp:
        dataset.save_to_disk(str(tmp))
        before_commit()
        _replace_folder(tmp, target)


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
