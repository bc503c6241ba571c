"""gpbench's tasks run by inspect_ai in-process with its mock model (offline)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.log import EvalLog, EvalSample, resolve_sample_attachments
from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ContentImage, Model
from PIL import Image, ImageChops

from gpbench.harness.transcripts import score_responses
from gpbench.inspect_bridge.bridge import InstanceImages, score_keys, statuses
from gpbench.inspect_bridge.tasks import gp_l, gp_vl, virl_l, virl_vl
from gpbench.tasks.registry import get_task


def run(task: Task, model: Model) -> EvalLog:
    [log] = inspect_eval(task, model=model, display="none")
    assert log.status == "success", log.error
    return log


def metric(log: EvalLog, key: str, name: str = "mean") -> float:
    assert log.results is not None
    [found] = [score for score in log.results.scores if score.name == key]
    return float(next(m.value for m in found.metrics.values() if m.name.endswith(name)))


def values(sample: EvalSample) -> dict[str, Any]:
    assert sample.scores is not None
    value = sample.scores["gpbench"].value
    assert isinstance(value, dict)
    return value


def test_right_answers_succeed_on_the_first_try(mocks: Any) -> None:
    answers = mocks.reference_answers("gp-l", "ood-rule", 42, 3)
    log = run(gp_l(split="ood-rule", n=3), mocks.right_model(answers))
    assert metric(log, "success") == 1.0
    assert metric(log, "first_try_success") == 1.0
    assert metric(log, "attempts") == 1.0
    assert metric(log, "status_correct", "total") == 3.0
    assert metric(log, "status_illegal_formula", "total") == 0.0


def test_wrong_then_right_is_success_but_not_first_try(mocks: Any) -> None:
    task = get_task("gp-l")
    answers = mocks.reference_answers("gp-l", "id", 42, 2)
    log = run(gp_l(split="id", seed=42, n=2), mocks.wrong_then_right_model(answers))
    assert metric(log, "success") == 1.0
    assert metric(log, "first_try_success") == 0.0
    assert metric(log, "attempts") == 2.0
    assert log.samples is not None
    for sample in log.samples:
        instance = task.instance("id", 42, int(sample.metadata["index"]))
        wrong = task.verify(instance, mocks.wrong)
        assert values(sample)[f"status_{wrong.status}"] == 1.0
        assert values(sample)["status_correct"] == 1.0
        # The verifier's feedback is the user turn before the second answer.
        roles = [type(m) for m in sample.messages]
        assert roles == [
            ChatMessageUser,
            ChatMessageAssistant,
            ChatMessageUser,
            ChatMessageAssistant,
        ]
        assert sample.messages[1].text == mocks.wrong
        assert sample.messages[2].text == wrong.feedback
        assert sample.messages[3].text == task.reference_answers(instance)[0]


def test_a_model_never_right_spends_the_papers_budget_with_gpbench_rewards(mocks: Any) -> None:
    task = get_task("gp-l")
    log = run(gp_l(split="ood-rule", n=2), mocks.wrong_model())
    assert log.samples is not None
    for sample in log.samples:
        instance = task.instance("ood-rule", int(sample.metadata["seed"]), sample.metadata["index"])
        expected = score_responses(task, instance, [mocks.wrong] * 5, budget=5)
        scores = values(sample)
        assert scores["attempts"] == task.max_attempts == 5
        assert scores["success"] == 0.0
        assert scores["return"] == expected.return_
        assert sample.scores is not None
        assert sample.scores["gpbench"].metadata is not None
        episode = sample.scores["gpbench"].metadata["episode"]
        assert episode["stop_reason"] == expected.stop_reason == "budget_exhausted"
        assert [t["verdict"] for t in episode["turns"]] == [t["verdict"] for t in expected.turns]
        assert [t["response"] for t in episode["turns"]] == [mocks.wrong] * 5
    assert sorted(values(log.samples[0])) == sorted(score_keys(task))


def test_budget_one_makes_it_single_turn(mocks: Any) -> None:
    answers = mocks.reference_answers("gp-l", "id", 7, 1)
    log = run(gp_l(seed=7, n=1, budget=1), mocks.wrong_then_right_model(answers))
    assert metric(log, "success") == 0.0
    assert metric(log, "attempts") == 1.0


def test_samples_carry_the_instance_key_uid_and_reference(mocks: Any) -> None:
    task = get_task("gp-l")
    log = run(gp_l(split="ood-rule", seed=5, n=2), mocks.wrong_model())
    assert log.samples is not None
    by_index = {int(s.metadata["index"]): s for s in log.samples}
    for index, sample in by_index.items():
        instance = task.instance("ood-rule", 5, index)
        options = task.resolve_options({})
        assert sample.id == instance.uid == sample.metadata["uid"]
        assert sample.metadata["instance_key"] == task.instance_key("ood-rule", 5, index, options)
        assert sample.metadata["task"] == f"gp-l@{task.version}"
        assert sample.target == task.reference_answers(instance)
    assert sorted(by_index) == [0, 1]


def test_virl_routes_follow_the_episode_protocol_point_by_point(mocks: Any) -> None:
    task = get_task("virl-l")
    split = task.split("id")
    instance = task.instance("id", split.paper_seed, 0)
    points = task.decision_points(instance)
    answers = mocks.reference_answers("virl-l", "id", split.paper_seed, 1)
    right = values(run(virl_l(n=1), mocks.right_model(answers)).samples[0])  # type: ignore[index]
    assert (right["success"], right["first_try_success"]) == (1.0, 1.0)
    assert right["attempts"] == right["status_correct_action"] == points
    revised = values(run(virl_l(n=1), mocks.wrong_then_right_model(answers)).samples[0])  # type: ignore[index]
    assert (revised["success"], revised["first_try_success"]) == (1.0, 0.0)
    assert revised["attempts"] == 2 * points


def test_gp_vl_prompts_carry_the_rendered_image_as_a_png_data_uri(mocks: Any) -> None:
    task = get_task("gp-vl")
    answers = mocks.reference_answers("gp-vl", "ood-color", 3, 1)
    log = run(gp_vl(split="ood-color", seed=3, n=1), mocks.right_model(answers))
    assert metric(log, "success") == 1.0
    assert log.samples is not None
    # The log stores images once, as attachments: resolve them as `inspect view` does.
    sample = resolve_sample_attachments(log.samples[0])
    assert not isinstance(sample.input, str)
    content = sample.input[0].content
    assert not isinstance(content, str)
    images = [part for part in content if isinstance(part, ContentImage)]
    assert len(images) == 1 and content[0] is images[0]  # first, as in the paper's prompt
    prefix = "data:image/png;base64,"
    assert images[0].image.startswith(prefix)
    shown = Image.open(io.BytesIO(base64.b64decode(images[0].image.removeprefix(prefix))))
    [rendered] = task.images(task.instance("ood-color", 3, 0))
    assert ImageChops.difference(shown.convert("RGB"), rendered.convert("RGB")).getbbox() is None


@pytest.mark.slow
def test_virl_vl_shows_each_decision_points_view(mocks: Any) -> None:
    task = get_task("virl-vl")
    instance = task.instance("id", 1, 0)
    last = task.decision_points(instance) - 1
    answers = mocks.reference_answers("virl-vl", "id", 1, 1)
    seen: list[list[str]] = []

    def answer(messages: list[Any]) -> str:
        seen.append([p.image for p in messages[0].content if isinstance(p, ContentImage)])
        return str(answers[mocks.prompt_key(messages[0])])

    log = run(virl_vl(seed=1, n=1), mocks.mock_model(answer))
    assert metric(log, "success") == 1.0
    # One request per decision point, each showing the views that point's own prompt names.
    images = InstanceImages(task, instance)
    expected = [
        [images.uri(part["path"]) for part in content if part["type"] == "image"]
        for point in range(last + 1)
        for content in [task.episode(instance, start=point).messages[0]["content"]]
    ]
    assert seen == expected
    assert len({uri for uris in seen for uri in uris}) > 1


def test_reference_mode_scores_with_the_paper_codes_statuses(mocks: Any) -> None:
    task = get_task("gp-l")
    log = run(gp_l(n=1, mode="reference"), mocks.wrong_model())
    assert log.samples is not None
    scores = values(log.samples[0])
    counted = {key for key, value in scores.items() if key.startswith("status_") and value}
    assert counted <= {f"status_{s}" for s in task.answer_statuses("reference")}
    assert set(task.answer_statuses("reference")) <= set(statuses(task))
    assert log.samples[0].metadata["mode"] == "reference"


def test_a_limit_that_stops_the_sample_keeps_the_attempts_made(mocks: Any) -> None:
    # Three messages: the prompt, a wrong answer, the feedback; the second answer is never asked.
    [log] = inspect_eval(
        gp_l(n=1), model=mocks.wrong_model(), display="none", message_limit=3, fail_on_error=False
    )
    assert log.samples is not None
    [sample] = log.samples
    assert sample.scores is not None
    assert sample.scores["gpbench"].metadata is not None
    episode = sample.scores["gpbench"].metadata["episode"]
    assert episode["stop_reason"] == "responses_ended"
    assert [t["response"] for t in episode["turns"]] == [mocks.wrong]
    assert values(sample)["attempts"] == 1.0


@pytest.mark.slow
def test_a_local_transformers_checkpoint_runs_the_revision_loop(tmp_path: Path) -> None:
    # inspect's own hf provider on a random 2-layer Llama built offline (~25 s on a CPU).
    pytest.importorskip(
        "transformers", reason="the tiny checkpoint needs: pip install 'gpbench[hf]'"
    )
    from gpbench.tiny_models import build_tiny_llama

    checkpoint = build_tiny_llama(tmp_path / "tiny-llama")
    task = get_task("gp-l")
    [log] = inspect_eval(gp_l(n=1), model=f"hf/{checkpoint}", display="none", max_tokens=8)
    assert log.status == "success", log.error
    assert log.samples is not None
    [sample] = log.samples
    instance = task.instance("id", int(sample.metadata["seed"]), int(sample.metadata["index"]))
    answers = [m.text for m in sample.messages if isinstance(m, ChatMessageAssistant)]
    feedback = [m.text for m in sample.messages[2::2]]
    if task.verify(instance, answers[0]).correct:  # a random model solving it: nothing to check
        pytest.skip("the random checkpoint answered correctly")
    assert len(answers) == values(sample)["attempts"]
    # After every failed answer the next user turn is the verifier's feedback on it.
    assert feedback == [task.verify(instance, a).feedback for a in answers[: len(feedback)]]
