"""Table-driven and property tests of the GeneralPoints verifier (TASKS.md §1 and §5)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.generators.cards import solve
from gpbench.records import Instance
from gpbench.tasks import gp_scoring
from gpbench.tasks.gp_scoring import feedback_text, verify
from gpbench.tasks.registry import get_task

TASK = get_task("gp-l")
HAND = {"cards": ["A", "3", "K", "6"], "values": [1, 3, 10, 6], "target": 24}


def judge(answer: str, **kw: object) -> tuple[str, list[str], float]:
    v = verify(answer, rule_is_training=True, **{**HAND, **kw})  # type: ignore[arg-type]
    return v.status, v.statuses, v.reward


@pytest.mark.parametrize(
    ("answer", "status", "reward"),
    [
        (
            '{"cards": ["A", "3", "K", "6"], "number": [1, 3, 10, 6], "formula": "(3*10-6)*1=24"}',
            "correct",
            5.0,
        ),
        (
            "{'cards': ['A', '3', 'K', '6'], 'number': [1, 3, 10, 6], 'formula': '(3*10-6)*1=24',}",
            "correct",
            5.0,
        ),
        ('```json\n{"formula": "( 3 * 10 - 6 ) * 1 = 24"}\n```', "correct", 5.0),
        ('Let me think.\n{"formula": "(3*10-6)*1"}\nDone.', "correct", 5.0),
        ('{"formula": "1+1"}\n... actually:\n{"formula": "(3*10-6)*1=24"}', "correct", 5.0),
        ('{"formula": "(3*10-6)*1=24"}\n{"formula": "1+3+10+6"}', "wrong_value", -1.0),
        ('{"formula": "1+3+10+6=24"}', "wrong_value", -1.0),
        ('{"formula": "4*6*1*1"}', "wrong_numbers", -4.0),
        ('{"formula": "24"}', "wrong_numbers", -4.0),
        ('{"formula": "(3*10-6)*1*1"}', "wrong_numbers", -2.0),  # a card used twice
        ('{"formula": "3*10-6"}', "wrong_numbers", -2.0),  # the ace unused
        ('{"formula": "(3*10-6)*1 + 0"}', "wrong_numbers", -2.0),  # 0 is not on the cards
        ('{"formula": "1/(3-3)+10+6"}', "wrong_numbers", -2.0),
        ('{"formula": "6/(3-3)*10*1"}', "wrong_numbers", -2.0),
        ('{"formula": "1/(10-10)*3*6"}', "wrong_numbers", -2.0),
        ('{"formula": "6/(1-1)+3+10"}', "wrong_numbers", -2.0),
        ("{\"formula\": \"__import__('os').system('true')\"}", "illegal_formula", -3.0),
        ('{"formula": "9**9**9"}', "illegal_formula", -3.0),
        ('{"formula": "3^10-6+1"}', "illegal_formula", -3.0),
        ('{"formula": "(3*10-6)*1)"}', "illegal_formula", -3.0),
        ('{"formula": "٣*10-6+1"}', "illegal_formula", -3.0),
        ('{"formula": "3×10−6"}', "illegal_formula", -3.0),
        ("I cannot solve this.", "illegal_formula", -3.0),
        ("", "illegal_formula", -3.0),
        ("(3*10-6)*1=24", "correct", 5.0),  # a bare formula line is read too
    ],
)
def test_table(answer: str, status: str, reward: float) -> None:
    got_status, statuses, got_reward = judge(answer)
    assert (got_status, got_reward) == (status, reward), statuses


def test_division_by_zero_with_the_right_cards_is_wrong_value() -> None:
    hand = {"cards": ["A", "A", "2", "3"], "values": [1, 1, 2, 3], "target": 24}
    v = verify('{"formula": "2*3/(1-1)"}', rule_is_training=True, **hand)  # type: ignore[arg-type]
    assert (v.status, v.reward) == ("wrong_value", -1.0)


def test_three_three_eight_eight_is_winnable_but_not_in_reference_mode() -> None:
    hand = {"cards": ["3", "3", "8", "8"], "values": [3, 3, 8, 8], "target": 24}
    answer = '{"formula": "8/(3-8/3)=24"}'
    assert verify(answer, rule_is_training=True, **hand).correct  # type: ignore[arg-type]
    ref = verify(answer, rule_is_training=True, mode="reference", **hand)  # type: ignore[arg-type]
    assert (ref.status, ref.reward) == ("wrong_value", -1.0)


def test_reference_mode_quirks() -> None:
    spaced = '{"formula": "(3*10 - 6)*1=24"}'
    assert judge(spaced)[0] == "correct"
    assert judge(spaced, mode="reference")[:3:2] == ("illegal_formula", -3.0)
    # An unparseable prefix of a solution earns +1 in the paper's code.
    assert judge('{"formula": "((3*10)-6"}', mode="reference") == (
        "solution_prefix",
        ["solution_prefix"],
        1.0,
    )
    assert judge('{"formula": "((3*10)-6"}')[0] == "illegal_formula"


def test_feedback_text_names_every_reason() -> None:
    v = verify('{"formula": "4*6*1*1"}', rule_is_training=True, **HAND)  # type: ignore[arg-type]
    assert v.feedback.startswith("You failed this trial because ")
    assert "not on the cards" in v.feedback and "does not use every card" in v.feedback
    assert v.feedback.endswith(".")
    assert feedback_text([]) == ""


def test_train_rule_answer_flag_on_ood_rule() -> None:
    # K counts 13 under the OOD rule; the answer treats it as 10 (the training rule).
    hand = {"cards": ["A", "3", "K", "6"], "values": [1, 3, 13, 6], "target": 24}
    v = verify('{"formula": "(3*10-6)*1=24"}', rule_is_training=False, **hand)  # type: ignore[arg-type]
    assert not v.correct and v.status == "wrong_numbers"
    assert "train_rule_answer" in v.flags
    # The same answer under the training rule is simply correct, with no such flag.
    v = verify('{"formula": "(3*10-6)*1=24"}', rule_is_training=True, **HAND)  # type: ignore[arg-type]
    assert v.correct and "train_rule_answer" not in v.flags


def test_verbatim_training_formula_flag() -> None:
    hand = {"cards": ["A", "3", "K", "6"], "values": [1, 3, 13, 6], "target": 24}
    replay = solve([1, 3, 10, 6], 24)
    assert replay is not None
    v = verify(f'{{"formula": "{replay} = 24"}}', rule_is_training=False, **hand)  # type: ignore[arg-type]
    assert "verbatim_training_formula" in v.flags
    other = verify('{"formula": "(10*3-6)*1"}', rule_is_training=False, **hand)  # type: ignore[arg-type]
    assert "verbatim_training_formula" not in other.flags


def test_output_truncated_is_a_flag_not_a_status() -> None:
    v = verify('{"formula": "(3*10-6', rule_is_training=True, output_truncated=True, **HAND)  # type: ignore[arg-type]
    assert v.status == "illegal_formula" and "output_truncated" in v.flags


@pytest.mark.parametrize(
    "answer",
    [
        "(" * 10_000 + "1" + ")" * 10_000,
        '{"formula": "' + "(" * 10_000 + '1"}',
        "x" * 1_000_000,
        '{"formula": "' + "1+" * 300_000 + '1"}',
        "{" * 100_000,
        "[" * 100_000,
        '{"formula": "99999999999*99999999999"}',
        '{"formula": "' + "*".join(["999999"] * 80) + '"}',
    ],
)
def test_hostile_answers_return_quickly(answer: str) -> None:
    start = time.perf_counter()
    v = verify(answer, rule_is_training=True, **HAND)  # type: ignore[arg-type]
    assert time.perf_counter() - start < 2.0  # generous: a hang or blow-up would take far longer
    assert not v.correct


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_verifier_is_total(answer: str) -> None:
    v = verify(answer, rule_is_training=False, **HAND)  # type: ignore[arg-type]
    assert v.status in {"correct", "illegal_formula", "wrong_numbers", "wrong_value"}
    assert v.correct == (v.status == "correct")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 13), min_size=4, max_size=4), st.sampled_from([24, 10, 36]))
def test_verifier_agrees_with_the_exact_solver(values: list[int], target: int) -> None:
    formula = solve(values, target)
    if formula is None:
        return
    cards = [str(v) if 2 <= v <= 10 else {1: "A", 11: "J", 12: "Q", 13: "K"}[v] for v in values]
    v = verify(
        f'{{"formula": "{formula}={target}"}}',
        cards=cards,
        values=values,
        target=target,
        rule_is_training=False,
    )
    assert v.correct


@pytest.mark.parametrize("split", list(TASK.splits))
def test_every_generated_reference_answer_verifies(split: str) -> None:
    for inst in TASK.dataset(split, 42, 150):
        verdict = TASK.verify(inst, TASK.reference_answer(inst))
        assert verdict.correct, (inst.problem, verdict)


def test_verify_through_the_task_uses_the_split_rule() -> None:
    inst: Instance = TASK.instance("ood-rule", 42, 0)
    assert inst.problem["cards"] == ["3", "A", "K", "8"]
    assert TASK.verify(inst, '{"formula": "(13+8+3)*1=24"}').correct
    assert "train_rule_answer" in TASK.verify(inst, '{"formula": "(10-1)*8/3"}').flags


def test_long_formula_line_is_linear() -> None:
    line = "1" * 4095 + "a"  # a pattern like ^[C]*\d[C]*$ backtracks quadratically here
    start = time.perf_counter()
    for _ in range(20):
        assert gp_scoring.extract_formula(line) is None
    # A hang guard (the quadratic pattern took ~0.3 s a call here), not a speed target.
    assert (time.perf_counter() - start) / 20 < 0.1
