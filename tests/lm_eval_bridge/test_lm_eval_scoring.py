"""lm-eval's own evaluator on gpbench tasks with a scripted model: scores equal `gpbench score`.

The scripted model answers each item from a fixed mix (right, wrong in each way, hostile), so
every status and flag goes through lm-eval's request, filter, process_results and aggregation
path; the per-sample metrics lm-eval logs must equal what `gpbench score` gives the same
responses, item by item.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from gpbench.generators.cards import TRAINING_FACE_VALUES, card_value, rank_from_name, solve
from gpbench.lm_eval_bridge import hooks, include_path
from gpbench.tasks.registry import get_task

pytest.importorskip("lm_eval")

from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from lm_eval.tasks import TaskManager

GEN_KWARGS = {"until": [], "max_gen_toks": 256, "do_sample": False, "temperature": 0.0}


class ScriptedLM(LM):  # type: ignore[misc]
    """Answers ``generate_until`` requests with ``answer(doc)``; records what it was sent."""

    def __init__(self, answer: Callable[[Mapping[str, Any]], str]) -> None:
        super().__init__()
        self.answer = answer
        self.sent: list[tuple[Mapping[str, Any], str, dict[str, Any]]] = []

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        out = []
        for request in requests:
            context, gen_kwargs = request.args[0], request.args[1]
            self.sent.append((request.doc, context, gen_kwargs))
            out.append(self.answer(request.doc))
        return out

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        raise NotImplementedError("gpbench tasks only generate")

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        raise NotImplementedError("gpbench tasks only generate")


def _gp_answer(doc: Mapping[str, Any]) -> str:
    instance = hooks.instance_of(doc)
    cards, values = instance.problem["cards"], instance.problem["values"]
    kind = doc["index"] % 8
    if kind == 0:
        return str(doc["target"])
    if kind == 1:  # the training rule's solution (train_rule_answer, verbatim formula)
        training = [card_value(rank_from_name(c), TRAINING_FACE_VALUES) for c in cards]
        formula = solve(training, 24)
        if formula is not None:
            return f"Using J/Q/K=10: {{'formula': '{formula}=24',}}"
        return str(doc["target"])
    if kind == 2:
        return '```json\n{"cards": [1, 1], "formula": "1+1=24"}\n```'
    if kind == 3:
        return json.dumps({"formula": "+".join(map(str, values)) + "=24"})
    if kind == 4:
        return "{" * 3000 + "\x00"
    if kind == 5:
        return ""
    if kind == 6:
        return '{"formula": "__import__(\'os\')=24"}'
    return "The answer is\n\n" + "-".join(map(str, values)) + "=24"


def _virl_answer(doc: Mapping[str, Any]) -> str:
    instance = hooks.instance_of(doc)
    point = instance.problem["points"][doc["point"]]
    kind = (doc["point"] + doc["index"]) % 5
    if kind == 0:
        return str(doc["target"])
    if kind == 1:  # a compass word under the relative vocabulary
        return json.dumps({"current observation": "x", "action": "turn_direction(north)"})
    if kind == 2:
        claim = "No landmarks" if point["is_intersection"] else "You observe an intersection"
        return json.dumps({"current observation": claim, "action": "turn_direction(left)"})
    if kind == 3:
        return "I would go forward()"
    return "'action': 'stop()'"


def _run(task: str, limit: int, answer: Callable[[Mapping[str, Any]], str]) -> tuple[Any, Any]:
    model = ScriptedLM(answer)
    manager = TaskManager(include_path=str(include_path()), include_defaults=False)
    results = simple_evaluate(
        model=model, tasks=[task], task_manager=manager, limit=limit, log_samples=True
    )
    return model, results


@pytest.mark.parametrize(
    ("lm_task", "task_id", "split", "limit", "answer"),
    [
        ("gpbench_gp_l_ood_rule", "gp-l", "ood-rule", 24, _gp_answer),
        ("gpbench_virl_l_ood_rule", "virl-l", "ood-rule", 40, _virl_answer),
    ],
)
def test_lm_eval_scores_equal_gpbench_score_item_by_item(
    lm_task: str,
    task_id: str,
    split: str,
    limit: int,
    answer: Callable[[Mapping[str, Any]], str],
    score_items: Any,
    metrics_of: Any,
) -> None:
    model, results = _run(lm_task, limit, answer)
    samples = results["samples"][lm_task]
    assert len(samples) == limit
    task = get_task(task_id)
    names = hooks.metric_names(task)

    # What lm-eval sent: gpbench's prompt text unchanged, with the YAML's generation settings.
    for doc, context, gen_kwargs in model.sent:
        assert context == doc["prompt"]
        assert gen_kwargs == GEN_KWARGS

    answers = {
        (s["doc"]["instance_uid"], s["doc"]["point"]): s["filtered_resps"][0] for s in samples
    }
    assert len(answers) == limit
    spec = task.split(split)
    routes = 1 + max(s["doc"]["index"] for s in samples)
    verdicts = score_items(task_id, split, spec.paper_seed, routes, answers)
    statuses = set()
    for sample in samples:
        key = (sample["doc"]["instance_uid"], sample["doc"]["point"])
        assert sample["filtered_resps"][0] == answer(sample["doc"])
        expected = metrics_of(names, verdicts[key])
        assert {name: sample[name] for name in names} == expected, key
        statuses.add(verdicts[key]["status"])
    # The mix exercised every status the default verifier can give one answer.
    assert statuses == set(task.answer_statuses("gpbench"))

    # lm-eval's aggregate is the mean of the per-sample values.
    table = results["results"][lm_task]
    for name in names:
        mean = sum(s[name] for s in samples) / len(samples)
        assert table[f"{name},none"] == pytest.approx(mean)
    assert (
        table["success,none"] > 0
        and table[
            "flag_train_vocabulary_action,none"
            if task.multi_decision
            else "flag_train_rule_answer,none"
        ]
        > 0
    )


def test_results_record_the_generator_settings(tmp_path: Path) -> None:
    _, results = _run("gpbench_gp_l_id_heldout", 2, lambda doc: "")
    config = results["configs"]["gpbench_gp_l_id_heldout"]
    assert config["metadata"]["gpbench_seed"] == 42 and config["metadata"]["gpbench_n"] == 234
    assert config["metadata"]["gpbench_split"] == "id-heldout"
    assert config["generation_kwargs"] == GEN_KWARGS
    assert results["versions"]["gpbench_gp_l_id_heldout"] == 1
