"""Checkpoint metadata: the paper's compute formula, the chain from the init, the harness reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpbench.errors import ConfigError
from gpbench.harness.checkpoints import checkpoint_metadata
from gpbench.recipes.metadata import (
    BaseCheckpoint,
    MetadataRecorder,
    base_checkpoint,
    write_metadata,
)
from gpbench.reports.compute import training_compute

N = 1_000_000


def _recorder(method: str, base: BaseCheckpoint, rl_lambda: float = 6.0) -> MetadataRecorder:
    return MetadataRecorder(method, N, base, {"lr": 1.0}, "gp-l@1", rl_lambda)


def _fake_checkpoint(folder: Path, record: dict[str, object]) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    write_metadata(folder, record)
    return folder


def test_init_sft_and_rl_follow_the_paper_formula(tmp_path: Path) -> None:
    raw = BaseCheckpoint("base/", None, None)
    init = _recorder("init", raw).record(step=50, tokens_seen=1000)
    assert init["method"] == "init" and init["step"] == 0 and init["init_steps"] == 50
    assert init["init_tokens"] == 1000 and init["tokens_seen"] == 0
    assert init["compute"] == 6 * N * 1000
    folder = _fake_checkpoint(tmp_path / "init", init)
    base = base_checkpoint(str(folder))
    assert base.metadata is not None and base.compute == 6 * N * 1000 and base.tokens == 1000

    sft = _recorder("sft", base).record(step=7, tokens_seen=300)
    assert sft["compute"] == 6 * N * (1000 + 300)
    assert (sft["init_tokens"], sft["tokens_seen"], sft["step"], sft["init_steps"]) == (
        1000,
        300,
        7,
        50,
    )
    rl = _recorder("rl", base).record(step=3, tokens_seen=100)
    assert rl["compute"] == 6 * N * (1000 + 100) + 2 * N * 6.0 * 100
    assert rl["rl_lambda"] == 6.0 and rl["compute_formula"] == "6N(D_init + D_rl) + 2N*lambda*D_rl"
    virl = _recorder("rl", base, 5.1).record(step=3, tokens_seen=100)
    assert virl["compute"] == 6 * N * (1000 + 100) + 2 * N * 5.1 * 100
    # the report's formula gives the same from the other fields
    for record, lam in ((init, 6.0), (sft, 6.0), (rl, 6.0), (virl, 5.1)):
        without = {k: v for k, v in record.items() if k != "compute"}
        assert training_compute(without, lam) == pytest.approx(record["compute"])
    assert sft["base_checkpoint"]["fingerprint"] == base.fingerprint
    assert sft["base_checkpoint"]["method"] == "init"


def test_the_harness_reader_picks_every_field_up(tmp_path: Path) -> None:
    record = _recorder("sft", BaseCheckpoint("b", None, None)).record(step=12, tokens_seen=345)
    folder = _fake_checkpoint(tmp_path / "checkpoint-12", record)
    meta = checkpoint_metadata(folder)
    for key in (
        "method",
        "step",
        "tokens_seen",
        "init_tokens",
        "parameter_count",
        "compute",
        "base_checkpoint",
        "config",
        "gpbench_version",
        "git_commit",
        "task",
    ):
        assert meta[key] == record[key], key
        assert meta["source"][key] == "gpbench_checkpoint.json"
    assert meta["config"] == {"lr": 1.0}
    assert "trl" in meta["packages"] and "torch" in meta["packages"]


def test_a_base_without_metadata_starts_at_zero(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    base = base_checkpoint(str(folder))
    assert base.metadata is None and base.compute == 0.0 and base.tokens == 0.0
    assert base.fingerprint is not None and base.path == str(folder.resolve())
    assert base_checkpoint("org/hub-model") == BaseCheckpoint("org/hub-model", None, None)


def test_metadata_is_written_whole(tmp_path: Path) -> None:
    path = write_metadata(tmp_path, {"method": "sft"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"method": "sft"}
    assert [p.name for p in tmp_path.iterdir()] == ["gpbench_checkpoint.json"]


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ConfigError, match="method must be one of init, sft, rl"):
        _recorder("ppo", BaseCheckpoint("b", None, None))
