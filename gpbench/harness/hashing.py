"""Hashing checkpoint files: the sha256 of every weight byte, cached per file version (no torch).

Fingerprints (:mod:`gpbench.harness.checkpoints`) and the conversion cache
(:mod:`gpbench.harness.folders`) are built from these pieces: a folder's config, tokenizer, chat
template and shard index files hashed whole, and for each weight file its name and the sha256 of
all its bytes. Hashing every byte costs one read of each weight file (sha256 runs at roughly disk
speed), so each file's hash is cached, in memory for the process and on disk under gpbench's
cache folder (``file-sha256/``), keyed by the file's resolved path, device, inode, size,
modification and change times: a series is hashed once, and a file rewritten in any way is
hashed again. A file changed in the last two seconds is not cached (file systems with coarse
timestamps could rewrite it within one timestamp tick), and a file that changes while it is
hashed is an error. The cache only saves time: an entry that is unreadable, malformed or for
another key is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gpbench.errors import CheckpointError
from gpbench.serialization import parse_json

# Files whose whole contents decide how text becomes tokens and images become inputs (hashed
# whole by fingerprints; copied beside converted weights by gpbench.harness.convert).
TEXT_FILES = (
    "config.json",
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
TEXT_GLOBS = ("*.tiktoken", "additional_chat_templates/*.jinja", "*.index.json")
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
# File identity (see _file_key) -> sha256 of its contents, for this process.
_FILE_HASHES: dict[tuple[str, int, int, int, int, int], str] = {}
logger = logging.getLogger("gpbench")


SHIPPED_TEXT_SUFFIXES = (".json", ".jinja")


def file_digest(path: Path) -> str:
    """sha256 of a shipped checkpoint file; text files with their line ends as ``\\n`` (a
    checkout that converts them to ``\\r\\n`` holds the same tokenizer and config)."""
    data = path.read_bytes()
    if path.suffix in SHIPPED_TEXT_SUFFIXES:
        data = data.replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


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
    for path in sorted_files(folder, (*TEXT_FILES, *extra), TEXT_GLOBS):
        name = path.relative_to(folder).as_posix()
        digest.update(f"file {name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    if not weights:
        return
    for path in weight_files(folder):
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


def weight_files(folder: Path) -> list[Path]:
    """A folder's weight files (``*.safetensors``, ``*.bin``; not the Trainer's
    ``training_args.bin``), sorted by name."""
    return [p for p in sorted_files(folder, (), _WEIGHT_GLOBS) if p.name not in _NOT_WEIGHTS]


def sorted_files(folder: Path, names: Iterable[str], patterns: Iterable[str]) -> list[Path]:
    files = {folder / name for name in names if (folder / name).is_file()}
    for pattern in patterns:
        files.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())
