"""The shipped reference checkpoint: whole, passing its expectations, and breakage flagged.

The reference (gpbench/regress/data/tiny-cpu-reference) ships as fixed bytes, so every machine
evaluates the same weights. The tests that break it take their expectations from the reference
itself, evaluated here on this machine (not from checkpoints.md, whose figures another machine's
floating point may move within their tolerance), and break it in ways whose effect is certain
on any machine: every weight replaced by zero (the model can then only repeat one token, so no
answer parses), and answers cut at 24 tokens (a reference answer takes ~47).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from regress_fixtures import CHECKPOINTS_MD

from gpbench.cli import cli
from gpbench.errors import CheckpointError
from gpbench.regress import reference
from gpbench.regress.manifest import Manifest, load_manifest, with_entries
from gpbench.regress.run import (
    EXIT_OK,
    EXIT_REGRESSION,
    Report,
    packaged_data,
    run_regress,
    updated_entries,
)

NAME = reference.NAME


def _need_hf() -> None:
    for package in ("torch", "transformers", "safetensors"):
        pytest.importorskip(package, reason="the reference tests need: pip install 'gpbench[hf]'")


def test_the_manifest_entry_is_the_shipped_folder() -> None:
    entry = load_manifest(CHECKPOINTS_MD).entry(NAME)
    assert entry.kind == "path"
    # A relative path not beside the manifest is the shipped data's (what a wheel holds).
    assert (packaged_data() / entry.source).resolve() == reference.FOLDER
    assert reference.check_reference() == reference.FOLDER


def test_a_changed_missing_or_extra_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / NAME
    shutil.copytree(reference.FOLDER, copy)
    assert reference.check_reference(copy) == copy
    config = copy / "config.json"
    config.write_bytes(config.read_bytes().replace(b"\n", b"\r\n"))  # a CRLF checkout: same text
    assert reference.check_reference(copy) == copy
    (copy / "training_args.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match=r"training_args\.bin is not part of it"):
        reference.check_reference(copy)
    (copy / "training_args.bin").unlink()
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="differs from the recorded sha256"):
        reference.check_reference(copy)
    weights.unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        reference.check_reference(copy)
    (copy / reference.PROVENANCE_FILE).unlink()
    with pytest.raises(CheckpointError, match="missing or unreadable"):
        reference.check_reference(copy)


def test_install_ships_only_checkpoint_files_and_replaces_whole(tmp_path: Path) -> None:
    built = tmp_path / "built"
    built.mkdir()
    (built / "config.json").write_text('{"model_type": "llama"}\n')
    (built / "model.safetensors").write_bytes(b"\x00weights")
    (built / "training_args.bin").write_bytes(b"pickle")
    (built / "checkpoint-3").mkdir()
    target = tmp_path / "shipped" / NAME
    target.mkdir(parents=True)
    (target / "stale.json").write_text("{}")
    config = reference.ReferenceConfig()
    left_out = reference.install_reference(built, config, target)
    assert left_out == ["checkpoint-3", "training_args.bin"]
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json",
        reference.PROVENANCE_FILE,
        "model.safetensors",
    ]
    record = json.loads((target / reference.PROVENANCE_FILE).read_text())
    assert record["config"]["threads"] == 1 and "--threads" in record["command"]
    assert reference.check_reference(target) == target
    assert [p.name for p in target.parent.iterdir()] == [NAME]  # nothing left beside it


# -- evaluated for real (hf backend, CPU) --------------------------------------------------------


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest(CHECKPOINTS_MD)


@pytest.fixture(scope="module")
def report(manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The shipped reference, evaluated once by the repository's checkpoints.md entry."""
    _need_hf()
    runs = tmp_path_factory.mktemp("runs")
    return run_regress(manifest, only=(NAME,), runs_dir=runs)


@pytest.fixture(scope="module")
def derived(manifest: Manifest, report: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoints.md whose reference expectations are what this machine just observed."""
    path = tmp_path_factory.mktemp("derived") / "checkpoints.md"
    path.write_text(with_entries(manifest, updated_entries(manifest, report)), encoding="utf-8")
    return path


def _regress(manifest: Path, model_root: Path, runs: Path) -> tuple[Result, dict]:
    summary = runs / "summary.json"
    result = CliRunner().invoke(
        cli,
        [
            "regress",
            "--manifest",
            str(manifest),
            "--only",
            NAME,
            "--model-root",
            str(model_root),
            "--runs-dir",
            str(runs),
            "--json",
            str(summary),
        ],
    )
    data = json.loads(summary.read_text()) if summary.is_file() else {}
    return result, data


def _verdicts(data: dict) -> dict[str, str]:
    [checkpoint] = data["checkpoints"]
    return {
        c["metric"]: c["verdict"] for check in checkpoint["checks"] for c in check["comparisons"]
    }


@pytest.mark.slow
def test_the_reference_passes_the_repository_expectations(report: Report) -> None:
    assert report.exit_code() == EXIT_OK, report.to_json()
    [result] = report.results
    verdicts = {c.metric: c.verdict for r in result.checks for c in r.comparisons}
    assert len(verdicts) >= 4 and set(verdicts.values()) <= {"pass", "inconclusive"}, verdicts
    assert result.model == str(reference.FOLDER)
    threads = report.to_json()["threads"]
    assert threads["source"] != "--threads" and threads["torch_intra_op"] == threads["count"]


@pytest.mark.slow
def test_zeroed_weights_are_flagged(derived: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "models" / NAME
    shutil.copytree(reference.FOLDER, broken)
    weights = broken / "model.safetensors"
    tensors = {name: torch.zeros_like(t) for name, t in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    result, data = _regress(derived, broken.parent, tmp_path / "runs")
    assert result.exit_code == EXIT_REGRESSION, result.output
    verdicts = _verdicts(data)
    assert verdicts["parse_rate"] == "regression", verdicts


@pytest.mark.slow
def test_cut_decoding_is_flagged(derived: Path, tmp_path: Path) -> None:
    manifest = load_manifest(derived)
    entries = tuple(
        replace(e, checks=tuple(replace(c, max_tokens=24) for c in e.checks))
        if e.name == NAME
        else e
        for e in manifest.entries
    )
    cut = tmp_path / "checkpoints.md"
    cut.write_text(with_entries(manifest, entries), encoding="utf-8")
    result, data = _regress(cut, reference.FOLDER.parent, tmp_path / "runs")
    assert result.exit_code == EXIT_REGRESSION, result.output
    verdicts = _verdicts(data)
    assert verdicts["truncation_rate"] == "regression" and verdicts["parse_rate"] == "regression"


@pytest.mark.slow
def test_a_rebuild_trains_installs_and_records_its_threads(tmp_path: Path) -> None:
    """The --rebuild path at a toy size: the recipe runs on one thread and the folder is whole."""
    _need_hf()
    pytest.importorskip("trl", reason="rebuilding the reference needs gpbench[recipes]")
    config = reference.ReferenceConfig(max_steps=2, train_size=32)
    built = reference.build_reference(tmp_path / "work", config, quiet=True)
    target = tmp_path / NAME
    left_out = reference.install_reference(built, config, target)
    assert "training_args.bin" in left_out
    assert reference.check_reference(target) == target
    meta = json.loads((target / "gpbench_checkpoint.json").read_text())
    assert meta["config"]["threads"] == 1
    assert meta["threads"]["source"] == "--threads" and meta["threads"]["torch_intra_op"] == 1
