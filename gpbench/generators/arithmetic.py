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

Whitespace (space, tab, carriage return, newline) may stand between any two tokens.

Design decisions:

* Unary minus (and plus) is accepted, at most two signs in a row. The paper allows ``-`` and a
  unary minus never changes which hands are solvable (``a - b == a + (-b)``), so rejecting ``-3+27``
  would only punish harmless notation. Three or more stacked signs (``---3``) are ``"syntax"``:
  nobody writes them on purpose.
* ``**`` and ``//`` are ``"syntax"``, not ``"illegal_character"``: each character is legal on its
  own and only the sequence is not (an operator where an operand must be). The ``detail`` names
  the operator. ``^``, ``%``, ``.``, ``=``, letters and brackets other than ``()`` are
  ``"illegal_character"``. Both codes are failures; the verifier treats them alike.
* Implicit multiplication (``2(3)``, ``(1)(2)``, ``2 3``) is ``"syntax"``.
* Division by zero is not a malformed formula: the result has ``ok=True``, ``value=None`` and
  ``division_by_zero=True`` (the task scores it as a wrong value).
* Only ASCII digits count: ``str.isdigit`` would also accept ``'٣'`` and ``'３'``.

>>> evaluate("8/(3-8/3)").value
Fraction(24, 1)
>>> evaluate("(3*10-6)*1").numbers
(3, 10, 6, 1)
>>> evaluate("2^3").error
'illegal_character'
>>> evaluate("1/(1-1)").division_by_zero
True
>>> format_fraction(Fraction(-3, 2))
'-3/2'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from math import gcd
from operator import add, mul, sub

__all__ = [
    "DEFAULT_LIMITS",
    "ERROR_CODES",
    "Evaluation",
    "Limits",
    "evaluate",
    "evaluate_error",
    "evaluate_fast",
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
            raise ValueError(
                f"Limits.max_number_digits must be at most {_MAX_NUMBER_DIGITS_CAP}, "
                f"got {self.max_number_digits}"
            )


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Evaluation:
    """The outcome of :func:`evaluate`.

    ``numbers`` lists the integer literals in order of appearance whenever the formula parsed
    (``ok=True``, including division by zero); it is empty when ``ok`` is false.
    """

    ok: bool
    """The formula parsed and evaluated (a division by zero still counts as ok)."""
    value: Fraction | None
    """The exact value; ``None`` when not ok or on division by zero."""
    numbers: tuple[int, ...]
    """Integer literals in the order they appear."""
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
# The tokens of a skeleton (see evaluate_fast): each "0" is a number (two in a row are two
# numbers), any other character but whitespace is one token.
_SKELETON_TOKEN_RE = re.compile(r"(0)|([^ \t\r\n])")
_UNICODE_OPERATORS = {"x": "*", "X": "*", "×": "*", "÷": "/"}

# Operator-stack entries: binary operators as themselves, "neg" for unary minus, "(" as a marker.
# Unary minus binds tightest; -a*b == (-a)*b == -(a*b), so its place among * and / is moot.
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3}
# The fast path's operator stack entries and the precedence each token pops down to.
_OPEN = (-1, "(")
_NEG = (3, "neg")
_BINARY = {op: (_PRECEDENCE[op], op) for op in "+-*/"}
_LEVELS = {"+": 1, "-": 1, "*": 2, "/": 2, ")": 0, "end": 0}

_Token = tuple[str, int, int]  # (kind, number value or 0, position); kind "n" or an operator
_Rpn = list[int | str]  # postfix program: ints push a literal, strings apply an operator


def _failure(error: str, detail: str) -> Evaluation:
    return Evaluation(ok=False, value=None, numbers=(), error=error, detail=detail)


def _too_deep(limits: Limits, pos: int) -> Evaluation:
    return _failure("too_deep", f"parentheses nested deeper than {limits.max_depth} at {pos}")


def evaluate(
    text: str, limits: Limits = DEFAULT_LIMITS, *, allow_unicode_operators: bool = False
) -> Evaluation:
    """Parse and evaluate an arithmetic expression exactly; never raises.

    ``allow_unicode_operators`` also accepts ``x``, ``X`` and ``×`` as ``*`` and ``÷`` as ``/``.
    Positions in ``detail`` are indices into ``text`` as given.

    >>> evaluate(" 4 * 6 ").value
    Fraction(24, 1)
    >>> evaluate("3 x 8").error
    'illegal_character'
    >>> evaluate("3 x 8", allow_unicode_operators=True).value
    Fraction(24, 1)
    >>> evaluate("2(3)").error
    'syntax'
    """
    if not isinstance(text, str):  # a caller bug, but the contract is "never raises"
        return _failure("illegal_character", f"expected str, got {type(text).__name__}")
    # Reject a huge input before even stripping it (stripping a megabyte of padding takes
    # milliseconds); past this slack no amount of surrounding whitespace is plausible.
    if len(text) > _PADDING_SLACK * limits.max_length + _PADDING_SLACK:
        return _failure("too_long", f"text has {len(text)} characters, limit {limits.max_length}")
    stripped = text.strip(" \t\r\n")
    if not stripped:
        return _failure("empty", "empty formula")
    if len(stripped) > limits.max_length:
        return _failure(
            "too_long", f"formula has {len(stripped)} characters, limit {limits.max_length}"
        )
    fast = evaluate_fast(stripped, limits, allow_unicode_operators=allow_unicode_operators)
    if fast is not None:
        return Evaluation(ok=True, value=Fraction(fast[0]), numbers=fast[1], error=None)
    # Not a well-formed formula within the limits, or a division by zero: the exact path below
    # finds which, and where, in the documented order.
    offset = len(text) - len(text.lstrip(" \t\r\n"))

    tokens = _tokenize(stripped, offset, limits, allow_unicode_operators)
    if isinstance(tokens, Evaluation):
        return tokens
    rpn = _to_postfix(tokens, limits)
    if isinstance(rpn, Evaluation):
        return rpn
    numbers = tuple(number for kind, number, _ in tokens if kind == "n")
    return _run(rpn, numbers, limits)


def evaluate_fast(
    text: str, limits: Limits = DEFAULT_LIMITS, *, allow_unicode_operators: bool = False
) -> tuple[int | Fraction, tuple[int, ...]] | None:
    """``(value, numbers)`` when :func:`evaluate` gives a value, else None; never raises.

    The value equals ``evaluate(text).value`` (as an ``int`` or a ``Fraction``) and ``numbers``
    is ``evaluate(text).numbers``. None when ``evaluate`` would fail or find a
    division by zero: call it then for the details. This skips building the
    :class:`Evaluation`, for callers that judge many formulas.

    >>> evaluate_fast("(3*10-6)*1")
    (24, (3, 10, 6, 1))
    >>> evaluate_fast("2^3") is None
    True
    """
    # The formula's skeleton (each number replaced by "0") decides its syntax, so it is compiled
    # once into a _Plan (see _compile_plan) and cached: formulas share few skeletons. Running the
    # plan applies the operators in the order _run applies them to the postfix program of
    # _to_postfix, so the values are the same.
    lane = _DEFAULT_LANE if limits is DEFAULT_LIMITS else _lane(limits)
    if not isinstance(text, str) or len(text) > lane.max_text:
        return None
    text = text.strip(" \t\r\n")
    if not text or len(text) > lane.max_length:
        return None
    # text, number, text, ..., number, text; a number over the digit limit comes out as two
    # numbers in a row, which no plan accepts.
    parts = lane.split(text)
    skeleton = "0".join(parts[::2])
    plans = lane.plans_unicode if allow_unicode_operators else lane.plans
    plan = plans.get(skeleton)
    if plan is None and skeleton not in plans:
        plan = _compile_plan(skeleton, allow_unicode_operators, limits)
        if len(plans) >= _PLANS_KEPT:  # hostile input has endless skeletons: start afresh
            plans.clear()
        plans[skeleton] = plan
    if plan is None:
        return None
    small = tuple(map(_SMALL_NUMBERS.get, parts[1::2]))  # int() is slow; most are short
    numbers: tuple[int, ...] = (
        tuple(map(int, parts[1::2])) if None in small else small  # type: ignore[assignment]
    )
    max_bits = lane.max_bits
    if lane.check_literals and max(numbers).bit_length() > max_bits:
        return None
    steps, integral_steps = plan
    # A value built from literals of at most b bits by k steps has a numerator and denominator
    # (in lowest terms) of at most (b per literal) + k bits: * and / add bit counts, + and - add
    # one more, negation none. Within max_bits, no step can exceed it and the checks are skipped.
    checked = lane.literal_bits * len(numbers) + len(steps) > max_bits
    if not checked:
        # The usual formula stays integral: its steps run as C functions over ints (register 0
        # holds the 0 that negation subtracts from). The first division with a remainder or by
        # zero ends this lane, and the exact loop below starts over.
        integers = [0, *numbers]
        push = integers.append
        try:
            for function, i, j in integral_steps:
                push(function(integers[i], integers[j]))
        except _NotIntegralError:
            pass
        else:
            return integers[-1], numbers
    # Registers hold ints while values are integral, else (numerator, denominator) pairs in
    # lowest terms with a denominator > 1: the same exact values as Fraction, without its
    # constructor and operator overhead (a wrong answer's divisions made Fraction a tenth of the
    # verifier's time). One Fraction is built at the end when the result is not integral.
    registers: list[int | tuple[int, int]] = list(numbers)
    for op, i, j in steps:
        a = registers[i]
        if op == "neg":
            registers.append(-a if type(a) is int else (-a[0], a[1]))  # type: ignore[index]
            continue
        b = registers[j]
        result: int | tuple[int, int]
        if type(a) is int and type(b) is int:
            if op == "+":
                result = a + b
            elif op == "-":
                result = a - b
            elif op == "*":
                result = a * b
            elif not b:
                return None  # division by zero: the exact path reports it
            elif a % b == 0:
                result = a // b
            else:
                result = _lowest_terms(a, b)
        else:
            an, ad = (a, 1) if type(a) is int else a  # type: ignore[misc]
            bn, bd = (b, 1) if type(b) is int else b  # type: ignore[misc]
            if op == "+":
                result = _lowest_terms(an * bd + bn * ad, ad * bd)
            elif op == "-":
                result = _lowest_terms(an * bd - bn * ad, ad * bd)
            elif op == "*":
                result = _lowest_terms(an * bn, ad * bd)
            elif not bn:
                return None
            else:
                result = _lowest_terms(an * bd, ad * bn)
        if checked:
            if type(result) is int:
                if result.bit_length() > max_bits:
                    return None
            elif result[0].bit_length() > max_bits or result[1].bit_length() > max_bits:  # type: ignore[index]
                return None
        registers.append(result)
    value = registers[-1]
    if type(value) is int:
        return value, numbers
    return Fraction(*value), numbers  # type: ignore[misc]


def _lowest_terms(numerator: int, denominator: int) -> int | tuple[int, int]:
    """``numerator / denominator`` (denominator != 0) as an int, or a pair in lowest terms with a
    positive denominator > 1: Fraction's normal form."""
    divisor = gcd(numerator, denominator)
    if denominator < 0:
        divisor = -divisor
    numerator //= divisor
    denominator //= divisor
    return numerator if denominator == 1 else (numerator, denominator)


def evaluate_error(
    text: str, limits: Limits = DEFAULT_LIMITS, *, allow_unicode_operators: bool = False
) -> str | None:
    """``evaluate(text).error``: the error code, None when the formula is legal.

    When a formula's skeleton (see :func:`evaluate_fast`) is not well-formed, the error is the
    same for every formula with that skeleton: the tokenizer's checks (illegal characters, depth,
    over-long numbers, which the skeleton shows as two numbers in a row) and the parser's come in
    the skeleton's order. Such errors are cached by skeleton; any other is computed.

    >>> evaluate_error("9**9"), evaluate_error("4*6")
    ('syntax', None)
    """
    lane = _DEFAULT_LANE if limits is DEFAULT_LIMITS else _lane(limits)
    if isinstance(text, str) and len(text) <= lane.max_text:
        stripped = text.strip(" \t\r\n")
        if stripped and len(stripped) <= lane.max_length:
            skeleton = "0".join(lane.split(stripped)[::2])
            errors = lane.errors_unicode if allow_unicode_operators else lane.errors
            error = errors.get(skeleton)
            if error is None:
                error = evaluate(
                    text, limits, allow_unicode_operators=allow_unicode_operators
                ).error
                plans = lane.plans_unicode if allow_unicode_operators else lane.plans
                if error is not None and skeleton in plans and plans[skeleton] is None:
                    if len(errors) >= _PLANS_KEPT:
                        errors.clear()
                    errors[skeleton] = error
            return error
    return evaluate(text, limits, allow_unicode_operators=allow_unicode_operators).error


_Steps = tuple[tuple[str, int, int], ...]
"""Steps ``(operator, i, j)``: register ``i`` op register ``j`` (``"neg"``: minus ``i``) goes to
the next register. Registers start as the formula's numbers in order; the last one is the value.
"""
_IntegralSteps = tuple[tuple[Callable[[int, int], int], int, int], ...]
"""The same steps for registers that start with 0 and then the numbers (indices one higher):
``(function, i, j)`` puts ``function(register i, register j)`` in the next register; negation is
``sub`` from register 0, division :func:`_exact_quotient`."""
_Plan = tuple[_Steps, _IntegralSteps]


class _NotIntegralError(Exception):
    """A division in the integral lane that leaves a remainder or divides by zero."""


def _exact_quotient(a: int, b: int) -> int:
    """``a / b`` when it is an int; raises :class:`_NotIntegralError` otherwise (``b == 0`` too)."""
    if b and not a % b:
        return a // b
    raise _NotIntegralError


_INTEGRAL_FUNCTIONS: dict[str, Callable[[int, int], int]] = {
    "+": add,
    "-": sub,
    "*": mul,
    "/": _exact_quotient,
}
_PLANS_KEPT = 8192  # plans cached per lane and operator set
# The value of every numeral of up to three digits, leading zeros included.
_SMALL_NUMBERS = {f"{n:0{width}d}": n for width in (1, 2, 3) for n in range(10**width)}


class _Lane:
    """What :func:`evaluate_fast` needs for one :class:`Limits`, built once."""

    __slots__ = (
        "check_literals",
        "errors",
        "errors_unicode",
        "literal_bits",
        "max_bits",
        "max_length",
        "max_text",
        "plans",
        "plans_unicode",
        "split",
    )

    def __init__(self, limits: Limits) -> None:
        self.max_text = _PADDING_SLACK * limits.max_length + _PADDING_SLACK  # as in evaluate
        self.max_length = limits.max_length
        self.max_bits = limits.max_value_bits
        digits = limits.max_number_digits
        self.split = re.compile(f"([0-9]{{1,{digits}}}+)").split
        # Whether a literal of the allowed digits can exceed the value limit.
        self.check_literals = (10**digits - 1).bit_length() > limits.max_value_bits
        # The most bits a literal can have (at least 1: the literal 0 has denominator 1).
        self.literal_bits = min((10**digits - 1).bit_length(), limits.max_value_bits)
        self.plans: dict[str, _Plan | None] = {}  # by skeleton
        self.plans_unicode: dict[str, _Plan | None] = {}  # the same, x X × ÷ allowed
        self.errors: dict[str, str] = {}  # error codes of skeletons with no plan
        self.errors_unicode: dict[str, str] = {}


@lru_cache(maxsize=16)
def _lane(limits: Limits) -> _Lane:
    return _Lane(limits)


_DEFAULT_LANE = _Lane(DEFAULT_LIMITS)


def _compile_plan(skeleton: str, allow_unicode_operators: bool, limits: Limits) -> _Plan | None:
    """The plan of a well-formed skeleton within the depth limit, else None.

    The shunting-yard of :func:`_to_postfix`, with the same checks, emitting each operator as a
    step over registers instead of into a postfix program.
    """
    tokens = _SKELETON_TOKEN_RE.findall(skeleton)  # ("0", "") for a number or ("", character)
    registers = sum(1 for digits, _ in tokens if digits)  # the numbers come first
    operands: list[int] = []  # the register each pending operand is in
    stack: list[tuple[int, str]] = []  # (precedence, operator); "(" has -1: nothing pops it
    steps: list[tuple[str, int, int]] = []
    number = 0
    expect_operand = True
    signs = 0
    depth = 0
    tokens.append(("", "end"))  # pops every operator left, like ")" pops down to its "("
    for digits, op in tokens:
        if expect_operand:
            if digits:
                operands.append(number)
                number += 1
                expect_operand = False
                signs = 0
            elif op == "(":
                depth += 1
                if depth > limits.max_depth:
                    return None
                stack.append(_OPEN)
                signs = 0
            elif op == "-" or op == "+":
                if signs == 2:
                    return None
                signs += 1
                if op == "-":
                    stack.append(_NEG)
            else:  # an operator, ")", an illegal character or the end where a number belongs
                return None
            continue
        if allow_unicode_operators and op in _UNICODE_OPERATORS:
            op = _UNICODE_OPERATORS[op]
        level = _LEVELS.get(op)
        if level is None:  # a number or "(" after an operand, or an illegal character
            return None
        while stack and stack[-1][0] >= level:
            name = stack.pop()[1]
            if name == "neg":
                steps.append((name, operands.pop(), 0))
            else:
                right = operands.pop()
                steps.append((name, operands.pop(), right))
            operands.append(registers)
            registers += 1
        if level:
            stack.append(_BINARY[op])
            expect_operand = True
        elif op == ")":
            if not stack:
                return None  # unmatched
            stack.pop()
            depth -= 1
        elif stack:
            return None  # the end, with a "(" unclosed
    integral = tuple(
        (sub, 0, i + 1) if op == "neg" else (_INTEGRAL_FUNCTIONS[op], i + 1, j + 1)
        for op, i, j in steps
    )
    return tuple(steps), integral


def _tokenize(
    text: str, offset: int, limits: Limits, allow_unicode_operators: bool
) -> list[_Token] | Evaluation:
    tokens: list[_Token] = []
    depth = 0  # the parser checks nesting exactly; this only stops deep input before parsing
    for match in _TOKEN_RE.finditer(text):
        digits, c = match.groups()
        if digits is not None:
            i = match.start(1)
            if len(digits) > limits.max_number_digits:
                return _failure(
                    "number_too_large",
                    f"number at {i + offset} has {len(digits)} digits, "
                    f"limit {limits.max_number_digits}",
                )
            tokens.append(("n", int(digits), i + offset))
        elif c in _OPERATORS:
            if c == "(":
                depth += 1
                if depth > limits.max_depth:
                    return _too_deep(limits, match.start(2) + offset)
            elif c == ")":
                depth -= 1
            tokens.append((c, 0, match.start(2) + offset))
        elif allow_unicode_operators and c in _UNICODE_OPERATORS:
            tokens.append((_UNICODE_OPERATORS[c], 0, match.start(2) + offset))
        else:
            return _failure(
                "illegal_character", f"illegal character {c!r} at {match.start(2) + offset}"
            )
    return tokens


def _to_postfix(tokens: list[_Token], limits: Limits) -> _Rpn | Evaluation:
    """Shunting-yard with an explicit stack: input depth can never reach the Python call stack."""
    out: _Rpn = []
    stack: list[str] = []
    expect_operand = True
    signs = 0  # consecutive unary signs before the current operand
    depth = 0
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
                depth += 1
                if depth > limits.max_depth:
                    return _too_deep(limits, pos)
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
            depth -= 1
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
    if isinstance(value, int):
        return value.bit_length() > max_bits
    return value.numerator.bit_length() > max_bits or value.denominator.bit_length() > max_bits


def _run(rpn: _Rpn, numbers: tuple[int, ...], limits: Limits) -> Evaluation:
    # Values stay plain ints while they are integral (several times faster than Fraction);
    # None marks "undefined after a division by zero" and propagates.
    values: list[int | Fraction | None] = []
    division_by_zero = False
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
        if a is None or b is None:
            result = None
        elif item == "+":
            result = a + b
        elif item == "-":
            result = a - b
        elif item == "*":
            result = a * b
        elif b == 0:
            division_by_zero = True
            result = None
        elif isinstance(a, int) and isinstance(b, int):
            result = a // b if a % b == 0 else Fraction(a, b)
        else:
            result = Fraction(a) / b
        if result is not None and _too_large(result, limits.max_value_bits):
            return _failure(
                "value_too_large",
                f"an intermediate value exceeds {limits.max_value_bits} bits",
            )
        values.append(result)
    (final,) = values
    if division_by_zero or final is None:
        return Evaluation(
            ok=True,
            value=None,
            numbers=numbers,
            error=None,
            division_by_zero=True,
            detail="division by zero",
        )
    return Evaluation(ok=True, value=Fraction(final), numbers=numbers, error=None)


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
