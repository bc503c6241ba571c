"""``--format verl`` rows in verl's RL schema and ``compute_score`` on a batch, without verl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpbench.errors import ConfigError
from gpbench.export import write_split
from gpbench.integrations import verl
from gpbench.recipes import rewards
from gpbench.tasks.registry import get_task


def _rows(tmp_path: Path, task_id: str, n: int = 2) -> list[dict[str, Any]]:
    pq = pytest.importorskip("pyarrow.parquet")
    written = write_split(get_task(task_id), "id", 12, n, tmp_path, fmt="verl")
    assert written.path == tmp_path / task_id / "verl" / "id.parquet"
    rows: list[dict[str, Any]] = pq.read_table(written.path).to_pylist()
    return rows


def test_rows_follow_verls_schema(tmp_path: Path) -> None:
    task = get_task("virl-l")
    rows = _rows(tmp_path, "virl-l")
    instances = list(task.dataset("id", 12, 2))
    assert len(rows) == sum(task.decision_points(inst) for inst in instances)
    row = rows[1]
    assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert row["data_source"] == "gpbench/virl-l" and row["ability"] == "navigation"
    [message] = row["prompt"]
    assert message["role"] == "user" and isinstance(message["content"], str)
    assert row["reward_model"]["style"] == "rule"
    assert row["extra_info"]["point"] == 1 and row["extra_info"]["uid"] == instances[0].uid
    assert row["extra_info"]["reference_answer"] == task.reference_answers(instances[0])[1]


def test_vision_rows_mark_each_image_in_the_text(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = _rows(tmp_path, "gp-vl")
    for row in rows:
        assert row["prompt"][0]["content"].count(verl.IMAGE_TOKEN) == len(row["images"]) == 1
    path = str(tmp_path / "gp-vl" / "verl" / "id.parquet")
    loaded = datasets.load_dataset("parquet", data_files=path, cache_dir=str(tmp_path / "c"))
    assert isinstance(loaded["train"].features["images"].feature, datasets.Image)


@pytest.mark.parametrize("task_id", ["gp-l", "virl-l"])
def test_compute_score_on_a_batch_is_the_verdicts_reward(tmp_path: Path, task_id: str) -> None:
    task = get_task(task_id)
    rows = _rows(tmp_path, task_id)
    batch = [(row, row["extra_info"]["reference_answer"]) for row in rows]
    batch += [(row, "I cannot tell.") for row in rows]
    batch += [(row, '{"formula": "1+1=24", "action": "stop()"}') for row in rows]
    for row, answer in batch:
        # verl adds its own keys to extra_info before calling the reward.
        info = {**row["extra_info"], "num_turns": None, "rollout_reward_scores": {}}
        score = verl.compute_score(
            row["data_source"], answer, row["reward_model"]["ground_truth"], info, step=3
        )
        instance = task.instance("id", 12, row["extra_info"]["index"])
        verdict = rewards.judge(row["reward_model"]["ground_truth"], answer)
        assert score == {
            "score": float(verdict.reward),
            "correct": float(verdict.correct),
            "status": verdict.status,
        }
        if answer == row["extra_info"]["reference_answer"]:
            assert score["correct"] == 1.0 and instance.uid == row["extra_info"]["uid"]


def test_compute_score_takes_the_mode_from_extra_info_or_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = _rows(tmp_path, "gp-l", 1)[0]
    modes: list[str] = []
    real = rewards.judge

    def recording(ref_json: str, answer: str, *, mode: str = "gpbench") -> Any:
        modes.append(mode)
        return real(ref_json, answer, mode=mode)

    monkeypatch.setattr(rewards, "judge", recording)
    args = (row["data_source"], "x", row["reward_model"]["ground_truth"])
    verl.compute_score(*args)
    verl.compute_score(*args, {"verifier_mode": "reference"})
    verl.compute_score(*args, {}, verifier_mode="reference")  # verl's reward_kwargs
    verl.compute_score(*args, {"verifier_mode": "gpbench"}, verifier_mode="reference")
    monkeypatch.setattr(verl, "VERIFIER_MODE", "reference")
    verl.compute_score(*args, {})
    assert modes == ["gpbench", "reference", "reference", "gpbench", "reference"]


def test_compute_score_errors_are_one_line(tmp_path: Path) -> None:
    row = _rows(tmp_path, "gp-l", 1)[0]
    truth = row["reward_model"]["ground_truth"]
    with pytest.raises(
        ConfigError, match=r"got 'openai/gsm8k'; write the data with .*--format verl"
    ):
        verl.compute_score("openai/gsm8k", "x", truth)
    with pytest.raises(ConfigError, match="verifier_mode 'paper' is not one of gpbench, reference"):
        verl.compute_score(row["data_source"], "x", truth, {"verifier_mode": "paper"})


def test_verls_dataset_class_reads_the_exports(
    tmp_path: Path, tiny_llama: Path, tiny_vlm: Path
) -> None:
    # Runs where verl imports (its own environment: verl pins an older transformers).
    rl_dataset = pytest.importorskip("verl.utils.dataset.rl_dataset")
    from omegaconf import OmegaConf
    from transformers import AutoProcessor, AutoTokenizer

    # No length filter: verl's filter for processors needs Qwen's vision utilities.
    config = OmegaConf.create(
        {"max_prompt_length": 4096, "filter_overlong_prompts": False, "cache_dir": str(tmp_path)}
    )
    for task_id, model in (("gp-l", tiny_llama), ("gp-vl", tiny_vlm)):
        write_split(get_task(task_id), "id", 12, 2, tmp_path, fmt="verl")
        files = [str(tmp_path / task_id / "verl" / "id.parquet")]
        processor = AutoProcessor.from_pretrained(model) if task_id == "gp-vl" else None
        tokenizer = processor.tokenizer if processor else AutoTokenizer.from_pretrained(model)
        dataset = rl_dataset.RLHFDataset(files, tokenizer, config, processor)
        item = dataset[1]
        info = item["extra_info"]
        score = verl.compute_score(
            item["data_source"],
            info["reference_answer"],
            item["reward_model"]["ground_truth"],
            info,
        )
        assert score["correct"] == 1.0
        if processor is not None:
            parts = item["raw_prompt"][0]["content"]
            assert [p["type"] for p in parts] == ["image", "text"]
            assert parts[0]["image"].size == (1200, 1200)
