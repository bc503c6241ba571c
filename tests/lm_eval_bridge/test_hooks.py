"""The hooks lm-eval calls: items from the generator, images, and scoring by gpbench's verifier."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from gpbench.errors import ConfigError, GpbenchError
from gpbench.generators.cards import TRAINING_FACE_VALUES, card_value, rank_from_name, solve
from gpbench.lm_eval_bridge import hooks
from gpbench.tasks import paper_rules
from gpbench.tasks.navigation import render_prompt, verify_action
from gpbench.tasks.navigation_vision import render_vision_prompt
from gpbench.tasks.registry import all_tasks, get_task

TASK_IDS = [task.id for task in all_tasks()]

HOSTILE = [
    "",
    " ",
    "\x00" * 50,
    "{" * 20_000,
    "}" * 20_000 + "{",
    '{"formula": ' * 3000,
    "[" * 5000 + "]" * 5000,
    '{"formula": "' + "9*" * 50_000 + '9=24"}',
    '{"formula": "(((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))))"}',
    '{"formula": "10**10**10=24"}',
    '{"formula": "1/0=24", "cards": null}',
    '{"cards": "K", "formula": 24, "action": 7}',
    '{"action": "turn_direction(' + "x" * 10_000 + ')"}',
    '{"current observation": ["intersection"], "action": ["forward()"]}',
    "😀" * 1000,
    "```json\n{'action': 'stop()', 'formula': '__import__(\"os\")'}\n```",
    '{"action": "forward()"' + "\n" * 10_000,
    "\ud800 lone surrogate",
]


def _docs(task_id: str, split: str, n: int = 2) -> list[dict[str, Any]]:
    task = get_task(task_id)
    return hooks.items(f"{task.id}@{task.version}", split, task.split(split).paper_seed, n, {})


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_items_carry_the_generators_instances_and_prompts(task_id: str) -> None:
    task = get_task(task_id)
    for split, spec in task.splits.items():
        docs = hooks.items(task_id, split, spec.paper_seed, 3, {})
        instances = list(task.dataset(split, spec.paper_seed, 3))
        assert {d["instance_uid"] for d in docs} == {i.uid for i in instances}
        assert len({d["uid"] for d in docs}) == len(docs)
        for doc in docs:
            instance = instances[doc["index"]]
            assert doc["task"] == f"{task.id}@{task.version}" and doc["split"] == split
            assert doc["seed"] == spec.paper_seed and json.loads(doc["options"]) == {}
            point = doc["point"]
            if task.multi_decision:
                expected_text = (
                    render_vision_prompt(instance.problem, point)
                    if task.modality == "vision"
                    else render_prompt(instance.problem, point)
                )
            else:
                content = instance.messages[0]["content"]
                expected_text = content if isinstance(content, str) else content[1]["text"]
            if task.modality == "vision":
                assert doc["prompt"] == hooks.IMAGE_PLACEHOLDER + expected_text
            else:
                assert doc["prompt"] == expected_text
            # Every doc's own target is a correct answer at its point.
            assert hooks.process_results(doc, [doc["target"]])["success"] == 1.0
        if task.multi_decision:
            assert len(docs) == sum(len(i.problem["actions"]) for i in instances)
            assert [d["point"] for d in docs if d["index"] == 0] == list(
                range(len(instances[0].problem["actions"]))
            )
        else:
            assert len(docs) == 3 and all(d["point"] == 0 for d in docs)


def test_first_virl_item_is_the_instances_own_prompt() -> None:
    task = get_task("virl-l")
    instance = task.instance("ood-rule", 12, 0)
    doc = _docs("virl-l", "ood-rule", 1)[0]
    assert doc["prompt"] == instance.messages[0]["content"]
    assert doc["uid"] == f"{instance.uid}/0"


def test_options_change_the_instances_and_reach_the_verifier() -> None:
    docs = hooks.items("gp-l", "id", 42, 4, {"target": 30})
    task = get_task("gp-l")
    for doc in docs:
        instance = task.instance("id", 42, doc["index"], {"target": 30})
        assert doc["instance_uid"] == instance.uid and "30" in doc["prompt"]
        assert hooks.process_results(doc, [task.reference_answer(instance)])["success"] == 1.0
    with pytest.raises(ConfigError, match="unknown option"):
        hooks.items("gp-l", "id", 42, 1, {"targt": 30})


def test_custom_dataset_reads_metadata_and_ignores_lm_evals_own_keys() -> None:
    pytest.importorskip("datasets")
    dataset = hooks.custom_dataset(
        version=1,
        description="...",
        config_source="/x/gpbench_gp_l_id.yaml",
        pretrained="ckpt/",  # --model_args arrive in the metadata too
        gpbench_task="gp-l@1",
        gpbench_split="id",
        gpbench_seed=42,
        gpbench_n=5,
        gpbench_options='{"target": 24}',
    )
    test = dataset["test"]
    assert len(test) == 5
    assert list(test[0]) == list(hooks.items("gp-l@1", "id", 42, 1, {})[0])
    assert [row["instance_uid"] for row in test] == [
        i.uid for i in get_task("gp-l").dataset("id", 42, 5)
    ]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"gpbench_task": "gp-l@1", "gpbench_split": "id", "gpbench_seed": 42}, "gpbench_n"),
        (
            {"gpbench_task": "gp-l", "gpbench_split": "id", "gpbench_seed": 42, "gpbench_n": 0},
            ">= 1",
        ),
        (
            {"gpbench_task": "gp-l", "gpbench_split": "id", "gpbench_seed": "x", "gpbench_n": 1},
            "gpbench_seed must be an integer",
        ),
        (
            {"gpbench_task": "gp-l", "gpbench_split": "id", "gpbench_seed": 1, "gpbench_n": True},
            "gpbench_n must be an integer",
        ),
        (
            {
                "gpbench_task": "gp-l",
                "gpbench_split": "ood_rule",
                "gpbench_seed": 1,
                "gpbench_n": 1,
            },
            "did you mean 'ood-rule'",
        ),
        (
            {
                "gpbench_task": "gp-l",
                "gpbench_split": "id",
                "gpbench_seed": 1,
                "gpbench_n": 1,
                "gpbench_options": [1],
            },
            "gpbench_options must be a mapping",
        ),
        (
            {
                "gpbench_task": "gp-l",
                "gpbench_split": "id",
                "gpbench_seed": 1,
                "gpbench_n": 1,
                "gpbench_options": "[" * 100_000,
            },
            r"gpbench_options is not valid JSON \(nested too deeply",
        ),
    ],
)
def test_custom_dataset_rejects_bad_metadata_with_a_fix(
    metadata: dict[str, Any], message: str
) -> None:
    with pytest.raises(GpbenchError, match=message):
        hooks.custom_dataset(**metadata)


@pytest.mark.parametrize("task_id", TASK_IDS)
@pytest.mark.parametrize("answer", HOSTILE, ids=range(len(HOSTILE)))
def test_process_results_is_total_and_agrees_with_the_verifier(task_id: str, answer: str) -> None:
    task = get_task(task_id)
    split = "ood-rule"
    for doc in _docs(task_id, split, 1)[:3]:
        scores = hooks.process_results(doc, [answer])
        assert list(scores) == hooks.metric_names(task)
        assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values())
        status_rates = [v for k, v in scores.items() if k.startswith("status_")]
        assert sorted(status_rates) == [0.0] * (len(status_rates) - 1) + [1.0]
        instance = task.instance(split, doc["seed"], doc["index"])
        if task.multi_decision:
            verdict = verify_action(instance.problem, doc["point"], answer)
        else:
            verdict = task.verify(instance, answer)
        assert scores["success"] == float(verdict.correct)
        assert scores["reward"] == verdict.reward
        assert scores[f"status_{verdict.status}"] == 1.0


@pytest.mark.parametrize("results", [[], [None], [17], [["a list"]], [b"bytes"]])
def test_process_results_judges_non_text_results_as_an_empty_answer(results: list[Any]) -> None:
    doc = _docs("gp-l", "id", 1)[0]
    assert hooks.process_results(doc, results) == hooks.process_results(doc, [""])
    assert hooks.process_results(doc, results)["status_illegal_formula"] == 1.0


def _training_rule_answer(cards: list[str]) -> str | None:
    values = [card_value(rank_from_name(c), TRAINING_FACE_VALUES) for c in cards]
    formula = solve(values, 24)
    return None if formula is None else json.dumps({"cards": cards, "formula": f"{formula}=24"})


def _prefix_answer(cards: list[str], values: list[int]) -> list[str]:
    """An unfinished solution string that uses every card (the paper's +1), where one exists."""
    for solution in sorted(paper_rules.solution_strings(values)):
        if solution.endswith(")"):
            return [json.dumps({"cards": cards, "formula": solution[:-1]})]
    return []


def test_every_gp_status_and_flag_is_reported() -> None:
    task = get_task("gp-vl")
    seen: dict[str, float] = {}
    default_docs = _docs("gp-vl", "ood-rule", 40)
    reference_docs = hooks.items("gp-vl@1", "ood-rule", 42, 40, {}, "reference")
    for doc in default_docs + reference_docs:
        instance = task.instance("ood-rule", doc["seed"], doc["index"])
        cards = instance.problem["cards"]
        values = instance.problem["values"]
        answers = [
            doc["target"],
            json.dumps({"cards": ["2", "2", "2", "2"], "formula": "2*2*2*2=24"}),
            json.dumps({"cards": cards, "formula": "import os"}),
            json.dumps({"cards": cards, "formula": "1+1=24"}),
            *(json.dumps({"cards": cards, "formula": op.join(map(str, values))}) for op in "+*-"),
        ]
        train_rule = _training_rule_answer(cards)
        if train_rule is not None:
            answers.append(train_rule)
        answers += _prefix_answer(cards, values)
        for answer in answers:
            for name, value in hooks.process_results(doc, [answer]).items():
                seen[name] = max(seen.get(name, 0.0), value)
    # Every declared status and flag occurs (so none is a constant column).
    assert all(seen[name] == 1.0 for name in hooks.metric_names(task) if name != "reward"), seen


def test_every_virl_status_and_flag_is_reported() -> None:
    task = get_task("virl-l")
    seen: dict[str, float] = {}
    for doc in _docs("virl-l", "ood-rule", 2):
        instance = task.instance("ood-rule", doc["seed"], doc["index"])
        point = instance.problem["points"][doc["point"]]
        wrong_claim = "No landmarks" if point["is_intersection"] else "You observe an intersection"
        for answer in [
            doc["target"],
            json.dumps({"current observation": wrong_claim, "action": "turn_direction(east)"}),
            json.dumps({"action": "turn_direction(north)"}),
            "no json here",
        ]:
            for name, value in hooks.process_results(doc, [answer]).items():
                seen[name] = max(seen.get(name, 0.0), value)
    assert all(seen[name] == 1.0 for name in hooks.metric_names(task) if name != "reward"), seen


def test_a_status_the_bridge_does_not_know_raises() -> None:
    doc = _docs("gp-l", "id", 1)[0]
    # The paper-code mode's extra status is declared too: a YAML's mode is chosen at run time.
    assert "status_solution_prefix" in hooks.metric_names(get_task("gp-l"))
    assert "status_misrecognized_cards" not in hooks.metric_names(get_task("gp-l"))
    assert "status_misrecognized_cards" in hooks.metric_names(get_task("gp-vl"))
    forged = {**doc, "task": "gp-vl@1", "instance_uid": get_task("gp-vl").instance("id", 42, 0).uid}
    assert hooks.process_results(forged, [""])["status_misrecognized_cards"] == 1.0


def test_a_doc_from_another_gpbench_is_refused() -> None:
    doc = {**_docs("gp-l", "id", 1)[0], "instance_uid": "0" * 16}
    with pytest.raises(ValueError, match="regenerate the lm-eval YAMLs"):
        hooks.process_results(doc, ["x"])


def test_doc_to_image_renders_the_instances_pixels() -> None:
    gp = get_task("gp-vl")
    doc = _docs("gp-vl", "ood-color", 1)[0]
    [image] = hooks.doc_to_image(doc)
    expected = gp.images(gp.instance("ood-color", 42, 0))[0]
    assert image.size == expected.size and image.tobytes() == expected.tobytes()

    nav = get_task("virl-vl")
    views = nav.images(nav.instance("ood-spatial", 12, 0))
    docs = _docs("virl-vl", "ood-spatial", 1)
    assert len(docs) == len(views)
    for doc in (docs[0], docs[len(docs) // 2], docs[-1]):
        [view] = hooks.doc_to_image(doc)
        assert view.tobytes() == views[doc["point"]].tobytes()


def test_user_text_keeps_text_and_marks_the_image_first() -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "path": "a.png"}, {"type": "text", "text": "\nhi\n"}],
        }
    ]
    assert hooks.user_text(messages) == "<image>\nhi\n"
    assert hooks.user_text([{"role": "user", "content": "\n x \n\n"}]) == "\n x \n\n"
    with pytest.raises(ValueError, match="one user message"):
        hooks.user_text([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_the_mode_metadata_switch_reaches_the_verifier(task_id: str) -> None:
    """``gpbench_mode: reference`` in the metadata: docs carry it, and answers get the paper's
    reward (an answer with no formula or action is the same in both; a spaced one is not)."""
    task = get_task(task_id)
    split = next(s for s in task.splits if s != "train")
    seed = task.split(split).paper_seed
    [doc, *_] = hooks.items(f"{task.id}@{task.version}", split, seed, 1, {}, "reference")
    assert doc["mode"] == "reference"
    instance = task.instance(split, seed, doc["index"])
    # A space the paper's code does not forgive and gpbench's reader does.
    if task.multi_decision:
        spaced = doc["target"].replace('"action": "', '"action": " ')
    else:
        spaced = doc["target"].replace("=", " = ")
    answers = [doc["target"], "nothing here", spaced]
    for answer in answers:
        expected = task.episode(instance, mode="reference").step(answer).verdict
        scores = hooks.process_results(doc, [answer])
        assert (scores["success"], scores["reward"]) == (float(expected.correct), expected.reward)
    default_doc = {**doc, "mode": "gpbench"}
    assert hooks.process_results(default_doc, [answers[2]])["success"] == 1.0
    assert hooks.process_results(doc, [answers[2]])["success"] == 0.0


def test_custom_dataset_reads_the_mode_and_refuses_an_unknown_one() -> None:
    pytest.importorskip("datasets")
    metadata = {"gpbench_task": "gp-l@1", "gpbench_split": "id", "gpbench_seed": 42, "gpbench_n": 2}
    dataset = hooks.custom_dataset(**metadata, gpbench_mode="reference")
    assert [row["mode"] for row in dataset["test"]] == ["reference", "reference"]
    assert hooks.custom_dataset(**metadata)["test"][0]["mode"] == "gpbench"
    with pytest.raises(ConfigError, match="gpbench_mode 'paper' is not a verifier mode of gp-l"):
        hooks.custom_dataset(**metadata, gpbench_mode="paper")
