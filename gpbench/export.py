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
import json
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
from gpbench.serialization import to_dict, to_json
from gpbench.tasks.spec import TaskSpec

FORMATS: tuple[str, ...] = ("jsonl", "parquet", "hf")
_PARQUET_BATCH = 4096

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
    """Generate ``n`` instances of a split and write them, atomically, with a manifest."""
    dataset = task.dataset(split, seed, n, options)
    target = split_path(out_dir, task.id, split, fmt)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GpbenchError(f"cannot create output folder {target.parent}: {exc.strerror}") from None
    hasher = hashlib.sha256()

    def lines() -> Iterator[tuple[Instance, str]]:
        for done, instance in enumerate(dataset, start=1):
            line = to_json(instance)
            hasher.update(line.encode("utf-8") + b"\n")
            yield instance, line
            if progress is not None:
                progress(done)

    if fmt == "jsonl":
        _write_jsonl(target, (line for _, line in lines()))
    elif fmt == "parquet":
        _write_parquet(target, (instance for instance, _ in lines()))
    else:
        _write_hf(target, (instance for instance, _ in lines()))

    content = hasher.hexdigest()
    manifest = {
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
    manifest_path = target.parent / f"{split}.manifest.json"
    _atomic_write_text(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return WrittenSplit(target, manifest_path, n, content)


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


def _atomic_write_text(target: Path, text: str) -> None:
    with _temporary_beside(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)


def _write_jsonl(target: Path, lines: Iterator[str]) -> None:
    with _temporary_beside(target) as tmp:
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            for line in lines:
                handle.write(line)
                handle.write("\n")
        tmp.replace(target)


def _write_parquet(target: Path, instances: Iterator[Instance]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "data", "--format parquet") from None
    with _temporary_beside(target) as tmp:
        writer = None
        schema = None
        batch: list[dict[str, Any]] = []
        try:
            for instance in instances:
                batch.append(to_dict(instance))
                if len(batch) == _PARQUET_BATCH:
                    table = pa.Table.from_pylist(batch, schema=schema)
                    if writer is None:
                        schema = table.schema
                        writer = pq.ParquetWriter(str(tmp), schema)
                    writer.write_table(table)
                    batch = []
            if batch or writer is None:
                table = pa.Table.from_pylist(batch, schema=schema)
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        tmp.replace(target)


def _write_hf(target: Path, instances: Iterator[Instance]) -> None:
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("datasets", "data", "--format hf") from None
    rows = [to_dict(instance) for instance in instances]
    dataset = datasets.Dataset.from_list(rows)
    with _temporary_beside(target, directory=True) as tmp:
        dataset.save_to_disk(str(tmp))
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        if old.exists():
            shutil.rmtree(old)
