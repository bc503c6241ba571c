"""GeneralPoints verification: statuses, the paper's rewards, feedback and memorization flags.

Checks in the order and with the rewards of docs/tasks.md §1 (the first failure is ``status``,
every failure found is in ``statuses``): ``misrecognized_cards`` (GP-VL only) and
``illegal_formula`` end the scoring; the two kinds of ``wrong_numbers`` (numbers not on the cards
or overused, cards left unused) add their penalties, as in the paper's code; a division by zero is
a ``wrong_value``.

Extraction: the formula of the answer's last ``{...}`` object (see :mod:`gpbench.tasks.answers`),
else its last ``formula`` field, else the last line that states a formula (:func:`_formula_line`).
Text before the first ``=`` is the expression.

Flags (docs/tasks.md §5): ``train_rule_answer`` (wrong under the split's rule, right if J/Q/K were 10),
``verbatim_training_formula`` (the expression, whitespace aside, equals the reference formula
``train`` holds for the same cards), ``output_truncated`` (the answer hit the token limit).

``mode="reference"`` is the paper code's scoring, reward and feedback text exactly
(:mod:`gpbench.tasks.paper_rules`): strict extraction (``json.loads`` or one regex), any
whitespace illegal, transition penalties that add up, a float value check, +1 for an unparseable
prefix of a solution string and -1 from the prefix walk. Its reasons map onto the statuses above
by how they begin (:data:`_REFERENCE_STATUSES`); an answer with no formula gets ``illegal
characters``. The feedback is the paper's ``You failed this trial because ...``.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from gpbench.generators.arithmetic import Evaluation, evaluate, format_fraction
from gpbench.generators.cards import TRAINING_FACE_VALUES, card_value, rank_from_name, solve
from gpbench.records import Verdict
from gpbench.tasks import paper_rules
from gpbench.tasks.answers import Json, extract_field_fallback, extract_object

REWARD_CORRECT = 5.0
REWARD_WRONG_VALUE = -1.0
REWARD_WRONG_NUMBERS = -2.0
REWARD_ILLEGAL = -3.0
REWARD_MISRECOGNIZED = -1.5
REWARD_BUDGET_EXCEEDED = -1.0

MODES = ("gpbench", "reference")
STATUSES = (
    "correct",
    "misrecognized_cards",
    "illegal_formula",
    "wrong_numbers",
    "wrong_value",
    "solution_prefix",
)
FLAGS = ("train_rule_answer", "verbatim_training_formula", "output_truncated")


def answer_statuses(mode: str, *, check_cards: bool) -> tuple[str, ...]:
    """The statuses one answer can get in ``mode``, in check order: ``misrecognized_cards`` only
    where the cards are checked (gp-vl), ``solution_prefix`` only in the paper-code mode.

    >>> answer_statuses("gpbench", check_cards=False)
    ('correct', 'illegal_formula', 'wrong_numbers', 'wrong_value')
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    dropped = {"solution_prefix": mode != "reference", "misrecognized_cards": not check_cards}
    return tuple(status for status in STATUSES if not dropped.get(status))


_REASONS = {
    "misrecognized_cards": "the cards you recognized are not the cards in the image",
    "illegal_formula": "your formula is not a legal expression of numbers and + - * / ( )",
    "no_formula": "no formula was found in your answer",
}
# Reasons that name what was wrong, as the paper's feedback does (its models learned from it).
_NOT_ON_CARDS = "your formula uses numbers that are not on the cards: {numbers}"
_OVERUSED = "your formula uses a card more than once: {numbers}"
_UNUSED = "your formula does not use every card (unused: {numbers})"
_WRONG_VALUE = "your formula does not evaluate to {target} (it gives {value})"
_PREFIX = "; only its start '{prefix}' fits a solution"

# A formula line: only these characters, at least one digit. Two linear checks, where the single
# pattern ^[C]*\d[C]*$ backtracked quadratically on a long line ending in a foreign character.
_FORMULA_CHARS = re.compile(r"[\s\d+\-*/()=.xX×÷]*")
_DIGIT = re.compile(r"\d")
# LaTeX spellings on a formula line (\times stays a unicode operator: legal only where allowed).
_LATEX = (("\\times", "×"), ("\\cdot", "×"), ("\\div", "÷"), ("\\left", ""), ("\\right", ""))
_MARKUP = " \t*_`$"  # markdown emphasis, inline code and TeX math around a formula
# A run of formula characters inside a sentence ("So (3*10-6)*1 = 24.").
_FORMULA_RUN = re.compile(r"[\d+\-*/()=.xX×÷ \t]+")
_OPERATOR = re.compile(r"[+\-*/xX×÷]")


def feedback_text(reasons: Sequence[str]) -> str:
    """The paper's revision prompt: ``You failed this trial because {reasons}.``"""
    return f"You failed this trial because {', '.join(reasons)}." if reasons else ""


def _formula_from(answer: str, obj: dict[str, Json] | None) -> str | None:
    """The formula an answer gives (see the module docstring), given its ``extract_object``."""
    value: Any = obj.get("formula") if obj is not None else None
    if value is None and (obj is None or "formula" not in obj):
        value = extract_field_fallback(answer, "formula")
    if value is None:  # the last formula line counts
        found = (_formula_line(line) for line in reversed(answer[-4096:].splitlines()))
        value = next((formula for formula in found if formula is not None), None)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    # Markdown or TeX around a field's formula (`...`, **...**, $...$) is not part of it.
    return value.strip(_MARKUP) if isinstance(value, str) else None


def _formula_line(line: str) -> str | None:
    r"""The formula a line states: the whole line after a label (``Final answer:``), markdown and
    TeX around it removed, if it holds only formula characters; else its last equation.

    >>> _formula_line("**Final answer:** \\( (3*10 - 6)*1 = 24 \\)")
    '(3*10 - 6)*1 = 24'
    >>> _formula_line("So $(3*10-6)*1 = 24$, which uses every card.")
    '(3*10-6)*1 = 24'
    """
    text = line.rsplit(":", 1)[-1].strip(_MARKUP)
    for opening, closing in (("\\[", "\\]"), ("\\(", "\\)")):
        text = text.removeprefix(opening).removesuffix(closing).strip(_MARKUP)
    if "\\" in text:
        for latex, plain in _LATEX:
            text = text.replace(latex, plain)
    if text and _FORMULA_CHARS.fullmatch(text) and _DIGIT.search(text):
        return text.strip()
    runs = [m.group() for m in _FORMULA_RUN.finditer(text)]
    for run in reversed(runs):
        before, equals, _ = run.partition("=")
        if equals and _DIGIT.search(before) and _OPERATOR.search(before):
            return run.strip().rstrip(".").strip()
    return None


def parse_cards(value: Any) -> list[str] | None:
    """Card names from an answer's ``cards`` field: ``'K'``, ``K``, ``10``, ``T``, ints, lists."""
    if not isinstance(value, list):
        return None
    cards = []
    for item in value:
        text = str(item).strip().upper() if not isinstance(item, bool) else ""
        text = {"T": "10", "1": "A", "11": "J", "12": "Q", "13": "K", "ACE": "A"}.get(text, text)
        try:
            rank_from_name(text)
        except ValueError:
            return None
        cards.append(text)
    return cards


def verify(
    answer: str,
    *,
    cards: Sequence[str],
    values: Sequence[int],
    target: int,
    rule_is_training: bool,
    check_cards: bool = False,
    mode: str = "gpbench",
    output_truncated: bool = False,
    allow_unicode_operators: bool = False,
) -> Verdict:
    """Judge one answer to a GeneralPoints hand. Total: any string gives a Verdict."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    flags = ["output_truncated"] if output_truncated else []
    if mode == "reference":
        return _verify_reference(
            answer, cards, values, target, rule_is_training, check_cards, flags
        )
    extracted: dict[str, Any] = {}

    # Parsed once: the cards, the formula and the fallbacks use it.
    obj = extract_object(answer)
    if check_cards:
        raw_cards = obj.get("cards") if obj is not None else extract_field_fallback(answer, "cards")
        seen = parse_cards(raw_cards)
        extracted["cards"] = seen
        if seen is None or collections.Counter(seen) != collections.Counter(cards):
            return _failure("misrecognized_cards", REWARD_MISRECOGNIZED, extracted, flags)

    found = obj.get("formula") if obj is not None else None
    formula = found if isinstance(found, str) else _formula_from(answer, obj)
    extracted["formula"] = formula
    if formula is None:
        return _failure("illegal_formula", REWARD_ILLEGAL, extracted, flags, "no_formula")
    expression = formula.split("=", 1)[0]
    extracted["expression"] = expression.strip()

    result = evaluate(expression, allow_unicode_operators=allow_unicode_operators)
    if not result.ok:
        extracted["error"] = result.error
        return _failure("illegal_formula", REWARD_ILLEGAL, extracted, flags)
    _note_evaluation(extracted, flags, expression, result, cards, target, rule_is_training)
    value, numbers = result.value, result.numbers

    value_ok = value is not None and value == target  # None: a division by zero
    available = collections.Counter(values)
    spent = collections.Counter(numbers)
    overused = bool(spent - available)  # numbers not on the cards, or a card used twice
    unused = bool(available - spent)  # cards left over
    if value_ok and not overused and not unused:
        return Verdict(True, "correct", ["correct"], REWARD_CORRECT, "", extracted, flags)

    statuses = ["wrong_numbers"] if overused or unused else []
    reasons: list[str] = []
    reward = 0.0
    if overused:
        extra = spent - available
        foreign = [n for n in extra if n not in available]
        if foreign:
            reasons.append(_NOT_ON_CARDS.format(numbers=foreign))
        if len(foreign) < len(extra):
            reasons.append(_OVERUSED.format(numbers=[n for n in extra if n in available]))
        reward += REWARD_WRONG_NUMBERS
    if unused:
        reasons.append(_UNUSED.format(numbers=list(available - spent)))
        reward += REWARD_WRONG_NUMBERS
    if not value_ok:
        statuses.append("wrong_value")
        # The paper's "... is partially correct": the longest start that fits a solution.
        shown = "a division by zero" if value is None else format_fraction(value)
        prefix = paper_rules.longest_solution_prefix(expression, values, target)
        reason = _WRONG_VALUE.format(target=target, value=shown)
        reasons.append(reason + (_PREFIX.format(prefix=prefix) if prefix else ""))
    if statuses == ["wrong_value"]:
        reward = REWARD_WRONG_VALUE
    return Verdict(False, statuses[0], statuses, reward, feedback_text(reasons), extracted, flags)


def _failure(
    status: str, reward: float, extracted: dict[str, Any], flags: list[str], reason: str = ""
) -> Verdict:
    """A verdict with one failure and one reason (a key of _REASONS, by default ``status``)."""
    feedback = feedback_text([_REASONS[reason or status]])
    return Verdict(False, status, [status], reward, feedback, extracted, flags)


@lru_cache(maxsize=4096)
def _training_hand(cards: tuple[str, ...], target: int) -> tuple[tuple[int, ...], str | None]:
    """The hand's sorted values under the training rule and their reference formula (memoised:
    solving a hand is search, and the memorization flags need it for every answer)."""
    training_values = [card_value(rank_from_name(c), TRAINING_FACE_VALUES) for c in cards]
    return tuple(sorted(training_values)), solve(training_values, target)


def _note_evaluation(
    extracted: dict[str, Any],
    flags: list[str],
    expression: str,
    result: Evaluation,
    cards: Sequence[str],
    target: int,
    rule_is_training: bool,
) -> None:
    """Record a legal expression's numbers and value, and the memorization flags it earns."""
    extracted["numbers"] = list(result.numbers)
    if result.value is not None:
        extracted["value"] = format_fraction(result.value)
    training_values, reference = _training_hand(tuple(sorted(cards)), target)
    used = tuple(sorted(result.numbers))
    if not rule_is_training and result.value == target and used == training_values:
        flags.append("train_rule_answer")
    # "".join(split()) drops exactly the \s characters (str.isspace is re's \s).
    if reference is not None and "".join(expression.split()) == reference:
        flags.append("verbatim_training_formula")


# Checked in this order; the prefix walk's reasons, and a solution string whose float value misses
# (the paper scores it 0 with no reason), are wrong values.
_REFERENCE_STATUSES = (
    (paper_rules.REASON_MISRECOGNIZED, "misrecognized_cards"),
    (paper_rules.REASON_ILLEGAL, "illegal_formula"),
    ("invalid sequence after ", "illegal_formula"),
    ("unmatched close parenthesis", "illegal_formula"),
    ("you used invalid numbers", "wrong_numbers"),
    ("you used numbers", "wrong_numbers"),
    ("you didn't use numbers", "wrong_numbers"),
    (paper_rules.REASON_PARTIAL, "solution_prefix"),
)


def _reference_status(reason: str) -> str:
    """The gpbench status of one of the paper's reasons."""
    return next((s for start, s in _REFERENCE_STATUSES if reason.startswith(start)), "wrong_value")


def _verify_reference(
    answer: str,
    cards: Sequence[str],
    values: Sequence[int],
    target: int,
    rule_is_training: bool,
    check_cards: bool,
    flags: list[str],
) -> Verdict:
    """``mode="reference"``: the paper code's reward and feedback, mapped onto gpbench statuses."""
    score = paper_rules.score_general_points(
        answer, values, target, true_cards=list(cards) if check_cards else None
    )
    extracted: dict[str, Any] = score.extracted_dict()
    if extracted.get("formula") == paper_rules.NOT_EXTRACTED:
        extracted["formula"] = None  # nothing was found: read as no answer, as in default mode
    found = dict.fromkeys(_reference_status(reason) for reason in score.reasons)
    statuses = ["correct"] if score.correct else list(found) or ["wrong_value"]
    expression = extracted.get("expression")
    if isinstance(expression, str) and "misrecognized_cards" not in statuses:
        result = evaluate(expression)
        if result.ok:
            _note_evaluation(extracted, flags, expression, result, cards, target, rule_is_training)
    feedback = "" if score.correct else score.revision_message
    return Verdict(score.correct, statuses[0], statuses, score.reward, feedback, extracted, flags)
