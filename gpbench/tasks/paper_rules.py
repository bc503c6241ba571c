"""The paper code's rewards, reproduced step by step (the scoring core of ``reference`` mode).

The paper's released code scores one GeneralPoints attempt and one V-IRL decision point with
rules that differ from gpbench's own verifier in many small ways (what is extracted, which
characters are legal, how numbers and prefixes are judged, which reason strings are written).
This module follows that behaviour as an algorithm, over plain values only (strings, ints, lists
of card names), so the tasks can call it from their ``reference`` mode. Nothing in a response is
ever executed: formulas are evaluated by a small evaluator over validated tokens that applies
Python's own operators.

GeneralPoints, in the order the paper's code applies its checks (:func:`score_general_points`):

1. Vision only (``true_cards`` given): the recognised cards are extracted from the ``cards`` key;
   if ``sorted(recognised) != sorted(true_cards)``: -1.5, ``you recognized wrong cards``, stop.
2. Extraction of ``formula`` (:func:`extract_answer_field`): ``json.loads(response)[key]`` when
   that succeeds, else the first match of ``"formula": "(.*?)"`` (one space after the colon,
   double quotes), else the four-character string ``None``.
3. ``formula.split("=")[0]``, nothing stripped.
4. Illegal characters: the tokens are the matches of ``\\d+|[+\\-*/()]``; unless they make up the
   whole formula: -3, ``illegal characters``, stop. The empty formula passes.
5. Transitions: a number or ``(`` must follow nothing, an operator or ``(``; an operator or ``)``
   must follow a number or ``)``, and a ``)`` must close an open ``(``. Each bad token adds -3
   and the checks go on. A trailing operator or an unclosed ``(`` is not checked here.
6. Numbers: numbers not on the cards -2; else numbers used more often than dealt -2; then, in
   any case, cards not used up -2.
7. Only if nothing was deducted: the formula's value with Python's semantics (``+ - *`` on ints
   stay exact, ``/`` is true division, then float arithmetic) equal to the target: +5,
   ``Correct solution``. If evaluating raises (Python syntax, zero division) and the formula is
   a prefix of a solution string: +1, ``partial solution``. Otherwise the tokens are walked,
   growing a prefix, and at the first token after which the prefix starts no solution string:
   -1 with ``your formula does not match any solution`` (nothing before that token) or
   ``{prefix} is partially correct but the full formula does not match any solution``.

The solution strings (:func:`solution_strings`): every distinct order of the four values, every
three operators from ``+-*/``, and seven bracket placements over ``n op n op n op n`` (none, one
pair around tokens 0-2, 0-4, 2-4, 2-6 or 4-6, and ``(a op b) op (c op d)``), kept where exact
rational arithmetic gives the target; written without spaces.

V-IRL (:func:`score_navigation`): the extracted ``action`` equal to the true action: +1,
``Correct action``. Otherwise -1.5 when ``intersection`` is in the extracted ``current
observation`` but not in the true one, or the other way round, else -1.

The feedback in the paper's files is the reasons joined by ``", "`` with a final period
(:attr:`PaperScore.paper_feedback`); the model sees ``You failed this trial because {reasons}.``
after a failed attempt (:attr:`PaperScore.revision_message`).

Where the paper's code is not determined by the description, or would crash, this module
decides as follows (each choice is pinned by a test):

* **Non-string values.** A JSON value that is not a string (``{"formula": 24}``, a list, ``null``)
  would make the paper's ``.split`` raise: here the formula counts as not extracted, i.e. the
  string ``None`` (-3, ``illegal characters``). For V-IRL the paper's ``==`` on the action is
  defined for any value (a non-string never equals the true action) and is followed as is;
  ``"intersection" in observation`` is Python's own test for a string, list or dict (substring,
  element, key) and, where Python would raise (a number, ``true``, ``null``), counts as no
  intersection claimed, as ``str()`` of any such value would give. Recognised cards that
  ``sorted`` cannot order (a number, ``null``, mixed types, too deep to compare) are wrong cards.
* **JSON.** ``json.loads`` is Python's: it accepts ``NaN``, ``Infinity``, duplicate keys (the last
  wins) and lone surrogate escapes, exactly as the paper's code did. Integers beyond Python's
  default 4,300-digit conversion limit make it raise (the regex is tried next) whatever limit
  the running interpreter is set to, so the result does not depend on ``PYTHONINTMAXSTRDIGITS``.
  A response nested deeper than the interpreter's recursion limit makes ``json.loads`` raise
  ``RecursionError``; the paper's catch-all sent that to the regex, and so does this module.
* **Long numbers.** A number token is compared by the integer it denotes (leading zeros dropped,
  any Unicode decimal digit read as its value, as ``int()`` does) without converting it to an
  ``int``, so a token over 4,300 digits (where the paper's ``int()`` would raise) is simply a
  number that is not on the cards, written out in full in the reason.
* **Python syntax.** Where the paper evaluated the formula with Python, this evaluator raises
  exactly where CPython 3.9-3.13 reject the text: an operator at the end, an unclosed ``(``, a
  non-ASCII digit, a leading zero (``08``; ``00``, of any length, is zero), a literal over
  4,300 digits, or more than 200 nested parentheses (``too many nested parentheses``, or
  the parser's ``MemoryError`` first; at most 200 are always parsed).
* **Transition reasons.** The case files pin one reason, ``invalid sequence after operator``, for
  an operator after an operator and for a leading operator: the check is named after what comes
  before the bad token, the start counting as an operator. The other reasons follow that
  pattern and are not pinned by the paper's outputs: ``invalid sequence after number``,
  ``invalid sequence after open parenthesis``, ``invalid sequence after close parenthesis``, and
  ``unmatched close parenthesis`` for a ``)`` that closes nothing (one penalty per bad token).
  Number lists in reasons hold each number once, in order of first appearance (in the formula
  for invalid and overused numbers, in the hand for unused cards).
* **A solution string whose float value misses the target** (``8/(3-8/3)`` for 3, 3, 8, 8 gives
  23.999999999999986; 45 of the 1,820 rank multisets under J/Q/K=11/12/13 have such strings)
  is not +5, cannot be +1 (it raises nothing) and passes every step of the prefix walk, so no
  rule gives it a reward: it scores 0 with no reasons (``paper_feedback`` is then ``"."``).
  The paper's outputs do not pin this case.
* **Extracted text** (:attr:`PaperScore.extracted`) is for records: a non-string value is shown
  as its JSON text and a lone surrogate becomes U+FFFD so a UTF-8 writer cannot fail; scoring
  itself uses the values unchanged.

Costs are bounded by the length of the response: extraction, tokens, transitions and number
counts are linear; the evaluator runs only when every number token is one of the hand's values
and each is used exactly as often as dealt (so on as many number tokens as the hand has cards),
and the solution strings are enumerated once per value multiset and target (memoised).

>>> score_general_points('{"formula": "(1-(9-(4*8)))=24"}', [4, 8, 9, 1]).paper_feedback
'Correct solution.'
>>> score_general_points('{"formula": "4+8+9+1=24"}', [4, 8, 9, 1]).revision_message
'You failed this trial because 4 is partially correct but the full formula does not match any solution.'
>>> score_navigation('{"action": "forward()"}', "forward()", "No landmarks nearby").reward
1.0
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Final, TypeVar

REWARD_CORRECT: Final = 5.0
REWARD_PARTIAL: Final = 1.0
REWARD_NO_SOLUTION_MATCH: Final = -1.0
REWARD_WRONG_NUMBERS: Final = -2.0
REWARD_ILLEGAL: Final = -3.0
REWARD_MISRECOGNIZED: Final = -1.5
REWARD_BUDGET_EXCEEDED: Final = -1.0
"""What the paper deducts when an episode runs out of attempts (both tasks)."""
REWARD_CORRECT_ACTION: Final = 1.0
REWARD_WRONG_ACTION: Final = -1.0
REWARD_WRONG_INTERSECTION: Final = -1.5

NOT_EXTRACTED: Final = "None"
"""What the paper's extraction gives when neither JSON nor its regex finds the key."""

_FORMAT_REMINDER = (
    "Please avoid this {what} and try again in the same format:\n"
    "[Output]\n"
    "{{{{\n"
    '  "current observation": latest observation from the streetview grid,\n'
    '  "current instruction": analyze the full instruction and identify the sentence to be '
    "executed,\n"
    '  "action": the action to be taken chosen from the action space,\n'
    "}}}}"
)
REASON_CORRECT_ACTION: Final = "Correct action"
REASON_WRONG_ACTION: Final = "you make incorrect action. " + _FORMAT_REMINDER.format(what="action")
REASON_AT_INTERSECTION: Final = "you are at an intersection. " + _FORMAT_REMINDER.format(
    what="observation"
)
REASON_NOT_AT_INTERSECTION: Final = "you are not at any intersection. " + _FORMAT_REMINDER.format(
    what="observation"
)

REASON_CORRECT: Final = "Correct solution"
REASON_PARTIAL: Final = "partial solution"
REASON_MISRECOGNIZED: Final = "you recognized wrong cards"
REASON_ILLEGAL: Final = "illegal characters"
REASON_NO_MATCH: Final = "your formula does not match any solution"

# The paper's regexes: one space after the colon, double quotes, the first match anywhere.
_STRING_VALUE = '"{key}": "(.*?)"'
_TOKEN = re.compile(r"\d+|[+\-*/()]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_OPERATORS = "+-*/"

# Token kinds for the transition walk; the start of the formula counts as an operator.
_NUMBER, _OPERATOR, _OPEN, _CLOSE = "number", "operator", "open parenthesis", "close parenthesis"
_AFTER_OPERAND = (_NUMBER, _CLOSE)  # where an operator or ")" may stand
_AFTER_OPERATOR = (_OPERATOR, _OPEN)  # where a number or "(" may stand

# CPython's limits on the text the paper's code handed to Python (3.9-3.13 alike).
_MAX_NESTING = 200
_MAX_INT_DIGITS = 4300

_FORMULA_SUFFIX = " is partially correct but the full formula does not match any solution"

_N = TypeVar("_N", int, Fraction)


@dataclass(frozen=True, slots=True)
class PaperScore:
    """The paper code's judgement of one attempt.

    Attributes:
        reward: the paper's reward for the attempt.
        correct: the attempt solves the task (``Correct solution`` / ``Correct action``).
        reasons: the paper's reason strings, in the order its code produced them.
        extracted: what was read from the response, as ``(key, text)`` pairs, for records.
    """

    reward: float
    correct: bool
    reasons: tuple[str, ...]
    extracted: tuple[tuple[str, str], ...]

    @property
    def paper_feedback(self) -> str:
        """The feedback text as the paper's code returns it: reasons joined, a final period."""
        return f"{', '.join(self.reasons)}."

    @property
    def revision_message(self) -> str:
        """The user turn the model sees after this attempt failed."""
        return f"You failed this trial because {', '.join(self.reasons)}."

    def extracted_dict(self) -> dict[str, str]:
        """:attr:`extracted` as a new dict (for a verdict's ``extracted``)."""
        return dict(self.extracted)


# --- extraction -------------------------------------------------------------------------------


class _NotParsed:
    """The result of a response that ``json.loads`` rejects."""


_NOT_PARSED: Final = _NotParsed()


def _bounded_int(text: str) -> int:
    """``int()`` with Python's default 4,300-digit limit, whatever the interpreter's setting."""
    digits = len(text) - text.startswith("-")
    if digits > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits exceeds the 4300-digit limit")
    return int(text)


def _loads(response: str) -> object:
    """``json.loads(response)``, or :data:`_NOT_PARSED` where the paper's code caught an error."""
    try:
        return json.loads(response, parse_int=_bounded_int)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return _NOT_PARSED


def _json_member(parsed: object, key: str) -> object:
    """``parsed[key]`` where the paper's ``json.loads(...)[key]`` succeeds, else _NOT_PARSED."""
    if isinstance(parsed, dict) and key in parsed:
        return parsed[key]
    return _NOT_PARSED  # a missing key, or a list, string or number indexed by a key


def _first_string_value(response: str, key: str) -> str | None:
    """The first match of the paper's ``"KEY": "(.*?)"`` (``.`` stops at a line break)."""
    match = re.search(_STRING_VALUE.format(key=re.escape(key)), response)
    return match.group(1) if match else None


def _first_list_value(response: str, key: str) -> str | None:
    """The first match of the paper's ``"KEY": \\[([^\\]]+)\\]``, found in linear time.

    The regex itself backtracks quadratically on many ``"KEY": [`` without a ``]`` after them:
    an occurrence matches exactly when the next ``]`` after it is not immediately after it.
    """
    opening = f'"{key}": ['
    start = 0
    while True:
        found = response.find(opening, start)
        if found < 0:
            return None
        inside = found + len(opening)
        close = response.find("]", inside)
        if close < 0:  # no later occurrence can find a "]" either
            return None
        if close > inside:
            return response[inside:close]
        start = found + 1


def extract_answer_field(response: str, key: str, *, bracketed: bool = False) -> object:
    """What the paper's code extracts for ``key``: the JSON value, else the regex capture, else
    the string ``None``.

    ``bracketed`` selects the list pattern ``"KEY": [...]`` (``cards``, ``number``) instead of
    the string pattern ``"KEY": "..."``. The JSON value may be of any JSON type.

    >>> extract_answer_field('x {"formula": "1+2"} y', "formula")
    '1+2'
    >>> extract_answer_field("{'formula': '1+2'}", "formula")
    'None'
    """
    return _extract(_loads(response), response, key, bracketed)


def _extract(parsed: object, response: str, key: str, bracketed: bool) -> object:
    """:func:`extract_answer_field` with the response already given to ``json.loads``."""
    value = _json_member(parsed, key)
    if value is not _NOT_PARSED:
        return value
    found = _first_list_value(response, key) if bracketed else _first_string_value(response, key)
    return NOT_EXTRACTED if found is None else found


def _shown(value: object) -> str:
    """An extracted value as text a UTF-8 record writer accepts (for ``extracted`` only)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (ValueError, RecursionError):  # deeper than this stack allows
            text = f"<{type(value).__name__}>"
    # json.loads turns "\ud800" into a lone surrogate, which UTF-8 cannot encode.
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


# --- GeneralPoints ----------------------------------------------------------------------------


def score_general_points(
    response: str,
    values: Sequence[int],
    target: int = 24,
    *,
    true_cards: Sequence[str] | None = None,
) -> PaperScore:
    """Score one GeneralPoints attempt as the paper's code did.

    Args:
        response: the model's answer, verbatim.
        values: the hand's card values under the split's rule (J/Q/K are 10 under the ID rule,
            11/12/13 under the OOD rule); four of them.
        target: the number the formula must equal.
        true_cards: the true card names, e.g. ``["A", "3", "K", "6"]``, for the vision task
            (gp-vl), whose recognised cards are checked first; ``None`` for gp-l.

    Raises:
        ValueError: ``values`` does not hold four cards (a caller's mistake, never the model's).
    """
    _check_hand(values)
    parsed = _loads(response)
    extracted: list[tuple[str, str]] = []
    if true_cards is not None:
        recognised = _extract(parsed, response, "cards", True)
        extracted.append(("cards", _shown(recognised)))
        if not _same_cards(recognised, true_cards):
            return PaperScore(
                REWARD_MISRECOGNIZED, False, (REASON_MISRECOGNIZED,), tuple(extracted)
            )

    found = _extract(parsed, response, "formula", False)
    text = found if isinstance(found, str) else NOT_EXTRACTED
    formula = text.split("=")[0]
    extracted += [("formula", _shown(text)), ("expression", _shown(formula))]
    reward, reasons, correct = judge_formula(formula, values, target)
    return PaperScore(reward, correct, reasons, tuple(extracted))


def _check_hand(values: Sequence[int]) -> None:
    """A caller's mistake, never the model's: the paper's hands have four cards."""
    if len(values) != 4:
        raise ValueError(f"a GeneralPoints hand has 4 card values, got {len(values)}")


def _same_cards(recognised: object, true_cards: Sequence[str]) -> bool:
    """The paper's ``sorted(recognised) == sorted(true_cards)``; unorderable means different."""
    if not isinstance(recognised, (str, list, dict)):
        return False  # sorted() of a number, bool or null raises in the paper's code
    try:
        return sorted(recognised) == sorted(true_cards)
    except (TypeError, RecursionError):  # mixed types, dicts, or nesting too deep to compare
        return False


def judge_formula(
    formula: str, values: Sequence[int], target: int
) -> tuple[float, tuple[str, ...], bool]:
    """Steps 4-7 of the module docstring: ``(reward, reasons, correct)`` for the text before
    the ``=`` of an extracted formula.

    Raises:
        ValueError: ``values`` does not hold four cards.
    """
    _check_hand(values)
    tokens = _TOKEN.findall(formula)
    if "".join(tokens) != formula:
        return REWARD_ILLEGAL, (REASON_ILLEGAL,), False
    reasons = _transition_reasons(tokens)
    reward = REWARD_ILLEGAL * len(reasons)
    number_reasons = _number_reasons(tokens, values)
    reward += REWARD_WRONG_NUMBERS * len(number_reasons)
    reasons += number_reasons
    if reward != 0:
        return reward, tuple(reasons), False

    value = _evaluate(tokens, int)
    if value is not None and value == target:
        return REWARD_CORRECT, (REASON_CORRECT,), True
    solutions = _solutions(tuple(sorted(values)), target)
    if value is None and formula in solutions.prefixes:
        return REWARD_PARTIAL, (REASON_PARTIAL,), False
    mismatch = _first_mismatch(tokens, solutions)
    if mismatch is None:  # a solution string whose float value misses the target
        return 0.0, (), False
    return REWARD_NO_SOLUTION_MATCH, (mismatch,), False


def _kind(token: str) -> str:
    if token in _OPERATORS:
        return _OPERATOR
    if token == "(":
        return _OPEN
    if token == ")":
        return _CLOSE
    return _NUMBER


def _transition_reasons(tokens: Sequence[str]) -> list[str]:
    """One reason per token in a place the paper's code forbids (step 5)."""
    reasons = []
    previous = _OPERATOR  # the start allows what an operator allows
    depth = 0
    for token in tokens:
        kind = _kind(token)
        allowed = _AFTER_OPERAND if kind in (_OPERATOR, _CLOSE) else _AFTER_OPERATOR
        if previous not in allowed:
            reasons.append(f"invalid sequence after {previous}")
        elif kind == _CLOSE and depth == 0:
            reasons.append("unmatched close parenthesis")
        if kind == _OPEN:
            depth += 1
        elif kind == _CLOSE and depth:
            depth -= 1
        previous = kind
    return reasons


def _number_text(token: str) -> str:
    """The integer a ``\\d+`` token denotes, in decimal, as ``str(int(token))`` would write it."""
    if not token.isascii():
        token = "".join(str(unicodedata.decimal(c)) for c in token)
    return token.lstrip("0") or "0"


def _counts(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _number_list(numbers: Sequence[str]) -> str:
    """A list of numbers as Python prints a list of ints: ``[8, 9]``."""
    return f"[{', '.join(numbers)}]"


def _number_reasons(tokens: Sequence[str], values: Sequence[int]) -> list[str]:
    """The reasons of step 6: invalid (else overused) numbers, then unused cards."""
    used = _counts(_number_text(t) for t in tokens if _kind(t) == _NUMBER)
    hand = _counts(str(v) for v in values)
    reasons = []
    invalid = [n for n in used if n not in hand]
    overused = [n for n in used if used[n] > hand.get(n, 0)]
    if invalid:
        reasons.append(f"you used invalid numbers: {_number_list(invalid)}")
    elif overused:
        reasons.append(f"you used numbers: {_number_list(overused)} too many times")
    unused = [n for n in hand if hand[n] > used.get(n, 0)]  # in the hand's order
    if unused:
        reasons.append(f"you didn't use numbers: {_number_list(unused)}")
    return reasons


def _python_rejects(tokens: Sequence[str]) -> bool:
    """Whether Python would raise ``SyntaxError`` on the joined tokens, given that every
    transition is allowed (so only the end, the nesting and the literals can be wrong)."""
    if not tokens or _kind(tokens[-1]) == _OPERATOR:
        return True
    depth = 0
    for token in tokens:
        if token == "(":
            depth += 1
            if depth > _MAX_NESTING:
                return True
        elif token == ")":
            depth -= 1
        elif token[0] in _OPERATORS:
            continue
        elif not token.isascii():
            return True
        elif token[0] == "0":
            if token.strip("0"):  # 08 is rejected, 00 (of any length) is zero
                return True
        elif len(token) > _MAX_INT_DIGITS:
            return True
    return depth != 0


_APPLY: dict[str, Callable[[object, object], object]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _evaluate(tokens: Sequence[str], number: Callable[[int], _N]) -> _N | float | None:
    """The value Python gives the joined tokens, or ``None`` where Python would raise.

    ``tokens`` must pass the transition checks (numbers, operators and parentheses in legal
    places). Each number is ``number(int(token))`` (``int`` for the paper's float check,
    ``Fraction`` for exact arithmetic) and each operator is Python's own, applied with Python's
    precedence and left associativity; an iterative shunting-yard, so nesting costs no stack.
    """
    if _python_rejects(tokens):
        return None
    operands: list[object] = []
    pending: list[str] = []

    def reduce() -> None:
        right, left = operands.pop(), operands.pop()
        operands.append(_APPLY[pending.pop()](left, right))

    try:
        for token in tokens:
            if token == "(":
                pending.append(token)
            elif token == ")":
                while pending[-1] != "(":
                    reduce()
                pending.pop()
            elif token in _PRECEDENCE:
                while (
                    pending
                    and pending[-1] != "("
                    and (_PRECEDENCE[pending[-1]] >= _PRECEDENCE[token])
                ):
                    reduce()
                pending.append(token)
            else:
                operands.append(number(int(token.lstrip("0") or "0")))
        while pending:
            reduce()
    except (ZeroDivisionError, OverflowError):
        return None
    (value,) = operands
    return value  # type: ignore[return-value]


# --- solution strings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Solutions:
    """A hand's solution strings and every prefix of them (the empty one included)."""

    strings: frozenset[str]
    prefixes: frozenset[str]
    longest: int


# (position of "(", position of ")") inserted in turn, each counted in the list as it grows.
_BRACKETS: tuple[tuple[tuple[int, int], ...], ...] = (
    (),
    *(((x, y),) for x in (0, 2, 4, 6) for y in range(x + 4, 9, 2) if (x, y) != (0, 8)),
    ((0, 4), (6, 10)),
)


def _with_brackets(plain: Sequence[str], pairs: tuple[tuple[int, int], ...]) -> list[str]:
    """``plain`` with each ``(`` and ``)`` inserted at its index, counted as the list grows."""
    tokens = list(plain)
    for x, y in pairs:
        tokens.insert(x, "(")
        tokens.insert(y, ")")
    return tokens


def _plain_tokens(order: Sequence[int], ops: Sequence[str]) -> list[str]:
    """``n op n op n op n`` as seven tokens."""
    tokens = [str(order[0])]
    for op, value in zip(ops, order[1:], strict=True):
        tokens += [op, str(value)]
    return tokens


def _candidate_tokens(values: Sequence[int]) -> Iterable[list[str]]:
    """Every token list the paper's solver writes for these values, before any is checked:
    distinct orders x operator triples x :data:`_BRACKETS`, in that nesting."""
    for order in sorted(set(itertools.permutations(values))):
        for ops in itertools.product(_OPERATORS, repeat=3):
            plain = _plain_tokens(order, ops)
            for pairs in _BRACKETS:
                yield _with_brackets(plain, pairs)


# An exact rational as an unreduced (numerator, denominator) pair of ints, denominator nonzero,
# or None after a division by zero: a cold hand has 10,752 candidates, and pairs of ints with
# the precedence resolved by hand cost a sixth of Fraction arithmetic through a generic fold.
_Ratio = tuple[int, int]
_BINDS_FIRST = "*/"


def _apply(left: _Ratio | None, op: str, right: _Ratio | None) -> _Ratio | None:
    """``left op right`` exactly; ``None`` for a zero divisor or a ``None`` operand."""
    if left is None or right is None:
        return None
    (n1, d1), (n2, d2) = left, right
    if op == "+":
        return n1 * d2 + n2 * d1, d1 * d2
    if op == "-":
        return n1 * d2 - n2 * d1, d1 * d2
    if op == "*":
        return n1 * n2, d1 * d2
    if n2 == 0:
        return None
    return n1 * d2, d1 * n2


def _chain3(x: _Ratio | None, p: str, y: _Ratio | None, q: str, z: _Ratio | None) -> _Ratio | None:
    """``x p y q z`` with Python's precedence and left associativity."""
    if p in _BINDS_FIRST or q not in _BINDS_FIRST:
        return _apply(_apply(x, p, y), q, z)
    return _apply(x, p, _apply(y, q, z))


def _chain4(
    x: _Ratio | None,
    p: str,
    y: _Ratio | None,
    q: str,
    z: _Ratio | None,
    r: str,
    w: _Ratio | None,
) -> _Ratio | None:
    """``x p y q z r w`` with Python's precedence: the first operator binding first goes first."""
    if p in _BINDS_FIRST:
        return _chain3(_apply(x, p, y), q, z, r, w)
    if q in _BINDS_FIRST:
        return _chain3(x, p, _apply(y, q, z), r, w)
    if r in _BINDS_FIRST:
        return _chain3(x, p, y, q, _apply(z, r, w))
    return _apply(_apply(_apply(x, p, y), q, z), r, w)


def _bracketed_values(order: Sequence[int], ops: Sequence[str]) -> tuple[_Ratio | None, ...]:
    """The exact values of the seven bracket placements of :data:`_BRACKETS`, in its order.

    The same numbers :func:`_evaluate` gives each candidate over ``Fraction`` (a test
    checks every candidate of several hands), computed without building the token lists.
    """
    a, b, c, d = ((value, 1) for value in order)
    o1, o2, o3 = ops
    ab = _apply(a, o1, b)
    cd = _apply(c, o3, d)
    return (
        _chain4(a, o1, b, o2, c, o3, d),  # no brackets
        _chain3(ab, o2, c, o3, d),  # (a b) c d
        _apply(_chain3(a, o1, b, o2, c), o3, d),  # (a b c) d
        _chain3(a, o1, _apply(b, o2, c), o3, d),  # a (b c) d
        _apply(a, o1, _chain3(b, o2, c, o3, d)),  # a (b c d)
        _chain3(a, o1, b, o2, cd),  # a b (c d)
        _apply(ab, o2, cd),  # (a b) (c d)
    )


def solution_strings(values: Sequence[int], target: int = 24) -> frozenset[str]:
    """The paper solver's solution strings for four values: see the module docstring.

    >>> sorted(solution_strings([5, 5, 5, 1]))
    ['(5-1/5)*5', '5*(5-1/5)']

    Raises:
        ValueError: ``values`` does not hold four cards.
    """
    _check_hand(values)
    return _solutions(tuple(sorted(values)), target).strings


@lru_cache(maxsize=4096)
def _solutions(values: tuple[int, ...], target: int) -> _Solutions:
    """Memoised per value multiset and target (the candidates are the same for every order)."""
    strings = set()
    for order in set(itertools.permutations(values)):
        for ops in itertools.product(_OPERATORS, repeat=3):
            for pairs, value in zip(_BRACKETS, _bracketed_values(order, ops), strict=True):
                if value is not None and value[0] == target * value[1]:
                    strings.add("".join(_with_brackets(_plain_tokens(order, ops), pairs)))
    prefixes = frozenset(s[:end] for s in strings for end in range(len(s) + 1))
    return _Solutions(frozenset(strings), prefixes, max(map(len, strings), default=0))


def _first_mismatch(tokens: Sequence[str], solutions: _Solutions) -> str | None:
    """The -1 reason of the prefix walk, or ``None`` when every prefix starts a solution."""
    prefix = ""
    for token in tokens:
        if len(prefix) + len(token) > solutions.longest or prefix + token not in solutions.prefixes:
            return f"{prefix}{_FORMULA_SUFFIX}" if prefix else REASON_NO_MATCH
        prefix += token
    return None


def longest_solution_prefix(formula: str, values: Sequence[int], target: int = 24) -> str:
    """The longest run of whole tokens at the start of ``formula`` (whitespace ignored) that
    begins one of the paper solver's solution strings: what the paper's ``{prefix} is partially
    correct`` reports. Empty when the formula holds other characters or its first token already
    fits no solution.

    >>> longest_solution_prefix("4 + 8 + 9 + 1", [4, 8, 9, 1])
    '4'

    Raises:
        ValueError: ``values`` does not hold four cards.
    """
    _check_hand(values)
    compact = "".join(formula.split())
    tokens = _TOKEN.findall(compact)
    if "".join(tokens) != compact:
        return ""
    solutions = _solutions(tuple(sorted(values)), target)
    prefix = ""
    for token in tokens:
        if len(prefix) + len(token) > solutions.longest or prefix + token not in solutions.prefixes:
            break
        prefix += token
    return prefix


# --- V-IRL ------------------------------------------------------------------------------------


def score_navigation(response: str, true_action: str, true_observation: str) -> PaperScore:
    """Score one V-IRL decision point as the paper's code did.

    Args:
        response: the model's answer, verbatim.
        true_action: the ground-truth action, e.g. ``turn_direction(south)``; compared exactly.
        true_observation: the true observation text at this point (``... You observe an
            intersection`` at an intersection).
    """
    parsed = _loads(response)
    action = _extract(parsed, response, "action", False)
    observation = _extract(parsed, response, "current observation", False)
    instruction = _extract(parsed, response, "current instruction", False)
    extracted = (
        ("action", _shown(action)),
        ("current observation", _shown(observation)),
        ("current instruction", _shown(instruction)),
    )
    if action == true_action:
        return PaperScore(REWARD_CORRECT_ACTION, True, (REASON_CORRECT_ACTION,), extracted)
    at_intersection = "intersection" in true_observation
    if _claims_intersection(observation) != at_intersection:
        reason = REASON_AT_INTERSECTION if at_intersection else REASON_NOT_AT_INTERSECTION
        return PaperScore(REWARD_WRONG_INTERSECTION, False, (reason,), extracted)
    return PaperScore(REWARD_WRONG_ACTION, False, (REASON_WRONG_ACTION,), extracted)


def _claims_intersection(observation: object) -> bool:
    """The paper's ``"intersection" in observation``; no claim where Python would raise."""
    if isinstance(observation, (str, list, dict)):
        return "intersection" in observation
    return False
