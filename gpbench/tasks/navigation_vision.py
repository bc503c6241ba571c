"""V-IRL navigation with street views (virl-vl).

Description:
    The routes, decision points, actions and rewards of virl-l
    (:mod:`gpbench.tasks.navigation`); at each decision point the current observation is an
    image: a 2x2 grid of street views (front, right / back, left) drawn by
    :mod:`gpbench.generators.street_views`, in which landmarks appear as storefronts with signs
    and intersections as side streets. The text prompt is the paper's VL variant; past
    observations appear in the history only as ``street view grid`` placeholders, so what is
    around the agent must be read from the image.

Splits:
    As virl-l; ``ood-spatial`` cities also look different (facade palettes, sign styles, sky and
    road colours from a disjoint style family).

Scoring:
    As virl-l, plus detection from the model's ``"current observation"``: whether it reports an
    intersection exactly when there is one, and the share of visible landmarks it names.

Version history:
    1: first release.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpbench.generators.cities import City
from gpbench.generators.routes import DecisionPoint
from gpbench.records import Instance, Verdict
from gpbench.tasks.episode import EpisodeEnv, Message
from gpbench.tasks.navigation import (
    VIRL_SPLITS,
    NavigationEpisode,
    NavigationText,
    action_space,
    verify_action,
)
from gpbench.tasks.spec import SplitSpec

# The paper's VL prompt, byte for byte (its typo "stree tviews" included: released checkpoints
# were trained on it).
_VISION_PROMPT = """
[Task Description]
You are an expert in navigation. You will receive a sequence of instructions to follow while \
observing your surrounding stree tviews. You
are also provided with your observation and action history in text. Your goal is to first \
analyze the instruction and identify the next sentence to be executed.\x20
Then, you need to provide the action to be taken based on the current observation and instruction.

[Instruction]
{instruction}

[Observation format]
You observe a 2x2 grid of streetview images with the following headings:
[front, right
 back, left]
You need to identify if any of the landmarks in the instruction are visible in the street view grid.

[Action space]
{action_space}

[Observations and actions sequence]
{history}

[Output]
{{
  "current observation": latest observation from the street view grid,
  "current instruction": analyze the full instruction and identify the sentence to be executed,
  "action": the action to be taken chosen from the action space,
}}
"""


VISION_TRAIN_SIZE = 100
"""virl-vl's default training file: ~25 view images per route, so far fewer routes than virl-l."""


def image_path(split: str, index: int, step: int) -> str:
    """Where the view image of decision point ``step`` goes, relative to the split file."""
    return f"{split}/images/{index}/{step}.png"


def render_vision_prompt(problem: Mapping[str, Any], point_index: int) -> str:
    """The VL prompt at a decision point: history with image placeholders."""
    vocabulary = problem["vocabulary"]
    lines = []
    for i in range(1, point_index + 2):
        lines.append(f"O_{i}: street view grid")
        action = problem["points"][i - 1][f"action_{vocabulary}"] if i <= point_index else ""
        lines.append(f"A_{i}: {action}".rstrip())
    return _VISION_PROMPT.format(
        instruction="\n".join(problem["instructions"]),
        action_space=action_space(vocabulary),
        history="\n".join(lines),
    )


def vision_messages(instance: Instance, point_index: int) -> list[Message]:
    """The user turn at a decision point: the view image first, then the text."""
    return [
        {
            "role": "user",
            "content": [
                {"type": "image", "path": image_path(instance.split, instance.index, point_index)},
                {"type": "text", "text": render_vision_prompt(instance.problem, point_index)},
            ],
        }
    ]


class NavigationVision(NavigationText):
    """virl-vl: V-IRL navigation with rendered street views."""

    id = "virl-vl"
    version = 1
    modality = "vision"
    description = (
        "V-IRL navigation in synthetic cities, street views (rule and visual/spatial shifts)"
    )
    splits: Mapping[str, SplitSpec] = {
        name: SplitSpec(
            spec.name,
            spec.description,
            VISION_TRAIN_SIZE if name == "train" else spec.paper_size,
            spec.paper_seed,
            spec.params,
        )
        for name, spec in VIRL_SPLITS.items()
    }

    def build_instance(
        self,
        split: SplitSpec,
        seed: int,
        index: int,
        options: Mapping[str, Any],
        key: str,
        uid: str,
    ) -> Instance:
        """The virl-l route with one view image per decision point."""
        base = super().build_instance(split, seed, index, options, key, uid)
        steps = len(base.problem["points"])
        draft = Instance(
            uid=base.uid,
            task=self.id,
            task_version=self.version,
            split=base.split,
            seed=base.seed,
            index=base.index,
            problem=base.problem,
            reference=base.reference,
            params=base.params,
            messages=[],
            images=[image_path(split.name, index, step) for step in range(steps)],
        )
        return Instance(**{**draft.__dict__, "messages": vision_messages(draft, 0)})

    def images(self, instance: Instance) -> list[Any]:
        """The 2x2 view grid at every decision point, in order."""
        from gpbench.generators.street_views import render_views, style_for

        city = City.from_json(instance.problem["city"])
        style = style_for(city)
        return [
            render_views(city, DecisionPoint.from_json(point), style)
            for point in instance.problem["points"]
        ]

    @property
    def episode_class(self) -> type[EpisodeEnv]:  # type: ignore[override]
        """Navigation episodes whose prompts carry the current view image."""
        return VisionNavigationEpisode

    def verify(
        self,
        instance: Instance,
        answer: str,
        *,
        mode: str = "gpbench",
        output_truncated: bool = False,
    ) -> Verdict:
        """Judge an answer at the first decision point, with detection scores."""
        return verify_with_detection(instance.problem, 0, answer, output_truncated, mode)


def verify_with_detection(
    problem: Mapping[str, Any],
    point_index: int,
    answer: str,
    output_truncated: bool,
    mode: str = "gpbench",
) -> Verdict:
    """virl-l's verdict in ``mode`` plus what the model's observation detected (in
    ``extracted``; read leniently in both modes, as a diagnostic, never a reward)."""
    verdict = verify_action(
        problem, point_index, answer, output_truncated=output_truncated, mode=mode
    )
    from gpbench.tasks.answers import extract_field

    point = problem["points"][point_index]
    observation = extract_field(answer, "current observation")
    text = observation.lower() if isinstance(observation, str) else ""
    names = [lm["name"] for lm in point["landmarks"]]
    named = sum(1 for name in names if name.lower() in text)
    detection = {
        "intersection_correct": ("intersection" in text) == bool(point["is_intersection"]),
        "landmarks_visible": len(names),
        "landmarks_named": named,
    }
    return Verdict(
        verdict.correct,
        verdict.status,
        verdict.statuses,
        verdict.reward,
        verdict.feedback,
        {**verdict.extracted, "detection": detection},
        verdict.flags,
    )


class VisionNavigationEpisode(NavigationEpisode):
    """Prompts carry the current decision point's view image."""

    def first_messages(self) -> list[Message]:
        """The first decision point's view and prompt."""
        return vision_messages(self.instance, 0)

    def point_messages(self) -> list[Message]:
        """The current decision point's view and prompt, with the history so far."""
        return vision_messages(self.instance, self.decision_point)

    def judge(self, answer: str, *, output_truncated: bool) -> Verdict:
        """Verify the action and score detection at the current point."""
        return verify_with_detection(
            self.instance.problem, self.decision_point, answer, output_truncated, self.mode
        )
