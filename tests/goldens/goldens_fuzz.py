"""A small deterministic fuzzer for the verifiers (the idea of ``bench/bench_verify.py``'s, redone).

String ``i`` is a pure function of ``i`` (its own :class:`Draws` stream): a grammar-ish answer,
a mutated seed answer, a soup of fragments, random bytes decoded with a random codec, a splice
of two seed answers, or a long burst (deep nesting, digit runs, long formulas). Every string is
under :data:`MAX_FUZZ_BYTES` of UTF-8 so the fuzz stays fast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache

from goldens_corpus import CODE_PAYLOADS, ODD_CHARACTERS, TASKS, UNICODE_DIGITS, fit, instance_pool
from goldens_support import Draws

from gpbench.tasks.registry import get_task

FUZZ_SIZE = 5_000
MAX_FUZZ_BYTES = 4000

FRAGMENTS = (
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    '"',
    "'",
    ":",
    ",",
    " ",
    "\n",
    "\\",
    "//",
    "#",
    '"formula"',
    "'formula'",
    "formula",
    '"cards"',
    '"number"',
    '"action"',
    '"current observation"',
    "forward()",
    "stop()",
    "turn_direction(",
    "north",
    "slightly left",
    "intersection",
    "=24",
    "= 24",
    "*",
    "/",
    "+",
    "-",
    "**",
    "^",
    "1e309",
    "NaN",
    "True",
    "None",
    "null",
    "```json",
    "```",
    "\\u00",
    "\\x4",
    "\\U0001F600",
    "J",
    "Q",
    "K",
    "A",
    "10",
    "13",
    *ODD_CHARACTERS,
)
OPERATORS = ("+", "-", "*", "/", "**", "//", "^", "%", "×", "÷", "x", " ", "", "=")
CODECS = (
    ("utf-8", "replace"),
    ("utf-8", "ignore"),
    ("utf-8", "surrogateescape"),
    ("latin-1", "strict"),
    ("utf-16-le", "replace"),
    ("cp1252", "replace"),
)


@lru_cache(maxsize=1)
def seed_answers() -> tuple[str, ...]:
    """Well-formed answers the mutators start from: references of a few instances per task."""
    out: list[str] = []
    for task_id in TASKS:
        task = get_task(task_id)
        for instance in instance_pool(task_id)[::25]:
            out.extend(task.reference_answers(instance)[:3])
    return tuple(out)


class Fuzzer:
    """The fuzz strings: ``Fuzzer().string(i)`` for ``i`` in ``range(FUZZ_SIZE)``."""

    def __init__(self) -> None:
        self.seeds = seed_answers()
        self.strategies: tuple[tuple[int, Callable[[Draws], str]], ...] = (
            (35, self.mutated),
            (28, self.grammar),
            (12, self.soup),
            (12, self.random_text),
            (8, self.splice),
            (5, self.burst),
        )

    def string(self, index: int) -> str:
        """Fuzz string ``index``."""
        d = Draws(f"goldens/fuzz/{index}")
        r = d.below(sum(weight for weight, _ in self.strategies))
        for weight, make in self.strategies:
            if r < weight:
                return fit(make(d), MAX_FUZZ_BYTES)
            r -= weight
        raise AssertionError("weights cover every draw")

    def fragment(self, d: Draws) -> str:
        r = d.below(100)
        if r < 55:
            return d.choice(FRAGMENTS)
        if r < 70:
            source = d.choice(self.seeds)
            i = d.below(len(source) + 1)
            return source[i : i + d.between(1, 40)]
        if r < 85:
            return self.formula(d, 0)
        if r < 95:
            return chr(d.between(0x80, 0x2FFFF))
        return str(d.between(-(10**12), 10**12))

    def number(self, d: Draws) -> str:
        r = d.below(10)
        if r < 6:
            return str(d.between(1, 13))
        if r == 6:
            return "0" * d.between(1, 8) + str(d.below(10))
        if r == 7:
            return d.digits(d.between(6, 80))
        if r == 8:
            digits = d.choice(UNICODE_DIGITS)
            return "".join(d.choice(digits) for _ in range(d.between(1, 3)))
        return d.choice(("1.5", "1e3", "-2", ".5", "1e309", "0.0", "2/3", "NaN"))

    def formula(self, d: Draws, depth: int) -> str:
        if depth > 5 or d.chance(4 + 2 * min(depth, 3), 10):
            term = self.number(d)
        else:
            left, right = self.formula(d, depth + 1), self.formula(d, depth + 1)
            op = d.choice(OPERATORS) if d.chance(3, 10) else d.choice("+-*/")
            term = f"{left}{op}{right}"
            if d.chance(4, 10):
                term = f"({term})" if d.chance(9, 10) else f"({term}"
        if d.chance(1, 10):
            term = d.choice(("-", "+", "--", " ")) + term
        if depth == 0 and d.chance(6, 10):
            term += d.choice(("=24", " = 24", "=23", "==24", "=24=24", "="))
        return term

    def scalar(self, d: Draws) -> str:
        r = d.below(20)
        if r < 6:
            quote = d.choice("\"'")
            body = self.formula(d, 0) if d.chance(3, 5) else self.fragment(d)
            close = quote if d.chance(9, 10) else d.choice(("", "\n", "'\""))
            return f"{quote}{body}{close}"
        if r < 10:
            return self.number(d)
        if r < 13:
            return d.choice(("true", "false", "null", "True", "None", "J", "K", "10", "'Q'"))
        if r < 16:
            return self.formula(d, 0)
        if r < 18:
            return d.choice(("forward()", "stop()", "turn_direction(east)", "'slightly left'"))
        return self.fragment(d)

    def value(self, d: Draws, depth: int) -> str:
        r = d.below(20)
        if depth > 5 or r < 9:
            return self.scalar(d)
        if r < 14:
            items = [self.value(d, depth + 1) for _ in range(d.between(0, 5))]
            sep = d.choice((", ", ",", " ", ",\n"))
            close = "]" if d.chance(23, 25) else d.choice(("", "}", ")"))
            return f"[{sep.join(items)}{d.choice(('', ','))}{close}"
        return self.obj(d, depth + 1)

    def obj(self, d: Draws, depth: int) -> str:
        keys = (
            '"formula"',
            "'formula'",
            "formula",
            '"cards"',
            '"number"',
            "cards",
            '"action"',
            "action",
            '"current observation"',
            '"x"',
        )
        parts = []
        for _ in range(d.between(0, 4)):
            key = d.choice(keys) if d.chance(9, 10) else self.fragment(d)
            colon = d.choice((": ", ":", " : ")) if d.chance(19, 20) else ""
            parts.append(f"{key}{colon}{self.value(d, depth)}")
            if d.chance(1, 10):
                parts.append(d.choice(("// note", "# comment", "/* c */")))
        sep = d.choice((", ", ",\n  ", ",", "\n", " "))
        close = "}" if d.chance(23, 25) else d.choice(("", "}}", "]"))
        return f"{{{sep.join(parts)}{d.choice(('', ',', ', '))}{close}"

    def grammar(self, d: Draws) -> str:
        body = self.obj(d, 0) if d.chance(3, 4) else self.value(d, 0)
        r = d.below(10)
        if r < 2:
            body = f"```json\n{body}\n```"
        elif r < 4:
            body = f"Here is my answer: {body} Hope that helps."
        elif r == 4:
            body = f"formula: {self.formula(d, 0)}\n{body}"
        elif r == 5:
            body = f"{body}\n{self.formula(d, 0)}"
        elif r == 6:
            body = f"action: {self.scalar(d)}\n{body}"
        return body

    def mutate(self, d: Draws, text: str) -> str:
        n = len(text)
        i = d.below(n + 1)
        j = min(n, i + d.between(0, 32))
        op = d.below(9)
        if op == 0:
            return text[:i] + self.fragment(d) + text[i:]
        if op == 1:
            return text[:i] + text[j:]
        if op == 2:
            return text[:i] + self.fragment(d) + text[j:]
        if op == 3:
            k = d.below(n + 1)
            return text[:k] + text[i:j] + text[k:]
        if op == 4:
            return text[:i]
        if op == 5:
            return text[:i] + self.fragment(d) * d.log_count(300) + text[i:]
        if op == 6 and n:
            k = d.below(n)
            return text[:k] + chr(d.below(0x110000)) + text[k + 1 :]
        if op == 7 and n > 1:
            a, b = sorted((d.below(n), d.below(n)))
            if a != b:
                return text[:a] + text[b] + text[a + 1 : b] + text[a] + text[b + 1 :]
            return text
        return text[:i] + text[i:j].swapcase() + text[j:]

    def mutated(self, d: Draws) -> str:
        text = d.choice(self.seeds)
        for _ in range(d.between(1, 6)):
            text = self.mutate(d, text)
        return text

    def soup(self, d: Draws) -> str:
        return "".join(self.fragment(d) for _ in range(d.log_count(300)))

    def random_text(self, d: Draws) -> str:
        size = d.log_count(2048) if d.chance(19, 20) else 0
        raw = hashlib.shake_256(f"goldens/fuzz-bytes/{d.below(1 << 62)}".encode()).digest(size)
        codec, errors = d.choice(CODECS)
        return raw.decode(codec, errors)

    def splice(self, d: Draws) -> str:
        a, b = d.choice(self.seeds), d.choice(self.seeds)
        return a[: d.below(len(a) + 1)] + b[d.below(len(b) + 1) :]

    def burst(self, d: Draws) -> str:
        k = d.log_count(1500)
        opener, closer = d.choice(
            (("(", ")"), ("[", "]"), ("{", "}"), ('{"a":', "}"), ("[{", "}]"), ('"', '"'))
        )
        r = d.below(20)
        if r < 7:
            core = opener * k + self.fragment(d) + closer * d.choice((k, k - 1, k + 1, 0))
        elif r < 10:
            core = d.digits(k)
        elif r < 14:
            core = d.choice("+*-/").join(self.number(d) for _ in range(k // 4 + 1))
        elif r < 16:
            core = d.choice(CODE_PAYLOADS) * (k // 40 + 1)
        else:
            core = self.fragment(d) * k
        shapes = (
            core,
            f'{{"formula": "{core}"}}',
            f"formula: {core}",
            f'{{"action": "{core}"}}',
            f'{core}\n{{"formula": "4*6=24"}}',
        )
        return d.choice(shapes)


@lru_cache(maxsize=1)
def fuzz_strings() -> tuple[str, ...]:
    """The :data:`FUZZ_SIZE` fuzz strings, in order (computed once per process)."""
    fuzzer = Fuzzer()
    return tuple(fuzzer.string(i) for i in range(FUZZ_SIZE))
