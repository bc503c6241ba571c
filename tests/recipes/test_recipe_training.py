"""SFT and RL run a few steps on the tiny models: weights change, checkpoints carry metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpbench.harness.checkpoints import checkpoint_metadata, discover_series

pytestmark = pytest.mark.slow


def _weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return dict(load_file(str(folder / "model.safetensors")))


def _changed(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return any(not wa[k].equal(wb[k]) for k in wa)


def _check_series(result: Any, base: Path, method: str, steps: list[int]) -> list[dict[str, Any]]:
    assert [p.name for p in result.checkpoints] == [f"checkpoint-{s}" for s in steps]
    assert discover_series(str(result.output_dir / "checkpoint-*")) == result.checkpoints
    metas = []
    assert _changed(base, result.checkpoints[-1])
    for folder, step in zip(result.checkpoints, steps, strict=True):
        meta = checkpoint_metadata(folder)
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        assert meta["source"]["method"] == "gpbench_checkpoint.json"
        assert meta["method"] == method and meta["step"] == step
        assert meta["tokens_seen"] == state["num_input_tokens_seen"] > 0
        assert meta["parameter_count"] == 459_392  # the tiny Llama
        assert meta["base_checkpoint"]["path"] == str(base.resolve())
        assert meta["config"]["model"] == str(base)
        assert meta["gpbench_version"] and "git_commit" in meta
        assert meta["packages"]["trl"]
        # the run's CPU threads: gpbench's default here (tests/conftest.py), applied to torch
        assert meta["config"]["threads"] == meta["threads"]["count"] >= 1
        assert meta["threads"]["torch_intra_op"] == meta["threads"]["count"]
        metas.append(meta)
    final = checkpoint_metadata(result.output_dir)
    assert final["step"] == steps[-1] and final["compute"] == metas[-1]["compute"]
    return metas


def test_sft_trains_and_every_checkpoint_has_metadata(tiny_llama: Path, tmp_path: Path) -> None:
    from gpbench.recipes import sft

    config = sft.resolve(
        "tiny-cpu",
        {
            "model": str(tiny_llama),
            "output_dir": str(tmp_path / "sft"),
            "max_steps": 3,
            "save_steps": 2,
            "train_size": 24,
            "batch_size": 4,
            "per_device_batch_size": 4,
            "disable_tqdm": "true",
        },
    )
    result = sft.train(config)
    metas = _check_series(result, tiny_llama, "sft", [2, 3])
    for meta in metas:
        assert meta["compute"] == 6 * 459_392 * meta["tokens_seen"]
        assert meta["compute_formula"] == "6N(D_init + D_sft)"
    assert metas[0]["tokens_seen"] < metas[1]["tokens_seen"]


def test_sft_on_virl_and_a_compute_budget(tiny_llama: Path, tmp_path: Path) -> None:
    from gpbench.recipes import sft

    config = sft.resolve(
        "tiny-cpu",
        {
            "task": "virl-l",
            "model": str(tiny_llama),
            "output_dir": str(tmp_path / "virl"),
            "method": "init",
            "max_steps": 50,
            "compute_budget": 6 * 459_392 * 4000,
            "save_points": 2,
            "train_size": 4,
            "batch_size": 2,
            "per_device_batch_size": 2,
            "max_length": 2048,
            "disable_tqdm": "true",
        },
    )
    result = sft.train(config)
    assert 1 <= result.steps < 50  # stopped by the budget
    assert len(result.checkpoints) == 2
    final = checkpoint_metadata(result.output_dir)
    assert final["method"] == "init" and final["step"] == 0 and final["init_steps"] == result.steps
    assert final["init_tokens"] >= 4000 and final["task"] == "virl-l@1"


@pytest.fixture(scope="module")
def answers_in_format(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama after 50 SFT steps: it answers in the paper's format, with varied
    mistakes, so GRPO groups get different rewards (an untrained model's are all equal)."""
    from gpbench.recipes import sft

    config = sft.resolve(
        "tiny-cpu",
        {
            "model": str(tiny_llama),
            "output_dir": str(tmp_path_factory.mktemp("format")),
            "max_steps": 50,
            "batch_size": 8,
            "per_device_batch_size": 8,
            "train_size": 400,
            "save_strategy": "no",
            "disable_tqdm": "true",
        },
    )
    return Path(sft.train(config).output_dir)


def test_rl_multi_turn_trains_with_the_verifier_reward(
    answers_in_format: Path, tmp_path: Path
) -> None:
    from gpbench.recipes import rl

    config = rl.resolve(
        "tiny-cpu",
        {
            "model": str(answers_in_format),
            "output_dir": str(tmp_path / "rl"),
            "max_steps": 2,
            "save_steps": 1,
            "train_size": 16,
            "batch_size": 8,
            "per_device_batch_size": 8,
            "num_generations": 4,
            "max_attempt_tokens": 56,
            "budget": 2,
            "seed": 1,
            "disable_tqdm": "true",
        },
    )
    result = rl.train(config)
    metas = _check_series(result, answers_in_format, "rl", [1, 2])
    init = checkpoint_metadata(answers_in_format)
    for meta in metas:
        n, d = 459_392, meta["tokens_seen"]
        assert meta["compute"] == init["compute"] + 6 * n * d + 2 * n * 6.0 * d
        assert meta["rl_lambda"] == 6.0 and meta["config"]["budget"] == 2
        assert meta["init_tokens"] == init["tokens_seen"]
    state = json.loads((result.checkpoints[-1] / "trainer_state.json").read_text(encoding="utf-8"))
    logs = [h for h in state["log_history"] if "reward" in h]
    # two attempts: each -3, -2 per kind of wrong number, -1 or +5; -1 when both fail
    for h in logs:
        assert -13.0 <= h["rewards/gpbench_verifier/mean"] <= 5.0
    assert any(h["reward_std"] > 0 for h in logs)


def test_rl_single_turn_on_the_tiny_vlm(tiny_vlm: Path, tmp_path: Path) -> None:
    from gpbench.recipes import rl

    config = rl.resolve(
        "tiny-cpu",
        {
            "task": "gp-vl",
            "model": str(tiny_vlm),
            "output_dir": str(tmp_path / "vl"),
            "max_steps": 1,
            "save_steps": 1,
            "train_size": 4,
            "batch_size": 4,
            "per_device_batch_size": 4,
            "num_generations": 2,
            "max_attempt_tokens": 8,
            "disable_tqdm": "true",
        },
    )
    result = rl.train(config)
    assert checkpoint_metadata(result.checkpoints[0])["config"]["task"] == "gp-vl"
    state = json.loads((result.checkpoints[0] / "trainer_state.json").read_text(encoding="utf-8"))
    (logged,) = [h["rewards/gpbench_verifier/mean"] for h in state["log_history"] if "reward" in h]
    assert logged == pytest.approx(-1.5)  # misrecognized cards, scored first


def test_sft_on_the_tiny_vlm(tiny_vlm: Path, tmp_path: Path) -> None:
    from gpbench.recipes import sft

    config = sft.resolve(
        "tiny-cpu",
        {
            "task": "gp-vl",
            "model": str(tiny_vlm),
            "output_dir": str(tmp_path / "vl"),
            "max_steps": 2,
            "save_steps": 2,
            "train_size": 4,
            "batch_size": 2,
            "per_device_batch_size": 2,
            "disable_tqdm": "true",
        },
    )
    result = sft.train(config)
    assert _changed(tiny_vlm, result.checkpoints[0])
    assert checkpoint_metadata(result.checkpoints[0])["tokens_seen"] > 0
