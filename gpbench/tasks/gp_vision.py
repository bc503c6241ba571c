"""GeneralPoints with images (gp-vl): the hand is shown as a rendered table scene.

Description:
    The same hands, rules and verifier as gp-l (:mod:`gpbench.tasks.general_points`); the cards
    are drawn by gpbench (:mod:`gpbench.generators.card_art`) and the answer's ``cards`` are
    checked first: a hand recognised wrongly is ``misrecognized_cards`` (-1.5) and nothing else
    is scored.

Splits:
    ``train``, ``id``, ``id-heldout`` (black suits, J/Q/K = 10), ``ood-rule`` (black suits,
    J/Q/K = 11/12/13, a face card forced), ``ood-color`` (red suits, J/Q/K = 10).

Rendering:
    The paper's layout: 1200x1200, casino green ``#35654d``, four 270x378 cards at x = 5, 302,
    599, 896, y = 411. Optional visual knobs (``-O background=... card_scale=... rotation=...
    jitter=... resolution=...``) are off by default and recorded in ``params`` and in the
    instance key, so a further visual shift is a declared variant of a split.

Version history:
    1: first release.

>>> from gpbench.tasks.registry import get_task
>>> task = get_task("gp-vl")
>>> inst = task.instance("ood-color", seed=42, index=3)
>>> inst.images, inst.messages[0]["content"][0]
(['ood-color/images/3.png'], {'type': 'image', 'path': 'ood-color/images/3.png'})
>>> task.verify(inst, task.reference_answer(inst)).correct
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gpbench.errors import ConfigError
from gpbench.generators.cards import BLACK_SUITS, RED_SUITS
from gpbench.records import Instance
from gpbench.tasks.general_points import (
    FACE_VALUES_BY_RULE,
    GP_OPTIONS,
    GP_TEXT_SPLITS,
    PAPER_EVAL_SEED,
    PAPER_EVAL_SIZE,
    TRAINING_RULE,
    GeneralPointsTask,
    face_message,
)
from gpbench.tasks.spec import OptionSpec, SplitSpec

# The paper's GP-VL prompt format (its code's template), kept byte for byte.
_VISION_PROMPT = """
[Task Description]
You are an expert {target} points card game player. You are observing these four cards in the image.
Note that {face_message}, and each card must be used once.
Your goal is to output a formula that evaluates to {target} using numbers from the cards and \
operators such as '+', '-', '*', '/', '(', ')', and '='.

[Output]
Your response should be a valid json file in the following format:
{{
  "cards": [x, y, z, w], where {face_message},
  "number": [a, b, c, d], where a, b, c, and d are the numbers on the cards,
  "formula": 'an equation that equals {target}',
}}

"""

VISION_TRAIN_SIZE = 1_000
"""gp-vl's default training file: one 1200x1200 PNG per instance (~40 KB), so fewer than gp-l's."""

GP_VISION_SPLITS: dict[str, SplitSpec] = {
    **{
        name: SplitSpec(
            spec.name,
            spec.description.replace("J/Q/K", "black suits, J/Q/K", 1)
            if "J/Q/K" in spec.description
            else spec.description + "; black suits",
            VISION_TRAIN_SIZE if name == "train" else spec.paper_size,
            spec.paper_seed,
            {**spec.params, "suits": list(BLACK_SUITS)},
        )
        for name, spec in GP_TEXT_SPLITS.items()
    },
    "ood-color": SplitSpec(
        "ood-color",
        "colour shift: red suits (hearts, diamonds), J/Q/K=10",
        PAPER_EVAL_SIZE,
        PAPER_EVAL_SEED,
        {"rule": TRAINING_RULE, "force_face": False, "heldout": "any", "suits": list(RED_SUITS)},
    ),
}

GP_VISION_OPTIONS: dict[str, OptionSpec] = {
    **GP_OPTIONS,
    **{
        o.name: o
        for o in (
            OptionSpec("background", "str", "#35654d", "table colour (paper: casino green)"),
            OptionSpec("card_scale", "float", 1.0, "card size factor about each card's centre"),
            OptionSpec("rotation", "float", 0.0, "max absolute rotation per card, degrees"),
            OptionSpec("jitter", "int", 0, "max absolute offset per card, pixels"),
            OptionSpec("resolution", "int", 1200, "side of the square image, pixels"),
        )
    },
}


def render_vision_prompt(target: int, face_values: tuple[int, int, int]) -> str:
    """The paper's GP-VL text prompt (the image comes first in the same user turn)."""
    return _VISION_PROMPT.format(target=target, face_message=face_message(face_values))


class GeneralPointsVision(GeneralPointsTask):
    """gp-vl: GeneralPoints with the hand shown as an image."""

    id = "gp-vl"
    version = 1
    modality = "vision"
    description = "GeneralPoints, image: reach 24 from a rendered hand (rule and colour shifts)"
    splits = GP_VISION_SPLITS
    options = GP_VISION_OPTIONS
    checks_cards = True
    reports_recognition = True

    def build_instance(
        self,
        split: SplitSpec,
        seed: int,
        index: int,
        options: Mapping[str, Any],
        key: str,
        uid: str,
    ) -> Instance:
        """One gp-vl instance: image part first, then the paper's VL prompt."""
        self.scene_style(options)  # bad visual options fail here, before anything is written
        problem = self.problem(split, seed, index, options)
        formula = problem.pop("formula")
        target = problem["target"]
        image_path = f"{split.name}/images/{index}.png"
        prompt = render_vision_prompt(target, FACE_VALUES_BY_RULE[problem["rule"]])
        return Instance(
            uid=uid,
            task=self.id,
            task_version=self.version,
            split=split.name,
            seed=seed,
            index=index,
            problem=problem,
            reference={
                "cards": problem["cards"],
                "number": problem["values"],
                "formula": f"{formula}={target}",
            },
            params=self.params_for(split, options),
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "path": image_path},
                        {"type": "text", "text": prompt},
                    ],
                }
            ],
            images=[image_path],
        )

    def reference_answer(self, instance: Instance) -> str:
        """The reference as strict JSON, the format the paper's VL prompt asks for.

        Unlike gp-l's (Python-style card names and a trailing comma, which the paper's formula
        regex still reads), the cards must come through ``json.loads``: the paper's fallback
        regex reads them as one string, which is never the hand, so reference mode would judge
        a Python-style answer ``misrecognized_cards``.
        """
        ref = instance.reference
        return (
            "{\n"
            f'  "cards": {json.dumps(ref["cards"])},\n'
            f'  "number": {json.dumps(ref["number"])},\n'
            f'  "formula": {json.dumps(ref["formula"])}\n'
            "}"
        )

    def scene_style(self, options: Mapping[str, Any]) -> Any:
        """The renderer's style for these options (validated)."""
        from gpbench.generators.card_art import SceneStyle

        if not 64 <= int(options["resolution"]) <= 4096:
            raise ConfigError(f"option resolution must be in 64..4096, got {options['resolution']}")
        try:
            return SceneStyle(
                background=str(options["background"]),
                card_scale=float(options["card_scale"]),
                rotation_deg=float(options["rotation"]),
                jitter_px=int(options["jitter"]),
            )
        except ValueError as exc:
            raise ConfigError(f"invalid visual option for {self.id}: {exc}") from None

    def images(self, instance: Instance) -> list[Any]:
        """The table scene, rendered from the instance's hand and visual parameters."""
        from gpbench.generators.card_art import render_scene

        options = {name: instance.params.get(name, o.default) for name, o in self.options.items()}
        style = self.scene_style(options)
        p = instance.problem
        image = render_scene(p["cards"], p["suits"], style, jitter_key=instance.uid)
        size = int(options["resolution"])
        if image.size != (size, size):
            from PIL import Image

            image = image.resize((size, size), Image.Resampling.LANCZOS)
        return [image]

    def describe(self, instance: Instance) -> str:
        """The hand in text: ranks with suits, values under the rule, a reference formula."""
        p = instance.problem
        hand = " ".join(f"{c}{s}" for c, s in zip(p["cards"], p["suits"], strict=True))
        return (
            f"{self.id} {instance.split} seed={instance.seed} index={instance.index}: {hand}  "
            f"values {p['values']} ({p['rule']}), e.g. {instance.reference['formula']}"
        )
