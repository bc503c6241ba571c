"""Checkpoint fingerprints cover every weight byte; each file's hash is cached by its identity
(gpbench.harness.hashing.file_sha256). No torch: the weight files here are plain bytes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from gpbench.errors import CheckpointError
from gpbench.harness import hashing
from gpbench.harness.checkpoints import fingerprint
from gpbench.harness.hashing import file_sha256

SIZE = 3 << 20  # > 2 MiB: the first and last MiB (what v1 hashed) leave a middle MiB


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty gpbench cache, an empty in-memory cache, and every file counted as settled."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("GPBENCH_CACHE_DIR", str(folder))
    monkeypatch.setattr(hashing, "_FILE_HASHES", {})
    monkeypatch.setattr(hashing, "_SETTLED_NS", -(10**12))  # see test_recent_files_...
    return folder


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files whose contents were hashed (read), in order."""
    seen: list[Path] = []
    original = hashing._hash_contents

    def counting(path: Path, size: int) -> str:
        seen.append(path)
        return original(path, size)

    monkeypatch.setattr(hashing, "_hash_contents", counting)
    return seen


def _checkpoint(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _weights() -> bytes:
    return hashlib.sha256(b"seed").digest() * (SIZE // 32)


def test_a_middle_byte_changes_the_fingerprint(tmp_path: Path, cache: Path) -> None:
    data = bytearray(_weights())
    a = _checkpoint(tmp_path / "a", bytes(data))
    data[SIZE // 2] ^= 1  # one bit in the middle MiB: v1 hashed only the first and last MiB
    b = _checkpoint(tmp_path / "b", bytes(data))
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a) == fingerprint(_checkpoint(tmp_path / "c", _weights()))


def test_sharded_sources_and_adapters_cover_every_byte_too(tmp_path: Path, cache: Path) -> None:
    from gpbench.harness.folders import find_sharded, source_fingerprint

    def verl(root: Path, middle: int) -> str:
        actor = root / "global_step_1" / "actor"
        actor.mkdir(parents=True)
        for rank in range(2):
            data = bytearray(_weights())
            data[SIZE // 2] ^= middle
            (actor / f"model_world_size_2_rank_{rank}.pt").write_bytes(bytes(data))
        sharded = find_sharded(actor.parent)
        assert sharded is not None
        return source_fingerprint(sharded)

    assert verl(tmp_path / "x", 0) != verl(tmp_path / "y", 1)
    assert verl(tmp_path / "x2", 0) == verl(tmp_path / "x3", 0)


def test_a_cached_hash_is_reused_without_reading(
    tmp_path: Path, cache: Path, reads: list[Path]
) -> None:
    folder = _checkpoint(tmp_path / "ckpt", _weights())
    weights = folder / "model.safetensors"
    first = fingerprint(folder)
    assert reads == [weights]
    assert fingerprint(folder) == first and reads == [weights]  # in memory
    hashing._FILE_HASHES.clear()  # as in a new process: the entry on disk
    assert fingerprint(folder) == first and reads == [weights]
    [entry] = list((cache / "file-sha256").iterdir())
    assert json.loads(entry.read_text())["sha256"] == hashlib.sha256(_weights()).hexdigest()
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]  # no temp files


@pytest.mark.parametrize("change", ["mtime", "size", "inode", "contents-same-times"])
def test_a_cached_hash_is_invalidated_by_any_change(
    tmp_path: Path, cache: Path, reads: list[Path], change: str
) -> None:
    folder = _checkpoint(tmp_path / "ckpt", _weights())
    weights = folder / "model.safetensors"
    first = fingerprint(folder)
    info = weights.stat()
    if change == "mtime":
        os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns - 10**9))
    elif change == "size":
        with weights.open("ab") as handle:
            handle.write(b"\0")
    elif change == "inode":
        shutil.copy2(weights, tmp_path / "new")
        (tmp_path / "new").replace(weights)  # same bytes and times, another file
    else:
        # A rewrite that puts the modification time back (cp -p, rsync -t): the change time,
        # which no tool can set, still moves.
        data = bytearray(weights.read_bytes())
        data[SIZE // 2] ^= 1
        weights.write_bytes(bytes(data))
        os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns))
        # On a file system with a coarse clock the rewrite may fall in the tick of the first
        # write (a file that recent is never cached: test_recent_files_...); wait for the next.
        while weights.stat().st_ctime_ns == info.st_ctime_ns:
            os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns))
    again = fingerprint(folder)
    assert reads == [weights, weights]
    assert (again != first) == (change in ("size", "contents-same-times"))


def test_recent_files_are_hashed_every_time(
    tmp_path: Path, cache: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file changed within the last seconds could change again within one tick of a coarse
    file-system clock, its times unchanged: it is never cached."""
    monkeypatch.setattr(hashing, "_SETTLED_NS", 10**18)  # every file counts as recent
    folder = _checkpoint(tmp_path / "ckpt", _weights())
    first = fingerprint(folder)
    assert fingerprint(folder) == first and len(reads) == 2
    assert not (cache / "file-sha256").exists()


@pytest.mark.parametrize("entry", ["garbage", "wrong-key", "bad-digest", "huge", "fifo", "dir"])
def test_a_corrupt_or_hostile_cache_entry_is_ignored(
    tmp_path: Path, cache: Path, reads: list[Path], entry: str
) -> None:
    folder = _checkpoint(tmp_path / "ckpt", _weights())
    weights = folder / "model.safetensors"
    truth = hashlib.sha256(_weights()).hexdigest()
    assert file_sha256(weights) == truth
    [path] = list((cache / "file-sha256").iterdir())
    stored = json.loads(path.read_text())
    path.unlink()
    if entry == "garbage":
        path.write_bytes(b"\xff\x00{not json")
    elif entry == "wrong-key":
        path.write_text(json.dumps({"key": [*stored["key"][:-1], 0], "sha256": "0" * 64}))
    elif entry == "bad-digest":
        path.write_text(json.dumps({"key": stored["key"], "sha256": "../../x"}))
    elif entry == "huge":
        path.write_text(json.dumps({"key": stored["key"], "sha256": "0" * 64, "pad": "x" * 9000}))
    elif entry == "fifo":
        os.mkfifo(path)  # opening it for reading would block: it must not be waited on
    else:
        path.mkdir()
    hashing._FILE_HASHES.clear()
    assert file_sha256(weights) == truth
    assert reads == [weights, weights]


def test_an_unwritable_cache_only_costs_time(
    tmp_path: Path, cache: Path, reads: list[Path]
) -> None:
    cache.write_text("a file where the cache folder should be")
    folder = _checkpoint(tmp_path / "ckpt", _weights())
    first = fingerprint(folder)
    hashing._FILE_HASHES.clear()
    assert fingerprint(folder) == first and len(reads) == 2


def test_a_file_changing_while_hashed_is_an_error(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _checkpoint(tmp_path / "ckpt", _weights())
    original = hashing._hash_contents

    def writer_still_at_work(path: Path, size: int) -> str:
        digest = original(path, size)
        with path.open("ab") as handle:
            handle.write(b"more")
        return digest

    monkeypatch.setattr(hashing, "_hash_contents", writer_still_at_work)
    with pytest.raises(CheckpointError, match="changed while gpbench was hashing it"):
        fingerprint(folder)
    assert not (cache / "file-sha256").exists()


def test_big_files_are_announced(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(hashing, "_ANNOUNCE_BYTES", 1 << 20)
    monkeypatch.setattr(hashing, "_HASH_CHUNK", 1 << 16)  # many chunks, one buffer
    folder = _checkpoint(tmp_path / "ckpt", _weights())
    fingerprint(folder)
    notes = [r.getMessage() for r in caplog.records if "hashing" in r.getMessage()]
    assert len(notes) == 1 and "model.safetensors" in notes[0]
    assert file_sha256(folder / "model.safetensors") == hashlib.sha256(_weights()).hexdigest()
