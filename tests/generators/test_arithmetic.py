"""Tests of the safe exact evaluator: table cases, hostile input and properties."""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.generators.arithmetic import (
    DEFAULT_LIMITS,
    ERROR_CODES,
    Evaluation,
    Limits,
    evaluate,
    format_fraction,
)

F = Fraction

VALUE_CASES: list[tuple[str, Fraction, tuple[int, ...]]] = [
    ("24", F(24), (24,)),
    ("4*6*1*1", F(24), (4, 6, 1, 1)),
    ("(3*10-6)*1", F(24), (3, 10, 6, 1)),
    ("8/(3-8/3)", F(24), (8, 3, 8, 3)),
    (" ( 3 * 10 - 6 )\t*\n1 ", F(24), (3, 10, 6, 1)),
    ("\r\n4 * 6\r\n", F(24), (4, 6)),
    ("1+2*3", F(7), (1, 2, 3)),
    ("(1+2)*3", F(9), (1, 2, 3)),
    ("10-4-3", F(3), (10, 4, 3)),  # left-associative
    ("24/4/2", F(3), (24, 4, 2)),  # left-associative
    ("2/3", F(2, 3), (2, 3)),
    ("1/3+1/6", F(1, 2), (1, 3, 1, 6)),
    ("08", F(8), (8,)),
    ("000000", F(0), (0,)),
    ("999999", F(999999), (999999,)),
    ("-3", F(-3), (3,)),
    ("+3", F(3), (3,)),
    ("--3", F(3), (3,)),
    ("-+3", F(-3), (3,)),
    ("2--3", F(5), (2, 3)),
    ("2---3", F(-1), (2, 3)),
    ("2*-3", F(-6), (2, 3)),
    ("-2*3+10", F(4), (2, 3, 10)),  # unary minus binds to its operand, not to the sum
    ("-(2+3)*-4", F(20), (2, 3, 4)),
    ("-(-(-(-3)))", F(3), (3,)),
    ("((((((24))))))", F(24), (24,)),
    ("3*(8/3)", F(8), (3, 8, 3)),
]


@pytest.mark.parametrize(("text", "value", "numbers"), VALUE_CASES)
def test_values(text: str, value: Fraction, numbers: tuple[int, ...]) -> None:
    result = evaluate(text)
    assert result == Evaluation(ok=True, value=value, numbers=numbers, error=None)


ERROR_CASES: list[tuple[str, str]] = [
    ("", "empty"),
    ("   \t\n", "empty"),
    ("__import__('os')", "illegal_character"),
    ("__import__('os').system('rm -rf /')", "illegal_character"),
    ("2^3", "illegal_character"),
    ("7%3", "illegal_character"),
    ("1.5*16", "illegal_character"),
    ("1e5", "illegal_character"),
    ("4*6=24", "illegal_character"),
    ("[4*6]", "illegal_character"),
    ("{4*6}", "illegal_character"),
    ("a+b", "illegal_character"),
    ("3 x 8", "illegal_character"),  # only with allow_unicode_operators
    ("3×8", "illegal_character"),
    ("48÷2", "illegal_character"),
    ("٣*8", "illegal_character"),  # Arabic-Indic digit three
    ("３*8", "illegal_character"),  # fullwidth digit three
    ("3*８", "illegal_character"),
    ("²", "illegal_character"),
    ("4\u00a0*6", "illegal_character"),  # no-break space is not allowed whitespace
    ("4\x00*6", "illegal_character"),
    ("9**9**9", "syntax"),
    ("2**3", "syntax"),
    ("7//2", "syntax"),
    ("2(3)", "syntax"),
    ("(1)(2)", "syntax"),
    ("(1)2", "syntax"),
    ("2 3", "syntax"),
    ("()", "syntax"),
    ("(", "syntax"),
    (")", "syntax"),
    ("(1+2", "syntax"),
    ("1+2)", "syntax"),
    ("1+", "syntax"),
    ("*3", "syntax"),
    ("/3", "syntax"),
    ("3*/4", "syntax"),
    ("---3", "syntax"),
    ("2----3", "syntax"),
    ("+-+3", "syntax"),
    ("1/(1-1)+", "syntax"),  # a syntax error wins over a division by zero
    ("1234567", "number_too_large"),
    ("0000001", "number_too_large"),  # leading zeros count as digits
    ("9" * 400, "number_too_large"),
    ("1" * 513, "too_long"),
    ("(" * 33 + "1" + ")" * 33, "too_deep"),
]


@pytest.mark.parametrize(("text", "error"), ERROR_CASES)
def test_errors(text: str, error: str) -> None:
    result = evaluate(text)
    assert result.error == error, result.detail
    assert not result.ok
    assert result.value is None
    assert result.numbers == ()
    assert result.detail


def test_error_codes_are_documented() -> None:
    # value_too_large needs custom limits; see test_value_limit.
    assert {error for _, error in ERROR_CASES} | {"value_too_large"} == set(ERROR_CODES)


def test_detail_names_the_character_and_its_position() -> None:
    assert evaluate("1+2^3").detail == "illegal character '^' at 3"
    # Positions refer to the text as given, before stripping.
    assert evaluate("  1+2^3").detail == "illegal character '^' at 5"
    assert "power" in evaluate("9**9").detail
    assert "floor division" in evaluate("9//9").detail


def test_depth_limit_is_inclusive() -> None:
    assert evaluate("(" * 32 + "1" + ")" * 32).value == 1
    assert evaluate("(" * 33 + "1" + ")" * 33).error == "too_deep"


@pytest.mark.parametrize(
    "text",
    ["1/0", "(1/(1-1))", "0/0", "24+1/0", "1/0*0", "(1/0)/(1/0)", "-(8/(3-3))", "1/(2-2)/0"],
)
def test_division_by_zero_is_ok_without_value(text: str) -> None:
    result = evaluate(text)
    assert result.ok
    assert result.error is None
    assert result.value is None
    assert result.division_by_zero
    assert result.numbers  # still filled, so the verifier can check the cards


def test_division_by_zero_numbers_in_order() -> None:
    assert evaluate("(1/(1-1))").numbers == (1, 1, 1)


@pytest.mark.parametrize(
    ("text", "value"),
    [("3 x 8", F(24)), ("3X8", F(24)), ("3×8", F(24)), ("48÷2", F(24)), ("8÷(3-8÷3)", F(24))],
)
def test_unicode_operators_when_allowed(text: str, value: Fraction) -> None:
    assert evaluate(text, allow_unicode_operators=True).value == value


def test_unicode_operators_do_not_admit_other_letters() -> None:
    assert evaluate("3 y 8", allow_unicode_operators=True).error == "illegal_character"
    assert evaluate("3xx8", allow_unicode_operators=True).error == "syntax"


def test_value_limit() -> None:
    big = "*".join(["999999"] * 60)  # about 1200 bits
    assert evaluate(big).ok
    small = Limits(max_value_bits=100)
    assert evaluate(big, small).error == "value_too_large"
    assert evaluate("1/" + "/".join(["999999"] * 10), small).error == "value_too_large"
    assert evaluate("2*2", Limits(max_value_bits=2)).error == "value_too_large"
    assert evaluate("2*2", Limits(max_value_bits=3)).value == 4


def test_number_limit_is_configurable() -> None:
    assert evaluate("1234567", Limits(max_number_digits=7)).value == 1234567


@pytest.mark.parametrize(
    "field", ["max_length", "max_depth", "max_number_digits", "max_value_bits"]
)
@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_limits_reject_nonsense(field: str, bad: object) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(**{field: bad})  # type: ignore[arg-type]


def test_limits_cap_number_digits() -> None:
    with pytest.raises(ValueError, match="max_number_digits"):
        Limits(max_number_digits=5000)


# The time bounds below are hang guards, not speed targets (those are in bench/): a quadratic or
# exponential path takes seconds to minutes on these inputs, the linear one microseconds, so the
# bounds leave a wide margin for a loaded CI machine.
HANG_GUARD_S = 1.0


def _elapsed(text: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Evaluation, float]:
    start = time.perf_counter()
    result = evaluate(text, limits)
    return result, time.perf_counter() - start


def test_ten_thousand_nested_parentheses_are_too_deep_fast() -> None:
    text = "(" * 10_000 + "1" + ")" * 10_000
    roomy = Limits(max_length=10**6)
    result, seconds = _elapsed(text, roomy)
    assert result.error == "too_deep"
    assert seconds < HANG_GUARD_S
    # With the default limits the same text is already too long.
    assert evaluate(text).error == "too_long"
    # Unbalanced and unary-heavy variants never reach the Python call stack either.
    assert evaluate("(-" * 10_000 + "1", roomy).error == "too_deep"
    assert evaluate("-(" * 10_000 + "1", roomy).error == "too_deep"


@pytest.mark.parametrize("text", ["1" * 10**6, "(" * 10**6, "1+" * 500_000, " " * 10**6 + "1"])
def test_megabyte_input_is_rejected_fast(text: str) -> None:
    result, seconds = _elapsed(text)
    assert result.error == "too_long"
    assert seconds < HANG_GUARD_S


def test_surrounding_whitespace_does_not_count_towards_length() -> None:
    assert evaluate(" " * 1000 + "4*6" + "\n" * 1000).value == 24


@pytest.mark.parametrize(
    ("value", "text"),
    [(F(24), "24"), (F(-3, 2), "-3/2"), (F(0), "0"), (F(6, 4), "3/2"), (F(-7), "-7")],
)
def test_format_fraction(value: Fraction, text: str) -> None:
    assert format_fraction(value) == text


def test_format_fraction_never_raises_on_huge_values() -> None:
    huge = Fraction(10**5000 + 1, 3)
    assert format_fraction(huge) == "<16610-bit>/<2-bit>"
    assert format_fraction(-huge).startswith("-<")


# ---------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    result = evaluate(text)
    assert result.ok == (result.error is None)
    assert result.error is None or result.error in ERROR_CODES


FORMULA_ALPHABET = "0123456789+-*/() \t\nx×÷^.=٣"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=FORMULA_ALPHABET, max_size=60), st.booleans())
def test_never_raises_on_formula_like_text(text: str, unicode_ops: bool) -> None:
    result = evaluate(text, allow_unicode_operators=unicode_ops)
    if result.ok:
        assert result.error is None
        assert (result.value is None) == result.division_by_zero
    else:
        assert result.error in ERROR_CODES
        assert result.value is None


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Neg:
    operand: Tree


@dataclass(frozen=True)
class Bin:
    op: str
    left: Tree
    right: Tree


Tree = Num | Neg | Bin

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def tree_value(tree: Tree) -> Fraction | None:
    """Reference semantics: exact, None once any division by zero happens."""
    if isinstance(tree, Num):
        return Fraction(tree.value)
    if isinstance(tree, Neg):
        inner = tree_value(tree.operand)
        return None if inner is None else -inner
    left, right = tree_value(tree.left), tree_value(tree.right)
    if left is None or right is None:
        return None
    if tree.op == "+":
        return left + right
    if tree.op == "-":
        return left - right
    if tree.op == "*":
        return left * right
    return None if right == 0 else left / right


def tree_numbers(tree: Tree) -> tuple[int, ...]:
    if isinstance(tree, Num):
        return (tree.value,)
    if isinstance(tree, Neg):
        return tree_numbers(tree.operand)
    return tree_numbers(tree.left) + tree_numbers(tree.right)


def render_full(tree: Tree) -> str:
    """Every operation parenthesised."""
    if isinstance(tree, Num):
        return str(tree.value)
    if isinstance(tree, Neg):
        return f"(-{render_full(tree.operand)})"
    return f"({render_full(tree.left)}{tree.op}{render_full(tree.right)})"


def render_minimal(tree: Tree, pad: str) -> str:
    """Only the parentheses that the tree's shape needs, with ``pad`` around operators."""
    if isinstance(tree, Num):
        return str(tree.value)
    if isinstance(tree, Neg):
        inner = render_minimal(tree.operand, pad)
        # Parenthesise anything but a literal so signs never stack beyond one per Neg.
        return f"-{inner}" if isinstance(tree.operand, Num) else f"-({inner})"
    precedence = PRECEDENCE[tree.op]
    left = render_minimal(tree.left, pad)
    right = render_minimal(tree.right, pad)
    if isinstance(tree.left, Bin) and PRECEDENCE[tree.left.op] < precedence:
        left = f"({left})"
    # Equal precedence on the right needs parentheses: a-(b-c), a/(b/c), and keeps a+(b+c) as is.
    if isinstance(tree.right, Bin) and PRECEDENCE[tree.right.op] <= precedence:
        right = f"({right})"
    return f"{left}{pad}{tree.op}{pad}{right}"


def _extend(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    return st.one_of(
        st.builds(Neg, children),
        st.builds(Bin, st.sampled_from("+-*/"), children, children),
    )


trees: st.SearchStrategy[Tree] = st.recursive(
    st.builds(Num, st.integers(0, 13)), _extend, max_leaves=8
)


@settings(max_examples=400, deadline=None)
@given(trees, st.sampled_from(["", " ", "\t", " \n "]))
def test_agrees_with_tree_semantics(tree: Tree, pad: str) -> None:
    expected = tree_value(tree)
    for text in (render_full(tree), render_minimal(tree, pad)):
        result = evaluate(text)
        assert result.ok, (text, result.detail)
        assert result.value == expected, text
        assert result.division_by_zero == (expected is None), text
        assert result.numbers == tree_numbers(tree), text
