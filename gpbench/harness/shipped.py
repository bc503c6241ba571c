"""Checkpoint folders shipped inside gpbench: the sha256 record beside their files, its check, and
an atomic install.

The regress reference checkpoint (:mod:`gpbench.regress.reference`) and the positive controls
(:mod:`gpbench.recipes.controls`) are trained once and shipped as bytes, because training again
on another CPU gives other weights. Each folder holds a JSON record whose ``files`` maps every
other file's name to its :func:`~gpbench.harness.hashing.file_digest`; each owner words its own
errors from what :func:`first_mismatch` reports.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpbench.harness.hashing import file_digest
from gpbench.serialization import parse_json

SHIPPED_SUFFIXES = (".json", ".jinja", ".safetensors")
"""Files a build contributes (a trainer's pickled ``training_args.bin`` never ships)."""


def file_digests(folder: Path, record_file: str) -> dict[str, str]:
    """The sha256 of every file in ``folder`` but the record, by name, in name order."""
    return {
        p.name: file_digest(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != record_file
    }


def first_mismatch(folder: Path, record_file: str) -> tuple[Path, str] | None:
    """The first way ``folder`` differs from its record, as ``(path, kind)``, or None.

    ``kind`` is ``unreadable`` (the record is missing, not JSON, or lists no files),
    ``unrecorded`` (a file the record does not list), ``missing`` or ``changed``; files are
    checked in name order.
    """
    record_path = folder / record_file
    try:
        files = parse_json(record_path.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict) or not files:
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        return record_path, "unreadable"
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != record_file}
    for name in sorted(set(files) | present):
        path = folder / name
        if name not in files:
            return path, "unrecorded"
        if not path.is_file():
            return path, "missing"
        if file_digest(path) != files[name]:
            return path, "changed"
    return None


def install_folder(
    built: Path, target: Path, record_file: str, record: Callable[[Path], dict[str, Any]]
) -> list[str]:
    """Replace ``target`` with the shippable files of ``built`` and ``record(staged folder)``
    written as ``record_file``; returns the names of the files left out.

    The new folder is assembled beside ``target`` and swapped in at the end, so an interrupted
    call leaves the old one whole.
    """
    staging = target.with_name(f".{target.name}.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    left_out = []
    try:
        for path in sorted(built.iterdir()):
            if path.is_file() and path.suffix in SHIPPED_SUFFIXES:
                shutil.copyfile(path, staging / path.name)
            else:
                left_out.append(path.name)
        text = json.dumps(record(staging), indent=2) + "\n"
        (staging / record_file).write_text(text, encoding="utf-8")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return left_out
