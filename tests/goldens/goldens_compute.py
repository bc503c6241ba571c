"""How each golden is computed: shared by the tests (which compare) and ``regenerate.py`` (which
writes). Every function here is a pure function of the code under test and fixed keys."""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

from goldens_corpus import (
    GP_BASE_KINDS,
    GP_TASKS,
    ILLEGAL_EDITS,
    TASKS,
    UNICODE_DIGITS,
    core_pool,
    corpus,
    corpus_pool,
    expression,
    gp_answer,
    instance_pool,
    spaced,
    virl_answer,
)
from goldens_fuzz import Fuzzer, fuzz_strings
from goldens_support import Draws, canonical_line, digest, short_sha

from gpbench.generators.arithmetic import DEFAULT_LIMITS, Limits, evaluate
from gpbench.harness.transcripts import score_responses
from gpbench.records import Instance, Verdict
from gpbench.tasks.navigation import verify_action
from gpbench.tasks.navigation_vision import verify_with_detection
from gpbench.tasks.registry import get_task

# --- instances -------------------------------------------------------------------------------

SPARSE_INDICES = (1000, 4095, 4096, 65535, 10**6, 2**31 - 1, 2**53, 10**15)


@dataclass(frozen=True)
class InstanceConfig:
    """One pinned run of a task's generator: split, seed, options and the indices generated."""

    task: str
    split: str
    seed: int
    options: Mapping[str, Any]
    indices: tuple[int, ...]
    label: str

    @property
    def name(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.task}/{self.split}/seed={self.seed}/[{opts}]/{self.label}"


def _gp_configs(task_id: str) -> Iterator[InstanceConfig]:
    task = get_task(task_id)
    for split in task.splits:
        yield InstanceConfig(task_id, split, 42, {}, tuple(range(120)), "0-119")
        yield InstanceConfig(task_id, split, 7, {}, tuple(range(40)), "0-39")
        yield InstanceConfig(task_id, split, 2**31 - 1, {}, tuple(range(10)), "0-9")
        yield InstanceConfig(task_id, split, 42, {}, SPARSE_INDICES, "sparse")
        for options, count in (
            ({"target": 10}, 30),
            ({"target": 36}, 15),
            ({"target": 1}, 15),
            ({"sampling": "deck"}, 30),
            ({"paired": True}, 30),
            ({"target": 12, "sampling": "deck", "paired": True}, 15),
        ):
            yield InstanceConfig(task_id, split, 42, options, tuple(range(count)), f"0-{count - 1}")
    if task_id == "gp-vl":
        visual = {
            "background": "#223344",
            "card_scale": 0.9,
            "rotation": 8.0,
            "jitter": 10,
            "resolution": 600,
        }
        for split in ("id", "ood-color"):
            yield InstanceConfig(task_id, split, 42, visual, tuple(range(20)), "0-19")


def _virl_configs(task_id: str) -> Iterator[InstanceConfig]:
    for split in get_task(task_id).splits:
        yield InstanceConfig(task_id, split, 12, {}, tuple(range(24)), "0-23")
        yield InstanceConfig(task_id, split, 42, {}, tuple(range(6)), "0-5")
        yield InstanceConfig(task_id, split, 12, {}, SPARSE_INDICES[:3], "sparse")


def instance_configs() -> list[InstanceConfig]:
    """Every pinned generator run, for every task."""
    out: list[InstanceConfig] = []
    for task_id in TASKS:
        out.extend(_gp_configs(task_id) if task_id in GP_TASKS else _virl_configs(task_id))
    return out


def instance_lines(config: InstanceConfig) -> list[bytes]:
    """The canonical JSON lines of a config's instances, in index order."""
    task = get_task(config.task)
    return [
        canonical_line(task.instance(config.split, config.seed, index, config.options))
        for index in config.indices
    ]


# The reference-driven V-IRL episodes whose every prompt is pinned (instances of the pool).
REFERENCE_EPISODES_PER_TASK = 40


def reference_episode_lines(task_id: str) -> list[bytes]:
    """A V-IRL episode driven by the reference answers, step by step: the messages the model is
    shown at each decision point, and what the step did."""
    task = get_task(task_id)
    pool = instance_pool(task_id)
    lines = []
    for instance in pool[:: max(1, len(pool) // REFERENCE_EPISODES_PER_TASK)][
        :REFERENCE_EPISODES_PER_TASK
    ]:
        env = task.episode(instance)
        for answer in task.reference_answers(instance):
            shown = env.messages
            step = env.step(answer)
            lines.append(canonical_line({"messages": shown, **_step_record(step)}))
        lines.append(canonical_line({"after": env.messages, "stop": env.stop_reason}))
    return lines


def _step_record(step: Any) -> dict[str, Any]:
    return {
        "status": step.verdict.status,
        "reward": step.reward,
        "terminated": step.terminated,
        "truncated": step.truncated,
        "info": step.info,
    }


# --- verdicts --------------------------------------------------------------------------------


def verdict_pairs() -> list[tuple[str, str]]:
    """(task, mode) for every task and each verifier mode it declares."""
    return [(task_id, mode) for task_id in TASKS for mode in get_task(task_id).verifier_modes]


def judge(
    task_id: str, instance: Instance, point: int, answer: str, mode: str, cut: bool
) -> Verdict:
    """The verdict on an answer at a decision point, through the code an episode runs."""
    task = get_task(task_id)
    if point == 0:
        return task.verify(instance, answer, mode=mode, output_truncated=cut)
    if task_id == "virl-vl":
        return verify_with_detection(instance.problem, point, answer, cut, mode)
    return verify_action(instance.problem, point, answer, output_truncated=cut, mode=mode)


def truncated_flag(index: int) -> bool:
    """Every 17th answer is judged as cut off at the token limit (its verdict is flagged)."""
    return index % 17 == 0


@dataclass
class Judged:
    """The verdicts on a corpus: canonical lines, snapshot rows, status counts."""

    lines: list[bytes]
    rows: list[list[Any]]
    statuses: dict[str, int]

    @property
    def digest(self) -> str:
        return digest(self.lines)


def judge_corpus(task_id: str, mode: str) -> Judged:
    """Judge (task, mode)'s corpus in order."""
    pool = corpus_pool(task_id, mode)
    lines: list[bytes] = []
    rows: list[list[Any]] = []
    counts: collections.Counter[str] = collections.Counter()
    for entry in corpus(task_id, mode):
        verdict = judge(
            task_id,
            pool[entry.instance],
            entry.point,
            entry.answer,
            mode,
            truncated_flag(entry.index),
        )
        line = canonical_line(verdict)
        lines.append(line)
        rows.append(snapshot_row(entry.index, verdict, line))
        counts[verdict.status] += 1
    return Judged(lines, rows, dict(sorted(counts.items())))


def snapshot_row(index: int, verdict: Verdict, line: bytes) -> list[Any]:
    """``[index, status, reward, flags, sha of the feedback, sha of the whole verdict line]``."""
    return [
        index,
        verdict.status,
        verdict.reward,
        list(verdict.flags),
        short_sha(verdict.feedback, 6),
        short_sha(line, 8),
    ]


# --- arithmetic ------------------------------------------------------------------------------

ARITHMETIC_SIZE = 2400
SMALL_LIMITS = Limits(max_length=40, max_depth=4, max_number_digits=2, max_value_bits=64)


def arithmetic_formulas() -> list[str]:
    """Formulas for the exact evaluator: references, random, spaced, illegal, unicode, limits."""
    fuzzer = Fuzzer()
    pool = instance_pool("gp-l")
    out = []
    for i in range(ARITHMETIC_SIZE):
        d = Draws(f"goldens/arithmetic/{i}")
        instance = d.choice(pool)
        values = list(instance.problem["values"])
        reference = instance.reference["formula"].split("=", 1)[0]
        how = i % 12
        if how == 0:
            text = reference
        elif how == 1:
            text = expression(d, values)
        elif how == 2:
            text = spaced(d, reference)
        elif how == 3:
            k = d.below(len(reference) + 1)
            text = reference[:k] + d.choice(ILLEGAL_EDITS) + reference[k:]
        elif how == 4:
            table = {"*": d.choice("×xX*"), "/": d.choice("÷/")}
            text = "".join(table.get(c, c) for c in expression(d, values))
            if d.chance(1, 3):
                digits = d.choice(UNICODE_DIGITS)
                text = "".join(digits[int(c)] if c.isdigit() else c for c in text)
        elif how == 5:
            depth = d.between(1, 36)
            text = (
                "(" * depth + expression(d, values) + ")" * d.choice((depth, depth - 1, depth + 1))
            )
        elif how == 6:
            text = d.choice("+-*/").join(
                str(d.between(0, 10 ** d.between(1, 9))) for _ in range(d.between(1, 6))
            )
        elif how == 7:
            terms = d.between(100, 300)
            text = d.choice(("+", "*", "-")).join(str(d.between(1, 13)) for _ in range(terms))
        elif how == 8:
            k = d.between(1, 600)
            text = "*".join([str(d.choice((13, 99, 999999)))] * k) + d.choice(("", "/7", "/0"))
        elif how == 9:
            text = d.choice(("-", "--", "---", "+", "+-", "-+", "")) + expression(d, values)
            text = text.replace("(", d.choice(("(", "(-", "(--", "(+")), 1)
        elif how == 10:
            a, b = d.between(0, 13), d.between(0, 13)
            text = d.choice((f"{a}/({b}-{b})", "8/(3-8/3)", f"{a}/{b}/{a}", f"1/(1/{a}-1/{b})"))
        else:
            text = fuzzer.formula(d, 0)
        out.append(text)
    return out


def evaluation_record(
    text: str, *, unicode: bool = False, limits: Limits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """What :func:`evaluate` says about ``text`` (its value as ``n/d``), as a JSON object."""
    result = evaluate(text, limits, allow_unicode_operators=unicode)
    value = result.value
    return {
        "ok": result.ok,
        "value": None if value is None else _fraction_text(value),
        "numbers": list(result.numbers),
        "error": result.error,
        "division_by_zero": result.division_by_zero,
        "detail": result.detail,
    }


def _fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def arithmetic_lines() -> list[bytes]:
    """Each formula under the default limits, with unicode operators, and under small limits."""
    lines = []
    for text in arithmetic_formulas():
        lines.append(canonical_line(evaluation_record(text)))
        lines.append(canonical_line(evaluation_record(text, unicode=True)))
        lines.append(canonical_line(evaluation_record(text, limits=SMALL_LIMITS)))
    return lines


# --- episodes --------------------------------------------------------------------------------

GP_EPISODES = 300
VIRL_EXTRA = tuple(
    (split, 22, 20) for split in ("train", "id", "id-heldout", "ood-rule", "ood-spatial")
)


@cache
def episode_instances(task_id: str) -> tuple[Instance, ...]:
    """A few hundred instances per task: GeneralPoints from the pool, V-IRL the pool and more."""
    pool = instance_pool(task_id)
    if task_id in GP_TASKS:
        return tuple(pool[i * len(pool) // GP_EPISODES] for i in range(GP_EPISODES))
    task = get_task(task_id)
    extra = tuple(
        instance
        for split, seed, count in VIRL_EXTRA
        for instance in task.dataset(split, seed, count)
    )
    return pool + extra


@dataclass(frozen=True)
class Script:
    """A fixed sequence of answers for one episode, with its budget, mode and truncation flags."""

    name: str
    responses: tuple[str, ...]
    budget: int
    mode: str
    truncated: tuple[bool, ...]


# V-IRL transcripts rebuild a 3 KB prompt at every step: of the blocks of six scripts (each
# script kind once), one in three is replayed.
TRANSCRIPT_EVERY = 3
VIRL_SCRIPT_KINDS = 6


GP_WRONG_KINDS = tuple(k for k in GP_BASE_KINDS if k not in ("reference", "alternative"))
VIRL_WRONG_KINDS = ("wrong", "odd_action", "observation", "vocabulary", "empty", "hostile")


def gp_script(task_id: str, position: int, instance: Instance) -> Script:
    """Episode ``position``'s answers: first-try, revisions, exhaustion, early ends, extras."""
    task = get_task(task_id)
    d = Draws(f"goldens/episode/{task_id}/{position}")

    def wrong() -> str:
        return gp_answer(d, task, instance, d.choice(GP_WRONG_KINDS))

    right = task.reference_answer(instance)
    how = position % 9
    budget, cut = task.max_attempts, ()
    if how == 0:
        name, responses = "first_try", [right]
    elif how == 1:
        name, responses = "revise", [wrong(), right]
    elif how == 2:
        name, responses = "revise_late", [wrong() for _ in range(4)] + [right]
    elif how == 3:
        name, responses = "exhausted", [wrong() for _ in range(5)]
    elif how == 4:
        name, responses = "ended", [wrong(), wrong()]
    elif how == 5:
        name, responses = "after_end", [right, wrong(), right]
    elif how == 6:
        name, responses, budget = "budget1", [wrong(), right], 1
    elif how == 7:
        name, responses, budget = "budget3_truncated", [wrong() for _ in range(4)], 3
        cut = tuple(d.chance(1, 2) for _ in responses)
    else:
        name, responses = "no_answers", []
    return Script(name, tuple(responses), budget, "gpbench", cut or (False,) * len(responses))


def virl_script(task_id: str, position: int, instance: Instance) -> Script:
    """Episode ``position``'s answers along the route: reference, retries, failure, early ends."""
    task = get_task(task_id)
    d = Draws(f"goldens/episode/{task_id}/{position}")
    reference = task.reference_answers(instance)
    points = len(reference)

    def wrong(point: int) -> str:
        return virl_answer(d, task, instance, point, d.choice(VIRL_WRONG_KINDS))

    how = position % VIRL_SCRIPT_KINDS
    budget = task.max_attempts
    k = d.below(points)
    if how == 0:
        name, responses = "reference", list(reference)
    elif how == 1:
        name, responses = "retry", []
        for point, answer in enumerate(reference):
            if d.chance(1, 4):
                responses.append(wrong(point))
            responses.append(answer)
    elif how == 2:
        name, responses = "fail", [*reference[:k], wrong(k), wrong(k)]
    elif how == 3:
        name, responses = "ended", list(reference[:k])
    elif how == 4:
        name, responses, budget = "budget1_fail", [*reference[:k], wrong(k), reference[k]], 1
    else:
        name, responses = "after_end", [*reference, wrong(points - 1), reference[-1]]
    cut = tuple(d.chance(1, 10) for _ in responses)
    return Script(name, tuple(responses), budget, "gpbench", cut)


def scripts(task_id: str) -> list[tuple[Instance, Script]]:
    """Every scripted episode of a task (GeneralPoints also in the reference mode, on the core
    pool)."""
    make = gp_script if task_id in GP_TASKS else virl_script
    out = [
        (instance, make(task_id, position, instance))
        for position, instance in enumerate(episode_instances(task_id))
    ]
    if task_id in GP_TASKS:
        for position, instance in enumerate(core_pool(task_id)):
            script = make(task_id, 1000 + position, instance)
            out.append(
                (
                    instance,
                    Script(
                        script.name, script.responses, script.budget, "reference", script.truncated
                    ),
                )
            )
    return out


@dataclass
class Played:
    """The pinned outcome of a task's scripted episodes."""

    episodes: list[bytes]
    transcripts: list[bytes]
    rows: list[list[Any]]


def play_scripts(task_id: str) -> Played:
    """Score every script with :func:`score_responses` (the Episode records) and replay it step
    by step (the messages shown before each answer, and what each step did)."""
    task = get_task(task_id)
    episodes: list[bytes] = []
    transcripts: list[bytes] = []
    rows: list[list[Any]] = []
    for position, (instance, script) in enumerate(scripts(task_id)):
        episode = score_responses(
            task,
            instance,
            list(script.responses),
            budget=script.budget,
            mode=script.mode,
            truncated=list(script.truncated),
        )
        line = canonical_line(episode)
        episodes.append(line)
        rows.append(
            [
                position,
                script.name,
                instance.uid,
                episode.stop_reason,
                episode.return_,
                episode.attempts_used,
                short_sha(line, 8),
            ]
        )
        if task_id in GP_TASKS or (position // VIRL_SCRIPT_KINDS) % TRANSCRIPT_EVERY == 0:
            transcripts.extend(_transcript(task_id, instance, script))
    return Played(episodes, transcripts, rows)


def _transcript(task_id: str, instance: Instance, script: Script) -> list[bytes]:
    task = get_task(task_id)
    env = task.episode(instance, budget=script.budget, mode=script.mode)
    lines = []
    for response, cut in zip(script.responses, script.truncated, strict=True):
        if env.terminated:
            break
        shown = env.messages
        step = env.step(response, output_truncated=cut)
        lines.append(canonical_line({"messages": shown, **_step_record(step)}))
    lines.append(canonical_line({"after": env.messages, "stop": env.stop_reason}))
    return lines


# --- fuzz ------------------------------------------------------------------------------------


def fuzz_instance(task_id: str, index: int) -> Instance:
    """The instance fuzz string ``index`` is judged against (the core pool in turn)."""
    pool = core_pool(task_id)
    return pool[index % len(pool)]


def fuzz_answer(task_id: str, index: int, text: str) -> str:
    """For gp-vl, every other string ends with the right cards, so the formula checks behind
    the card check are fuzzed too (otherwise nearly all are misrecognized)."""
    if task_id == "gp-vl" and index % 2:
        cards = fuzz_instance(task_id, index).problem["cards"]
        return text + '\n{"cards": [' + ", ".join(f'"{c}"' for c in cards) + "]}"
    return text


@dataclass
class Fuzzed:
    """A verifier's verdicts on the fuzz strings: status counts, digest, a row per string."""

    statuses: dict[str, int]
    digest: str
    rows: list[list[Any]]


def fuzz_verifier(task_id: str, mode: str) -> Fuzzed:
    """Judge every fuzz string with (task, mode); a verifier that raises fails the caller."""
    task = get_task(task_id)
    counts: collections.Counter[str] = collections.Counter()
    lines = []
    rows: list[list[Any]] = []
    for index, text in enumerate(fuzz_strings()):
        verdict = task.verify(
            fuzz_instance(task_id, index), fuzz_answer(task_id, index, text), mode=mode
        )
        counts[verdict.status] += 1
        line = canonical_line(verdict)
        lines.append(line)
        rows.append([verdict.status, short_sha(line, 6)])
    return Fuzzed(dict(sorted(counts.items())), digest(lines), rows)
