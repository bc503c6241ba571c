"""Exact, safe evaluation of the arithmetic in a GeneralPoints formula.

A formula comes from a model, so it is hostile data: it is never handed to ``eval`` or any other
general-purpose evaluator. :func:`evaluate` tokenizes and parses it itself, with an explicit operator
stack (no recursion at all), and bounds every resource that the input could inflate: characters,
parenthesis depth, digits per number and the bit length of every intermediate value. It never
raises on any ``str``; every failure is an :class:`Evaluation` with ``ok=False`` and an error code.

Grammar::

    expr   := term (('+' | '-') term)*
    term   := factor (('*' | '/') factor)*
    factor := sign{0,2} (number | '(' expr ')')
    sign   := '+' | '-'
    number := [0-9]+            ASCII digits only; leading zeros allowed ("08" is 8)

Whitespace (space, tab, carriage return, newline) may stand between any two tokens. Decisions:

* Unary minus (and plus) is accepted, at most two signs in a row. The paper allows ``-`` and a
  unary minus never changes which hands are solvable (``a - b == a + (-b)``), so rejecting ``-3+27``
  would only punish harmless notation. Three or more stacked signs (``---3``) are ``"syntax"``:
  nobody writes them on purpose.
* ``**`` and ``//`` are ``"syntax"``: each character is legal, only the sequence is not (an
  operator where an operand must be); ``detail`` names the operator. ``^``, ``%``, ``.``, ``=``,
  letters and brackets other than ``()`` are ``"illegal_character"``.
* Implicit multiplication (``2(3)``, ``(1)(2)``, ``2 3``) is ``"syntax"``.
* Division by zero is not a malformed formula: the result has ``ok=True``, ``value=None`` and
  ``division_by_zero=True`` (the task scores it as a wrong value).
* Only ASCII digits count: ``str.isdigit`` would also accept ``'٣'`` and ``'３'``.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "DEFAULT_LIMITS",
    "ERROR_CODES",
    "Evaluation",
    "Limits",
    "evaluate",
    "format_fraction",
]

ERROR_CODES: tuple[str, ...] = (
    "empty",
    "illegal_character",
    "syntax",
    "too_long",
    "too_deep",
    "number_too_large",
    "value_too_large",
)
"""Every value :attr:`Evaluation.error` can take besides ``None``."""

# Text longer than _PADDING_SLACK * (max_length + 1) is too long without looking at its padding.
_PADDING_SLACK = 8
# Python refuses int() on more than 4300 digits by default; staying far below keeps int() total.
_MAX_NUMBER_DIGITS_CAP = 1000


@dataclass(frozen=True)
class Limits:
    """Resource bounds for :func:`evaluate`; exceeding one is an error, never a slow evaluation."""

    max_length: int = 512
    """Characters of the expression after stripping surrounding whitespace -> ``"too_long"``."""
    max_depth: int = 32
    """Parenthesis nesting depth -> ``"too_deep"``."""
    max_number_digits: int = 6
    """Digits in one number literal, leading zeros included -> ``"number_too_large"``."""
    max_value_bits: int = 2048
    """Bit length of the numerator or denominator of any intermediate value -> ``"value_too_large"``."""

    def __post_init__(self) -> None:
        for name in ("max_length", "max_depth", "max_number_digits", "max_value_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")
        if self.max_number_digits > _MAX_NUMBER_DIGITS_CAP:
            raise ValueError(f"Limits.max_number_digits must be at most {_MAX_NUMBER_DIGITS_CAP}")


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Evaluation:
    """The outcome of :func:`evaluate`."""

    ok: bool
    """The formula parsed and evaluated (a division by zero still counts as ok)."""
    value: Fraction | None
    """The exact value; ``None`` when not ok or on division by zero."""
    numbers: tuple[int, ...]
    """Integer literals in order of appearance when ``ok`` (division by zero too), else empty."""
    error: str | None
    """``None`` when ok, else one of :data:`ERROR_CODES`."""
    division_by_zero: bool = False
    """Some division had a zero divisor; ``value`` is then ``None``."""
    detail: str = ""
    """Short human-readable explanation, e.g. ``"illegal character '^' at 3"``."""


_OPERATORS = frozenset("+-*/()")
# One token per match: a run of ASCII digits or one other character, after optional whitespace
# (the text is stripped first, so no match is left to fail on trailing whitespace).
_TOKEN_RE = re.compile(r"[ \t\r\n]*+(?:([0-9]++)|(.))", re.DOTALL)
_UNICODE_OPERATORS = {"x": "*", "X": "*", "×": "*", "÷": "/"}

# Operator-stack entries: binary operators as themselves, "neg" for unary minus, "(" as a marker.
# Unary minus binds tightest; -a*b == (-a)*b == -(a*b), so its place among * and / is moot.
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3}
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul}

_Token = tuple[str, int, int]  # (kind, number value or 0, position); kind "n" or an operator
_Rpn = list[int | str]  # postfix program: ints push a literal, strings apply an operator


def _failure(error: str, detail: str) -> Evaluation:
    return Evaluation(ok=False, value=None, numbers=(), error=error, detail=detail)


def evaluate(
    text: str, limits: Limits = DEFAULT_LIMITS, *, allow_unicode_operators: bool = False
) -> Evaluation:
    """Parse and evaluate an arithmetic expression exactly; never raises.

    ``allow_unicode_operators`` also accepts ``x``, ``X`` and ``×`` as ``*`` and ``÷`` as ``/``.
    Positions in ``detail`` are indices into ``text`` as given.

    >>> evaluate("8/(3-8/3)").value
    Fraction(24, 1)
    >>> evaluate("(3*10-6)*1").numbers
    (3, 10, 6, 1)
    >>> evaluate("3 x 8").error
    'illegal_character'
    >>> evaluate("3 x 8", allow_unicode_operators=True).value
    Fraction(24, 1)
    """
    # Reject a huge input before even stripping it (stripping a megabyte of padding takes
    # milliseconds); past this slack no amount of surrounding whitespace is plausible.
    if len(text) > _PADDING_SLACK * limits.max_length + _PADDING_SLACK:
        return _failure("too_long", f"text has {len(text)} characters, limit {limits.max_length}")
    stripped = text.strip(" \t\r\n")
    if not stripped:
        return _failure("empty", "empty formula")
    if len(stripped) > limits.max_length:
        reason = f"formula has {len(stripped)} characters, limit {limits.max_length}"
        return _failure("too_long", reason)
    offset = len(text) - len(text.lstrip(" \t\r\n"))

    tokens = _tokenize(stripped, offset, limits, allow_unicode_operators)
    if isinstance(tokens, Evaluation):
        return tokens
    rpn = _to_postfix(tokens)
    if isinstance(rpn, Evaluation):
        return rpn
    numbers = tuple(number for kind, number, _ in tokens if kind == "n")
    return _run(rpn, numbers, limits)


def _tokenize(
    text: str, offset: int, limits: Limits, allow_unicode_operators: bool
) -> list[_Token] | Evaluation:
    tokens: list[_Token] = []
    # Nesting is checked here, before parsing: every '(' the parser accepts was counted here
    # first, so the parser never sees a depth this did not allow.
    depth = 0
    for match in _TOKEN_RE.finditer(text):
        digits, c = match.groups()
        pos = match.start(1 if digits is not None else 2) + offset  # past the whitespace
        if digits is not None:
            if len(digits) > limits.max_number_digits:
                return _failure(
                    "number_too_large",
                    f"number at {pos} has {len(digits)} digits, limit {limits.max_number_digits}",
                )
            tokens.append(("n", int(digits), pos))
        elif c in _OPERATORS:
            if c == "(":
                depth += 1
                if depth > limits.max_depth:
                    reason = f"parentheses nested deeper than {limits.max_depth} at {pos}"
                    return _failure("too_deep", reason)
            elif c == ")":
                depth -= 1
            tokens.append((c, 0, pos))
        elif allow_unicode_operators and c in _UNICODE_OPERATORS:
            tokens.append((_UNICODE_OPERATORS[c], 0, pos))
        else:
            return _failure("illegal_character", f"illegal character {c!r} at {pos}")
    return tokens


def _to_postfix(tokens: list[_Token]) -> _Rpn | Evaluation:
    """Shunting-yard with an explicit stack: input depth can never reach the Python call stack."""
    out: _Rpn = []
    stack: list[str] = []
    expect_operand = True
    signs = 0  # consecutive unary signs before the current operand
    previous = ""
    for kind, number, pos in tokens:
        if expect_operand:
            if kind == "n":
                out.append(number)
                expect_operand = False
                signs = 0
            elif kind in ("+", "-"):
                signs += 1
                if signs > 2:
                    return _failure("syntax", f"more than two signs in a row at {pos}")
                if kind == "-":
                    stack.append("neg")
            elif kind == "(":
                stack.append("(")
                signs = 0
            elif kind in ("*", "/") and previous == kind:
                name = "power" if kind == "*" else "floor division"
                return _failure("syntax", f"'{kind}{kind}' ({name}) is not allowed at {pos - 1}")
            else:
                return _failure("syntax", f"expected a number or '(' but found {kind!r} at {pos}")
        elif kind == ")":
            while stack and stack[-1] != "(":
                out.append(stack.pop())
            if not stack:
                return _failure("syntax", f"unmatched ')' at {pos}")
            stack.pop()
        elif kind in _PRECEDENCE:
            precedence = _PRECEDENCE[kind]
            # Pop operators of equal precedence too: that makes - and / left-associative.
            while stack and stack[-1] != "(" and _PRECEDENCE[stack[-1]] >= precedence:
                out.append(stack.pop())
            stack.append(kind)
            expect_operand = True
        else:
            what = "number" if kind == "n" else repr(kind)
            return _failure("syntax", f"missing operator before {what} at {pos}")
        previous = kind
    if expect_operand:
        return _failure("syntax", "formula ends where a number was expected")
    while stack:
        op = stack.pop()
        if op == "(":
            return _failure("syntax", "unclosed '('")
        out.append(op)
    return out


def _too_large(value: int | Fraction, max_bits: int) -> bool:
    # An int is a Rational too: its numerator is itself, its denominator 1.
    return value.numerator.bit_length() > max_bits or value.denominator.bit_length() > max_bits


def _run(rpn: _Rpn, numbers: tuple[int, ...], limits: Limits) -> Evaluation:
    # Values stay plain ints until a division; None (undefined after a division by zero) propagates.
    values: list[int | Fraction | None] = []
    for item in rpn:
        if isinstance(item, int):
            if _too_large(item, limits.max_value_bits):
                return _failure("value_too_large", f"literal {item} exceeds the value limit")
            values.append(item)
            continue
        if item == "neg":
            top = values[-1]
            values[-1] = None if top is None else -top
            continue
        b = values.pop()
        a = values.pop()
        result: int | Fraction | None
        if a is None or b is None or (item == "/" and b == 0):
            result = None
        else:
            result = Fraction(a, b) if item == "/" else _BINARY[item](a, b)
        if result is not None and _too_large(result, limits.max_value_bits):
            reason = f"an intermediate value exceeds {limits.max_value_bits} bits"
            return _failure("value_too_large", reason)
        values.append(result)
    (final,) = values
    # Every value feeds the final one, so a division by zero reaches it.
    zero = final is None
    value = None if final is None else Fraction(final)
    detail = "division by zero" if zero else ""
    return Evaluation(
        ok=True, value=value, numbers=numbers, error=None, division_by_zero=zero, detail=detail
    )


def format_fraction(value: Fraction | int) -> str:
    """``24`` for integers (an ``int`` too), ``-3/2`` otherwise.

    Values too long for Python's int-to-str limit (over 4300 digits, far beyond
    :attr:`Limits.max_value_bits`) are summarised instead of raising.

    >>> format_fraction(Fraction(48, 2))
    '24'
    >>> format_fraction(Fraction(3, -2))
    '-3/2'
    """
    try:
        if value.denominator == 1:
            return str(value.numerator)
        return f"{value.numerator}/{value.denominator}"
    except ValueError:
        sign = "-" if value < 0 else ""
        return f"{sign}<{value.numerator.bit_length()}-bit>/<{value.denominator.bit_length()}-bit>"
