"""Speed and robustness of the gp-l verifier (``task.verify``) on model-like and hostile answers.

Run with the project venv, from the repository root::

    .venv/bin/python bench/bench_verify.py            # full size (a few minutes)
    .venv/bin/python bench/bench_verify.py --quick    # every count and size / 10, a smoke test
    .venv/bin/python bench/bench_verify.py --profile  # also cProfile the mix (section 1)

What is measured, all on one core in one process:

1. verdicts/s of ``task.verify(instance, answer)`` over a fixed, seeded mix of model-like
   answers to gp-l hands (``id``, ``id-heldout`` and ``ood-rule``): 40% right (the reference in
   varied formats), 40% wrong (wrong value, wrong numbers, unused card, card twice, the
   training-rule answer on ood-rule hands), 20% hostile (code, ``9**9**9``, deep nesting, huge
   numbers, unicode digits, junk, unbalanced braces). Every answer is at most 2,048 UTF-8 bytes. The
   mix is built once from ``random.Random(SEED)`` and the verdicts are checked (right answers
   must be correct, wrong ones must not). Best of 5 over the whole mix (the machine's speed
   drifts from second to second; the fastest pass is the one least slowed by other jobs), then
   per category and per kind. Floor: at least 5,000 verdicts/s.
2. ms per verdict on giant inputs (1 MB of junk, 1 MB with a valid answer at its end, 10,000
   nested parentheses, 100,000 nested braces/brackets, a 300,000-term formula): best and worst
   of a few calls each.
3. a fuzz run (``--fuzz N``, default 1,000,000 strings): a grammar-ish generator and mutator
   over answer fragments, operators, digits, braces, quotes, escapes and unicode, plus random
   bytes decoded as text. Every call must return a :class:`~gpbench.records.Verdict` (never
   raise) within a per-call wall-clock bound (``--call-bound-ms``), and no code may run: an
   audit hook (``sys.addaudithook``) records ``exec``, ``compile``, ``os.system``,
   ``subprocess.Popen``, ``open`` and similar events raised while a verify call is running. The
   hook is checked with a canary before the run. A faulthandler watchdog ends the process with
   a traceback if verify hangs. The hook is installed after sections 1 and 2, since audit hooks
   cannot be removed and would tax every later call.

The report goes to stdout, progress notes to stderr. The exit status is 1 when the fuzz finds a
crash, an audit event or a call over the bound, or a verdict check of section 1 fails
(``--fail-on-miss``: also when the throughput target is missed).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import faulthandler
import gc
import heapq
import io
import json
import math
import platform
import pstats
import random
import re
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import calibrate

import gpbench
from gpbench.generators.arithmetic import evaluate
from gpbench.generators.cards import TRAINING_FACE_VALUES, card_value, rank_from_name, solve
from gpbench.records import Instance, Verdict
from gpbench.tasks.general_points import OOD_RULE
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

TASK = "gp-l"
SEED = 20250117  # the mix and the fuzz are pure functions of this seed
INSTANCE_SEED = 42  # the paper's evaluation seed
SPLITS = ("id", "id-heldout", "ood-rule")
INSTANCES_PER_SPLIT = 200
TARGET_RATE = 5_000.0  # a floor: far above what a model generates, so never the bottleneck
MAX_ANSWER_BYTES = 2048
REPEATS = 5
GIANT_CALLS = 5
WATCHDOG_SECONDS = 120.0  # a single verify call (or 1,000 of them) this long is a hang
WATCHDOG_EVERY = 1000
SLOWEST_KEPT = 5
FUZZ_MAX_CHARS = 65_536  # fuzz strings are cut to this (the extraction window); see (2) for more

# Category -> share of the mix, and the kinds each category cycles through (equal weights).
CATEGORY_SHARES = {"right": 0.4, "wrong": 0.4, "hostile": 0.2}
RIGHT_KINDS = ("paper", "strict_json", "fenced", "prose", "spaced", "single_quotes")
WRONG_KINDS = ("wrong_value", "wrong_numbers", "unused_card", "card_twice", "train_rule")
HOSTILE_KINDS = ("code", "power", "nesting", "huge_numbers", "unicode_digits", "junk", "unbalanced")
KINDS = {"right": RIGHT_KINDS, "wrong": WRONG_KINDS, "hostile": HOSTILE_KINDS}

# Audit events that would mean code ran, a file was opened or a process was started.
WATCHED_EVENTS = frozenset(
    {
        "exec",
        "compile",
        "os.system",
        "subprocess.Popen",
        "open",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.startfile",
        "pty.spawn",
        "ctypes.dlopen",
        "socket.connect",
        "builtins.input",
        "shutil.rmtree",
        "os.remove",
    }
)


def note(text: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:,.1f}"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


# --- 1) the answer mix -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One answer of the mix, with the hand it answers."""

    category: str
    kind: str
    instance: Instance
    answer: str


def load_instances(task: TaskSpec, per_split: int) -> dict[str, list[Instance]]:
    return {split: list(task.dataset(split, INSTANCE_SEED, per_split)) for split in SPLITS}


def random_expression(rng: random.Random, numbers: Sequence[object]) -> str:
    """A random fully-formed expression over ``numbers`` (shuffled), random operators/brackets."""
    items = [str(n) for n in numbers]
    rng.shuffle(items)
    while len(items) > 1:
        i = rng.randrange(len(items) - 1)
        op = rng.choice("+-*/")
        joined = f"{items[i]}{op}{items[i + 1]}"
        if len(items) > 2 and rng.random() < 0.6:
            joined = f"({joined})"
        items[i : i + 2] = [joined]
    return items[0]


def expression_value(expression: str) -> Any:
    result = evaluate(expression)
    return result.value if result.ok else None


def formula_for(rng: random.Random, numbers: Sequence[int], target: int) -> str:
    """A formula over exactly ``numbers``: a solution when one exists, else a random one."""
    solution = solve(list(numbers), target)
    return solution if solution is not None else random_expression(rng, numbers)


def space_out(rng: random.Random, formula: str) -> str:
    """Whitespace inside a formula, as models write it: ``(3 * 10 - 6) * 1 = 24``."""

    def pad(match: re.Match[str]) -> str:
        left = rng.choice(("", " ", " ", "  ", "\t"))
        right = rng.choice(("", " ", " ", "  "))
        return f"{left}{match.group()}{right}"

    return re.sub(r"[-+*/=()]", pad, formula).strip()


PROSE_BEFORE = (
    "Let me think about this step by step.\nThe cards are {cards}, so the numbers are {numbers}.\n",
    "Sure! Here's my answer:\n\n",
    "We need to reach {target}. Trying a few combinations: {numbers} ... that works.\n",
    "Okay, so J, Q and K count as described. I'll use each card once.\n\nAnswer:\n",
)
PROSE_AFTER = (
    "",
    "\n\nThis uses every card exactly once.",
    "\nI hope this helps! Let me know if you'd like another solution.",
    "\n\nSo the final formula is {formula}.",
)


def render(rng: random.Random, style: str, cards: Sequence[Any], numbers: Any, formula: str) -> str:
    """An answer object in one of the formats models use."""
    obj = {"cards": list(cards), "number": numbers, "formula": formula}
    if style == "paper":
        return (
            "{\n"
            f'  "cards": {list(cards)!r},\n'
            f'  "number": {numbers!r},\n'
            f'  "formula": "{formula}",\n'
            "}"
        )
    if style == "strict_json":
        return json.dumps(obj, indent=rng.choice((None, 2)))
    if style == "fenced":
        body = json.dumps(obj, indent=2)
        return f"```{rng.choice(('json', '', 'python'))}\n{body}\n```"
    if style == "prose":
        fill = {"cards": ", ".join(map(str, cards)), "numbers": numbers, "target": 24}
        fill["formula"] = formula
        before = rng.choice(PROSE_BEFORE).format(**fill)
        after = rng.choice(PROSE_AFTER).format(**fill)
        return f"{before}{render(rng, rng.choice(('paper', 'strict_json')), cards, numbers, formula)}{after}"
    if style == "single_quotes":
        trailing = rng.choice((",", ", ", ""))
        cards_text = ", ".join(repr(str(c)) for c in cards) + rng.choice((",", ""))
        numbers_text = ", ".join(map(str, numbers)) + rng.choice((",", ""))
        return (
            f"{{'cards': [{cards_text}], 'number': [{numbers_text}], "
            f"'formula': '{formula}'{trailing}}}"
        )
    raise ValueError(style)


def right_answer(rng: random.Random, task: TaskSpec, instance: Instance, kind: str) -> str:
    ref = instance.reference
    if kind == "paper":
        return task.reference_answer(instance)
    if kind == "spaced":
        formula = space_out(rng, ref["formula"])
        return render(
            rng, rng.choice(("paper", "strict_json")), ref["cards"], ref["number"], formula
        )
    return render(rng, kind, ref["cards"], ref["number"], ref["formula"])


def wrong_answer(rng: random.Random, instance: Instance, kind: str) -> str:
    p = instance.problem
    values: list[int] = list(p["values"])
    target: int = p["target"]
    cards: list[str] = list(p["cards"])
    style = rng.choice(("paper", "strict_json", "fenced", "prose", "single_quotes"))
    if kind == "wrong_value":
        for _ in range(1000):
            expression = random_expression(rng, values)
            if expression_value(expression) not in (None, target):
                break
        else:
            raise AssertionError(f"no wrong-valued expression over {values}")
        return render(rng, style, cards, values, f"{expression}={target}")
    if kind == "wrong_numbers":
        numbers = list(values)
        while collections.Counter(numbers) == collections.Counter(values):
            numbers[rng.randrange(4)] = rng.randint(1, 13)
    elif kind == "unused_card":
        numbers = rng.sample(values, 3)
    elif kind == "card_twice":
        numbers = list(values)
        pairs = [(i, j) for i in range(4) for j in range(4) if values[i] != values[j]]
        if pairs and rng.random() < 0.5:
            i, j = rng.choice(pairs)  # one card in place of another
            numbers[j] = numbers[i]
        else:
            numbers.append(rng.choice(values))  # every card, one of them twice
    elif kind == "train_rule":
        numbers = [card_value(rank_from_name(c), TRAINING_FACE_VALUES) for c in cards]
        formula = solve(numbers, target)
        assert formula is not None, "train_rule cases use hands solvable under the training rule"
        return render(rng, style, cards, numbers, f"{formula}={target}")
    else:
        raise ValueError(kind)
    return render(rng, style, cards, numbers, f"{formula_for(rng, numbers, target)}={target}")


UNICODE_DIGITS = (
    "٠١٢٣٤٥٦٧٨٩",  # Arabic-Indic
    "０１２３４５６７８９",  # fullwidth
    "०१२३४५६७८९",  # Devanagari
    "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",  # mathematical bold
    "⁰¹²³⁴⁵⁶⁷⁸⁹",  # superscripts
)
JUNK_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " \t\n\r!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "éüß漢字🂡🃏×÷−–—\u200b\u202e\ufeff\x00\x7f"
)
CODE_PAYLOADS = (
    "__import__('os').system('echo pwned')",
    '__import__("os").popen("id").read()',
    "eval('4*6')",
    "exec(\"import os; os.system('ls')\")",
    "().__class__.__base__.__subclasses__()",
    "open('/etc/passwd').read()",
    "lambda: __import__('subprocess').Popen(['sh'])",
    "compile('1', '<s>', 'eval')",
    "globals()['__builtins__']",
)


def unicode_number(rng: random.Random, value: int) -> str:
    digits = rng.choice(UNICODE_DIGITS)
    return "".join(digits[int(d)] for d in str(value))


def hostile_answer(rng: random.Random, instance: Instance, kind: str) -> str:
    p = instance.problem
    cards, values, target = list(p["cards"]), list(p["values"]), p["target"]
    if kind == "code":
        payload = rng.choice(CODE_PAYLOADS)
        shapes: tuple[str, ...] = (
            payload,
            f'{{"cards": {json.dumps(cards)}, "number": {values}, "formula": {json.dumps(payload)}}}',
            f"formula: {payload}",
            f"```python\n{payload}\n```",
            f"{{'formula': {payload}}}",
        )
        return rng.choice(shapes)
    if kind == "power":
        formula = rng.choice(("9**9**9", "9**9**9**9", "2**100000", "(9**9)**(9**9)", "10**10**10"))
        formula = rng.choice((formula, f"{formula}={target}", f"{formula}//1"))
        return rng.choice((f'{{"formula": "{formula}"}}', f"formula: {formula}", formula))
    if kind == "nesting":
        opener, closer, inner = rng.choice(
            (
                ("(", ")", "4*6"),
                ("[", "]", "1"),
                ("{", "}", ""),
                ('{"a":', "}", "1"),
                ('{"a": [', "]}", "1"),
            )
        )
        budget = MAX_ANSWER_BYTES - 64
        deepest = budget // (len(opener) + len(closer))
        depth = rng.randint(deepest // 4, deepest)
        core = opener * depth + inner + closer * depth
        if opener == "(":
            return f'{{"formula": "{core}={target}"}}'
        return rng.choice((core, f'{{"x": {core}, "formula": "4*6=24"}}', f"{core}\nformula: 4*6"))
    if kind == "huge_numbers":
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(7, 1800)))
        digits = "9" + digits
        shapes = (
            f'{{"formula": "{digits}*{values[0]}={target}"}}',
            f'{{"cards": {json.dumps(cards)}, "number": [{digits}, 1, 2, 3], "formula": "1+2"}}',
            f'{{"formula": {digits}}}',
            f'{{"formula": 1e{rng.randint(309, 99999)}}}',
            f'{{"formula": "{"999999*" * rng.randint(10, 70)}999999"}}',
            f'{{"number": [-{digits}.{digits[:50]}e99999], "formula": "{digits[:400]}"}}',
        )
        return rng.choice(shapes)[:MAX_ANSWER_BYTES]
    if kind == "unicode_digits":
        formula = random_expression(rng, [unicode_number(rng, v) for v in values])
        formula = formula.replace("*", rng.choice(("*", "×", "x"))).replace("/", rng.choice("/÷"))
        numbers = ", ".join(unicode_number(rng, v) for v in values)
        equals = f"={unicode_number(rng, target)}"
        shapes = (
            f'{{"cards": {json.dumps(cards, ensure_ascii=False)}, "number": [{numbers}], '
            f'"formula": "{formula}{equals}"}}',
            f"formula: {formula}{equals}",
            f"{formula}{equals}",
        )
        return rng.choice(shapes)
    if kind == "junk":
        length = rng.randint(1, 700)  # up to 4 bytes a character: stays under 2 KB
        return "".join(rng.choice(JUNK_ALPHABET) for _ in range(length))
    if kind == "unbalanced":
        reference = f'"formula": "{formula_for(rng, values, target)}={target}"'
        shapes = (
            "{" * rng.randint(1, 200) + reference,
            reference + "}" * rng.randint(1, 200),
            f'{{"formula": "({values[0]}*{values[1]}={target}"}}',
            "".join(rng.choice("{}[]()\"'") for _ in range(rng.randint(1, 1500))),
            f"{{[{reference}}}]",
            f'{{"cards": [{", ".join(cards)}, "formula": "{values[0]}+{values[1]}"',
        )
        return rng.choice(shapes)
    raise ValueError(kind)


def build_mix(
    task: TaskSpec, instances: dict[str, list[Instance]], n: int, seed: int
) -> list[Case]:
    """``n`` cases in the category shares, kinds cycling evenly, shuffled; a pure function of seed."""
    rng = random.Random(seed)
    pool = [inst for split in SPLITS for inst in instances[split]]
    ood_train_solvable = [
        inst
        for inst in instances["ood-rule"]
        if solve(
            [card_value(rank_from_name(c), TRAINING_FACE_VALUES) for c in inst.problem["cards"]],
            inst.problem["target"],
        )
        is not None
    ]
    cases: list[Case] = []
    for category, share in CATEGORY_SHARES.items():
        kinds = KINDS[category]
        for i in range(round(n * share)):
            kind = kinds[i % len(kinds)]
            instance = rng.choice(ood_train_solvable if kind == "train_rule" else pool)
            if category == "right":
                answer = right_answer(rng, task, instance, kind)
            elif category == "wrong":
                answer = wrong_answer(rng, instance, kind)
            else:
                answer = hostile_answer(rng, instance, kind)
            size = utf8_len(answer)
            if size > MAX_ANSWER_BYTES:
                raise AssertionError(f"{category}/{kind} answer has {size} bytes: {answer[:80]!r}")
            cases.append(Case(category, kind, instance, answer))
    rng.shuffle(cases)
    return cases


def run_cases(task: TaskSpec, cases: Sequence[Case]) -> int:
    verify = task.verify
    for case in cases:
        verify(case.instance, case.answer)
    return len(cases)


def best_of(repeats: int, run: Callable[[], int]) -> tuple[float, int]:
    """The smallest wall time of ``repeats`` calls of ``run`` and the count it returned."""
    best = float("inf")
    count = 0
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


@dataclass
class MixCheck:
    """Verdict checks of the mix: what each category and kind was judged."""

    statuses: dict[str, collections.Counter[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def check_mix(task: TaskSpec, cases: Sequence[Case]) -> MixCheck:
    """Right answers must be correct, wrong ones must not; train_rule answers must be flagged."""
    check = MixCheck()
    for case in cases:
        verdict = task.verify(case.instance, case.answer)
        label = f"{case.category}/{case.kind}"
        check.statuses.setdefault(label, collections.Counter())[verdict.status] += 1
        problem = ""
        if case.category == "right" and not verdict.correct:
            problem = f"judged {verdict.status}"
        elif case.category == "wrong" and verdict.correct:
            problem = "judged correct"
        elif case.kind == "train_rule" and "train_rule_answer" not in verdict.flags:
            problem = "no train_rule_answer flag"
        elif case.kind == "train_rule" and case.instance.problem["rule"] != OOD_RULE:
            problem = "not an ood-rule hand"
        if problem and len(check.failures) < 10:
            check.failures.append(f"{label}: {problem}: {case.answer[:120]!r}")
        elif problem:
            check.failures.append(label)
    return check


def bench_mix(task: TaskSpec, cases: Sequence[Case], repeats: int) -> tuple[bool, bool]:
    """Print section (1); (target met, verdict check passed)."""
    note(f"(1) {len(cases):,} answers, best of {repeats} ...")
    run_cases(task, cases)  # warm-up: the solver memo, regex caches
    seconds, count = best_of(repeats, lambda: run_cases(task, cases))
    rate = count / seconds
    met = rate >= TARGET_RATE
    print("== (1) verdicts/s on a seeded mix of model-like answers, one core")
    sizes = [utf8_len(c.answer) for c in cases]
    print(
        f"mix: {len(cases):,} answers to {len({c.instance.uid for c in cases}):,} gp-l hands "
        f"({', '.join(SPLITS)}), seed {SEED}; answer size mean {sum(sizes) / len(sizes):,.0f} B, "
        f"max {max(sizes):,} B (cap {MAX_ANSWER_BYTES:,} B)"
    )
    print(
        f"all: {fmt_rate(rate)} verdicts/s ({seconds * 1e6 / count:.1f} us/verdict, "
        f"best of {repeats}) vs target >= {TARGET_RATE:,.0f}/s: {'MET' if met else 'NOT MET'}"
        f"{'' if met else f' ({rate / TARGET_RATE:.2f}x of target)'}"
    )
    check = check_mix(task, cases)
    header = f"{'category/kind':<28} {'n':>6} {'verdicts/s':>11} {'us/verdict':>10}  statuses"
    print(header)
    print("-" * len(header))
    for category in CATEGORY_SHARES:
        subset = [c for c in cases if c.category == category]
        seconds, count = best_of(repeats, partial(run_cases, task, subset))
        print(
            f"{category:<28} {count:>6,} {fmt_rate(count / seconds):>11} "
            f"{seconds * 1e6 / count:>10.1f}"
        )
        for kind in KINDS[category]:
            part = [c for c in subset if c.kind == kind]
            seconds, count = best_of(repeats, partial(run_cases, task, part))
            statuses = check.statuses.get(f"{category}/{kind}", collections.Counter())
            shown = ", ".join(f"{s} {k}" for s, k in statuses.most_common(3))
            print(
                f"  {kind:<26} {count:>6,} {fmt_rate(count / seconds):>11} "
                f"{seconds * 1e6 / count:>10.1f}  {shown}"
            )
    if check.failures:
        print(f"verdict check: {len(check.failures)} FAILED")
        for line in check.failures[:10]:
            print(f"  {line}")
    else:
        print(
            "verdict check: ok (right: all correct; wrong: none correct; "
            "train_rule: all on ood-rule hands, all flagged train_rule_answer)"
        )
    print()
    return met, not check.failures


def hotspots(call: Callable[[], object], top: int) -> list[str]:
    """The ``top`` functions by own time in one profiled call, as ``share function``."""
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    stats = pstats.Stats(profiler)
    table: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in table.values()) or 1.0
    rows = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]

    def label(key: tuple[str, int, str]) -> str:
        filename, line, name = key
        return name if filename == "~" else f"{Path(filename).name}:{line}({name})"

    out = []
    for key, (_, _, own, _, callers) in rows:
        text = f"{own / total:.0%} {label(key)}"
        if key[0] == "~" and callers:  # a C function: name the Python function that called it
            caller = max(callers.items(), key=lambda item: item[1][2])[0]
            text += f" in {label(caller)}"
        out.append(text)
    return out


def profile_mix(task: TaskSpec, cases: Sequence[Case], top: int = 25) -> None:
    """cProfile one pass over the mix; the top functions by own time and by cumulative time."""
    note("profiling one pass over the mix ...")
    profiler = cProfile.Profile()
    profiler.enable()
    run_cases(task, cases)
    profiler.disable()
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(top)
        text = out.getvalue()
        start = text.find("   ncalls")
        print(f"== profile of one pass over the mix, top {top} by {key}")
        print(text[start:].rstrip())
        print()


# --- 2) giant inputs --------------------------------------------------------------------------


def giant_inputs(task: TaskSpec, instance: Instance, scale: int) -> list[tuple[str, str]]:
    """(label, answer) pairs; sizes divided by ``scale`` (1, or 10 for --quick)."""
    rng = random.Random(SEED + 1)
    mb = 1_000_000 // scale
    junk_chars = JUNK_ALPHABET.replace("{", "").replace("}", "")
    junk = "".join(rng.choices(junk_chars, k=mb))
    braced_junk = "".join(rng.choices(JUNK_ALPHABET, k=mb))
    reference = task.reference_answer(instance)
    parens = 10_000 // scale
    braces = 100_000 // scale
    terms = 300_000 // scale
    long_formula = "+".join(["1"] * terms)
    return [
        (f"{mb / 1e6:g} MB of junk, no braces", junk),
        (f"{mb / 1e6:g} MB of junk with braces and quotes", braced_junk),
        (f"{mb / 1e6:g} MB: junk, then a valid answer", junk[: mb - len(reference)] + reference),
        (
            f"{parens:,} nested parentheses in the formula",
            f'{{"formula": "{"(" * parens}4*6{")" * parens}=24"}}',
        ),
        (f"{parens:,} nested parentheses, bare", "(" * parens + "4*6" + ")" * parens),
        (f"{braces:,} nested braces", "{" * braces + "}" * braces),
        (f"{braces:,} nested brackets", "[" * braces + "]" * braces),
        (f"{braces:,} nested braces/brackets, mixed", "{[" * (braces // 2) + "]}" * (braces // 2)),
        (f"{braces:,} nested braces, unclosed", "{" * braces),
        (
            f'{braces:,} nested {{"a": [ pairs',
            '{"a": [' * (braces // 2) + "1" + "]}" * (braces // 2),
        ),
        (f"formula of {terms:,} terms, in an object", f'{{"formula": "{long_formula}=24"}}'),
        (f"formula of {terms:,} terms, bare line", f"{long_formula}=24"),
        (f"formula of {terms:,} terms, formula: field", f"formula: {long_formula}=24"),
    ]


def bench_giants(task: TaskSpec, instance: Instance, scale: int, calls: int) -> None:
    note(f"(2) giant inputs, {calls} calls each ...")
    print("== (2) ms per verdict on giant inputs, one core")
    header = f"{'input':<46} {'chars':>10} {'best ms':>9} {'worst ms':>9}  verdict"
    print(header)
    print("-" * len(header))
    for label, answer in giant_inputs(task, instance, scale):
        times = []
        verdict = None
        for _ in range(calls):
            start = time.perf_counter()
            verdict = task.verify(instance, answer)
            times.append(time.perf_counter() - start)
        assert verdict is not None
        error = verdict.extracted.get("error")
        shown = verdict.status + (f" ({error})" if error else "")
        print(
            f"{label:<46} {len(answer):>10,} {min(times) * 1e3:>9.2f} {max(times) * 1e3:>9.2f}"
            f"  {shown}"
        )
    print()


# --- 3) fuzz ----------------------------------------------------------------------------------


class AuditRecorder:
    """An audit hook that records watched events raised while ``active`` is set."""

    def __init__(self) -> None:
        self.active = False
        self.events: list[tuple[str, str]] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and event in WATCHED_EVENTS:
            self.events.append((event, repr(args)[:200]))


FRAGMENTS: tuple[str, ...] = (
    *"{}[]()\"':,=+-*/.^%!&|<>?;@$~`\\",
    *"0123456789",
    "**",
    "//",
    "==",
    "=24",
    "24",
    "10",
    "13",
    "1e309",
    "-0",
    "0x1F",
    "1_000",
    "3.14",
    "NaN",
    "Infinity",
    "-inf",
    "True",
    "False",
    "None",
    "null",
    "true",
    '"formula"',
    "'formula'",
    "formula:",
    "formula",
    '"cards"',
    "'cards':",
    '"number"',
    "number:",
    "[J, Q, K, A]",
    "['10', 'K']",
    "\\n",
    "\\u",
    "\\ud83d",
    "\\udc00",
    "\\ud83d\\ude00",
    "\\x4",
    "\\U0010ffff",
    "\\U00110000",
    "\\",
    "\n",
    "\r\n",
    "\t",
    " ",
    "  ",
    "//",
    "#",
    "/*",
    "*/",
    "```",
    "```json\n",
    "\n```",
    "٣",
    "３",
    "²",
    "𝟐",
    "४",
    "×",
    "÷",
    "x",
    "X",
    "−",
    "\u200b",
    "\ufeff",
    "\u202e",
    "\x00",
    "\ud800",
    "\udfff",
    "é",
    "漢",
    "🂡",
    "\U0010ffff",
    "__import__",
    "__import__('os').system('id')",
    "eval(",
    "exec(",
    "open(",
    "lambda",
    "9**9**9",
    "999999",
    "9999999999999999999999999999",
    "sys.exit()",
    "raise",
)
LEAF_CHANCE = (0.1, 0.3, 0.55, 0.8)
OPERATORS = ("+", "-", "*", "/", "**", "//", "^", "%", "x", "×", "÷", "", " ", "--", "+-", "=")
CODECS = (("utf-8", "replace"), ("utf-8", "surrogateescape"), ("latin-1", "strict"))
CODECS_WIDE = (("utf-16-le", "replace"), ("utf-32-le", "replace"), ("utf-8", "ignore"))


class Fuzzer:
    """Seeded strings: grammar-ish answers, mutated corpus answers, fragment soup, random bytes."""

    def __init__(self, seed: int, corpus: Sequence[str]) -> None:
        self.rng = random.Random(seed)
        self.corpus = list(corpus)
        self.strategies: tuple[tuple[str, float, Callable[[], str]], ...] = (
            ("mutate", 0.35, self.mutated),
            ("grammar", 0.28, self.grammar),
            ("soup", 0.12, self.soup),
            ("bytes", 0.12, self.random_text),
            ("splice", 0.08, self.splice),
            ("burst", 0.05, self.burst),
        )
        self.cumulative: list[float] = []
        total = 0.0
        for _, weight, _ in self.strategies:
            total += weight
            self.cumulative.append(total)

    def next(self) -> tuple[str, str]:
        """(strategy, string); strings over :data:`FUZZ_MAX_CHARS` keep their head or tail."""
        r = self.rng.random() * self.cumulative[-1]
        name, _, make = self.strategies[-1]
        for (label, _, maker), edge in zip(self.strategies, self.cumulative, strict=True):
            if r < edge:
                name, make = label, maker
                break
        text = make()
        if len(text) > FUZZ_MAX_CHARS:
            text = text[:FUZZ_MAX_CHARS] if self.rng.random() < 0.5 else text[-FUZZ_MAX_CHARS:]
        return name, text

    def count(self, high: int) -> int:
        """A log-uniform count in ``[2, high]``: mostly small, sometimes large."""
        return min(high, int(2 * (high / 2) ** self.rng.random()))

    # fragments
    def fragment(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            return rng.choice(FRAGMENTS)
        if r < 0.7:
            source = rng.choice(self.corpus)
            i = rng.randrange(len(source) + 1)
            return source[i : i + rng.randint(1, 40)]
        if r < 0.85:
            return self.formula(0)
        if r < 0.95:
            return chr(rng.randint(0x80, 0x2FFFF))
        return str(rng.randint(-(10**12), 10**12))

    # grammar
    def number(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.6:
            return str(rng.randint(1, 13))
        if r < 0.7:
            return "0" * rng.randint(1, 8) + str(rng.randint(0, 9))
        if r < 0.8:
            return "".join(rng.choices("0123456789", k=rng.randint(6, 80)))
        if r < 0.9:
            digits = rng.choice(UNICODE_DIGITS)
            return "".join(rng.choices(digits, k=rng.randint(1, 3)))
        return rng.choice(("1.5", "1e3", "-2", ".5", "1e309", "0.0", "2/3", "NaN"))

    def formula(self, depth: int) -> str:
        rng = self.rng
        # Leaves get likelier with depth: mostly 2-8 numbers, like real formulas.
        if depth > 5 or rng.random() < LEAF_CHANCE[min(depth, 3)]:
            term = self.number()
        else:
            left, right = self.formula(depth + 1), self.formula(depth + 1)
            op = rng.choice(OPERATORS) if rng.random() < 0.3 else rng.choice("+-*/")
            term = f"{left}{op}{right}"
            if rng.random() < 0.4:
                term = f"({term})" if rng.random() < 0.9 else f"({term}"
        if rng.random() < 0.1:
            term = rng.choice(("-", "+", "--", " ")) + term
        if depth == 0 and rng.random() < 0.6:
            term += rng.choice(("=24", " = 24", "=23", "==24", "=24=24", "="))
        return term

    def scalar(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            quote = rng.choice("\"'")
            body = self.formula(0) if rng.random() < 0.6 else self.fragment()
            close = quote if rng.random() < 0.9 else rng.choice(("", "\n", "'\""))
            return f"{quote}{body}{close}"
        if r < 0.5:
            return self.number()
        if r < 0.65:
            return rng.choice(("true", "false", "null", "True", "None", "J", "K", "10", "'Q'"))
        if r < 0.8:
            return self.formula(0)
        return self.fragment()

    def value(self, depth: int) -> str:
        rng = self.rng
        r = rng.random()
        if depth > 5 or r < 0.45:
            return self.scalar()
        if r < 0.7:
            items = [self.value(depth + 1) for _ in range(rng.randint(0, 5))]
            sep = rng.choice((", ", ",", " ", ",\n"))
            close = "]" if rng.random() < 0.92 else rng.choice(("", "}", ")"))
            return f"[{sep.join(items)}{rng.choice(('', ','))}{close}"
        return self.obj(depth + 1)

    def obj(self, depth: int) -> str:
        rng = self.rng
        keys = ('"formula"', "'formula'", "formula", '"cards"', '"number"', "cards", '"x"', "'k'")
        parts = []
        for _ in range(rng.randint(0, 4)):
            key = rng.choice(keys) if rng.random() < 0.9 else self.fragment()
            colon = rng.choice((": ", ":", " : ")) if rng.random() < 0.95 else ""
            parts.append(f"{key}{colon}{self.value(depth)}")
            if rng.random() < 0.1:
                parts.append(rng.choice(("// note", "# comment", "/* c */")))
        sep = rng.choice((", ", ",\n  ", ",", "\n", " "))
        close = "}" if rng.random() < 0.92 else rng.choice(("", "}}", "]"))
        return f"{{{sep.join(parts)}{rng.choice(('', ',', ', '))}{close}"

    def grammar(self) -> str:
        rng = self.rng
        body = self.obj(0) if rng.random() < 0.75 else self.value(0)
        r = rng.random()
        if r < 0.2:
            body = f"```json\n{body}\n```"
        elif r < 0.4:
            body = f"Here is my answer: {body} Hope that helps."
        elif r < 0.5:
            body = f"formula: {self.formula(0)}\n{body}"
        elif r < 0.6:
            body = f"{body}\n{self.formula(0)}"
        return body

    # mutation
    def mutate(self, text: str) -> str:
        rng = self.rng
        n = len(text)
        i = rng.randrange(n + 1)
        j = min(n, i + rng.randint(0, 32))
        op = rng.randrange(9)
        if op == 0:  # insert
            return text[:i] + self.fragment() + text[i:]
        if op == 1:  # delete
            return text[:i] + text[j:]
        if op == 2:  # replace
            return text[:i] + self.fragment() + text[j:]
        if op == 3:  # duplicate a span elsewhere
            k = rng.randrange(n + 1)
            return text[:k] + text[i:j] + text[k:]
        if op == 4:  # truncate (cut off by the token limit)
            return text[:i]
        if op == 5:  # repeat a fragment many times
            return text[:i] + self.fragment() * self.count(300) + text[i:]
        if op == 6 and n:  # one character to a random code point
            k = rng.randrange(n)
            return text[:k] + chr(rng.randint(0, 0x10FFFF)) + text[k + 1 :]
        if op == 7 and n > 1:  # swap two characters
            a, b = sorted(rng.sample(range(n), 2))
            return text[:a] + text[b] + text[a + 1 : b] + text[a] + text[b + 1 :]
        return text[:i] + text[i:j].swapcase() + text[j:]

    def mutated(self) -> str:
        text = self.rng.choice(self.corpus)
        for _ in range(self.rng.randint(1, 6)):
            text = self.mutate(text)
        return text

    def soup(self) -> str:
        return "".join(self.fragment() for _ in range(self.count(300)))

    def random_text(self) -> str:
        rng = self.rng
        data = rng.randbytes(self.count(4096) if rng.random() < 0.95 else 0)
        codec, errors = rng.choice(CODECS if rng.random() < 0.8 else CODECS_WIDE)
        return data.decode(codec, errors)

    def burst(self) -> str:
        """Long runs: deep nesting, digit runs, long formulas (log-uniform, up to 10,000 repeats)."""
        rng = self.rng
        k = self.count(10_000)
        opener, closer = rng.choice(
            (("(", ")"), ("[", "]"), ("{", "}"), ('{"a":', "}"), ("[{", "}]"), ('"', '"'))
        )
        r = rng.random()
        if r < 0.35:
            core = opener * k + self.fragment() + closer * rng.choice((k, k - 1, k + 1, 0))
        elif r < 0.5:
            core = "".join(rng.choices("0123456789", k=k))
        elif r < 0.7:
            core = rng.choice(("+", "*", "-", "/")).join(self.number() for _ in range(k // 4 + 1))
        else:
            core = self.fragment() * k
        shapes: tuple[str, ...] = (
            core,
            f'{{"formula": "{core}"}}',
            f"formula: {core}",
            rng.choice(self.corpus) + core,
        )
        return rng.choice(shapes)

    def splice(self) -> str:
        rng = self.rng
        a, b = rng.choice(self.corpus), rng.choice(self.corpus)
        text = a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b) + 1) :]
        return self.mutate(text) if rng.random() < 0.5 else text


@dataclass
class FuzzResult:
    count: int = 0
    crashes: list[str] = field(default_factory=list)
    not_verdict: int = 0
    over_bound: int = 0
    max_latency: float = 0.0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    # The slowest calls: (seconds, length, strategy, mode, text), slowest first after the run.
    slowest: list[tuple[float, int, str, str, str]] = field(default_factory=list)
    verify_seconds: float = 0.0
    wall_seconds: float = 0.0
    total_chars: int = 0
    max_length: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    strategies: collections.Counter[str] = field(default_factory=collections.Counter)
    modes: collections.Counter[str] = field(default_factory=collections.Counter)


def fuzz(
    task: TaskSpec,
    instances: Sequence[Instance],
    corpus: Sequence[str],
    n: int,
    bound: float,
    every: int,
    audit: AuditRecorder,
) -> FuzzResult:
    fuzzer = Fuzzer(SEED + 2, corpus)
    verify = task.verify
    perf = time.perf_counter
    result = FuzzResult()
    slowest: list[tuple[float, int, str, str, str]] = []  # a min-heap of the slowest calls
    rng = random.Random(SEED + 3)
    wall_start = perf()
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    for i in range(n):
        strategy, text = fuzzer.next()
        instance = instances[i % len(instances)]
        mode = "reference" if i % 4 == 3 else "gpbench"  # the paper's scoring too, 1 call in 4
        truncated = rng.random() < 0.05
        audit.active = True
        start = perf()
        try:
            verdict = verify(instance, text, mode=mode, output_truncated=truncated)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # a crash (SystemExit included) is what the fuzz looks for
            elapsed = perf() - start
            audit.active = False
            if len(result.crashes) < 20:
                result.crashes.append(f"{type(error).__name__}: {error} on {text[:200]!r}")
            else:
                result.crashes.append(type(error).__name__)
            verdict = None
        else:
            elapsed = perf() - start
            audit.active = False
        result.verify_seconds += elapsed
        result.latencies.append(elapsed)
        if elapsed > result.max_latency:
            result.max_latency = elapsed
        if len(slowest) < SLOWEST_KEPT or elapsed > slowest[0][0]:
            entry = (elapsed, len(text), strategy, mode, text)
            if len(slowest) < SLOWEST_KEPT:
                heapq.heappush(slowest, entry)
            else:
                heapq.heapreplace(slowest, entry)
        if elapsed > bound:
            result.over_bound += 1
        if verdict is not None:
            if isinstance(verdict, Verdict):
                result.statuses[verdict.status] += 1
            else:
                result.not_verdict += 1
        result.strategies[strategy] += 1
        result.modes[mode] += 1
        result.total_chars += len(text)
        result.max_length = max(result.max_length, len(text))
        result.count += 1
        if (i + 1) % WATCHDOG_EVERY == 0:
            faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
        if (i + 1) % every == 0:
            wall = perf() - wall_start
            note(
                f"(3) fuzz {i + 1:,}/{n:,}: {(i + 1) / wall:,.0f} strings/s, "
                f"crashes {len(result.crashes)}, audit events {len(audit.events)}, "
                f"max latency {result.max_latency * 1e3:.2f} ms"
            )
    faulthandler.cancel_dump_traceback_later()
    result.wall_seconds = perf() - wall_start
    result.slowest = sorted(slowest, reverse=True)
    return result


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of sorted values."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def canary(audit: AuditRecorder) -> bool:
    """The hook is live: a compile() while active is recorded (then forgotten)."""
    audit.active = True
    try:
        compile("1 + 1", "<canary>", "eval")
    finally:
        audit.active = False
    seen = any(event == "compile" for event, _ in audit.events)
    audit.events.clear()
    return seen


def bench_fuzz(
    task: TaskSpec,
    instances: Sequence[Instance],
    corpus: Sequence[str],
    n: int,
    bound_ms: float,
    every: int,
) -> bool:
    """Run the fuzz; print its report; True when nothing went wrong."""
    audit = AuditRecorder()
    sys.addaudithook(audit)
    live = canary(audit)
    note(f"(3) fuzz: {n:,} strings, audit hook {'live' if live else 'NOT LIVE'} ...")
    result = fuzz(task, instances, corpus, n, bound_ms / 1e3, every, audit)
    print("== (3) fuzz: verify on generated strings, one core")
    print(
        f"strings: {result.count:,} (seed {SEED}; "
        + ", ".join(f"{s} {k:,}" for s, k in result.strategies.most_common())
        + ")"
    )
    print(
        f"modes: {', '.join(f'{m} {k:,}' for m, k in result.modes.most_common())}; "
        f"{len(instances)} gp-l hands; length mean {result.total_chars / max(1, result.count):,.0f}"
        f", max {result.max_length:,} chars"
    )
    print(f"crashes (exceptions): {len(result.crashes)} (0 expected)")
    for line in result.crashes[:10]:
        print(f"  {line}")
    print(f"non-Verdict results: {result.not_verdict} (0 expected)")
    ordered = sorted(result.latencies)
    _, length, strategy, _, _ = result.slowest[0] if result.slowest else (0.0, 0, "", "", "")
    print(
        f"max latency: {result.max_latency * 1e3:.2f} ms (slowest input: {length:,} chars, "
        f"{strategy}); calls over the {bound_ms:g} ms bound: {result.over_bound} (0 expected)"
    )
    print(
        "latency percentiles: "
        + ", ".join(
            f"p{q:g} {percentile(ordered, q) * 1e3:.3f} ms" for q in (50, 90, 99, 99.9, 99.99)
        )
    )
    print(
        f"slowest {len(result.slowest)} calls (ms, chars, strategy, mode, head .. tail; own-time hotspots):"
    )
    for seconds, length, strategy, mode, text in result.slowest:
        print(
            f"  {seconds * 1e3:8.2f} {length:>7,} {strategy:<7} {mode:<9} "
            f"{text[:48]!r} .. {text[-24:]!r}"
        )
        instance = instances[0]
        spots = hotspots(partial(task.verify, instance, text, mode=mode), 3)
        print(f"           {'; '.join(spots)}")
    print(
        f"audit events while verifying: {len(audit.events)} (0 expected; hook canary "
        f"{'ok' if live else 'FAILED'}; watched: exec, compile, open, os.system, "
        f"subprocess.Popen, os.exec/spawn/fork, ...)"
    )
    for event, args in audit.events[:10]:
        print(f"  {event} {args}")
    print(
        f"throughput: {fmt_rate(result.count / result.verify_seconds)} verdicts/s in verify "
        f"({result.verify_seconds:.1f} s), {fmt_rate(result.count / result.wall_seconds)} strings/s "
        f"with generation ({result.wall_seconds:.1f} s wall)"
    )
    shown = ", ".join(f"{s} {k:,}" for s, k in result.statuses.most_common())
    print(f"statuses: {shown}")
    ok = (
        live
        and not result.crashes
        and not result.not_verdict
        and not audit.events
        and not result.over_bound
    )
    print(f"fuzz: {'PASSED' if ok else 'FAILED'}")
    print()
    return ok


# --- main -------------------------------------------------------------------------------------


def print_machine() -> None:
    print("== machine")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"{cpu}, {platform.machine()}, {platform.system()}")
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}) {sys.executable}"
    )
    print(f"gpbench {gpbench.__version__}; single process, single core, gc enabled")
    print(calibrate.describe())
    print()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="scale every count and size down 10x")
    parser.add_argument("--mix", type=int, default=20_000, help="answers in the mix of (1)")
    parser.add_argument("--fuzz", type=int, default=1_000_000, help="fuzz strings in (3)")
    parser.add_argument(
        "--call-bound-ms", type=float, default=100.0, help="per-call wall-clock bound in (3)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one pass over the mix")
    parser.add_argument("--skip-mix", action="store_true", help="skip (1)")
    parser.add_argument("--skip-giants", action="store_true", help="skip (2)")
    parser.add_argument("--skip-fuzz", action="store_true", help="skip (3)")
    parser.add_argument(
        "--fail-on-miss", action="store_true", help="exit 1 if the target is missed"
    )
    args = parser.parse_args(argv)
    args.scale = 10 if args.quick else 1
    if args.quick:
        args.mix = max(100, args.mix // 10)
        args.fuzz = max(1, args.fuzz // 10)
    args.every = 100_000 // args.scale
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    task = get_task(TASK)
    note(f"loading {INSTANCES_PER_SPLIT} gp-l hands per split ({', '.join(SPLITS)}) ...")
    instances = load_instances(task, INSTANCES_PER_SPLIT)
    note(f"building the mix of {args.mix:,} answers ...")
    cases = build_mix(task, instances, args.mix, SEED)

    quick = " (--quick: counts and sizes / 10)" if args.quick else ""
    print(f"# gpbench verifier benchmark: {TASK} task.verify{quick}")
    print()
    print_machine()
    failed = False
    met = True
    if not args.skip_mix:
        met, checked = bench_mix(task, cases, REPEATS)
        failed |= not checked
    if args.profile:
        profile_mix(task, cases)
    if not args.skip_giants:
        bench_giants(task, instances["id"][0], args.scale, GIANT_CALLS)
    if not args.skip_fuzz:
        hands = [inst for split in SPLITS for inst in instances[split]]
        corpus = [case.answer for case in cases[:5000]]
        failed |= not bench_fuzz(task, hands, corpus, args.fuzz, args.call_bound_ms, args.every)
    if args.quick:
        print("(--quick is a smoke test: quote the full-size run, not these numbers)")
    return 1 if failed or (args.fail_on_miss and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
