"""The `lm_eval` command on tiny offline checkpoints: its per-sample scores equal `gpbench score`.

Runs the command a user runs (``lm_eval --model hf ... --apply_chat_template --include_path
"$(gpbench lm-eval-path)" --log_samples``) in a subprocess, reads the samples it logged, and
scores the same responses with `gpbench score`, item by item. The checkpoints are random, so
their answers are gibberish; the scripted-model test (test_lm_eval_scoring.py) covers every
status. Here the point is the real path: chat template, generation settings, images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpbench.lm_eval_bridge import hooks
from gpbench.tasks.navigation_vision import vision_messages
from gpbench.tasks.registry import get_task

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

GEN_KWARGS = {"until": [], "max_gen_toks": 256, "do_sample": False, "temperature": 0.0}
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _lm_eval(model: str, checkpoint: Path, tasks: list[str], limit: int, out: Path) -> Path:
    env = {**os.environ, **OFFLINE}
    path = subprocess.run(
        [sys.executable, "-m", "gpbench", "lm-eval-path"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    command = [
        *(sys.executable, "-m", "lm_eval", "--model", model),
        *("--model_args", f"pretrained={checkpoint}", "--apply_chat_template"),
        *("--include_path", path, "--tasks", ",".join(tasks), "--limit", str(limit)),
        *("--log_samples", "--output_path", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _samples(out: Path, lm_task: str) -> list[dict[str, Any]]:
    [path] = out.rglob(f"samples_{lm_task}_*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _check_scores(
    samples: list[dict[str, Any]], task_id: str, split: str, score_items: Any, metrics_of: Any
) -> None:
    task = get_task(task_id)
    answers = {
        (s["doc"]["instance_uid"], s["doc"]["point"]): s["filtered_resps"][0] for s in samples
    }
    assert len(answers) == len(samples)
    routes = 1 + max(s["doc"]["index"] for s in samples)
    verdicts = score_items(task_id, split, task.split(split).paper_seed, routes, answers)
    names = hooks.metric_names(task)
    for sample in samples:
        key = (sample["doc"]["instance_uid"], sample["doc"]["point"])
        assert {name: sample[name] for name in names} == metrics_of(names, verdicts[key]), key


def test_lm_eval_hf_on_text_tasks_matches_gpbench_score(
    tiny_llama: Path, tmp_path: Path, score_items: Any, metrics_of: Any
) -> None:
    from transformers import AutoTokenizer

    tasks = {
        "gpbench_gp_l_ood_rule": ("gp-l", "ood-rule"),
        "gpbench_virl_l_ood_spatial": ("virl-l", "ood-spatial"),
    }
    out = _lm_eval("hf", tiny_llama, list(tasks), 2, tmp_path / "out")
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    for lm_task, (task_id, split) in tasks.items():
        samples = _samples(out, lm_task)
        assert len(samples) == 2
        task = get_task(task_id)
        for sample in samples:
            doc = sample["doc"]
            instance = task.instance(split, doc["seed"], doc["index"])
            messages = (
                [{"role": "user", "content": doc["prompt"]}]
                if task.multi_decision and doc["point"]
                else instance.messages
            )
            # The checkpoint's chat template around gpbench's user message, byte for byte.
            expected = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            args = sample["arguments"]["gen_args_0"]
            assert args["arg_0"] == expected
            assert args["arg_1"] == GEN_KWARGS
        _check_scores(samples, task_id, split, score_items, metrics_of)
    [results_path] = out.rglob("results_*.json")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    assert set(tasks) <= set(results["results"])
    assert results["configs"]["gpbench_gp_l_ood_rule"]["generation_kwargs"] == GEN_KWARGS


def test_lm_eval_hf_multimodal_on_vision_tasks_matches_gpbench_score(
    tiny_vlm: Path, tmp_path: Path, score_items: Any, metrics_of: Any
) -> None:
    from transformers import AutoProcessor

    tasks = {
        "gpbench_gp_vl_ood_color": ("gp-vl", "ood-color"),
        "gpbench_virl_vl_ood_rule": ("virl-vl", "ood-rule"),
    }
    out = _lm_eval("hf-multimodal", tiny_vlm, list(tasks), 2, tmp_path / "out")
    processor = AutoProcessor.from_pretrained(tiny_vlm)
    for lm_task, (task_id, split) in tasks.items():
        samples = _samples(out, lm_task)
        assert len(samples) == 2
        task = get_task(task_id)
        for sample in samples:
            doc = sample["doc"]
            instance = task.instance(split, doc["seed"], doc["index"])
            messages = (
                vision_messages(instance, doc["point"])
                if task.multi_decision
                else instance.messages
            )
            # The image goes first, as the image part of gpbench's user message.
            expected = processor.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            assert expected.count("<image>") == 1
            assert sample["arguments"]["gen_args_0"]["arg_0"] == expected
        _check_scores(samples, task_id, split, score_items, metrics_of)
