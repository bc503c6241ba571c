"""Table-driven and property tests of the GeneralPoints verifier (docs/tasks.md §1 and §5)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.generators.cards import solve
from gpbench.records import Instance, Verdict
from gpbench.serialization import to_json
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
    # The paper's float check misses 24 and no later rule applies: 0, no reason, a wrong value.
    assert (ref.correct, ref.status, ref.reward) == (False, "wrong_value", 0.0)


@pytest.mark.parametrize(
    ("answer", "status", "statuses", "reward", "reasons"),
    [
        ('{"formula": "(3*10-6)*1=24"}', "correct", ["correct"], 5.0, ""),
        (
            '{"formula": "(3*10 - 6)*1=24"}',
            "illegal_formula",
            ["illegal_formula"],
            -3.0,
            "illegal characters",
        ),
        (
            "formula: (3*10-6)*1=24",
            "illegal_formula",
            ["illegal_formula"],
            -3.0,
            "illegal characters",
        ),
        (
            '{"formula": "1*(3*10-6"}',
            "solution_prefix",
            ["solution_prefix"],
            1.0,
            "partial solution",
        ),
        (
            '{"formula": "3++10-6+1"}',
            "illegal_formula",
            ["illegal_formula"],
            -3.0,
            "invalid sequence after operator",
        ),
        (
            '{"formula": "3++10"}',
            "illegal_formula",
            ["illegal_formula", "wrong_numbers"],
            -5.0,
            "invalid sequence after operator, you didn't use numbers: [1, 6]",
        ),
        (
            '{"formula": "4*6*1*1"}',
            "wrong_numbers",
            ["wrong_numbers"],
            -4.0,
            "you used invalid numbers: [4], you didn't use numbers: [3, 10]",
        ),
        (
            '{"formula": "1+3+10+6"}',
            "wrong_value",
            ["wrong_value"],
            -1.0,
            "1 is partially correct but the full formula does not match any solution",
        ),
    ],
)
def test_reference_mode_statuses_rewards_and_paper_feedback(
    answer: str, status: str, statuses: list[str], reward: float, reasons: str
) -> None:
    v = verify(answer, rule_is_training=True, mode="reference", **HAND)  # type: ignore[arg-type]
    assert (v.status, v.statuses, v.reward) == (status, statuses, reward)
    assert v.feedback == (f"You failed this trial because {reasons}." if reasons else "")


def test_reference_mode_without_a_formula_reads_as_no_answer() -> None:
    v = verify("I cannot solve this.", rule_is_training=True, mode="reference", **HAND)  # type: ignore[arg-type]
    assert (v.status, v.reward, v.extracted["formula"]) == ("illegal_formula", -3.0, None)


def test_reference_mode_keeps_the_memorization_flags() -> None:
    hand = {"cards": ["A", "3", "K", "6"], "values": [1, 3, 13, 6], "target": 24}
    answer = '{"formula": "(3*10-6)*1=24"}'
    v = verify(answer, rule_is_training=False, mode="reference", **hand)  # type: ignore[arg-type]
    assert v.status == "wrong_numbers" and "train_rule_answer" in v.flags


def _paper_cases() -> list[dict[str, object]]:
    path = Path(__file__).parent / "data" / "paper_reference" / "gp_cases.jsonl"
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _vision_response(response: str, cards: list[str]) -> tuple[str, bool]:
    """A case's response for gp-vl: a JSON object gets the true cards (then gp-l's result is
    expected); any other response is kept and, its cards unreadable, must be -1.5."""
    try:
        parsed = json.loads(response)
    except (ValueError, RecursionError):
        return response, False
    if not isinstance(parsed, dict):
        return response, False
    return json.dumps({**parsed, "cards": cards}), True


@pytest.mark.parametrize("task_id", ["gp-l", "gp-vl"])
def test_every_shared_case_scores_as_the_paper_through_the_task(task_id: str) -> None:
    """Through ``task.verify(..., mode="reference")``: the paper's reward and feedback per case."""
    task = get_task(task_id)
    rows = _paper_cases()
    assert len(rows) == 760
    wrong = []
    vision_scored = 0
    for row in rows:
        rule = "jqk=10" if row["split"] == "id" else "jqk=11/12/13"
        cards = list(row["cards"])  # type: ignore[call-overload]
        problem = {"cards": cards, "values": row["values"], "target": 24, "rule": rule}
        inst = Instance("case", task_id, 1, str(row["split"]), 0, 0, problem, {}, {}, [])
        response, scored = str(row["response"]), True
        if task_id == "gp-vl":
            response, scored = _vision_response(response, cards)
            vision_scored += scored
        verdict = task.verify(inst, response, mode="reference")
        if not scored:
            expected = (-1.5, "You failed this trial because you recognized wrong cards.")
        elif row["paper_feedback"] == "Correct solution.":
            expected = (5.0, "")
        else:
            expected = (
                float(row["paper_reward"]),  # type: ignore[arg-type]
                f"You failed this trial because {row['paper_feedback']}",
            )
        if (verdict.reward, verdict.feedback) != expected:
            wrong.append((row["case"], verdict.reward, verdict.feedback))
    assert wrong == []
    assert task_id == "gp-l" or vision_scored > 100  # most cases reach the formula in gp-vl too


PROSE = (
    "Here's a step-by-step approach to derive the formula:\n\n"
    "1. We have the numbers 1, 3, 10 and 6.\n"
    "2. Multiply 3 by 10 to get 30, subtract 6 to get 24, then multiply by 1.\n\n"
)

# Real-looking chain-of-thought answers to A 3 K 6 (1, 3, 10, 6), with a careful reader's
# verdict: the equation the answer ends on, whatever prose, markup or labels surround it.
CHAIN_OF_THOUGHT = [
    ("prose then equation", PROSE + "(3*10 - 6)*1 = 24", "correct"),
    (
        "prose, reworded",
        PROSE.replace("derive the formula:", "derive it:") + "(3*10-6)*1 = 24",
        "correct",
    ),
    ("prose then a card left over", PROSE + "3*10 - 6 = 24", "wrong_numbers"),
    ("prose then a wrong value", PROSE + "1*3*(10-6) = 24", "wrong_value"),
    ("prose and no equation", PROSE + "I could not find one.", "illegal_formula"),
    (
        "issue counterfactual",
        "Here's how to derive the formula:\n\n5*5 - 10/10 = 24",
        "wrong_numbers",
    ),
    ("markdown label", "**Step 1:** think.\n\n**Final answer:** (3*10 - 6)*1 = 24", "correct"),
    ("markdown bold", "The answer:\n\n**(3*10 - 6) * 1 = 24**", "correct"),
    ("markdown list item", "- Formula: (3*10-6)*1 = 24", "correct"),
    ("latex display", "We need 24.\n\\[\n(3*10 - 6)*1 = 24\n\\]\nDone.", "correct"),
    ("latex one line", "\\[ (3*10-6)*1 = 24 \\]", "correct"),
    ("latex times", "\\[ (3 \\times 10 - 6) \\times 1 = 24 \\]", "illegal_formula"),
    ("inline math", "So $(3*10-6)*1 = 24$, which uses every card.", "correct"),
    ("code fence", "```\n(3*10-6)*1=24\n```", "correct"),
    ("code fence json", "```json\n{'formula': '(3*10-6)*1=24'}\n```", "correct"),
    (
        "prose key then json",
        'To derive the formula: think.\n{"formula": "(3*10-6)*1=24"}',
        "correct",
    ),
    (
        "prose key then wrong json",
        'The formula: (3*10-6)*1\n{"formula": "1+3+10+6"}',
        "wrong_value",
    ),
    (
        "several candidates",
        "Let's try 10+6+3+1 = 20. That is not 24.\nTry instead: (3*10-6)*1 = 24",
        "correct",
    ),
    (
        "several candidates, last wrong",
        "(3*10-6)*1 = 24? Let me change it.\nFinal: 10+6+3+1 = 20",
        "wrong_value",
    ),
]


@pytest.mark.parametrize(
    ("answer", "status"),
    [pytest.param(answer, status, id=name) for name, answer, status in CHAIN_OF_THOUGHT],
)
def test_chain_of_thought_answers_get_a_careful_readers_verdict(answer: str, status: str) -> None:
    assert judge(answer)[0] == status


def test_a_prose_key_never_shadows_the_final_equation() -> None:
    """The issue's counterfactual: only the equation changed, the verdict follows it."""
    answer = PROSE + "5*5 - 10/10 = 24"
    fixed = answer.replace("5*5 - 10/10", "(3*10 - 6)*1")
    assert judge(answer)[0] == "wrong_numbers" and judge(fixed)[0] == "correct"
    assert "no formula" in verify(PROSE, rule_is_training=True, **HAND).feedback  # type: ignore[arg-type]


def test_latex_times_is_a_unicode_operator_legal_only_where_allowed() -> None:
    answer = "\\[ (3 \\times 10 - 6) \\times 1 = 24 \\]"
    assert judge(answer, allow_unicode_operators=True)[0] == "correct"


@pytest.mark.parametrize(
    ("formula", "feedback"),
    [
        (
            "4*6*1*1",
            "your formula uses numbers that are not on the cards: [4], your formula uses a card "
            "more than once: [1], your formula does not use every card (unused: [3, 10])",
        ),
        ("(3*10-6)*1*1", "your formula uses a card more than once: [1]"),
        ("3*10-6", "your formula does not use every card (unused: [1])"),
        (
            "1*3*(10-6)",
            "your formula does not evaluate to 24 (it gives 12); only its start '1*3*' fits a "
            "solution",
        ),
        ("6+10+3+1", "your formula does not evaluate to 24 (it gives 20)"),  # no start fits
        (
            "3*10-6-1",
            "your formula does not evaluate to 24 (it gives 23); only its start '3*10-6' fits a "
            "solution",
        ),
    ],
)
def test_default_feedback_names_the_numbers_and_the_correct_start(
    formula: str, feedback: str
) -> None:
    v = verify(json.dumps({"formula": formula}), rule_is_training=True, **HAND)  # type: ignore[arg-type]
    assert v.feedback == f"You failed this trial because {feedback}."


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
        verdict = verify(line, rule_is_training=True, **HAND)  # type: ignore[arg-type]
        assert verdict.extracted["formula"] is None
    # A hang guard (the quadratic pattern took ~0.3 s a call here), not a speed target.
    assert (time.perf_counter() - start) / 20 < 0.1


# --- reference mode on hostile strings --------------------------------------------------------

HOSTILE_REFERENCE = [
    "",
    "\x00" * 1000,
    "\ud800\udfff lone surrogates \udc00",
    '{"formula": "\\ud800=24"}',
    '{"formula": "' + "9" * 1_000_000 + '=24"}',  # a 1 MB number
    '{"formula": ' + "9" * 1_000_000 + "}",
    '{"formula": "' + "(" * 100_000 + "1" + ")" * 100_000 + '"}',
    "[" * 200_000 + "]" * 200_000,
    '{"a": ' * 50_000 + "1" + "}" * 50_000,  # deeper than any recursion limit
    '{"cards": ' + "[" * 100_000 + "]" * 100_000 + ', "formula": "1"}',
    '"formula": "' * 100_000,
    '"cards": [' * 100_000,
    '{"formula": "' + "1+" * 300_000 + '1"}',
    '{"formula": "' + "+" * 300_000 + '"}',
    "{'formula': '(3*10-6)*1=24'}" * 10_000,
]


def _within_bounds(verdict: object, answer: str, statuses: tuple[str, ...]) -> None:
    assert isinstance(verdict, Verdict) and verdict.status in statuses
    assert isinstance(verdict.reward, float) and math.isfinite(verdict.reward)
    assert verdict.feedback == "" or verdict.feedback.startswith("You failed this trial because ")
    # A record writer can store it, and it grows at most linearly with the answer: the paper's
    # code writes one reason (at most 35 bytes) per misplaced token of one character.
    line = to_json(verdict).encode("utf-8")
    assert len(line) <= 40 * len(answer.encode("utf-8", "surrogatepass")) + 8192


@pytest.mark.parametrize("task_id", ["gp-l", "gp-vl"])
@pytest.mark.parametrize("answer", HOSTILE_REFERENCE, ids=range(len(HOSTILE_REFERENCE)))
def test_reference_mode_is_total_and_bounded_on_hostile_strings(task_id: str, answer: str) -> None:
    task = get_task(task_id)
    inst = task.instance("ood-rule", 42, 0)
    _within_bounds(
        task.verify(inst, answer, mode="reference"), answer, task.answer_statuses("reference")
    )


_PIECES = st.sampled_from(
    [
        '{"formula": "',
        '"cards": [',
        "9" * 5000,
        "(",
        ")",
        "=",
        "+",
        "\x00",
        "\ud800",
        "]",
        "}",
        "{",
        '"',
        " ",
        "\n",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(_PIECES, st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)),
        max_size=60,
    ),
    st.sampled_from(["gp-l", "gp-vl"]),
)
def test_reference_mode_never_raises_on_composed_strings(parts: list[str], task_id: str) -> None:
    answer = "".join(parts)
    task = get_task(task_id)
    inst = task.instance("id", 42, 1)
    _within_bounds(
        task.verify(inst, answer, mode="reference"), answer, task.answer_statuses("reference")
    )
