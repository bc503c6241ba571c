"""virl-l: splits, episode protocol, rewards and policies (docs/tasks.md §2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.generators.cities import landmark_names
from gpbench.records import Instance
from gpbench.serialization import to_json
from gpbench.tasks.navigation import (
    COMPASS_WORDS,
    normalize_action,
    observation_line,
    route_is_heldout,
    true_observation,
    verify_action,
)
from gpbench.tasks.registry import get_task

TASK = get_task("virl-l")
SPLITS = list(TASK.splits)


def _answer(action: str, observation: str = "No landmarks nearby") -> str:
    return json.dumps(
        {"current observation": observation, "current instruction": "1.", "action": action}
    )


def _run(inst: Instance, policy: object) -> tuple[bool, float]:
    env = TASK.episode(inst)
    while not env.terminated:
        action = policy(inst, env.decision_point)  # type: ignore[operator]
        env.step(_answer(action))
    return env.stop_reason == "solved", 0.0


@pytest.mark.parametrize("split", SPLITS)
def test_reference_policy_solves_every_route(split: str) -> None:
    for inst in TASK.dataset(split, 12, 12):
        env = TASK.episode(inst)
        for answer in TASK.reference_answers(inst):
            step = env.step(answer)
            assert step.verdict.correct, (split, inst.index, step.verdict)
        assert env.terminated and env.stop_reason == "solved"


def test_always_forward_and_random_policies_fail() -> None:
    instances = list(TASK.dataset("id", 12, 24))
    forward = sum(_run(i, lambda inst, k: "forward()")[0] for i in instances)
    assert forward == 0  # every route starts with a turn

    def random_policy(inst: Instance, k: int) -> str:
        from gpbench.generators.rng import KeyedRng

        choices = ["forward()", "stop()", *(f"turn_direction({w})" for w in COMPASS_WORDS)]
        return KeyedRng(f"policy/{inst.uid}/{k}").choice(choices)

    assert sum(_run(i, random_policy)[0] for i in instances) <= 1


def test_wrong_actions_retry_then_end_with_the_budget_penalty() -> None:
    inst = TASK.instance("id", 12, 0)
    env = TASK.episode(inst)
    first = env.step(_answer("stop()", "No landmarks nearby"))
    assert not first.verdict.correct and not first.terminated
    assert first.verdict.feedback.startswith("You failed this trial because ")
    assert env.messages[-1] == {"role": "user", "content": first.verdict.feedback}
    assert env.messages[-2]["role"] == "assistant"
    second = env.step("no json at all")
    assert second.verdict.status == "unparseable"
    assert second.terminated and env.stop_reason == "budget_exhausted"
    assert second.reward == -1.0 + -1.0


def test_correct_action_rebuilds_the_prompt_with_history() -> None:
    inst = TASK.instance("id", 12, 1)
    env = TASK.episode(inst)
    env.step(TASK.reference_answers(inst)[0])
    [message] = env.messages
    text = message["content"]
    assert f"A_1: {inst.problem['actions'][0]}" in text
    assert re.search(r"\nO_2: .*\nA_2:\n", text)


def test_wrong_observation_of_the_intersection_costs_more() -> None:
    inst = TASK.instance("id", 12, 2)
    point = inst.problem["points"][0]
    wrong_claim = "No landmarks" if point["is_intersection"] else "You observe an intersection"
    verdict = TASK.verify(inst, _answer("stop()", wrong_claim))
    assert (verdict.status, verdict.reward) == ("wrong_action_and_observation", -1.5)
    right_claim = "You observe an intersection" if point["is_intersection"] else "nothing"
    verdict = TASK.verify(inst, _answer("stop()", right_claim))
    assert (verdict.status, verdict.reward) == ("wrong_action", -1.0)


def test_train_vocabulary_flag_on_ood_rule() -> None:
    inst = TASK.instance("ood-rule", 12, 0)
    assert inst.problem["actions"][0].startswith("turn_direction(")
    assert inst.problem["actions"][0][15:-1] in ("left", "right", "slightly left", "slightly right")
    verdict = TASK.verify(inst, _answer("turn_direction(north)"))
    assert "train_vocabulary_action" in verdict.flags and not verdict.correct


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("forward()", "forward()"),
        (" Forward ( ) ", "forward()"),
        ("turn_direction('east')", "turn_direction(east)"),
        ('turn_direction("slightly  left")', "turn_direction(slightly left)"),
        ("turn_direction(EAST)", "turn_direction(east)"),
        ("go north", None),
        ("turn_direction(east); stop()", None),
        ("", None),
    ],
)
def test_action_normalization(text: str, expected: str | None) -> None:
    assert normalize_action(text) == expected


def test_ood_spatial_cities_share_nothing_with_training_cities() -> None:
    train = [TASK.instance("train", 0, i) for i in range(60)]
    ood = list(TASK.dataset("ood-spatial", 12, 18))
    assert {i.problem["city_id"] for i in train}.isdisjoint({i.problem["city_id"] for i in ood})
    assert {i.problem["layout"] for i in train} <= {"grid", "skewed_grid"}
    assert {i.problem["layout"] for i in ood}.isdisjoint({"grid", "skewed_grid"})
    train_names = set(landmark_names("train"))
    for inst in ood:
        names = {lm["name"] for lm in inst.problem["city"]["landmarks"]}
        assert names.isdisjoint(train_names)
    # Two routes per unseen city, nine cities, like the VLN mini benchmark.
    assert len({i.problem["city_id"] for i in ood}) == 9


def test_training_cities_are_a_fixed_finite_family() -> None:
    cities = {TASK.instance("train", 0, i).problem["city_id"] for i in range(200)}
    assert len(cities) <= 20
    assert cities == cities | {TASK.instance("id", 12, i).problem["city_id"] for i in range(48)}


def test_train_never_emits_an_id_heldout_route() -> None:
    train = {TASK.content_key(i) for i in TASK.dataset("train", 0, 300)}
    heldout = list(TASK.dataset("id-heldout", 12, 48))
    assert train.isdisjoint({TASK.content_key(i) for i in heldout})
    from gpbench.generators.routes import Route

    assert all(
        route_is_heldout(i.problem["city_id"], Route.from_json(i.problem["route"])) for i in heldout
    )


def test_first_prompt_follows_the_paper_format() -> None:
    inst = TASK.instance("ood-rule", 12, 3)
    text = inst.messages[0]["content"]
    for header in (
        "[Task Description]",
        "[Instruction]",
        "[Action space]",
        "[Observations and actions sequence]",
        "[Output]",
    ):
        assert header in text
    assert "'slightly left'" in text and "'northeast'" not in text
    assert re.search(r"\nO_1: .+\nA_1:\n", text)
    assert '"current observation": latest observation' in text


def test_an_ood_city_without_routes_gives_way_to_the_pairs_next_city() -> None:
    """Seed 21's ood-spatial cities for the pairs (8, 9) and (16, 17) offer no route meeting the
    split's constraints: those instances raised "no route found" (every split and seed must
    build). Now the pair's next city is drawn; both routes of a pair still share one city, and
    the cities that had routes keep their instances (the goldens pin those)."""
    instances = list(TASK.dataset("ood-spatial", 21, 18))
    cities = [inst.problem["city_id"] for inst in instances]
    assert all(cities[i] == cities[i + 1] for i in range(0, 18, 2))
    assert len(set(cities)) == 9
    for inst in instances:
        env = TASK.episode(inst)
        for answer in TASK.reference_answers(inst):
            env.step(answer)
        assert env.stop_reason == "solved", inst.index


# --- reference mode: the paper code's scoring -------------------------------------------------

_INTERSECTION = "; You observe an intersection"


def _case_instance(task_id: str, row: dict[str, str]) -> Instance:
    """A one-point route holding a shared case's true action and observation."""
    observation = row["gt_observation"]
    at_intersection = observation.endswith(_INTERSECTION)
    point = {
        "observation": observation.removesuffix(_INTERSECTION),
        "is_intersection": at_intersection,
        "landmarks": [],
    }
    problem = {
        "vocabulary": "absolute" if row["split"] == "id" else "relative",
        "actions": [row["gt_action"]],
        "points": [point],
    }
    return Instance("case", task_id, 1, row["split"], 0, 0, problem, {}, {}, [])


@pytest.mark.parametrize("task_id", ["virl-l", "virl-vl"])
def test_every_shared_case_scores_as_the_paper_through_the_task(task_id: str) -> None:
    """``task.verify(..., mode="reference")`` gives each case's reward and the paper's text."""
    path = Path(__file__).parent / "data" / "paper_reference" / "virl_cases.jsonl"
    with path.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    assert len(rows) == 792
    task = get_task(task_id)
    wrong = []
    for row in rows:
        verdict = task.verify(_case_instance(task_id, row), row["response"], mode="reference")
        if row["paper_feedback"] == "Correct action.":
            expected = (float(row["paper_reward"]), "")
        else:
            expected = (
                row["paper_reward"],
                f"You failed this trial because {row['paper_feedback']}",
            )
        if (verdict.reward, verdict.feedback) != expected:
            wrong.append((row["case"], verdict.reward, verdict.feedback))
    assert wrong == []


def test_true_observation_carries_the_intersection_as_the_prompt_writes_it() -> None:
    inst = TASK.instance("id", 12, 0)
    for number, point in enumerate(inst.problem["points"], start=1):
        line = observation_line(number, point).split(": ", 1)[1]
        assert true_observation(point) == line.removesuffix(";")


@pytest.mark.parametrize(
    ("answer", "status", "statuses", "reward"),
    [
        (
            '{"action": "stop()", "current observation": "x"}',
            "wrong_action",
            ["wrong_action"],
            -1.0,
        ),
        (
            '{"action": "stop()", "current observation": "an intersection"}',
            "wrong_action_and_observation",
            ["wrong_action_and_observation"],
            -1.5,
        ),
        ("{'action': 'forward()'}", "unparseable", ["unparseable"], -1.0),
        (
            '{"current observation": "an intersection"}',
            "unparseable",
            ["unparseable", "wrong_action_and_observation"],
            -1.5,
        ),
        ('{"action": "Forward()"}', "wrong_action", ["wrong_action"], -1.0),  # no normalising
    ],
)
def test_reference_mode_statuses(
    answer: str, status: str, statuses: list[str], reward: float
) -> None:
    problem = {
        "vocabulary": "absolute",
        "actions": ["forward()"],
        "points": [{"observation": "No landmarks nearby", "is_intersection": False}],
    }
    verdict = verify_action(problem, 0, answer, mode="reference")
    assert (verdict.status, verdict.statuses, verdict.reward) == (status, statuses, reward)
    assert verdict.feedback.startswith("You failed this trial because you ")
    assert (verdict.extracted["action"] is None) == (status == "unparseable")


@pytest.mark.parametrize("task_id", ["virl-l", "virl-vl"])
def test_reference_answers_solve_routes_in_reference_mode(task_id: str) -> None:
    task = get_task(task_id)
    for split in ("id", "ood-rule"):
        for inst in task.dataset(split, 12, 3):
            env = task.episode(inst, mode="reference")
            for answer in task.reference_answers(inst):
                step = env.step(answer)
                assert (step.verdict.status, step.verdict.reward) == ("correct_action", 1.0)
            assert env.stop_reason == "solved"
    assert task.answer_statuses("reference") == task.answer_statuses("gpbench")


def test_reference_mode_flags_a_compass_word_on_the_relative_rule() -> None:
    inst = TASK.instance("ood-rule", 12, 0)
    verdict = TASK.verify(inst, '{"action": "turn_direction(north)"}', mode="reference")
    assert inst.problem["actions"][0].startswith("turn_direction(")  # routes start with a turn
    assert not verdict.correct and "train_vocabulary_action" in verdict.flags


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        TASK.verify(TASK.instance("id", 12, 0), "{}", mode="paper")


HOSTILE_REFERENCE = [
    "",
    "\x00" * 1000,
    '{"action": "\\ud800", "current observation": "\\udfff intersection"}',
    "\ud800\udfff lone surrogates \udc00",
    '{"action": ' + "9" * 1_000_000 + "}",  # a 1 MB number
    '{"action": "' + "x" * 1_000_000 + '"}',
    "[" * 200_000 + "]" * 200_000,
    '{"a": ' * 50_000 + "1" + "}" * 50_000,  # deeper than any recursion limit
    '{"current observation": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '"action": "' * 100_000,
    '{"current observation": ["intersection"], "action": ["forward()"]}',
    '{"current observation": 7, "action": null}',
]


def _reference_verdict_is_sound(task_id: str, answer: str) -> None:
    task = get_task(task_id)
    inst = task.instance("id", 12, 0)
    for point in range(2):
        env = task.episode(inst, start=point, mode="reference")
        verdict = env.step(answer).verdict
        assert verdict.status in task.answer_statuses("reference")
        assert verdict.reward in (1.0, -1.0, -1.5)
        line = to_json(verdict).encode("utf-8")  # storable, and linear in the answer
        assert len(line) <= 8 * len(answer.encode("utf-8", "surrogatepass")) + 8192


@pytest.mark.parametrize("task_id", ["virl-l", "virl-vl"])
@pytest.mark.parametrize("answer", HOSTILE_REFERENCE, ids=range(len(HOSTILE_REFERENCE)))
def test_reference_mode_is_total_and_bounded_on_hostile_strings(task_id: str, answer: str) -> None:
    _reference_verdict_is_sound(task_id, answer)


_PIECES = st.sampled_from(
    [
        *('{"action": "', '"current observation": "', "intersection", "forward()"),
        *("\x00", "\ud800", "9" * 5000, "]", "}", "{", "[", '"', " ", "\n"),
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(_PIECES, st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)),
        max_size=60,
    ),
    st.sampled_from(["virl-l", "virl-vl"]),
)
def test_reference_mode_never_raises_on_composed_strings(parts: list[str], task_id: str) -> None:
    _reference_verdict_is_sound(task_id, "".join(parts))
