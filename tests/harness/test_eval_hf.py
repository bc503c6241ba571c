"""`gpbench eval` on real tiny checkpoints through the transformers backend (CPU)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.runs.read import read_episodes, read_run_spec

pytest.importorskip("transformers")


def _eval(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", *args])
    return result.exit_code, result.output


def test_text_model_gets_the_text_tasks_and_says_what_it_skipped(
    tiny_llama: Path, tmp_path: Path
) -> None:
    code, out = _eval(
        "--model",
        str(tiny_llama),
        "--split",
        "ood-rule",
        "-n",
        "2",
        "--max-tokens",
        "16",
        "--max-attempts",
        "2",
        "--runs-dir",
        str(tmp_path),
    )
    assert code == 0, out
    assert "skipped gp-vl ood-rule: gp-vl needs images and this model is text-only" in out
    assert "skipped virl-vl ood-rule" in out
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert [f.split("__")[1] for f in folders] == ["gp-l", "virl-l"]
    for folder in tmp_path.iterdir():
        spec = read_run_spec(folder)
        assert spec["status"] == "complete"
        assert spec["backend"]["name"] == "hf"
        assert len(spec["checkpoint"]["fingerprint"]) == 64
        episodes = list(read_episodes(folder))
        assert episodes and all(t["completion_tokens"] for e in episodes for t in e.turns)
        # An attempt is flagged as cut off exactly when it used the whole token budget.
        for turn in (t for e in episodes for t in e.turns):
            assert turn["completion_tokens"] <= 16
            if turn["completion_tokens"] < 16:
                assert not turn["output_truncated"]
            assert turn["output_truncated"] == ("output_truncated" in turn["verdict"]["flags"])


def test_explicit_vision_task_on_a_text_model_is_an_error(tiny_llama: Path, tmp_path: Path) -> None:
    code, out = _eval(
        "--model",
        str(tiny_llama),
        "--task",
        "gp-vl",
        "--split",
        "ood-color",
        "-n",
        "1",
        "--runs-dir",
        str(tmp_path),
    )
    assert code != 0
    assert "gp-vl needs images and this model is text-only" in out and "Traceback" not in out


def test_series_is_swept_in_step_order_and_skipped_on_rerun(
    tiny_llama: Path, tmp_path: Path
) -> None:
    series = tmp_path / "ckpts"
    for step in (10, 2, 100):
        shutil.copytree(tiny_llama, series / f"checkpoint-{step}")
    args = (
        "--model",
        str(series / "checkpoint-*"),
        "--task",
        "gp-l",
        "--split",
        "id",
        "-n",
        "1",
        "--max-tokens",
        "8",
        "--max-attempts",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    code, out = _eval(*args)
    assert code == 0, out
    order = [line.split()[0] for line in out.splitlines() if line.startswith("checkpoint-")]
    assert order == ["checkpoint-2", "checkpoint-10", "checkpoint-100"]
    specs = [read_run_spec(p) for p in (tmp_path / "runs").iterdir()]
    assert sorted(s["checkpoint"]["metadata"]["step"] for s in specs) == [2, 10, 100]
    code, out = _eval(*args)
    assert code == 0 and out.count("already complete, reused") == 3


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("missing-folder", "model folder not found"),
        ("empty", "is not a model folder"),
        ("corrupt", "config.json"),
    ],
)
def test_bad_checkpoints_are_one_line_errors(tmp_path: Path, model: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "config.json").write_text("{not json")
    code, out = _eval(
        "--model",
        str(tmp_path / model),
        "--split",
        "id",
        "--backend",
        "hf",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert code != 0 and message in out, out
    assert "Traceback" not in out
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_eval_records_decoding_and_is_reproducible_greedy(tiny_llama: Path, tmp_path: Path) -> None:
    args = [
        "--model",
        str(tiny_llama),
        "--task",
        "gp-l",
        "--split",
        "id",
        "-n",
        "2",
        "--max-tokens",
        "12",
        "--max-attempts",
        "1",
        "--batch-size",
        "1",
    ]
    assert _eval(*args, "--runs-dir", str(tmp_path / "a"))[0] == 0
    assert _eval(*args, "--runs-dir", str(tmp_path / "b"))[0] == 0
    [a] = list((tmp_path / "a").iterdir())
    [b] = list((tmp_path / "b").iterdir())
    assert read_run_spec(a)["sampling"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 12}
    texts_a = [json.dumps(e.turns[0]["response"]) for e in read_episodes(a)]
    texts_b = [json.dumps(e.turns[0]["response"]) for e in read_episodes(b)]
    assert texts_a == texts_b


def test_vision_language_model_takes_the_image_tasks(tiny_vlm: Path, tmp_path: Path) -> None:
    code, out = _eval(
        "--model",
        str(tiny_vlm),
        "--task",
        "gp-vl",
        "--split",
        "ood-color",
        "-n",
        "2",
        "--max-tokens",
        "6",
        "--max-attempts",
        "2",
        "--runs-dir",
        str(tmp_path),
    )
    assert code == 0, out
    [folder] = list(tmp_path.iterdir())
    episodes = list(read_episodes(folder))
    assert len(episodes) == 2
    assert all(t["prompt_tokens"] for e in episodes for t in e.turns)
    assert read_run_spec(folder)["backend"]["name"] == "hf"
