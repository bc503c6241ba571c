"""The deterministic answer corpus the verdict goldens judge: 10,000 varied answers per task
and verifier mode.

Entry ``i`` of (task, mode)'s corpus is a pure function of ``(task, mode, i)``: its own
:class:`Draws` stream picks an instance from the task's pool (several splits, seeds and
options; a small core of it for the slow reference mode), a decision point (V-IRL), and an
answer of kind ``KINDS[i % len(KINDS)]``, so every kind appears evenly and editing one kind
moves no other entry. Answers are model-like (the reference in every format a
model uses, wrong values and numbers, revisions) and hostile (illegal characters, deep nesting,
huge numbers, code, control characters, lone surrogates), and a share are mutated (deletions,
duplications, swaps, truncation). Every answer is under :data:`MAX_ANSWER_BYTES` of UTF-8.

The corpus depends on gpbench only through the instances (pinned by their own goldens), the
task's reference answers and, for one GeneralPoints kind, the reference solver (whose formulas
the instances pin too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from goldens_support import Draws, utf8_size

from gpbench.generators.cards import solve
from gpbench.records import Instance
from gpbench.tasks.navigation import NavigationText
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

CORPUS_SIZE = 10_000
MAX_ANSWER_BYTES = 4000
"""Each answer stays under 4 KB of UTF-8, so the whole corpus is judged in seconds."""

GP_TASKS = ("gp-l", "gp-vl")
VIRL_TASKS = ("virl-l", "virl-vl")
TASKS = (*GP_TASKS, *VIRL_TASKS)

# --- instance pools ----------------------------------------------------------------------------

# (split, seed, options, count): the instances a task's answers are written for.
_GP_POOL: tuple[tuple[str, int, Mapping[str, Any], int], ...] = (
    *((split, 42, {}, 40) for split in ("train", "id", "id-heldout", "ood-rule")),
    *((split, 7, {}, 20) for split in ("train", "id", "id-heldout", "ood-rule")),
    ("id", 42, {"target": 10}, 12),
    ("ood-rule", 42, {"target": 10}, 12),
    ("id", 42, {"target": 36}, 12),
    ("ood-rule", 5, {"target": 1}, 8),
    ("id", 42, {"sampling": "deck"}, 12),
    ("ood-rule", 42, {"sampling": "deck"}, 12),
    ("id", 42, {"paired": True}, 12),
    ("ood-rule", 42, {"paired": True}, 12),
)
_GP_VISION_POOL = (
    ("ood-color", 42, {}, 40),
    ("ood-color", 7, {}, 20),
    ("ood-color", 42, {"target": 12, "sampling": "deck"}, 10),
    ("id", 42, {"rotation": 8.0, "jitter": 10, "background": "#223344"}, 8),
)
_VIRL_POOL = (
    *((split, 12, {}, 14) for split in ("train", "id", "id-heldout", "ood-rule", "ood-spatial")),
    *((split, 3, {}, 6) for split in ("train", "id", "id-heldout", "ood-rule", "ood-spatial")),
)


@cache
def instance_pool(task_id: str) -> tuple[Instance, ...]:
    """The instances a task's corpus (and fuzz, and episodes) draw from, in a fixed order."""
    task = get_task(task_id)
    if task_id in GP_TASKS:
        plan = _GP_POOL + (_GP_VISION_POOL if task_id == "gp-vl" else ())
    else:
        plan = _VIRL_POOL
    return tuple(
        instance
        for split, seed, options, count in plan
        for instance in task.dataset(split, seed, count, options)
    )


@dataclass(frozen=True)
class Entry:
    """One corpus answer: which instance (position in the pool), decision point and text."""

    index: int
    kind: str
    instance: int
    point: int
    answer: str


CORE_POOL_SIZE = 16


def core_pool(task_id: str) -> tuple[Instance, ...]:
    """A spread of 16 instances of the pool. The reference mode's solution-prefix check
    enumerates every solution of a hand (tens of milliseconds a hand), so its corpus and the
    fuzz keep to few hands."""
    pool = instance_pool(task_id)
    return pool[:: len(pool) // CORE_POOL_SIZE][:CORE_POOL_SIZE]


def corpus_pool(task_id: str, mode: str) -> tuple[Instance, ...]:
    """The instances (task, mode)'s corpus answers: the whole pool in the gpbench mode."""
    return instance_pool(task_id) if mode == "gpbench" else core_pool(task_id)


@cache
def corpus(task_id: str, mode: str) -> tuple[Entry, ...]:
    """The 10,000 answers judged for (task, mode), in order (computed once per process)."""
    task = get_task(task_id)
    pool = corpus_pool(task_id, mode)
    gp = task_id in GP_TASKS
    kinds = GP_KINDS if gp else VIRL_KINDS
    entries = []
    for i in range(CORPUS_SIZE):
        d = Draws(f"goldens/corpus/{task_id}/{mode}/{i}")
        kind = kinds[i % len(kinds)]
        position = d.below(len(pool))
        instance = pool[position]
        if gp:
            point = 0
            answer = gp_answer(d, task, instance, kind)
        else:
            point = d.below(len(instance.problem["points"]))
            answer = virl_answer(d, task, instance, point, kind)
        entries.append(Entry(i, kind, position, point, fit(answer)))
    return tuple(entries)


def fit(text: str, limit: int = MAX_ANSWER_BYTES) -> str:
    """``text`` cut (at its end) until its UTF-8 form is under ``limit`` bytes."""
    size = utf8_size(text)
    while size >= limit:
        text = text[: max(0, len(text) * (limit - 1) // size - 1)]
        size = utf8_size(text)
    return text


# --- shared pieces -------------------------------------------------------------------------------

PROSE_BEFORE = (
    "",
    "Let me think step by step.\n",
    "Sure! Here's my answer:\n\n",
    "We need to reach the target with 4 cards. I tried 3*8 first, then this:\n",
    "**Answer**\n\n",
    "### Solution\n\n",
    "Okay. The cards are given; each is used once.\n\nFinal answer:\n",
    "I'll respond in JSON.\n",
)
PROSE_AFTER = (
    "",
    "\n\nThis uses every card exactly once.",
    "\nHope this helps! Let me know if you want another one.",
    "\n\n(All numbers used once.)",
    " Done.",
    "\n\nNote: 24 = 4 * 6 is a common pattern.",
)
CODE_PAYLOADS = (
    "__import__('os').system('echo pwned')",
    "eval('4*6')",
    "exec(\"import os; os.system('ls')\")",
    "().__class__.__base__.__subclasses__()",
    "open('/etc/passwd').read()",
    "lambda: 24",
    "globals()['__builtins__']",
    "${jndi:ldap://x/a}",
    "'; DROP TABLE verdicts; --",
    "<script>alert(1)</script>",
)
UNICODE_DIGITS = (
    "٠١٢٣٤٥٦٧٨٩",
    "０１２３４５６７８９",
    "०१२३४५६७८९",
    "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
    "⁰¹²³⁴⁵⁶⁷⁸⁹",
)
ODD_CHARACTERS = (
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\u2028",
    "\r\n",
    "\t",
    "\ud800",
    "\udfff",
    "\udc80",
    "\U0001f0a1",
    "é",
    "漢",
    "\ufffd",
    "\\",
    "\\u0000",
    '\\"',
)
FENCES = ("```json\n{}\n```", "```\n{}\n```", "```python\n{}\n```", "~~~\n{}\n~~~", "`{}`")


def mutate(d: Draws, text: str, fragments: Sequence[str]) -> str:
    """One edit of ``text``: a deletion, duplication, swap, insertion, truncation or case change."""
    n = len(text)
    i = d.below(n + 1)
    j = min(n, i + d.between(1, 24))
    op = d.below(9)
    if op == 0:
        return text[:i] + text[j:]  # delete a span
    if op == 1:
        k = d.below(n + 1)
        return text[:k] + text[i:j] + text[k:]  # duplicate a span elsewhere
    if op == 2 and n > 1:
        a, b = sorted((d.below(n), d.below(n)))
        return text[:a] + text[b] + text[a + 1 : b] + text[a] + text[b + 1 :] if a != b else text
    if op == 3:
        k = d.below(n + 1)
        a, b = sorted((i, k))
        c = min(n, b + (j - i))
        return text[:a] + text[b:c] + text[a:b] + text[c:]  # swap two neighbouring spans
    if op == 4:
        return text[:i] + d.choice(fragments) + text[i:]  # insert a fragment
    if op == 5:
        return text[:i]  # truncated at the token limit
    if op == 6 and n:
        k = d.below(n)
        return text[:k] + d.choice(ODD_CHARACTERS) + text[k + 1 :]  # one character replaced
    if op == 7:
        return text[:i] + text[i:j].swapcase() + text[j:]
    return text[:i] + text[i:j] * d.between(2, 5) + text[j:]  # a span repeated


def mutated(d: Draws, text: str, fragments: Sequence[str]) -> str:
    """One to four edits in a row."""
    for _ in range(d.between(1, 4)):
        text = mutate(d, text, fragments)
    return text


def deep(d: Draws, inner: str) -> str:
    """Nesting around ``inner`` near the parsers' depth limits (30-34 levels), or far past them."""
    opener, closer = d.choice((("[", "]"), ("{", "}"), ('{"a": ', "}"), ('{"a": [', "]}")))
    depth = d.choice((30, 31, 32, 33, 34, d.between(35, 400)))
    close = depth if d.chance(3, 4) else d.choice((0, depth - 1, depth + 1))
    return opener * depth + inner + closer * max(0, close)


# --- GeneralPoints answers ---------------------------------------------------------------------


def expression(d: Draws, numbers: Sequence[object]) -> str:
    """A random expression over ``numbers`` (shuffled), random operators and brackets."""
    items = [str(n) for n in d.shuffled(numbers)]
    if not items:
        return ""
    while len(items) > 1:
        i = d.below(len(items) - 1)
        joined = f"{items[i]}{d.choice('+-*/')}{items[i + 1]}"
        if len(items) > 2 and d.chance(3, 5):
            joined = f"({joined})"
        items[i : i + 2] = [joined]
    return items[0]


@cache
def exact_solution(values: tuple[int, ...], target: int) -> str | None:
    """A formula over ``values`` that equals ``target``, or None (at most four values).

    Written here (a small exhaustive search with exact fractions as integer pairs) so the corpus
    does not depend on the solver under test; the order of ``values`` decides which solution
    is found first.
    """
    if not 1 <= len(values) <= 4:
        return None
    steps = _search(tuple((v, 1) for v in values), target)
    if steps is None:
        return None
    texts = [str(v) for v in values]
    for i, j, op in steps:  # replay the operations on the texts
        joined = f"{_operand(texts[i])}{op}{_operand(texts[j])}"
        texts = [t for k, t in enumerate(texts) if k not in (i, j)] + [joined]
    return texts[0]


def _operand(text: str) -> str:
    return text if text.isdigit() else f"({text})"


def _search(items: tuple[tuple[int, int], ...], target: int) -> list[tuple[int, int, str]] | None:
    """Depth-first over (numerator, denominator) pairs: the operations that reach ``target``.

    Each operation ``(i, j, op)`` combines items ``i`` and ``j`` into a new last item.
    """
    if len(items) == 1:
        numerator, denominator = items[0]
        return [] if numerator == target * denominator else None
    for i, (an, ad) in enumerate(items):
        for j, (bn, bd) in enumerate(items):
            if i == j:
                continue
            rest = tuple(item for k, item in enumerate(items) if k != i and k != j)
            options = [((an * bd - bn * ad, ad * bd), "-")]
            if i < j:  # + and * are commutative: one order is enough
                options.append(((an * bd + bn * ad, ad * bd), "+"))
                options.append(((an * bn, ad * bd), "*"))
            if bn:
                options.append(((an * bd, ad * bn), "/"))
            for value, op in options:
                found = _search((*rest, value), target)
                if found is not None:
                    return [(i, j, op), *found]
    return None


def render(
    d: Draws,
    cards: Any,
    numbers: Any,
    formula: Any,
    *,
    style: str | None = None,
) -> str:
    """An answer object in one of the shapes models write (``formula`` may be any JSON value)."""
    style = style or d.choice(GP_STYLES)
    obj = {"cards": cards, "number": numbers, "formula": formula}
    if style == "paper":
        quoted = f'"{formula}"' if isinstance(formula, str) else json.dumps(formula)
        return f'{{\n  "cards": {cards!r},\n  "number": {numbers!r},\n  "formula": {quoted},\n}}'
    if style == "strict":
        return json.dumps(obj, indent=d.choice((None, 2, 4)), ensure_ascii=d.chance(1, 2))
    if style == "compact":
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if style == "fenced":
        return d.choice(FENCES).replace("{}", render(d, cards, numbers, formula, style="strict"))
    if style == "prose":
        body = render(d, cards, numbers, formula, style=d.choice(("paper", "strict", "single")))
        return d.choice(PROSE_BEFORE) + body + d.choice(PROSE_AFTER)
    if style == "single":
        trailing = d.choice((",", ", ", ""))
        return f"{{'cards': {cards!r}, 'number': {numbers!r}, 'formula': {formula!r}{trailing}}}"
    if style == "trailing":
        cards_text = ", ".join(json.dumps(c) for c in cards) if isinstance(cards, list) else cards
        numbers_text = ", ".join(map(str, numbers)) if isinstance(numbers, list) else numbers
        return (
            f'{{"cards": [{cards_text},], "number": [{numbers_text},], '
            f'"formula": {json.dumps(formula)},}}'
        )
    if style == "python":
        return (
            f"{{'cards': {cards!r}, 'number': {numbers!r}, 'formula': {formula!r}, "
            f"'valid': {d.choice(('True', 'False', 'None'))}, 'note': None}}"
        )
    if style == "unquoted":
        cards_text = ", ".join(map(str, cards)) if isinstance(cards, list) else str(cards)
        numbers_text = ", ".join(map(str, numbers)) if isinstance(numbers, list) else numbers
        return f"{{cards: [{cards_text}], number: [{numbers_text}], formula: {formula}}}"
    if style == "comments":
        return (
            f'{{\n  "cards": {json.dumps(cards)}, // the hand\n'
            f'  "number": {json.dumps(numbers)}, # values\n'
            f'  "formula": {json.dumps(formula)}\n}}'
        )
    if style == "formula_first":
        return json.dumps({"formula": formula, "cards": cards, "number": numbers, "x": [1, {}]})
    if style == "markdown":
        return (
            f"## Answer\n\n- **cards**: {cards}\n- **number**: {numbers}\n"
            f"- **formula**: `{formula}`\n"
        )
    if style == "formula_line":
        label = d.choice(("formula: ", "Formula: ", '"formula": ', "formula = ", "formula:"))
        return f"{d.choice(PROSE_BEFORE)}{label}{formula}{d.choice(PROSE_AFTER)}"
    if style == "bare_line":
        return f"{d.choice(PROSE_BEFORE)}The answer is below.\n{formula}\n"
    if style == "latex":
        text = str(formula).replace("*", d.choice((r" \times ", r"\cdot ", "*")))
        wrap = d.choice(("$$ {} $$", r"\( {} \)", r"\boxed{{{}}}", "${}$", "{}"))
        return f'{{"formula": {json.dumps(wrap.format(text))}}}'
    raise ValueError(style)


GP_STYLES = (
    "paper",
    "strict",
    "compact",
    "fenced",
    "prose",
    "single",
    "trailing",
    "python",
    "unquoted",
    "comments",
    "formula_first",
    "markdown",
    "formula_line",
    "bare_line",
    "latex",
)


def spaced(d: Draws, formula: str) -> str:
    """Whitespace around a formula's operators, as models write it: ``(3 * 10 - 6) * 1 = 24``."""
    out = []
    for c in formula:
        if c in "+-*/=()":
            out.append(d.choice(("", " ", " ", "  ", "\t", "\n")) + c + d.choice(("", " ", " ")))
        else:
            out.append(c)
    return "".join(out)


def _values(instance: Instance) -> list[int]:
    return list(instance.problem["values"])


def _target(instance: Instance) -> int:
    return int(instance.problem["target"])


def _expr(formula: str) -> str:
    return formula.split("=", 1)[0]


def _with_target(d: Draws, expression_text: str, target: int) -> str:
    return d.choice(
        (f"{expression_text}={target}", expression_text, f"{expression_text} = {target}")
    )


def gp_reference(d: Draws, task: TaskSpec, inst: Instance) -> str:
    if d.chance(1, 3):
        return task.reference_answer(inst)
    ref = inst.reference
    return render(d, ref["cards"], ref["number"], ref["formula"])


def gp_alternative(d: Draws, task: TaskSpec, inst: Instance) -> str:
    """A correct formula found by the corpus's own search (often not the reference's)."""
    values = tuple(sorted(_values(inst), reverse=d.chance(1, 2)))
    found = exact_solution(values, _target(inst))
    formula = _with_target(d, found, _target(inst)) if found else inst.reference["formula"]
    return render(d, inst.reference["cards"], list(values), formula)


def gp_spaced(d: Draws, task: TaskSpec, inst: Instance) -> str:
    formula = spaced(d, inst.reference["formula"])
    if d.chance(1, 3):
        formula = d.choice(("", " ", "\t", "\n ")) + formula + d.choice(("", " ", "\n"))
    return render(d, inst.reference["cards"], inst.reference["number"], formula)


def gp_wrong_value(d: Draws, task: TaskSpec, inst: Instance) -> str:
    formula = _with_target(d, expression(d, _values(inst)), _target(inst))
    return render(d, inst.reference["cards"], _values(inst), formula)


def gp_wrong_numbers(d: Draws, task: TaskSpec, inst: Instance) -> str:
    values = _values(inst)
    numbers = list(values)
    expr = _expr(inst.reference["formula"])
    how = d.below(8)
    if how == 0:
        numbers[d.below(4)] = d.between(0, 14)  # a number off the cards
    elif how == 1:
        del numbers[d.below(4)]  # a card unused
    elif how == 2:
        numbers[d.below(4)] = numbers[d.below(4)]  # one card in place of another
    elif how == 3:
        numbers.append(d.choice(values))  # one card twice
    elif how == 4:
        numbers = numbers[: d.between(0, 2)]
    elif how == 5:  # the right value with a number too many
        v = d.choice((*values, 0, 1))
        body = d.choice((f"{expr}*1", f"{expr}+0", f"{expr}+{v}-{v}", f"({expr})*{v}/{v}"))
        return render(d, inst.reference["cards"], numbers, _with_target(d, body, _target(inst)))
    elif how == 6:  # one number of the reference formula replaced
        digits = [k for k, c in enumerate(expr) if c.isdigit()]
        k = d.choice(digits)
        body = expr[:k] + str(d.below(10)) + expr[k + 1 :]
        return render(d, inst.reference["cards"], numbers, _with_target(d, body, _target(inst)))
    else:
        numbers = [v + d.choice((-1, 1)) for v in values]
    body = expression(d, numbers)
    return render(d, inst.reference["cards"], numbers, _with_target(d, body, _target(inst)))


def _training_values(inst: Instance) -> list[int]:
    return [
        10 if c in ("J", "Q", "K") else v
        for c, v in zip(inst.problem["cards"], _values(inst), strict=True)
    ]


def gp_train_rule(d: Draws, task: TaskSpec, inst: Instance) -> str:
    """The hand solved as if J/Q/K were 10 (the training rule): flagged on ood-rule hands."""
    numbers = _training_values(inst)
    found = exact_solution(tuple(sorted(numbers)), _target(inst))
    body = found if found is not None else expression(d, numbers)
    return render(d, inst.reference["cards"], numbers, _with_target(d, body, _target(inst)))


def gp_verbatim_training(d: Draws, task: TaskSpec, inst: Instance) -> str:
    """The formula ``train`` holds for these cards (the reference solver under the training rule)."""
    numbers = _training_values(inst)
    found = solve(numbers, _target(inst))
    body = found if found is not None else expression(d, numbers)
    if d.chance(1, 3):
        body = spaced(d, body)
    return render(d, inst.reference["cards"], numbers, _with_target(d, body, _target(inst)))


ILLEGAL_EDITS = (
    "^",
    "%",
    "**",
    "//",
    ".",
    ".5",
    "x",
    "X",
    "[",
    "]",
    "{",
    "!",
    "=",
    "==",
    "---",
    "+-",
    "--",
    "e",
    "sqrt",
    ",",
    ";",
    "|",
    "&",
    "(",
    ")",
    "()",
    "2(",
    ")(",
    "0",
    "00",
    "1234567",
    "123456",
)


def gp_illegal(d: Draws, task: TaskSpec, inst: Instance) -> str:
    expr = _expr(inst.reference["formula"])
    for _ in range(d.between(1, 2)):
        k = d.below(len(expr) + 1)
        expr = expr[:k] + d.choice(ILLEGAL_EDITS) + expr[k + d.below(2) :]
    return render(d, inst.reference["cards"], _values(inst), _with_target(d, expr, _target(inst)))


def gp_unicode(d: Draws, task: TaskSpec, inst: Instance) -> str:
    formula = inst.reference["formula"]
    how = d.below(4)
    if how == 0:
        table = {"*": d.choice(("×", "x", "X", "·", "∗")), "/": d.choice(("÷", "∕", "/"))}
        table["-"] = d.choice(("−", "–", "—", "-"))
        formula = "".join(table.get(c, c) for c in formula)
    elif how == 1:
        digits = d.choice(UNICODE_DIGITS)
        formula = "".join(digits[int(c)] if c.isdigit() and d.chance(1, 2) else c for c in formula)
    elif how == 2:
        formula = formula.replace("(", d.choice(("（", "[", "⟮"))).replace(
            ")", d.choice(("）", "]"))
        )
    else:
        formula = formula.replace("=", d.choice(("＝", "≡", "≈", "=")))
    return render(d, inst.reference["cards"], inst.reference["number"], formula)


def gp_formula_types(d: Draws, task: TaskSpec, inst: Instance) -> str:
    target = _target(inst)
    value: Any = d.choice(
        (
            target,
            float(target),
            True,
            None,
            [inst.reference["formula"]],
            {"formula": inst.reference["formula"]},
            "",
            " ",
            f"={target}",
            str(target),
            f"{target}={target}",
            "=",
            "1e3",
            -target,
            f"{_expr(inst.reference['formula'])}=",
            f"={_expr(inst.reference['formula'])}",
        )
    )
    style = d.choice(("strict", "compact", "python", "single", "paper"))
    return render(d, inst.reference["cards"], _values(inst), value, style=style)


def gp_several(d: Draws, task: TaskSpec, inst: Instance) -> str:
    """Several answers in one response (the last counts); counts around the candidate limit."""
    count = d.choice((2, 2, 3, 5, 15, 16, 17, 20))
    parts = []
    for k in range(count):
        right = d.chance(1, 2)
        formula = inst.reference["formula"] if right else expression(d, _values(inst))
        style = d.choice(("strict", "compact", "single", "paper"))
        parts.append(render(d, inst.reference["cards"], _values(inst), formula, style=style))
        if k < count - 1:
            parts.append(d.choice(("\n", "\nWait, let me fix that.\n", " ", "\n\nActually:\n")))
    return "".join(parts)


def gp_truncated(d: Draws, task: TaskSpec, inst: Instance) -> str:
    text = gp_reference(d, task, inst)
    return text[: d.below(len(text) + 1)]


def gp_empty(d: Draws, task: TaskSpec, inst: Instance) -> str:
    return d.choice(
        ("", " ", "\n", "\t\n ", "{}", "{", "}", "[]", "null", "None", '""', "''", "{,}", "{:}")
    )


def gp_hostile(d: Draws, task: TaskSpec, inst: Instance) -> str:
    target = _target(inst)
    how = d.below(14)
    if how == 0:
        return deep(d, d.choice(('"formula": "4*6=24"', "1", "", f'"{target}"')))
    if how == 1:
        body = (
            deep(d, "4*6").replace("[", "(").replace("]", ")").replace("{", "(").replace("}", ")")
        )
        return json.dumps({"formula": f"{body}={target}"})
    if how == 2:
        depth = d.choice((31, 32, 33))
        return json.dumps({"formula": "(" * depth + "4*6" + ")" * depth + f"={target}"})
    if how == 3:
        payload = d.choice(CODE_PAYLOADS)
        shapes = (
            payload,
            json.dumps({"cards": inst.problem["cards"], "formula": payload}),
            f"formula: {payload}",
            f"```python\n{payload}\n```",
            f"{{'formula': {payload}}}",
        )
        return d.choice(shapes)
    if how == 4:
        power = d.choice(("9**9**9", "2**100000", "(9**9)**(9**9)", "10**10**10", "9^9^9"))
        return d.choice((f'{{"formula": "{power}={target}"}}', f"formula: {power}", power))
    if how == 5:
        width = d.choice((6, 7, 63, 64, 65, 66, 300, 1200))
        digits = "9" + d.digits(width - 1)
        shapes = (
            f'{{"formula": "{digits}*1={target}"}}',
            f'{{"cards": [{digits}, 1, 2, 3], "number": [{digits}], "formula": "1+2"}}',
            f'{{"formula": {digits}}}',
            f'{{"formula": 1e{d.between(300, 400)}}}',
            f'{{"formula": -{digits}.5e99999}}',
            f'{{"formula": "{"999999*" * d.between(10, 70)}999999"}}',
            '{"formula": NaN}',
            '{"formula": Infinity, "cards": -Infinity}',
        )
        return d.choice(shapes)
    if how == 6:
        length = d.choice((500, 511, 512, 513, 520))
        terms = "+".join(["1"] * (length // 2 + 1))[:length]
        return json.dumps({"formula": terms.rstrip("+")})
    if how == 7:
        factors = "*".join(["13"] * d.choice((500, 553, 554, 560)))
        return json.dumps({"formula": f"{factors}/{factors}*24"})[: MAX_ANSWER_BYTES - 8]
    if how == 8:
        spam = d.choice(("{", "}", "{}", "[", '{"', "'", '"', "\\", "{'a':"))
        return spam * d.choice((255, 256, 257, 600, 1000)) + render(
            d, inst.reference["cards"], _values(inst), inst.reference["formula"], style="strict"
        )
    if how == 9:
        return "".join(d.choice(ODD_CHARACTERS) for _ in range(d.between(1, 40)))
    if how == 10:
        formula = inst.reference["formula"]
        k = d.below(len(formula) + 1)
        formula = formula[:k] + d.choice(ODD_CHARACTERS) + formula[k:]
        return render(d, inst.reference["cards"], _values(inst), formula)
    if how == 11:
        escaped = "".join(d.choice((f"\\u{ord(c):04x}", f"\\x{ord(c):02x}", c)) for c in "4*6=24")
        return d.choice((f'{{"formula": "{escaped}"}}', f"{{'formula': '{escaped}'}}"))
    if how == 12:
        key = d.choice(('"Formula"', '"formula "', '"formulas"', "FORMULA", '"for\\u006dula"'))
        return f'{{{key}: "{inst.reference["formula"]}", "cards": {json.dumps(inst.problem["cards"])}}}'
    inner = json.dumps({"formula": inst.reference["formula"]})
    return json.dumps({"answer": json.loads(inner), "formula": expression(d, _values(inst))})


def gp_duplicate_keys(d: Draws, task: TaskSpec, inst: Instance) -> str:
    wrong = expression(d, _values(inst))
    right = inst.reference["formula"]
    first, second = (wrong, right) if d.chance(1, 2) else (right, wrong)
    return f'{{"formula": "{first}", "cards": {json.dumps(inst.problem["cards"])}, "formula": "{second}"}}'


CARD_SPELLINGS = {
    "A": ("A", "a", "Ace", "ACE", "1", 1, "ace"),
    "J": ("J", "j", "Jack", "11", 11, "JACK"),
    "Q": ("Q", "q", "Queen", "12", 12),
    "K": ("K", "k", "King", "13", 13),
    "10": ("10", "T", "t", 10, "Ten"),
}
MISSPELT = ("Kng", "Qeen", "Jak", "A ", " K", "K♠", "KS", "10H", "0", "14", "", "joker", "X")


def _card_forms(d: Draws, cards: Sequence[str]) -> list[Any]:
    out: list[Any] = []
    for c in cards:
        forms = CARD_SPELLINGS.get(c, (c, int(c)) if c.isdigit() else (c,))
        out.append(d.choice(forms))
    return out


def gp_cards(d: Draws, task: TaskSpec, inst: Instance) -> str:
    """The answer's ``cards``: right (in many spellings), wrong, misspelt, ints, odd shapes."""
    cards = list(inst.problem["cards"])
    how = d.below(9)
    value: Any
    if how <= 1:
        value = cards
    elif how == 2:
        value = _card_forms(d, cards)
    elif how == 3:
        value = list(cards)
        value[d.below(4)] = d.choice(("A", "2", "5", "9", "10", "J", "Q", "K"))
    elif how == 4:
        value = list(cards)
        value[d.below(4)] = d.choice(MISSPELT)
    elif how == 5:
        value = d.shuffled(cards)
    elif how == 6:
        value = d.choice((cards[:3], [*cards, d.choice(cards)], [], [cards], None, True))
    elif how == 7:
        value = ", ".join(cards)
    else:
        value = [d.choice((c, [c], {"rank": c}, 1.5, False)) for c in cards]
    formula = inst.reference["formula"] if d.chance(2, 3) else expression(d, _values(inst))
    return render(d, value, inst.reference["number"], formula)


GP_BASE_KINDS: dict[str, Callable[[Draws, TaskSpec, Instance], str]] = {
    "reference": gp_reference,
    "alternative": gp_alternative,
    "spaced": gp_spaced,
    "wrong_value": gp_wrong_value,
    "wrong_numbers": gp_wrong_numbers,
    "train_rule": gp_train_rule,
    "verbatim_training": gp_verbatim_training,
    "illegal": gp_illegal,
    "unicode": gp_unicode,
    "formula_types": gp_formula_types,
    "several": gp_several,
    "truncated": gp_truncated,
    "empty": gp_empty,
    "hostile": gp_hostile,
    "duplicate_keys": gp_duplicate_keys,
    "cards": gp_cards,
}
GP_FRAGMENTS = ('"formula": ', "=24", "{", "}", "'", '"', ",", "(", ")", "*", "/", " ", "\n", "10")

# Each kind once per cycle, the common ones more often; "mutated:" kinds edit a base answer.
GP_KINDS: tuple[str, ...] = (
    *GP_BASE_KINDS,
    "reference",
    "reference",
    "wrong_value",
    "wrong_numbers",
    "cards",
    "mutated:reference",
    "mutated:reference",
    "mutated:wrong_value",
    "mutated:several",
    "mutated:cards",
    "mutated:hostile",
)


def gp_answer(d: Draws, task: TaskSpec, inst: Instance, kind: str) -> str:
    """One GeneralPoints answer of ``kind`` to ``inst``."""
    base, _, of = kind.partition(":")
    if base == "mutated":
        return mutated(d, GP_BASE_KINDS[of](d, task, inst), GP_FRAGMENTS)
    return GP_BASE_KINDS[base](d, task, inst)


# --- V-IRL answers -----------------------------------------------------------------------------

COMPASS = ("north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest")
RELATIVE = ("left", "slightly left", "slightly right", "right")


def _point(inst: Instance, point: int) -> Mapping[str, Any]:
    points: list[Mapping[str, Any]] = inst.problem["points"]
    return points[point]


def _expected(inst: Instance, point: int) -> str:
    return str(inst.problem["actions"][point])


def spelled_action(d: Draws, action: str) -> str:
    """An action as models write it: case, spaces, quotes, underscores."""
    if action.startswith("turn_direction("):
        word = action[len("turn_direction(") : -1]
        word = d.choice((word, word.title(), word.upper(), word.replace(" ", "  "), f" {word} "))
        quote = d.choice(("", "'", '"', ""))
        name = d.choice(("turn_direction", "Turn_Direction", "TURN_DIRECTION", "turn_direction "))
        return f"{name}({quote}{word}{quote})"
    name = action[:-2]
    return d.choice((action, name.title() + "()", f" {name} ( ) ", name.upper() + "()"))


def other_action(d: Draws, inst: Instance, point: int) -> str:
    """A wrong action: from the split's vocabulary, the other vocabulary, or no turn at all."""
    expected = _expected(inst, point)
    words = COMPASS if inst.problem["vocabulary"] == "absolute" else RELATIVE
    candidates = [
        "forward()",
        "stop()",
        *(f"turn_direction({w})" for w in words),
        *(f"turn_direction({w})" for w in (RELATIVE if words is COMPASS else COMPASS)),
    ]
    return d.choice([c for c in candidates if c != expected])


ODD_ACTIONS = (
    "forward",
    "stop",
    "forward();",
    "forward() stop()",
    "move_forward()",
    "turn_left()",
    "turn_direction()",
    "turn_direction(x)",
    "turn_direction(north-east)",
    "turn_direction(north east)",
    "turn_direction(slightly_left)",
    "turn_direction(up)",
    "turn_direction('left\")",
    "turn_direction((left))",
    "FORWARD ( )",
    "forward()\nstop()",
    "I will go forward()",
    "",
    " ",
    "turn_direction(" + "a" * 300 + ")",
)


def observation_text(d: Draws, inst: Instance, point: int) -> Any:
    """The model's ``current observation``: right, with/without intersection, landmarks, odd."""
    here = _point(inst, point)
    how = d.below(8)
    base = str(here["observation"])
    if how <= 1:
        return f"{base}; You observe an intersection" if here["is_intersection"] else base
    if how == 2:
        return f"{base}; You observe an intersection"
    if how == 3:
        return d.choice((base, "No landmarks nearby", "", "There is no intersection here"))
    if how == 4:
        return d.choice(("INTERSECTION ahead", "an Intersection", "intersections everywhere"))
    if how == 5:
        names = [lm["name"] for lm in here["landmarks"]] or ["Nothing"]
        other = _point(inst, d.below(len(inst.problem["points"])))
        names += [lm["name"] for lm in other["landmarks"]][:2]
        return ", ".join(d.shuffled(names)) + d.choice(("", " are visible", "; intersection"))
    if how == 6:
        return d.choice((None, 1, ["intersection"], {"text": "intersection"}, True))
    return d.choice(ODD_CHARACTERS) + base


def virl_object(d: Draws, observation: Any, instruction: Any, action: Any, style: str) -> str:
    """A V-IRL answer object in one of the shapes models write."""
    obj = {
        "current observation": observation,
        "current instruction": instruction,
        "action": action,
    }
    if style == "paper":
        return (
            f'{{\n  "current observation": {json.dumps(observation)},\n'
            f'  "current instruction": {json.dumps(instruction)},\n'
            f'  "action": "{action}",\n}}'
        )
    if style == "strict":
        return json.dumps(obj, indent=d.choice((None, 2)), ensure_ascii=d.chance(1, 2))
    if style == "fenced":
        return d.choice(FENCES).replace("{}", json.dumps(obj, indent=2))
    if style == "prose":
        inner = virl_object(d, observation, instruction, action, d.choice(("paper", "strict")))
        return d.choice(PROSE_BEFORE) + inner + d.choice(PROSE_AFTER)
    if style == "single":
        return (
            f"{{'current observation': {observation!r}, 'current instruction': "
            f"{instruction!r}, 'action': {action!r},}}"
        )
    if style == "python":
        return f"{{'current observation': {observation!r}, 'action': {action!r}, 'done': False}}"
    if style == "unquoted":
        return f"{{current observation: {observation}, action: {action}}}"
    if style == "action_line":
        return d.choice(
            (
                f"Current observation: {observation}\nAction: {action}",
                f"action: {action}",
                f'"action": "{action}"',
                f"I think the next step is {action}.",
                f"**Action:** `{action}`",
            )
        )
    if style == "no_action":
        return json.dumps({"current observation": observation, "current instruction": instruction})
    if style == "markdown":
        return f"### Step\n\n- current observation: {observation}\n- action: {action}\n"
    raise ValueError(style)


VIRL_STYLES = ("paper", "strict", "fenced", "prose", "single", "python", "unquoted", "action_line")


def _instruction(d: Draws, inst: Instance) -> str:
    return str(d.choice(inst.problem["instructions"]))


def virl_reference(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    assert isinstance(task, NavigationText)
    reference = task.answer_at(inst, point)
    if d.chance(1, 2):
        return reference
    here = _point(inst, point)
    observation = str(here["observation"])
    if here["is_intersection"]:
        observation += "; You observe an intersection"
    action = spelled_action(d, _expected(inst, point))
    return virl_object(d, observation, _instruction(d, inst), action, d.choice(VIRL_STYLES))


def virl_wrong(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    action = spelled_action(d, other_action(d, inst, point))
    observation = observation_text(d, inst, point)
    return virl_object(d, observation, _instruction(d, inst), action, d.choice(VIRL_STYLES))


def virl_observation(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    """Right or wrong actions with every kind of observation (intersection claims, landmarks)."""
    action = _expected(inst, point) if d.chance(1, 2) else other_action(d, inst, point)
    observation = observation_text(d, inst, point)
    style = d.choice(("paper", "strict", "single", "prose", "no_action", "markdown"))
    return virl_object(d, observation, _instruction(d, inst), action, style)


def virl_odd_action(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    action: Any = d.choice(ODD_ACTIONS) if d.chance(4, 5) else d.choice((None, 1, ["forward()"]))
    observation = observation_text(d, inst, point)
    if isinstance(action, str):
        return virl_object(d, observation, _instruction(d, inst), action, d.choice(VIRL_STYLES))
    return json.dumps({"current observation": observation, "action": action})


def virl_vocabulary(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    """Turns in both vocabularies (a compass word on a relative-turn split is flagged)."""
    word = d.choice((*COMPASS, *RELATIVE))
    action = spelled_action(d, f"turn_direction({word})")
    observation = observation_text(d, inst, point)
    return virl_object(d, observation, _instruction(d, inst), action, d.choice(VIRL_STYLES))


def virl_several(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    parts = []
    for _ in range(d.choice((2, 2, 3, 16, 17))):
        action = _expected(inst, point) if d.chance(1, 2) else other_action(d, inst, point)
        observation = observation_text(d, inst, point)
        style = d.choice(("strict", "paper", "single"))
        parts.append(virl_object(d, observation, _instruction(d, inst), action, style))
    return d.choice(("\n", " ", "\nActually:\n")).join(parts)


def virl_truncated(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    text = virl_reference(d, task, inst, point)
    return text[: d.below(len(text) + 1)]


def virl_empty(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    return d.choice(("", " ", "\n", "{}", "{", "[]", "null", '{"action": ""}', '{"action": null}'))


def virl_hostile(d: Draws, task: TaskSpec, inst: Instance, point: int) -> str:
    how = d.below(7)
    expected = _expected(inst, point)
    if how == 0:
        return deep(d, d.choice((f'"action": "{expected}"', "1", "")))
    if how == 1:
        return d.choice(CODE_PAYLOADS) + f'\n{{"action": "{d.choice(CODE_PAYLOADS)}"}}'
    if how == 2:
        spam = d.choice(("{", "}", "{}", "[", "'", '"', "\\"))
        body = json.dumps({"action": expected})
        return spam * d.choice((255, 256, 257, 800)) + body
    if how == 3:
        return "".join(d.choice(ODD_CHARACTERS) for _ in range(d.between(1, 40)))
    if how == 4:
        k = d.below(len(expected) + 1)
        action = expected[:k] + d.choice(ODD_CHARACTERS) + expected[k:]
        return json.dumps({"action": action}, ensure_ascii=False)
    if how == 5:
        escaped = "".join(d.choice((f"\\u{ord(c):04x}", c)) for c in expected)
        return f'{{"action": "{escaped}", "current observation": "intersection"}}'
    key = d.choice(('"Action"', '"action "', "ACTION", '"actions"', '"act\\u0069on"'))
    return f'{{{key}: "{expected}"}}'


VIRL_BASE_KINDS: dict[str, Callable[[Draws, TaskSpec, Instance, int], str]] = {
    "reference": virl_reference,
    "wrong": virl_wrong,
    "observation": virl_observation,
    "odd_action": virl_odd_action,
    "vocabulary": virl_vocabulary,
    "several": virl_several,
    "truncated": virl_truncated,
    "empty": virl_empty,
    "hostile": virl_hostile,
}
VIRL_FRAGMENTS = ('"action": ', "forward()", "stop()", "(", ")", "{", "}", "'", '"', "\n", ",")
VIRL_KINDS: tuple[str, ...] = (
    *VIRL_BASE_KINDS,
    "reference",
    "reference",
    "wrong",
    "observation",
    "vocabulary",
    "mutated:reference",
    "mutated:reference",
    "mutated:wrong",
    "mutated:several",
    "mutated:observation",
)


def virl_answer(d: Draws, task: TaskSpec, inst: Instance, point: int, kind: str) -> str:
    """One V-IRL answer of ``kind`` at decision point ``point`` of ``inst``."""
    base, _, of = kind.partition(":")
    if base == "mutated":
        return mutated(d, VIRL_BASE_KINDS[of](d, task, inst, point), VIRL_FRAGMENTS)
    return VIRL_BASE_KINDS[base](d, task, inst, point)
