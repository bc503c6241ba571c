"""RL rewards: exactly the verifier's reward, on hostile answers too; shaping kept apart."""

from __future__ import annotations

import json

import pytest

from gpbench.errors import ConfigError
from gpbench.recipes.data import REF_COLUMN, examples
from gpbench.recipes.rewards import (
    FormatShaping,
    VerifierReward,
    completion_text,
    reward_functions,
)
from gpbench.tasks.navigation import verify_action
from gpbench.tasks.registry import get_task

HOSTILE = [
    "",
    "24",
    "{",
    "}" * 5000,
    "(" * 10_000 + "1" + ")" * 10_000,
    "x" * 200_000,
    "{\"formula\": \"__import__('os').system('true')=24\"}",
    '{"formula": "4*6*1*1=24"}',
    '{"formula": "4*6+1/2=24"}',
    '{"formula": "9**99999999=24"}',
    '{"cards": [1,2,3,4], "formula": "1/0=24"}',
    '{"action": "turn_direction(north)", "current observation": "an intersection"}',
    '{"action": "forward()"}',
    "```json\n{'formula': '(1+2+3)*4=24',}\n```",
    "\x00\ud7ff\u202e{" + '"formula": "1+2"',
    "{" * 100_000,
]


def _gp_items(task_id: str, n: int) -> list[tuple[str, object, str]]:
    task = get_task(task_id)
    return [
        (ex.ref.to_json(), ex.instance, ex.answer)
        for ex in examples(task, task.dataset("train", 0, n))
    ]


@pytest.mark.parametrize("task_id", ["gp-l", "gp-vl"])
def test_single_turn_reward_equals_the_verifier_reward(task_id: str) -> None:
    task = get_task(task_id)
    reward = VerifierReward()
    for ref, instance, reference in _gp_items(task_id, 4):
        answers = [*HOSTILE, reference]
        got = reward([None] * len(answers), answers, **{REF_COLUMN: [ref] * len(answers)})
        want = [task.verify(instance, a).reward for a in answers]  # type: ignore[arg-type]
        assert got == want
        assert got[-1] == 5.0


def test_conversational_completions_are_read_like_strings() -> None:
    ref, _, reference = _gp_items("gp-l", 1)[0]
    reward = VerifierReward()
    forms = [
        reference,
        [{"role": "assistant", "content": reference}],
        [{"role": "assistant", "content": [{"type": "text", "text": reference}]}],
    ]
    assert reward([None] * 3, forms, **{REF_COLUMN: [ref] * 3}) == [5.0, 5.0, 5.0]
    assert completion_text(None) == "" and completion_text([]) == ""


def test_virl_reward_is_the_verifier_reward_at_the_item_decision_point() -> None:
    task = get_task("virl-l")
    instance = task.instance("train", 0, 5)
    items = list(examples(task, [instance]))
    reward = VerifierReward()
    for example in items:
        answers = [*HOSTILE, example.answer]
        got = reward(
            [None] * len(answers), answers, **{REF_COLUMN: [example.ref.to_json()] * len(answers)}
        )
        want = [verify_action(instance.problem, example.ref.point, a).reward for a in answers]
        assert got == want
        assert got[-1] == 1.0


def test_multi_turn_reward_is_the_episode_return() -> None:
    ref, instance, reference = _gp_items("gp-l", 1)[0]
    task = get_task("gp-l")
    reward = VerifierReward(budget=5)
    bad = '{"formula": "1+1=24"}'  # wrong numbers: -2 (numbers off the cards) or more
    single = task.verify(instance, bad).reward  # type: ignore[arg-type]
    cases = {
        json.dumps([reference]): 5.0,
        json.dumps([bad, reference]): single + 5.0,
        json.dumps([bad] * 5): 5 * single - 1.0,  # budget spent: the -1 penalty
        json.dumps([bad] * 7): 5 * single - 1.0,  # attempts beyond the budget are not judged
        json.dumps([reference, bad]): 5.0,  # nothing after a correct attempt counts
    }
    got = reward(
        [None] * len(cases),
        ["ignored"] * len(cases),
        attempts=list(cases),
        **{REF_COLUMN: [ref] * len(cases)},
    )
    assert got == list(cases.values())


def test_multi_turn_virl_stops_at_the_point_and_counts_the_penalty() -> None:
    task = get_task("virl-l")
    example = list(examples(task, [task.instance("train", 0, 2)]))[1]
    env = task.episode(example.instance, budget=2, start=1)
    wrong = '{"action": "stop()", "current observation": ""}'
    first = env.step(wrong).reward
    second = env.step(wrong)
    assert second.terminated
    reward = VerifierReward(budget=2)
    got = reward(
        [None, None],
        ["", ""],
        attempts=[json.dumps([wrong, wrong]), json.dumps([wrong, example.answer])],
        **{REF_COLUMN: [example.ref.to_json()] * 2},
    )
    assert got == [first + second.reward, first + 1.0]
    assert second.reward == first - 1.0


def test_shaping_is_separate_named_and_off_by_default() -> None:
    assert [f.__name__ for f in reward_functions({})] == ["gpbench_verifier"]
    funcs = reward_functions({"format": 0.5})
    assert [f.__name__ for f in funcs] == ["gpbench_verifier", "shaping_format"]
    ref, _, reference = _gp_items("gp-l", 1)[0]
    shaping = funcs[1]
    assert isinstance(shaping, FormatShaping)
    values = shaping(
        [None] * 3, [reference, "junk", '{"formula": "1+1=24"}'], **{REF_COLUMN: [ref] * 3}
    )
    assert values == [0.5, 0.0, 0.5]
    with pytest.raises(ConfigError, match="unknown shaping 'formt'; did you mean 'format'"):
        reward_functions({"formt": 1.0})


def test_verifier_mode_reference_reaches_the_reward_with_the_paper_codes_values() -> None:
    """``--set verifier_mode=reference``: the recipe's config carries it to the reward functions,
    which then score completions as the paper's code did."""
    from gpbench.recipes.rl import resolve

    config = resolve("tiny-cpu", {"verifier_mode": "reference"})
    [paper_reward] = reward_functions({}, mode=config.verifier_mode)
    [default_reward] = reward_functions({})
    ref, instance, reference = _gp_items("gp-l", 1)[0]
    formula = instance.reference["formula"]  # type: ignore[attr-defined]
    completions = [
        reference,  # the paper's own format: +5 in both modes
        json.dumps({"formula": formula.replace("=", " = ")}),  # a space: illegal for the paper
        f"Here is the formula: {formula}",  # no JSON key: the paper extracts nothing
        "nothing",
    ]
    refs = {REF_COLUMN: [ref] * len(completions)}
    assert paper_reward([None] * 4, completions, **refs) == [5.0, -3.0, -3.0, -3.0]
    assert default_reward([None] * 4, completions, **refs) == [5.0, 5.0, 5.0, -3.0]


def test_verifier_mode_reference_scores_virl_actions_exactly() -> None:
    task = get_task("virl-l")
    [example, *_] = examples(task, [task.instance("train", 0, 5)])
    action = example.instance.reference["actions"][0]  # the first example is point 0
    upper = json.dumps({"action": action.upper()})  # the paper compares the string exactly
    refs = {REF_COLUMN: [example.ref.to_json()] * 2}
    paper = VerifierReward(mode="reference")([None] * 2, [example.answer, upper], **refs)
    default = VerifierReward()([None] * 2, [example.answer, upper], **refs)
    assert paper[0] == default[0] == default[1] == 1.0 and paper[1] in (-1.0, -1.5)


def test_an_unknown_verifier_mode_is_a_one_line_config_error() -> None:
    from gpbench.recipes.rl import resolve

    with pytest.raises(ConfigError, match="verifier_mode must be gpbench or reference"):
        resolve("tiny-cpu", {"verifier_mode": "paper"})
