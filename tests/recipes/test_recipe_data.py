"""Training data: train instances -> chat examples in the paper's response format."""

from __future__ import annotations

import json

import pytest

from gpbench.recipes.data import (
    REF_COLUMN,
    examples,
    messages_row,
    placeholder_messages,
    rl_row,
    sft_row,
)
from gpbench.recipes.training_items import ItemRef, resolve
from gpbench.tasks.navigation import render_prompt
from gpbench.tasks.registry import get_task


def test_gp_text_rows_hold_the_paper_prompt_and_a_correct_reference_answer() -> None:
    task = get_task("gp-l")
    instances = list(task.dataset("train", 0, 20))
    rows = [sft_row(task, ex) for ex in examples(task, instances)]
    assert len(rows) == 20
    for instance, row in zip(instances, rows, strict=True):
        assert row["prompt"] == instance.messages
        (answer,) = row["completion"]
        assert answer["role"] == "assistant"
        assert answer["content"] == task.reference_answer(instance)
        assert task.verify(instance, answer["content"]).correct
        assert "images" not in row
        assert json.loads(row[REF_COLUMN])["index"] == instance.index


def test_gp_answer_is_in_the_paper_response_format() -> None:
    task = get_task("gp-l")
    example = next(iter(examples(task, task.dataset("train", 0, 1))))
    lines = example.answer.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert [line.split(":")[0].strip() for line in lines[1:-1]] == [
        '"cards"',
        '"number"',
        '"formula"',
    ]


def test_virl_gives_one_example_per_decision_point_with_the_true_history() -> None:
    task = get_task("virl-l")
    instance = task.instance("train", 0, 3)
    found = list(examples(task, [instance]))
    assert len(found) == task.decision_points(instance) == len(instance.problem["actions"])
    for point, example in enumerate(found):
        assert example.ref.point == point
        assert example.prompt == [
            {"role": "user", "content": render_prompt(instance.problem, point)}
        ]
        env = task.episode(instance, start=point)
        step = env.step(example.answer)
        assert step.verdict.correct, (point, step.verdict.status)
        assert instance.problem["actions"][point] in example.answer


def test_gp_vision_rows_use_image_placeholders_and_an_images_column() -> None:
    task = get_task("gp-vl")
    example = next(iter(examples(task, task.dataset("train", 0, 1))))
    row = sft_row(task, example)
    content = row["prompt"][0]["content"]
    assert content[0] == {"type": "image"}
    assert content[1]["type"] == "text" and "observing these four cards" in content[1]["text"]
    (image,) = row["images"]
    assert image.size == (1200, 1200)
    assert task.verify(example.instance, row["completion"][0]["content"]).correct


def test_virl_vision_rows_carry_the_view_of_their_decision_point() -> None:
    task = get_task("virl-vl")
    instance = task.instance("train", 0, 0)
    rows = [sft_row(task, ex) for ex in examples(task, [instance])]
    views = task.images(instance)
    assert len(rows) == len(views)
    for row, view in zip(rows, views, strict=True):
        (image,) = row["images"]
        assert image.tobytes() == view.tobytes()


def test_rl_rows_drop_the_answer_and_their_ref_rebuilds_the_instance() -> None:
    task = get_task("virl-l")
    example = list(examples(task, [task.instance("train", 0, 1)]))[2]
    row = rl_row(task, example)
    assert "completion" not in row
    rebuilt_task, instance, point = resolve(row[REF_COLUMN])
    assert rebuilt_task is task and point == 2
    assert instance == example.instance


def test_item_ref_round_trips_with_options() -> None:
    task = get_task("gp-l")
    instance = task.instance("train", 7, 3, {"target": 30})
    example = next(iter(examples(task, [instance])))
    ref = ItemRef.from_json(example.ref.to_json())
    assert ref == example.ref and ref.options["target"] == 30
    assert resolve(ref.to_json())[1] == instance


def test_placeholders_and_messages_rows() -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "path": "a.png"}, {"type": "text", "text": "hi"}],
        }
    ]
    assert placeholder_messages(messages) == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}
    ]
    task = get_task("gp-l")
    example = next(iter(examples(task, task.dataset("train", 0, 1))))
    row = messages_row(example)
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["messages"][1]["content"] == example.answer


def test_an_episode_at_a_point_the_instance_lacks_is_refused() -> None:
    task = get_task("gp-l")
    with pytest.raises(ValueError, match="no decision point 1"):
        task.episode(task.instance("train", 0, 0), start=1)
