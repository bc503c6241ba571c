"""``--format sft|grpo`` as TRL consumes them: columns, completion-only loss, the reward, README."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpbench.errors import ConfigError
from gpbench.export import write_split
from gpbench.tasks.registry import get_task

README = Path(__file__).resolve().parents[2] / "README.md"


def _load(folder: Path, split: str = "train") -> object:
    datasets = pytest.importorskip("datasets")
    return datasets.load_from_disk(str(folder))[split]


def test_sft_rows_hold_only_what_trl_needs(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    text = get_task("gp-l")
    write_split(text, "train", 3, 4, tmp_path, fmt="sft")
    rows = datasets.load_from_disk(str(tmp_path / "gp-l" / "sft"))["train"]
    assert rows.column_names == ["prompt", "completion"]
    for row, instance in zip(rows, text.dataset("train", 3, 4), strict=True):
        assert row["prompt"] == instance.messages
        [answer] = row["completion"]
        assert answer["role"] == "assistant"
        assert text.verify(instance, answer["content"]).correct
    vision = get_task("gp-vl")
    write_split(vision, "train", 3, 2, tmp_path, fmt="sft")
    rows = datasets.load_from_disk(str(tmp_path / "gp-vl" / "sft"))["train"]
    assert rows.column_names == ["prompt", "completion", "images"]
    assert isinstance(rows.features["images"].feature, datasets.Image)
    assert [p["type"] for p in rows[0]["prompt"][0]["content"]] == ["image", "text"]
    assert rows[0]["images"][0].size == (1200, 1200)


def test_virl_gets_one_row_per_decision_point_with_the_true_history(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    task = get_task("virl-l")
    write_split(task, "train", 5, 2, tmp_path, fmt="sft")
    rows = datasets.load_from_disk(str(tmp_path / "virl-l" / "sft"))["train"]
    instances = list(task.dataset("train", 5, 2))
    assert len(rows) == sum(task.decision_points(inst) for inst in instances)
    manifest = json.loads((tmp_path / "virl-l" / "sft" / "train.manifest.json").read_text())
    assert manifest["rows"] == len(rows) and manifest["count"] == 2
    first = instances[0]
    answers = task.reference_answers(first)
    for point in range(task.decision_points(first)):
        assert rows[point]["completion"][0]["content"] == answers[point]
    # A later point's prompt shows the earlier actions taken on the true route.
    later = rows[2]["prompt"][0]["content"]
    assert first.problem["actions"][0] in later and first.problem["actions"][1] in later


def test_sft_trainer_takes_the_text_export_and_trains_on_the_answer_only(
    tmp_path: Path, tiny_llama: Path
) -> None:
    from trl import SFTConfig, SFTTrainer

    write_split(get_task("gp-l"), "train", 0, 4, tmp_path, fmt="sft")
    data = _load(tmp_path / "gp-l" / "sft")
    args = SFTConfig(str(tmp_path / "out"), max_steps=1, use_cpu=True, bf16=False, report_to="none")  # fmt: skip
    trainer = SFTTrainer(str(tiny_llama), args=args, train_dataset=data)
    labels = trainer.train_dataset[0]["labels"]
    trained = [t for t in labels if t != -100]
    assert 0 < len(trained) < len(labels)  # the prompt's tokens carry no loss
    answer = trainer.processing_class.decode(trained)
    assert '"formula"' in answer and "[Task Description]" not in answer


def test_sft_trainer_masks_the_prompt_of_the_vision_export(tmp_path: Path, tiny_vlm: Path) -> None:
    from trl import SFTConfig, SFTTrainer

    write_split(get_task("gp-vl"), "train", 0, 2, tmp_path, fmt="sft")
    data = _load(tmp_path / "gp-vl" / "sft")
    args = SFTConfig(str(tmp_path / "out"), max_steps=1, use_cpu=True, bf16=False, report_to="none", max_length=None)  # fmt: skip
    trainer = SFTTrainer(str(tiny_vlm), args=args, train_dataset=data)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels = batch["labels"][0].tolist()
    trained = [t for t in labels if t != -100]
    assert 0 < len(trained) < len(labels)
    text = trainer.processing_class.tokenizer.decode(trained)
    assert '"formula"' in text and "[Task Description]" not in text


@pytest.mark.parametrize("task_id", ["gp-l", "gp-vl", "virl-l"])
def test_verifier_reward_scores_grpo_rows(tmp_path: Path, task_id: str) -> None:
    from gpbench import VerifierReward
    from gpbench.recipes.data import REF_COLUMN

    task = get_task(task_id)
    write_split(task, "train", 9, 2, tmp_path, fmt="grpo")
    rows = _load(tmp_path / task_id / "grpo")
    assert REF_COLUMN in rows.column_names  # type: ignore[attr-defined]
    instances = list(task.dataset("train", 9, 2))
    answers = [a for inst in instances for a in task.reference_answers(inst)]
    correct = VerifierReward()(
        rows["prompt"],  # type: ignore[index]
        [[{"role": "assistant", "content": a}] for a in answers],
        **{REF_COLUMN: rows[REF_COLUMN]},  # type: ignore[index]
    )
    best = task.verify(instances[0], task.reference_answers(instances[0])[0]).reward
    assert correct == [best] * len(answers)
    wrong = VerifierReward()(rows["prompt"], ["no"] * len(answers), **{REF_COLUMN: rows[REF_COLUMN]})  # type: ignore[index]  # fmt: skip
    assert wrong == [task.verify(instances[0], "no").reward] * len(answers)


def test_verifier_reward_without_the_item_column_names_the_export() -> None:
    from gpbench import VerifierReward

    with pytest.raises(ConfigError) as caught:
        VerifierReward()(["p"], ["a"], trainer_state=None, images=[[]])
    message = str(caught.value)
    assert "\n" not in message
    assert "'gpbench_item' column" in message and "--format grpo" in message


def _readme_script() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Training data for TRL and verl") :]
    match = re.search(r"```python\n(# train_trl\.py.*?)```", section, re.DOTALL)
    assert match is not None, "the README's TRL script is gone"
    return match.group(1)


def test_the_readme_trl_script_runs_two_steps(tmp_path: Path, tiny_llama: Path) -> None:
    env = {**os.environ, "MODEL": str(tiny_llama), "STEPS": "2", "OMP_NUM_THREADS": "1"}
    for fmt in ("sft", "grpo"):
        args = ["generate", "gp-l", "--split", "train", "-n", "8", "--format", fmt, "-q"]
        subprocess.run([sys.executable, "-m", "gpbench", *args], cwd=tmp_path, env=env, check=True)
    (tmp_path / "train_trl.py").write_text(_readme_script(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "train_trl.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "sft" / "config.json").is_file()
    assert "rewards/gpbench_verifier/mean" in done.stdout + done.stderr
