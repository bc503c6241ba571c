"""Shipped checkpoint folders: the sha256 record's check and the atomic install."""

from __future__ import annotations

import json
from pathlib import Path

from gpbench.harness.shipped import file_digests, first_mismatch, install_folder

RECORD = "record.json"


def _built(tmp_path: Path) -> Path:
    built = tmp_path / "built"
    built.mkdir()
    (built / "config.json").write_text("{}", encoding="utf-8")
    (built / "model.safetensors").write_bytes(b"weights")
    (built / "training_args.bin").write_bytes(b"\x80\x04")  # a pickle: never shipped
    return built


def test_install_ships_the_files_and_their_record_and_leaves_out_the_rest(tmp_path: Path) -> None:
    target = tmp_path / "shipped"
    left_out = install_folder(
        _built(tmp_path), target, RECORD, lambda staged: {"files": file_digests(staged, RECORD)}
    )
    assert left_out == ["training_args.bin"]
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors", RECORD]
    assert first_mismatch(target, RECORD) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "shipped"]  # no staging left


def test_first_mismatch_names_the_file_and_the_kind(tmp_path: Path) -> None:
    target = tmp_path / "shipped"
    install_folder(
        _built(tmp_path), target, RECORD, lambda staged: {"files": file_digests(staged, RECORD)}
    )
    (target / "model.safetensors").write_bytes(b"other")
    assert first_mismatch(target, RECORD) == (target / "model.safetensors", "changed")
    (target / "model.safetensors").unlink()
    assert first_mismatch(target, RECORD) == (target / "model.safetensors", "missing")
    (target / "extra.json").write_text("{}", encoding="utf-8")
    assert first_mismatch(target, RECORD) == (target / "extra.json", "unrecorded")
    (target / RECORD).write_text(json.dumps({"files": {}}), encoding="utf-8")
    assert first_mismatch(target, RECORD) == (target / RECORD, "unreadable")
