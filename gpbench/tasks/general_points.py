"""GeneralPoints (gp-l): make the target from four cards with ``+ - * / ( )``.

Description:
    Four playing cards are dealt; the model writes an equation that uses each card's value once and
    equals the target (24). The paper's training rule counts J, Q and K as 10; its rule shift
    counts them as 11, 12 and 13.

Splits:
    ``train`` and ``id`` follow the paper's training distribution (uniform ranks with replacement,
    redrawn until solvable); ``train`` never emits the value multisets reserved for
    ``id-heldout`` (one in five by a keyed hash, 112 of the 566 solvable ones for 24), so
    memorisation can be told from in-distribution generalisation. ``ood-rule`` counts J/Q/K as
    11/12/13 and always holds a face card.

Options (off by default, recorded in ``params`` and in the instance key):
    ``target`` (any integer), ``sampling=deck`` (four distinct cards), ``paired=true`` (index ``i``
    of ``id`` and ``ood-rule`` is the same hand: drawn from a shared namespace, holding a face card
    and solvable under both rules).

Version history:
    1: first release.

>>> from gpbench.tasks.registry import get_task
>>> task = get_task("gp-l")
>>> inst = task.instance("ood-rule", seed=42, index=0)
>>> inst.problem["rule"], any(c in ("J", "Q", "K") for c in inst.problem["cards"])
('jqk=11/12/13', True)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from gpbench.errors import ConfigError
from gpbench.generators.cards import (
    BLACK_SUITS,
    OOD_FACE_VALUES,
    TRAINING_FACE_VALUES,
    HandConfig,
    card_value,
    deal,
    is_heldout,
    rank_from_name,
    rank_name,
)
from gpbench.generators.rng import KeyedRng
from gpbench.records import Instance, Verdict
from gpbench.tasks import gp_scoring
from gpbench.tasks.answers import extract_field
from gpbench.tasks.spec import OptionSpec, SplitSpec, TaskSpec, split_spec

TRAINING_RULE = "jqk=10"
OOD_RULE = "jqk=11/12/13"
FACE_VALUES_BY_RULE: dict[str, tuple[int, int, int]] = {
    TRAINING_RULE: TRAINING_FACE_VALUES,
    OOD_RULE: OOD_FACE_VALUES,
}

PAPER_EVAL_SIZE = 234
PAPER_EVAL_SEED = 42
TRAIN_SIZE = 10_000  # gpbench's default for a training file; the paper sampled hands on the fly
TRAIN_SEED = 0

# The paper's prompt format (its code's template), kept byte for byte: the released checkpoints
# were trained on it, including the leading and trailing blank lines.
_TEXT_PROMPT = """
[Task Description]
You are an expert {target} points card game player. You will receive a set of 4 cards.
Note that {face_message}, and each card must be used once.
Your goal is to output a formula that evaluates to {target} using numbers from the cards and \
operators such as '+', '-', '*', '/', '(', ')', and '='.

[Input]
Cards: {cards}

[Output]
{{
  "cards": [x, y, z, w], where {face_message},
  "number": [a, b, c, d], where a, b, c, and d are the numbers on the cards,
  "formula": 'an equation that equals {target}',
}}

"""


def face_message(face_values: Sequence[int]) -> str:
    """The paper's sentence for a face-card rule."""
    if len(set(face_values)) == 1:
        return f"'J', 'Q', and 'K' count as '{face_values[0]}'"
    j, q, k = face_values
    return f"'J', 'Q', and 'K' count as '{j}', '{q}', and '{k}' respectively"


def render_text_prompt(cards: Sequence[str], face_values: Sequence[int], target: int) -> str:
    """The paper's GP-L user prompt for a hand of rank strings."""
    return _TEXT_PROMPT.format(
        target=target, face_message=face_message(face_values), cards=list(cards)
    )


MEMORIZATION_FLAGS: Mapping[str, tuple[str, ...]] = {
    # Under the training rule these answers are right, so they are failures only where the rule
    # changed: the share of OOD failures they explain is measured on ood-rule.
    "train_rule_answer": ("ood-rule",),
    "verbatim_training_formula": ("ood-rule",),
}
"""Answers that replay the training distribution: right only if J/Q/K were 10, or the very
formula ``train`` holds for these cards."""

GP_TEXT_SPLITS: dict[str, SplitSpec] = {
    s.name: s
    for s in (
        split_spec(
            "train",
            "training distribution minus the id-heldout value multisets; J/Q/K=10",
            TRAIN_SIZE,
            TRAIN_SEED,
            rule=TRAINING_RULE,
            force_face=False,
            heldout="exclude",
        ),
        split_spec(
            "id",
            "the paper's ID evaluation: the training distribution (overlaps train)",
            PAPER_EVAL_SIZE,
            PAPER_EVAL_SEED,
            rule=TRAINING_RULE,
            force_face=False,
            heldout="any",
        ),
        split_spec(
            "id-heldout",
            "ID rule, only value multisets that train never emits",
            PAPER_EVAL_SIZE,
            PAPER_EVAL_SEED,
            rule=TRAINING_RULE,
            force_face=False,
            heldout="only",
        ),
        split_spec(
            "ood-rule",
            "rule shift: J/Q/K=11/12/13, at least one face card",
            PAPER_EVAL_SIZE,
            PAPER_EVAL_SEED,
            rule=OOD_RULE,
            force_face=True,
            heldout="any",
        ),
    )
}

GP_OPTIONS: dict[str, OptionSpec] = {
    o.name: o
    for o in (
        OptionSpec("target", "int", 24, "the number the formula must equal (paper: 24)"),
        OptionSpec(
            "sampling",
            "choice",
            "uniform",
            "uniform: ranks with replacement (paper's code); deck: 4 distinct cards",
            ("uniform", "deck"),
        ),
        OptionSpec(
            "paired",
            "bool",
            False,
            "same hand at the same index across id/ood splits (face card, solvable under both rules)",
        ),
    )
}


# (task id, split, option items) -> HandConfig. Building one validates it and checks that a hand
# exists, which cost more than dealing the hand; every instance of a split needs the same one.
_HAND_CONFIGS: dict[tuple[str, str, tuple[tuple[str, Any], ...]], HandConfig] = {}


class GeneralPointsTask(TaskSpec):
    """Shared core of gp-l and gp-vl: hands, rules, splits, references and content keys."""

    splits = GP_TEXT_SPLITS
    options = GP_OPTIONS
    max_attempts = 5
    budget_penalty = gp_scoring.REWARD_BUDGET_EXCEEDED
    verifier_modes = gp_scoring.MODES
    checks_cards = False  # gp-vl: the answer's cards are scored first
    rl_lambda = 6.0
    memorization_flags = MEMORIZATION_FLAGS

    def answer_statuses(self, mode: str = "gpbench") -> tuple[str, ...]:
        """The verifier's statuses in check order (see :mod:`gpbench.tasks.gp_scoring`)."""
        return gp_scoring.answer_statuses(mode, check_cards=self.checks_cards)

    def verify(
        self,
        instance: Instance,
        answer: str,
        *,
        mode: str = "gpbench",
        output_truncated: bool = False,
    ) -> Verdict:
        """Judge an answer with the exact verifier (see :mod:`gpbench.tasks.gp_scoring`)."""
        p = instance.problem
        return gp_scoring.verify(
            answer,
            cards=p["cards"],
            values=p["values"],
            target=p["target"],
            rule_is_training=p["rule"] == TRAINING_RULE,
            check_cards=self.checks_cards,
            mode=mode,
            output_truncated=output_truncated,
        )

    def reference_answer(self, instance: Instance) -> str:
        """The reference in the paper's response format (its SFT targets look like this)."""
        ref = instance.reference
        return (
            "{\n"
            f'  "cards": {ref["cards"]!r},\n'
            f'  "number": {ref["number"]!r},\n'
            f'  "formula": "{ref["formula"]}",\n'
            "}"
        )

    def wrong_answer(self, instance: Instance, reference: str, point: int = 0) -> str:
        """The reference with its formula replaced by ``1+1`` (right cards, wrong value).

        >>> from gpbench.tasks.registry import get_task
        >>> task = get_task("gp-l")
        >>> task.wrong_answer(task.instance("id", 42, 0), '{"cards": ["2"], "formula": "2*12=24"}')
        '{"cards": ["2"], "formula": "1+1"}'
        """
        if _ANSWER_FORMULA.search(reference):
            return _ANSWER_FORMULA.sub('"formula": "1+1"', reference, count=1)
        return "I do not know."

    def hand_config(self, split: SplitSpec, options: Mapping[str, Any]) -> HandConfig:
        """The hand sampler's configuration for a split and options (memoised: one per pair)."""
        key = (self.id, split.name, tuple(options.items()))
        config = _HAND_CONFIGS.get(key)
        if config is None:
            config = self._hand_config(split, options)
            if len(_HAND_CONFIGS) >= 256:  # options from the command line: keep it bounded
                _HAND_CONFIGS.clear()
            _HAND_CONFIGS[key] = config
        return config

    def _hand_config(self, split: SplitSpec, options: Mapping[str, Any]) -> HandConfig:
        paired = bool(options["paired"])
        config = HandConfig(
            target=int(options["target"]),
            face_values=FACE_VALUES_BY_RULE[split.params["rule"]],
            suits=tuple(split.params.get("suits", BLACK_SUITS)),
            sampling=str(options["sampling"]),
            force_face=bool(split.params["force_face"]) or paired,
            heldout=str(split.params["heldout"]),
            also_solvable_under=(TRAINING_FACE_VALUES, OOD_FACE_VALUES) if paired else (),
        )
        if not config.any_possible():
            raise ConfigError(
                f"no 4-card hand of {self.id} {split.name} can reach target {config.target} "
                f"under its rule and options; choose another target (-O target=24)"
            )
        return config

    def rng_key(self, split: SplitSpec, seed: int, index: int, options: Mapping[str, Any]) -> str:
        """The random stream's key; paired variants share one namespace across splits."""
        namespace = "paired" if options["paired"] else split.name
        return self.instance_key(namespace, seed, index, options)

    def problem(
        self,
        split: SplitSpec,
        seed: int,
        index: int,
        options: Mapping[str, Any],
        key: str | None = None,
    ) -> dict[str, Any]:
        """The structured problem at an index, with a reference formula.

        ``key``, the instance key when the caller has it, saves building it again: unless the
        options pair hands across splits, it is the random stream's key (see :meth:`rng_key`).
        """
        config = self.hand_config(split, options)
        if key is None or options["paired"]:
            key = self.rng_key(split, seed, index, options)
        hand = deal(config, KeyedRng(key))
        return {
            "cards": [rank_name(r) for r in hand.ranks],
            "suits": list(hand.suits),
            "values": list(hand.values),
            "target": config.target,
            "rule": split.params["rule"],
            "formula": hand.formula,
        }

    def region_problems(self, instance: Instance) -> list[str]:
        """Checks that the hand obeys its split: rule, values, suits, face card, held-out share."""
        split = self.split(instance.split)
        p = instance.problem
        problems = []
        if p["rule"] != split.params["rule"]:
            problems.append(f"rule {p['rule']} != split rule {split.params['rule']}")
        if p["values"] != hand_values(p["cards"], p["rule"]):
            problems.append(f"values {p['values']} do not follow rule {p['rule']}")
        allowed_suits = split.params.get("suits", BLACK_SUITS)
        if any(s not in allowed_suits for s in p["suits"]):
            problems.append(f"suits {p['suits']} outside {allowed_suits}")
        if split.params["force_face"] and not any(c in ("J", "Q", "K") for c in p["cards"]):
            problems.append("no face card in a split that forces one")
        heldout = split.params["heldout"]
        if heldout != "any":
            held = is_heldout(hand_values(p["cards"], TRAINING_RULE), p["target"])
            if held != (heldout == "only"):
                problems.append(f"held-out membership {held} contradicts heldout={heldout}")
        return problems

    def describe(self, instance: Instance) -> str:
        """The hand in text with its values under the rule and a reference formula."""
        p = instance.problem
        return (
            f"{self.id} {instance.split} seed={instance.seed} index={instance.index}: "
            f"cards {p['cards']} values {p['values']} ({p['rule']}), "
            f"e.g. {instance.reference['formula']}"
        )

    def content_key(self, instance: Instance) -> str:
        """Sorted card values, target and rule: equal keys pose the same arithmetic problem."""
        p = instance.problem
        return _content_key(p["values"], p["target"], p["rule"])

    overlap_family = "general-points"

    def chat_overlap_keys(self, prompt: str, answer: str) -> tuple[str, ...]:
        """The content key of the hand the paper's prompt poses: its ``Cards: [...]`` (or, as
        a gp-vl prompt lists none, the answer's ``"cards"``), J/Q/K rule sentence and target."""
        target = _PROMPT_TARGET.search(prompt)
        rule_match = _PROMPT_RULE.search(prompt)
        if target is None or rule_match is None:
            return ()
        rule = OOD_RULE if rule_match.group(2) else TRAINING_RULE
        if rule == TRAINING_RULE and rule_match.group(1) != "10":
            return ()  # a rule gpbench does not generate
        cards_match = _PROMPT_CARDS.search(prompt)
        if cards_match is not None:
            ranks = _PROMPT_RANK.findall(cards_match.group(1))
        else:
            listed = extract_field(answer, "cards")
            ranks = [str(c) for c in listed] if isinstance(listed, list) else []
        if len(ranks) != 4:
            return ()
        try:
            values = hand_values(ranks, rule)
        except ValueError:
            return ()
        return (_content_key(values, int(target.group(1)), rule),)


class GeneralPointsText(GeneralPointsTask):
    """gp-l: GeneralPoints with the hand given as text."""

    id = "gp-l"
    version = 1
    modality = "text"
    description = "GeneralPoints, text: reach 24 with four cards (J/Q/K rule shift)"

    def build_instance(
        self,
        split: SplitSpec,
        seed: int,
        index: int,
        options: Mapping[str, Any],
        key: str,
        uid: str,
    ) -> Instance:
        """One gp-l instance: the paper's prompt as a single user message."""
        problem = self.problem(split, seed, index, options, key)
        formula = problem.pop("formula")
        target = problem["target"]
        face_values = FACE_VALUES_BY_RULE[problem["rule"]]
        prompt = render_text_prompt(problem["cards"], face_values, target)
        reference = {
            "cards": problem["cards"],
            "number": problem["values"],
            "formula": f"{formula}={target}",
        }
        return Instance(
            uid=uid,
            task=self.id,
            task_version=self.version,
            split=split.name,
            seed=seed,
            index=index,
            problem=problem,
            reference=reference,
            params=self.params_for(split, options),
            messages=[{"role": "user", "content": prompt}],
        )


_ANSWER_FORMULA = re.compile(r'"formula":\s*"[^"]*"')
_PROMPT_TARGET = re.compile(r"expert (\d{1,6}) points card game player")
_PROMPT_RULE = re.compile(
    r"'J', 'Q', and 'K' count as '(\d+)'(, '(\d+)', and '(\d+)' respectively)?"
)
_PROMPT_CARDS = re.compile(r"Cards:\s*\[([^\]\n]{0,200})\]")
_PROMPT_RANK = re.compile(r"(10|[2-9AJQK])")


def _content_key(values: Sequence[int], target: int, rule: str) -> str:
    return f"gp/values={','.join(str(v) for v in sorted(values))}/target={target}/rule={rule}"


def hand_values(cards: Sequence[str], rule: str) -> list[int]:
    """Values of rank strings under a rule id (``jqk=10`` or ``jqk=11/12/13``)."""
    return [card_value(rank_from_name(c), FACE_VALUES_BY_RULE[rule]) for c in cards]
