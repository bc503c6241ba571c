"""The paper code's rewards (gpbench.tasks.paper_rules): its own outputs, each rule, hostile input.

``data/paper_reference/*.jsonl`` hold 1,552 (input -> reward, feedback) pairs produced by running
the paper's released code; every line must come out the same.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import operator
import re
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.tasks import paper_rules
from gpbench.tasks.paper_rules import (
    NOT_EXTRACTED,
    PaperScore,
    extract_answer_field,
    score_general_points,
    score_navigation,
    solution_strings,
)

DATA = Path(__file__).parent / "data" / "paper_reference"
HAND = [4, 8, 9, 1]  # the first hand of the case file


def cases(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def raw(response: str, values: list[int] | None = None) -> tuple[float, list[str]]:
    """Reward and reasons of a response."""
    score = score_general_points(response, values or HAND)
    return score.reward, list(score.reasons)


def gp(formula: str, values: list[int] | None = None) -> tuple[float, list[str]]:
    """Reward and reasons of a formula given in the paper's JSON format."""
    return raw(json.dumps({"formula": formula}), values)


# --- the paper's own outputs -----------------------------------------------------------------


def test_every_general_points_case_scores_as_the_paper_code() -> None:
    rows = cases("gp_cases.jsonl")
    assert len(rows) == 760
    wrong = []
    for row in rows:
        score = score_general_points(row["response"], row["values"])
        if (score.reward, score.paper_feedback) != (row["paper_reward"], row["paper_feedback"]):
            wrong.append((row["case"], row["response"], score.reward, score.paper_feedback))
    assert wrong == []


def test_every_navigation_case_scores_as_the_paper_code() -> None:
    rows = cases("virl_cases.jsonl")
    assert len(rows) == 792
    wrong = []
    for row in rows:
        score = score_navigation(row["response"], row["gt_action"], row["gt_observation"])
        if (score.reward, score.paper_feedback) != (row["paper_reward"], row["paper_feedback"]):
            wrong.append((row["case"], row["response"], score.reward, score.paper_feedback))
    assert wrong == []


def test_case_file_values_follow_the_split_rules() -> None:
    """The values the cases were scored with are the cards' values under each split's rule."""
    faces = {"id": {"J": 10, "Q": 10, "K": 10}, "ood-rule": {"J": 11, "Q": 12, "K": 13}}
    for row in cases("gp_cases.jsonl"):
        rule = {"A": 1, **faces[row["split"]]}
        assert [rule.get(c) or int(c) for c in row["cards"]] == row["values"]


# --- step 1: extraction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ('{"formula": "1+2"}', "1+2"),
        ('{"formula": "1\\u002b2"}', "1+2"),  # JSON decodes escapes ...
        ('{"formula": "1\\u002b2",}', "1\\u002b2"),  # ... the regex keeps them verbatim
        ('{"formula": "a", "formula": "b"}', "b"),  # json.loads: the last duplicate wins
        ('{"formula": "a", "formula": "b"', "a"),  # the regex: the first match
        ('["x", {"formula": "1+2"}]', "1+2"),  # a list has no key: the regex finds it
        ('Sure! {"formula": "1+2"} Done.', "1+2"),
        ("{'formula': '1+2'}", NOT_EXTRACTED),  # single quotes
        ('{"formula":"1+2"}', "1+2"),  # valid JSON needs no space ...
        ('{"formula":"1+2",}', NOT_EXTRACTED),  # ... the regex does
        ('{"formula":  "1+2",}', NOT_EXTRACTED),  # exactly one space
        ('"formula": "1+\n2"', NOT_EXTRACTED),  # the regex does not cross a line break
        ("formula: 1+2", NOT_EXTRACTED),
        ('{"formula": NaN}', float("nan")),  # json.loads accepts NaN
        ('{"formula": 24}', 24),
        ('{"formula": null}', None),
        ("", NOT_EXTRACTED),
    ],
)
def test_formula_extraction(response: str, expected: object) -> None:
    found = extract_answer_field(response, "formula")
    if isinstance(expected, float):
        assert isinstance(found, float) and found != found  # NaN
    else:
        assert found == expected and type(found) is type(expected)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ('{"cards": ["A", "3"]}', ["A", "3"]),
        ("{\"cards\": ['A', '3'],}", "'A', '3'"),  # the regex: the text between the brackets
        ('"cards": [] then "cards": [K]', "K"),  # at least one character inside
        ('"cards": [A,\n3]', "A,\n3"),  # [^\]] crosses line breaks
        ('"cards": [A', NOT_EXTRACTED),
        ('"cards":[A]', NOT_EXTRACTED),
    ],
)
def test_list_extraction(response: str, expected: object) -> None:
    assert extract_answer_field(response, "cards", bracketed=True) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(['"cards": [', "]", "x", "\n", '"', "["]), max_size=30).map("".join)
)
def test_list_extraction_is_the_papers_regex(response: str) -> None:
    """The linear-time search finds what ``re.search`` of the paper's pattern finds."""
    match = re.search(r'"cards": \[([^\]]+)\]', response)
    expected = match.group(1) if match else NOT_EXTRACTED
    assert extract_answer_field(response, "cards", bracketed=True) == expected


def test_many_unclosed_lists_are_searched_in_linear_time() -> None:
    """The paper's regex backtracks quadratically here (hours for this input)."""
    response = '"cards": [' * 200_000
    assert extract_answer_field(response, "cards", bracketed=True) == NOT_EXTRACTED


def test_integers_past_the_default_digit_limit_send_extraction_to_the_regex() -> None:
    """json.loads raises on a 4,301-digit integer (Python's default limit), whatever the running
    interpreter's limit is set to; the regex then reads the escape verbatim."""
    template = '{"formula": "1\\u002b2", "n": %s}'
    old = sys.get_int_max_str_digits()
    try:
        for limit in (0, 4300, 100_000):  # 0: unlimited
            sys.set_int_max_str_digits(limit)
            assert extract_answer_field(template % ("9" * 4300), "formula") == "1+2"
            assert extract_answer_field(template % ("-" + "9" * 4300), "formula") == "1+2"
            assert extract_answer_field(template % ("9" * 4301), "formula") == "1\\u002b2"
    finally:
        sys.set_int_max_str_digits(old)


def test_json_too_deep_for_the_stack_falls_back_to_the_regex() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    response = '{"formula": "1\\u002b2", "x": ' + deep + "}"
    assert extract_answer_field(response, "formula") == "1\\u002b2"


@pytest.mark.parametrize(
    "response", ['{"formula": 24}', '{"formula": ["1+2"]}', '{"formula": null}', "[1, 2]"]
)
def test_a_formula_that_is_not_a_string_counts_as_not_extracted(response: str) -> None:
    score = score_general_points(response, [6, 4, 1, 1])
    assert (score.reward, score.reasons) == (-3.0, ("illegal characters",))
    assert score.extracted_dict()["formula"] == NOT_EXTRACTED


# --- steps 2 and 3: the "=" split and illegal characters --------------------------------------


@pytest.mark.parametrize(
    ("formula", "reward", "reasons"),
    [
        ("4*8-9+1=24", 5.0, ["Correct solution"]),
        ("4*8-9+1=24=25", 5.0, ["Correct solution"]),  # text before the first "="
        ("4*8-9+1 =24", -3.0, ["illegal characters"]),  # nothing is stripped
        ("(6/(1-(6/8))) = 24", -3.0, ["illegal characters"]),
        (" 4*8-9+1", -3.0, ["illegal characters"]),
        ("4 * 8-9+1", -3.0, ["illegal characters"]),
        ("4x8-9+1", -3.0, ["illegal characters"]),
        ("4×8-9+1", -3.0, ["illegal characters"]),
        ("4.0*8-9+1", -3.0, ["illegal characters"]),
        ("4*8-9+1²", -3.0, ["illegal characters"]),  # a superscript is not a decimal digit
        ("4*8-9+1\x00", -3.0, ["illegal characters"]),
        ("None", -3.0, ["illegal characters"]),
        ("", -2.0, ["you didn't use numbers: [4, 8, 9, 1]"]),  # the empty formula is legal
        ("=24", -2.0, ["you didn't use numbers: [4, 8, 9, 1]"]),
    ],
)
def test_split_and_illegal_characters(formula: str, reward: float, reasons: list[str]) -> None:
    assert gp(formula) == (reward, reasons)


@pytest.mark.parametrize(
    "response",
    [
        "{'formula': '(1-(9-(4*8)))'}",  # single quotes: nothing extracted
        "formula: (1-(9-(4*8)))",  # no JSON at all
        "",
    ],
)
def test_nothing_extracted_is_illegal(response: str) -> None:
    assert raw(response) == (-3.0, ["illegal characters"])


# --- step 4: transitions -----------------------------------------------------------------------

AFTER_OPERATOR = "invalid sequence after operator"


@pytest.mark.parametrize(
    ("formula", "values", "reward", "reasons"),
    [
        ("4+*8+9+1", HAND, -3.0, [AFTER_OPERATOR]),  # pinned by the case files
        ("-(1-(9-(4*8)))", HAND, -3.0, [AFTER_OPERATOR]),  # a leading operator (pinned)
        ("6++6+8+1", [6, 6, 8, 1], -3.0, [AFTER_OPERATOR]),
        ("4++8++9+1", HAND, -6.0, [AFTER_OPERATOR, AFTER_OPERATOR]),  # penalties add up
        ("4*-8+9+1", HAND, -3.0, [AFTER_OPERATOR]),
        ("4+8+9+(+1)", HAND, -3.0, ["invalid sequence after open parenthesis"]),
        ("4(8+9+1)", HAND, -3.0, ["invalid sequence after number"]),
        ("(4)(8)+9+1", HAND, -3.0, ["invalid sequence after close parenthesis"]),
        ("(4)8+9+1", HAND, -3.0, ["invalid sequence after close parenthesis"]),
        (
            "()4+8+9+1",
            HAND,
            -6.0,
            [
                "invalid sequence after open parenthesis",
                "invalid sequence after close parenthesis",
            ],
        ),
        (")4+8+9+1", HAND, -6.0, [AFTER_OPERATOR, "invalid sequence after close parenthesis"]),
        ("4+8)+9+1", HAND, -3.0, ["unmatched close parenthesis"]),
        ("4+8))+(9+1", HAND, -6.0, ["unmatched close parenthesis"] * 2),
        # Transitions and numbers add up; nothing is evaluated.
        ("4++8", HAND, -5.0, [AFTER_OPERATOR, "you didn't use numbers: [9, 1]"]),
        # A trailing operator and an unclosed "(" are not transition faults.
        ("4+8+9+1+", HAND, -1.0, [f"4{paper_rules._FORMULA_SUFFIX}"]),
        ("(3-(9-(", [3, 9, 2, 6], -2.0, ["you didn't use numbers: [2, 6]"]),
        ("((6/(1-(6/8)))", [6, 1, 6, 8], -1.0, ["your formula does not match any solution"]),
        ("(1-(9-(4*8))", HAND, -1.0, [f"(1-{paper_rules._FORMULA_SUFFIX}"]),
    ],
)
def test_transitions(formula: str, values: list[int], reward: float, reasons: list[str]) -> None:
    assert gp(formula, values) == (reward, reasons)


# --- step 5: numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "values", "reward", "reasons"),
    [
        # Invalid numbers once each, in formula order; unused cards once each, in hand order.
        (
            "4*6*1*1",
            [2, 10, 5, 10],
            -4.0,
            ["you used invalid numbers: [4, 6, 1]", "you didn't use numbers: [2, 10, 5]"],
        ),
        (
            "4*6*1*1",
            [3, 7, 9, 1],
            -4.0,
            ["you used invalid numbers: [4, 6]", "you didn't use numbers: [3, 7, 9]"],
        ),
        # Overuse is reported only without invalid numbers.
        (
            "4*6*1*1",
            [6, 4, 1, 8],
            -4.0,
            ["you used numbers: [1] too many times", "you didn't use numbers: [8]"],
        ),
        (
            "4*6*1*1*7",
            [6, 4, 1, 8],
            -4.0,
            ["you used invalid numbers: [7]", "you didn't use numbers: [8]"],
        ),
        (
            "1+1+1+2+2+3",
            [1, 2, 3, 4],
            -4.0,
            ["you used numbers: [1, 2] too many times", "you didn't use numbers: [4]"],
        ),
        ("4*8*9*1*9", HAND, -2.0, ["you used numbers: [9] too many times"]),
        ("(4*(7-(", [10, 7, 4, 10], -2.0, ["you didn't use numbers: [10]"]),
        ("8+1", [8, 1, 1, 3], -2.0, ["you didn't use numbers: [1, 3]"]),
        # A number token is the integer it denotes: leading zeros and Unicode digits.
        ("04*8-9+1", HAND, -1.0, ["your formula does not match any solution"]),
        ("٤*8-9+1", HAND, -1.0, ["your formula does not match any solution"]),
        ("٤٨*8-9+1", HAND, -4.0, ["you used invalid numbers: [48]", "you didn't use numbers: [4]"]),
        ("0*4*8-9+1", HAND, -2.0, ["you used invalid numbers: [0]"]),
        ("00*4*8-9+1", HAND, -2.0, ["you used invalid numbers: [0]"]),
        # Past the 4,300 digits int() accepts: still a number, written out in full.
        ("1" * 5000 + "*4*8-9+1", HAND, -2.0, [f"you used invalid numbers: [{'1' * 5000}]"]),
        ("0" * 5000 + "4*8-9+1", HAND, -1.0, ["your formula does not match any solution"]),
    ],
)
def test_numbers(formula: str, values: list[int], reward: float, reasons: list[str]) -> None:
    assert gp(formula, values) == (reward, reasons)


def test_face_values_are_the_hands_values() -> None:
    """The same answer under the two rules: the code compares with the values it is given."""
    assert gp("(13-12)*2*12", [13, 12, 2, 12])[0] == 5.0
    assert gp("(13-12)*2*12", [10, 10, 2, 10]) == (
        -4.0,
        ["you used invalid numbers: [13, 12]", "you didn't use numbers: [10]"],
    )


# --- step 6: evaluation, +1 and the prefix walk -------------------------------------------------


def partial(prefix: str) -> str:
    return f"{prefix}{paper_rules._FORMULA_SUFFIX}"


@pytest.mark.parametrize(
    ("formula", "values", "reward", "reasons"),
    [
        ("4*8-9+1", HAND, 5.0, ["Correct solution"]),
        ("(1-(9-(4*8)))", HAND, 5.0, ["Correct solution"]),  # no solution string, but 24
        ("(" * 200 + "4*8-9+1" + ")" * 200, HAND, 5.0, ["Correct solution"]),
        # 201 nested parentheses: Python refuses to parse, and "((" starts no solution.
        ("(" * 201 + "4*8-9+1" + ")" * 201, HAND, -1.0, [partial("(")]),
        ("4*8-9+001", HAND, -1.0, [partial("4*8-9+")]),  # a leading zero is a SyntaxError
        # Python raises and the formula starts a solution string: +1.
        ("4*8+(1-9", HAND, 1.0, ["partial solution"]),
        ("(1-9)+(4*8", HAND, 1.0, ["partial solution"]),
        # A wrong value: the walk names the longest prefix of a solution string.
        ("4+8+9+1", HAND, -1.0, [partial("4")]),
        ("(4*8-9+1", HAND, -1.0, [partial("(4*8-9")]),
        ("3+7+9+1", [3, 7, 9, 1], -1.0, ["your formula does not match any solution"]),
        ("4/(8-8)+1", [4, 8, 8, 1], -1.0, [partial("4/(")]),  # zero division
        # The float check: 8/(3-8/3) is 23.999999999999986, yet it is a solution string, so
        # the walk finds no mismatch and nothing scores it (45 of the 1,820 multisets have
        # such strings).
        ("8/(3-8/3)", [3, 3, 8, 8], 0.0, []),
        ("(5/3+1)*9", [1, 3, 5, 9], 0.0, []),  # 24.000000000000004
        ("(1+5/3)*9+0", [1, 3, 5, 9], -2.0, ["you used invalid numbers: [0]"]),
        # Python's semantics: ints stay exact, "/" is true division.
        ("(13-1)*2/1", [13, 1, 2, 1], 5.0, ["Correct solution"]),
        ("8/3*9*1", [8, 3, 9, 1], 5.0, ["Correct solution"]),  # 2.6666666666666665 * 9 == 24.0
        ("1/3*3*24", [1, 3, 3, 24], 5.0, ["Correct solution"]),
    ],
)
def test_evaluation_and_prefixes(
    formula: str, values: list[int], reward: float, reasons: list[str]
) -> None:
    assert gp(formula, values) == (reward, reasons)


def test_the_float_check_differs_from_exact_arithmetic() -> None:
    exact = Fraction(8) / (3 - Fraction(8, 3))
    assert exact == 24 and 8 / (3 - 8 / 3) != 24
    assert "8/(3-8/3)" in solution_strings([3, 3, 8, 8])


# --- step 7: the solution strings ---------------------------------------------------------------


def test_bracket_placements_are_the_seven_described() -> None:
    plain = ["a", "+", "b", "-", "c", "*", "d"]
    shapes = ["".join(paper_rules._with_brackets(plain, p)) for p in paper_rules._BRACKETS]
    assert shapes == [
        "a+b-c*d",
        "(a+b)-c*d",
        "(a+b-c)*d",
        "a+(b-c)*d",
        "a+(b-c*d)",
        "a+b-(c*d)",
        "(a+b)-(c*d)",
    ]


@pytest.mark.parametrize(
    ("values", "count", "digest"),
    [
        ([4, 8, 9, 1], 46, "3e814a498ea484d4"),
        ([1, 2, 3, 4], 314, "5088e7992e93f2f1"),
        ([3, 3, 8, 8], 1, "2f5dd219fdb211d1"),
        ([5, 5, 5, 1], 2, "5bc24809cb62f082"),
        ([10, 10, 10, 10], 0, "e3b0c44298fc1c14"),
        ([13, 13, 13, 13], 0, "e3b0c44298fc1c14"),
    ],
)
def test_solution_strings_are_pinned(values: list[int], count: int, digest: str) -> None:
    strings = sorted(solution_strings(values))
    assert len(strings) == count
    assert hashlib.sha256("\n".join(strings).encode()).hexdigest()[:16] == digest
    for text in strings:  # each one equals the target exactly, and has no spaces
        tokens = paper_rules._TOKEN.findall(text)
        assert "".join(tokens) == text
        assert paper_rules._evaluate(tokens, Fraction) == 24


def test_solution_strings_examples() -> None:
    strings = solution_strings([1, 2, 3, 4])
    assert {"(1+2+3)*4", "4*(1+2+3)", "(1+3)*(2+4)", "1*2*3*4", "4*3*2/1"} <= strings
    assert "(1*2*3*4)" not in strings  # the placement (0, 8) is excluded
    assert "((1+2)+3)*4" not in strings  # one pair of brackets, or the double pair
    assert solution_strings([5, 5, 5, 1]) == {"5*(5-1/5)", "(5-1/5)*5"}
    assert solution_strings([1, 2, 3, 4], 10) >= {"1+2+3+4", "4*3-2*1"}


@pytest.mark.parametrize("values", [(4, 8, 9, 1), (3, 3, 8, 8), (1, 1, 2, 2), (13, 7, 1, 12)])
def test_the_fast_exact_values_equal_the_described_evaluation(values: tuple[int, ...]) -> None:
    """Every candidate (10,752 at most) written out and evaluated over Fraction gives the value
    the solver computes without writing it (None for a zero divisor)."""
    candidates = iter(paper_rules._candidate_tokens(values))
    for order in sorted(set(itertools.permutations(values))):
        for ops in itertools.product("+-*/", repeat=3):
            for ratio in paper_rules._bracketed_values(order, ops):
                tokens = next(candidates)
                expected = paper_rules._evaluate(tokens, Fraction)
                assert (None if ratio is None else Fraction(*ratio)) == expected, tokens
    assert next(candidates, None) is None


@pytest.mark.slow
def test_solvable_hands_match_the_exact_solver_counts() -> None:
    """1,362 of the 1,820 rank multisets under J/Q/K=11/12/13 and 566 of the 715 value multisets
    under J/Q/K=10 are solvable for 24; the paper solver's placements find them all."""
    ood = list(itertools.combinations_with_replacement(range(1, 14), 4))
    ids = list(itertools.combinations_with_replacement(range(1, 11), 4))
    assert sum(bool(solution_strings(list(v))) for v in ood) == 1362
    assert len(ids) == 715 and sum(bool(solution_strings(list(v))) for v in ids) == 566


# --- step 8: the vision check --------------------------------------------------------------------

VISION_FORMULA = '"formula": "(1-(9-(4*8)))=24"'


@pytest.mark.parametrize(
    ("cards", "reward"),
    [
        ('["A", "4", "8", "9"]', 5.0),
        ('["9", "8", "4", "A"]', 5.0),  # sorted before comparing
        ('["A", "4", "8", "8"]', -1.5),
        ('["1", "4", "8", "9"]', -1.5),  # names as the true cards spell them
        ("[1, 4, 8, 9]", -1.5),
        ('["A", 4, "8", "9"]', -1.5),  # sorted() would raise: wrong cards
        ("null", -1.5),
        ("5", -1.5),
        ('"489A"', 5.0),  # a string is sorted by character, as Python does
        ('{"A": 1, "4": 1, "8": 1, "9": 1}', 5.0),  # a dict by its keys
        ("[" + ("[" * 900 + "]" * 900 + ", ") * 2 + '"4", "8"]', -1.5),  # deep: no crash
    ],
)
def test_recognised_cards(cards: str, reward: float) -> None:
    response = "{" + f'"cards": {cards}, {VISION_FORMULA}' + "}"
    score = score_general_points(response, HAND, true_cards=["4", "8", "9", "A"])
    assert score.reward == reward
    if reward == -1.5:
        assert score.reasons == ("you recognized wrong cards",)
        assert "formula" not in score.extracted_dict()  # nothing else is scored


def test_recognised_cards_from_the_regex_are_its_text() -> None:
    """Without JSON the regex gives ``'4', '8', '9', 'A'`` as a string: never the cards."""
    response = "{\"cards\": ['4', '8', '9', 'A'], " + VISION_FORMULA + ",}"
    score = score_general_points(response, HAND, true_cards=["4", "8", "9", "A"])
    assert (score.reward, score.extracted_dict()["cards"]) == (-1.5, "'4', '8', '9', 'A'")
    assert score_general_points(response, HAND).reward == 5.0  # gp-l ignores the cards


# --- feedback and the result -------------------------------------------------------------------


def test_feedback_and_revision_message() -> None:
    score = score_general_points('{"formula": "4*6*1*1=24"}', [4, 8, 9, 1])
    assert score.paper_feedback == (
        "you used invalid numbers: [6], you didn't use numbers: [8, 9]."
    )
    assert score.revision_message == (
        "You failed this trial because you used invalid numbers: [6], "
        "you didn't use numbers: [8, 9]."
    )
    assert score.extracted_dict() == {"formula": "4*6*1*1=24", "expression": "4*6*1*1"}
    assert not score.correct and score_general_points('{"formula": "4*8-9+1"}', HAND).correct
    with pytest.raises(AttributeError):
        score.reward = 5.0  # type: ignore[misc]


def test_a_hand_must_have_four_values() -> None:
    with pytest.raises(ValueError, match="4 card values"):
        score_general_points('{"formula": "1+2"}', [1, 2])


# --- V-IRL -------------------------------------------------------------------------------------

AT = "Shop is on your left front; You observe an intersection"
NOT_AT = "No landmarks nearby"
AT_REASON = paper_rules.REASON_AT_INTERSECTION
NOT_AT_REASON = paper_rules.REASON_NOT_AT_INTERSECTION
WRONG = paper_rules.REASON_WRONG_ACTION


def nav(answer: dict[str, object] | str, truth: str = AT) -> tuple[float, str]:
    response = answer if isinstance(answer, str) else json.dumps(answer)
    score = score_navigation(response, "turn_direction(west)", truth)
    (reason,) = score.reasons
    return score.reward, reason


@pytest.mark.parametrize(
    ("answer", "truth", "reward", "reason"),
    [
        ({"action": "turn_direction(west)"}, AT, 1.0, "Correct action"),
        ({"action": "turn_direction(west)", "current observation": "x"}, AT, 1.0, "Correct action"),
        ({"action": "turn_direction( west )", "current observation": AT}, AT, -1.0, WRONG),
        ({"action": "Turn_direction(west)", "current observation": AT}, AT, -1.0, WRONG),
        ({"action": "forward()", "current observation": "an intersection"}, AT, -1.0, WRONG),
        ({"action": "forward()", "current observation": NOT_AT}, NOT_AT, -1.0, WRONG),
        # The intersection claim differs from the truth, either way round: -1.5.
        ({"action": "forward()", "current observation": NOT_AT}, AT, -1.5, AT_REASON),
        ({"action": "forward()", "current observation": AT}, NOT_AT, -1.5, NOT_AT_REASON),
        ({"action": "forward()", "current observation": "Intersection"}, AT, -1.5, AT_REASON),
        ({"action": "forward()"}, AT, -1.5, AT_REASON),  # a missing key extracts "None"
        ("{'action': 'turn_direction(west)'}", NOT_AT, -1.0, WRONG),
        ('Here: "action": "turn_direction(west)" ok', NOT_AT, 1.0, "Correct action"),
        # Non-string values: == and "in" as Python defines them; no claim where "in" raises.
        ({"action": ["turn_direction(west)"]}, NOT_AT, -1.0, WRONG),
        ({"action": 5, "current observation": ["intersection"]}, NOT_AT, -1.5, NOT_AT_REASON),
        ({"action": 5, "current observation": ["an intersection"]}, NOT_AT, -1.0, WRONG),
        ({"action": 5, "current observation": {"intersection": 1}}, NOT_AT, -1.5, NOT_AT_REASON),
        ({"action": None, "current observation": None}, AT, -1.5, AT_REASON),
        ({"action": None, "current observation": 3.5}, NOT_AT, -1.0, WRONG),
    ],
)
def test_navigation_rules(answer: Any, truth: str, reward: float, reason: str) -> None:
    assert nav(answer, truth) == (reward, reason)


def test_navigation_feedback_and_extracted() -> None:
    response = json.dumps({"current observation": "x\ud800", "action": ["a"]})
    score = score_navigation(response, "stop()", NOT_AT)
    assert score.paper_feedback == WRONG + "."
    assert score.revision_message == f"You failed this trial because {WRONG}."
    assert score.paper_feedback.startswith("you make incorrect action. Please avoid this action")
    assert score.paper_feedback.endswith("action space,\n}}.")
    assert score.extracted_dict() == {
        "action": '["a"]',
        "current observation": "x\ufffd",  # a lone surrogate cannot be written as UTF-8
        "current instruction": NOT_EXTRACTED,
    }


# --- hostile input --------------------------------------------------------------------------------

PENALTY = {
    "illegal characters": -3.0,
    "you recognized wrong cards": -1.5,
    "Correct solution": 5.0,
    "partial solution": 1.0,
    "your formula does not match any solution": -1.0,
}


def implied_reward(reason: str) -> float:
    """The reward a reason stands for, so a score's reward must be the sum over its reasons."""
    if reason in PENALTY:
        return PENALTY[reason]
    if reason.startswith(("invalid sequence after ", "unmatched close")):
        return -3.0
    if reason.startswith(("you used ", "you didn't use ")):
        return -2.0
    assert reason.endswith(paper_rules._FORMULA_SUFFIX), reason
    return -1.0


FORMULA_PIECES = [*"0123456789+-*/()=", "٤", "08", "00", " ", "x", "\x00"]
hostile = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=60),  # surrogates and NUL included
    st.lists(st.sampled_from(FORMULA_PIECES), max_size=40).map(
        lambda pieces: json.dumps({"formula": "".join(pieces)})
    ),
    st.builds(
        lambda f, n: '{"formula": "%s"}' % ("(" * n + f + ")" * n),
        st.text(alphabet=list("4891+-*/()"), max_size=12),
        st.sampled_from([0, 199, 200, 201, 5000]),
    ),
    st.integers(0, 20_000).map(lambda n: '{"formula": "%s*8-9+1"}' % ("4" * n)),
    st.integers(0, 20_000).map(lambda n: '{"n": %s, "formula": "4*8-9+1"}' % ("9" * n)),
    st.integers(0, 50_000).map(lambda n: "[" * n + '"formula": "4*8-9+1"' + "]" * n),
    st.integers(0, 50_000).map(lambda n: '"cards": [' * n),
)


@settings(max_examples=300, deadline=None)
@given(hostile, st.sampled_from([[4, 8, 9, 1], [3, 3, 8, 8], [1, 1, 1, 1]]), st.booleans())
def test_hostile_answers_never_raise_and_stay_bounded(
    response: str, values: list[int], vision: bool
) -> None:
    evaluated: list[int] = []
    original = paper_rules._evaluate

    def counting(tokens: Any, number: Callable[[int], Any]) -> Any:
        if number is int:  # the float check of an answer, not the solver's exact one
            evaluated.append(sum(paper_rules._kind(t) == "number" for t in tokens))
        return original(tokens, number)

    paper_rules._evaluate = counting  # type: ignore[assignment]
    try:
        true_cards = ["4", "8", "9", "A"] if vision else None
        score = score_general_points(response, values, true_cards=true_cards)
    finally:
        paper_rules._evaluate = original  # type: ignore[assignment]
    assert isinstance(score, PaperScore) and isinstance(score.reward, float)
    assert score.reward == sum(map(implied_reward, score.reasons))
    assert score.reasons or (score.reward == 0.0 and values == [3, 3, 8, 8])
    assert len(evaluated) <= 1 and all(n == len(values) for n in evaluated)  # on 4 numbers
    for text in (score.paper_feedback, *score.extracted_dict().values()):
        text.encode("utf-8")  # a record writer can store every text
    nav_score = score_navigation(response, "forward()", AT)
    assert nav_score.reward in (1.0, -1.0, -1.5)
    for text in nav_score.extracted_dict().values():
        text.encode("utf-8")


# --- the evaluator against Python's own parser -----------------------------------------------------


def python_value(text: str) -> object:
    """What Python gives ``text`` (digits, operators, parentheses only): its parser decides the
    syntax, and the tree is evaluated with Python's operators. ``None`` where Python raises."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, MemoryError):  # past 200 nested "(" CPython's parser may overflow first
        return None
    ops: dict[type, Callable[[Any, Any], Any]] = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
    }

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        assert isinstance(node, ast.BinOp)
        return ops[type(node.op)](walk(node.left), walk(node.right))

    try:
        return walk(tree.body)
    except ZeroDivisionError:
        return None


NUMBER_TOKENS = ["0", "00", "1", "2", "3", "7", "8", "13", "08", "٤", "0" * 4301, "1" * 4301]


@st.composite
def legal_token_lists(draw: st.DrawFn) -> list[str]:
    """Token lists whose every transition is allowed: an expression over up to 4 numbers with
    extra parentheses (up to past Python's nesting limit), and maybe a trailing operator or a
    missing ")"."""

    def expression(numbers: int) -> list[str]:
        if numbers == 1:
            tokens = [draw(st.sampled_from(NUMBER_TOKENS))]
        else:
            left = draw(st.integers(1, numbers - 1))
            op = draw(st.sampled_from("+-*/"))
            tokens = [*expression(left), op, *expression(numbers - left)]
        wrap = draw(st.sampled_from([0, 0, 1, 2, 66, 100, 101, 201]))
        return ["("] * wrap + tokens + [")"] * wrap

    tokens = expression(draw(st.integers(1, 4)))
    ending = draw(st.sampled_from(["", "", "op", "unclosed"]))
    if ending == "op":
        tokens.append(draw(st.sampled_from("+-*/")))
    elif ending == "unclosed" and ")" in tokens:
        tokens.reverse()
        tokens.remove(")")
        tokens.reverse()
    return tokens


@settings(max_examples=300, deadline=None)
@given(legal_token_lists())
def test_the_evaluator_agrees_with_python(tokens: list[str]) -> None:
    assert paper_rules._transition_reasons(tokens) == []
    expected = python_value("".join(tokens))
    found = paper_rules._evaluate(tokens, int)
    assert found == expected and type(found) is type(expected)
