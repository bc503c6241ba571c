"""The reference checkpoint for real (hf backend, CPU): unchanged passes, perturbed is flagged.

These run the repository's checkpoints.md entry `tiny-cpu-reference` against the reference built
by scripts/build_reference_checkpoint.py (shared cache: GPBENCH_REFERENCE_DIR or
.cache/gpbench/reference-ckpt; built on first use, 5-10 min on 2 CPU cores, then reused).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import CHECKPOINTS_MD, REPO

from gpbench.cli import cli
from gpbench.regress import reference
from gpbench.regress.manifest import load_manifest, with_entries
from gpbench.regress.run import EXIT_OK, EXIT_REGRESSION

pytestmark = pytest.mark.slow
for _package in ("torch", "transformers", "trl"):
    pytest.importorskip(
        _package, reason="the reference tests need: pip install 'gpbench[hf,recipes]'"
    )

NAME = reference.NAME


@pytest.fixture(scope="module")
def reference_cache() -> Path:
    """The cache folder holding the reference checkpoint (built here when missing)."""
    cache = Path(os.environ.get(reference.CACHE_ENV) or REPO / reference.DEFAULT_CACHE)
    folder, _ = reference.ensure_reference(cache, quiet=True)
    assert folder == cache / NAME
    return cache


def _regress(manifest: Path, model_root: Path, runs: Path, *extra: str) -> tuple[Result, dict]:
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
            *extra,
        ],
    )
    data = json.loads(summary.read_text()) if summary.is_file() else {}
    return result, data


def _verdicts(data: dict) -> dict[str, str]:
    [checkpoint] = data["checkpoints"]
    return {
        c["metric"]: c["verdict"] for check in checkpoint["checks"] for c in check["comparisons"]
    }


def test_the_cache_key_is_recorded_and_a_second_build_reuses_it(reference_cache: Path) -> None:
    folder, built = reference.ensure_reference(reference_cache, quiet=True)
    assert not built
    assert reference.cached_key(folder) == reference.cache_key(reference.ReferenceConfig())
    metadata = json.loads((folder / "gpbench_checkpoint.json").read_text())
    assert metadata.get("method") == "sft"
    assert not list(folder.glob("checkpoint-*"))


def test_the_unchanged_reference_passes_the_repository_expectations(
    reference_cache: Path, tmp_path: Path
) -> None:
    result, data = _regress(CHECKPOINTS_MD, reference_cache, tmp_path / "runs")
    assert result.exit_code == EXIT_OK, result.output
    verdicts = _verdicts(data)
    assert len(verdicts) >= 4 and set(verdicts.values()) <= {"pass", "inconclusive"}, verdicts


def test_perturbed_weights_are_flagged(reference_cache: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    perturbed = tmp_path / "models" / NAME
    shutil.copytree(reference_cache / NAME, perturbed)
    weights = perturbed / "model.safetensors"
    tensors = load_file(str(weights))
    generator = torch.Generator().manual_seed(1234)
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and tensor.numel() > 1:
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            tensors[name] = tensor + 0.5 * tensor.std() * noise
    save_file(tensors, str(weights), metadata={"format": "pt"})
    result, data = _regress(CHECKPOINTS_MD, perturbed.parent, tmp_path / "runs")
    assert result.exit_code == EXIT_REGRESSION, result.output
    assert "regression" in _verdicts(data).values()
    assert data["regressions"] >= 1


def test_cut_decoding_is_flagged(reference_cache: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    manifest = load_manifest(CHECKPOINTS_MD)
    entries = tuple(
        replace(e, checks=tuple(replace(c, max_tokens=24) for c in e.checks))
        if e.name == NAME
        else e
        for e in manifest.entries
    )
    cut = tmp_path / "checkpoints.md"
    cut.write_text(with_entries(manifest, entries))
    result, data = _regress(cut, reference_cache, tmp_path / "runs")
    assert result.exit_code == EXIT_REGRESSION, result.output
    verdicts = _verdicts(data)
    assert verdicts["truncation_rate"] == "regression" and verdicts["parse_rate"] == "regression"
