"""V-IRL navigation in synthetic cities, text (virl-l).

Description:
    Follow numbered instructions through a city, one action per decision point: ``forward()``,
    ``turn_direction(x)`` or ``stop()``. The paper used New York routes with Street View data,
    which cannot be redistributed; gpbench generates cities (:mod:`gpbench.generators.cities`)
    and routes (:mod:`gpbench.generators.routes`) following the paper's rules (docs/tasks.md §2).

Splits:
    ``train``, ``id`` and ``id-heldout`` draw routes in a fixed family of 20 training cities
    (grid and skewed-grid layouts); ``id`` is the paper's ID evaluation (same distribution as
    training), ``id-heldout`` only routes whose (city, start, destination) is in the held-out
    fifth that ``train`` never emits. ``ood-rule`` asks for relative turns (left, right, slightly
    left, slightly right) instead of compass words. ``ood-spatial`` uses unseen cities from a
    disjoint family (radial and irregular layouts, other block lengths, other landmark names),
    two routes per city like the VLN mini benchmark.

Episode:
    At each decision point the model sees the instructions, the action space and the
    observation/action history, and answers a JSON object with ``"current observation"``,
    ``"current instruction"`` and ``"action"``. A correct action advances (+1; the prompt is
    rebuilt with the new history); a wrong one is not executed (-1, or -1.5 when the model's
    observation also gets the intersection wrong) and the model retries with the feedback
    ``You failed this trial because ...``; 2 attempts per decision point, then the episode ends
    as a failure (-1). An answer with no readable action is ``unparseable`` (-1).

Verifier modes:
    ``gpbench`` (default) reads the answer leniently (any JSON-like object, case and spacing of
    the action normalised). ``reference`` is the paper code's scoring exactly
    (:func:`gpbench.tasks.paper_rules.score_navigation`): the action as ``json.loads`` or the
    paper's regex extracts it, compared with the true action as a string; -1.5 when
    ``intersection`` is in the model's observation but not in the true one or the other way
    round, else -1; its feedback text. The true observation is the point's landmark text, with
    ``; You observe an intersection`` at an intersection (as the prompt writes it). An answer
    with no action extracted is ``unparseable`` with the paper's reward.

Version history:
    1: first release.

>>> from gpbench.tasks.registry import get_task
>>> task = get_task("virl-l")
>>> inst = task.instance("ood-rule", seed=12, index=0)
>>> env = task.episode(inst)
>>> all(env.step(a).verdict.correct for a in task.reference_answers(inst))
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from gpbench.errors import ConfigError
from gpbench.generators.cities import City, generate_city
from gpbench.generators.rng import KeyedRng, content_hash
from gpbench.generators.routes import (
    RELATIVE_WORDS,
    DecisionPoint,
    Route,
    decision_points,
    sample_route,
)
from gpbench.records import Instance, Verdict
from gpbench.tasks import paper_rules
from gpbench.tasks.answers import extract_field, extract_object
from gpbench.tasks.episode import EpisodeEnv, Message
from gpbench.tasks.spec import DebugView, SplitSpec, TaskSpec, split_spec, thumbnail_png

COMPASS_WORDS = (
    "north",
    "northeast",
    "east",
    "southeast",
    "south",
    "southwest",
    "west",
    "northwest",
)
TRAIN_CITY_COUNT = 20
"""The fixed, finite family of training cities (``train``, ``id``, ``id-heldout``, ``ood-rule``)."""
ROUTES_PER_OOD_CITY = 2
HELDOUT_MODULUS = 5
"""One route in five (by a keyed hash of city, start and destination) is reserved for id-heldout."""
PAPER_EVAL_SIZE = 48
PAPER_EVAL_SEED = 12
OOD_SPATIAL_SIZE = 18
TRAIN_SIZE = 1_000
MAX_ROUTE_DRAWS = 400
MAX_CITY_DRAWS = 8

REWARD_CORRECT = 1.0
REWARD_WRONG = -1.0
REWARD_WRONG_WITH_OBSERVATION = -1.5
REWARD_UNPARSEABLE = -1.0
REWARD_BUDGET_EXCEEDED = -1.0
ANSWER_STATUSES = ("correct_action", "wrong_action", "wrong_action_and_observation", "unparseable")
"""What one action can be judged, in check order (both verifier modes)."""
MODES = ("gpbench", "reference")

_PROMPT = """
[Task Description]
You are an expert in navigation. You will receive a sequence of instructions to follow. You
are also provided with your observation and action history in text. Your goal is to first \
analyze the instruction and identify the next sentence to be executed.\x20
Then, you need to provide the action to be taken based on the current observation and instruction.

[Instruction]
{instruction}

[Action space]
{action_space}

[Observations and actions sequence]
{history}

[Output]
{{
  "current observation": latest observation from the observation sequence,
  "current instruction": analyze the full instruction and identify the sentence to be executed,
  "action": the action to be taken chosen from the action space,
}}
"""

_INSTRUCTION_BLOCK = re.compile(r"\[Instruction\]\n(.*?)\n\s*\n\[", re.DOTALL)


def instruction_key(instructions: str) -> str:
    """The overlap key of a route by its instruction text (whitespace-insensitive)."""
    return f"virl-instructions/{' '.join(instructions.split())}"


_ANSWER_ACTION = re.compile(r'"action":\s*"([^"]*)"')
_ACTION = re.compile(
    r"^\s*(?:(forward|stop)\s*\(\s*\)|turn_direction\s*\(\s*['\"]?\s*([a-z ]+?)\s*['\"]?\s*\))\s*$"
)


def action_space(vocabulary: str) -> str:
    """The ``[Action space]`` block for a turn vocabulary."""
    words = COMPASS_WORDS if vocabulary == "absolute" else RELATIVE_WORDS
    return (
        '"forward()": indicates moving forward one step\n'
        f'"turn_direction(x)": indicates turning to face direction x, where x is one of {list(words)}\n'
        '"stop()": indicates the navigation is finished'
    )


def observation_line(number: int, point: Mapping[str, Any]) -> str:
    """``O_i: {landmarks}; {You observe an intersection}`` (docs/tasks.md §2)."""
    intersection = "You observe an intersection" if point["is_intersection"] else ""
    return f"O_{number}: {point['observation']}; {intersection}".rstrip()


def render_prompt(problem: Mapping[str, Any], point_index: int) -> str:
    """The prompt at a decision point, with the true history of the points before it."""
    vocabulary = problem["vocabulary"]
    lines = []
    for i, point in enumerate(problem["points"][: point_index + 1], start=1):
        lines.append(observation_line(i, point))
        action = point[f"action_{vocabulary}"] if i <= point_index else ""
        lines.append(f"A_{i}: {action}".rstrip())
    return _PROMPT.format(
        instruction="\n".join(problem["instructions"]),
        action_space=action_space(vocabulary),
        history="\n".join(lines),
    )


def normalize_action(text: str) -> str | None:
    """``" Turn_Direction('East') "`` -> ``"turn_direction(east)"``; None if not an action."""
    match = _ACTION.match(text.strip().lower()[:200])
    if match is None:
        return None
    if match.group(1):
        return f"{match.group(1)}()"
    return f"turn_direction({' '.join(match.group(2).split())})"


VIRL_SPLITS: dict[str, SplitSpec] = {
    s.name: s
    for s in (
        split_spec(
            "train",
            "training cities, compass turns, never an id-heldout route",
            TRAIN_SIZE,
            0,
            family="train",
            vocabulary="absolute",
            heldout="exclude",
        ),
        split_spec(
            "id",
            "the paper's ID evaluation: training cities and route distribution",
            PAPER_EVAL_SIZE,
            PAPER_EVAL_SEED,
            family="train",
            vocabulary="absolute",
            heldout="any",
        ),
        split_spec(
            "id-heldout",
            "training cities, only routes that train never emits",
            PAPER_EVAL_SIZE,
            PAPER_EVAL_SEED,
            family="train",
            vocabulary="absolute",
            heldout="only",
        ),
        split_spec(
            "ood-rule",
            "rule shift: relative turns (left, right, slightly left/right)",
            PAPER_EVAL_SIZE,
            PAPER_EVAL_SEED,
            family="train",
            vocabulary="relative",
            heldout="any",
        ),
        split_spec(
            "ood-spatial",
            "unseen cities: other layouts, block lengths and landmark names",
            OOD_SPATIAL_SIZE,
            PAPER_EVAL_SEED,
            family="ood",
            vocabulary="absolute",
            heldout="any",
        ),
    )
}


@lru_cache(maxsize=64)
def _city(key: str, family: str) -> City:
    return generate_city(key, family)


def route_is_heldout(city_id: str, route: Route) -> bool:
    """Whether a route (by city, start and destination) is reserved for ``id-heldout``."""
    key = f"virl/heldout/{city_id}/{route.start_landmark}/{route.destination_landmark}"
    return int(content_hash(key, 8), 16) % HELDOUT_MODULUS == 0


class NavigationText(TaskSpec):
    """virl-l: V-IRL navigation with text observations."""

    id = "virl-l"
    version = 1
    modality = "text"
    description = (
        "V-IRL navigation in synthetic cities, text (relative-turn and unseen-city shifts)"
    )
    splits: Mapping[str, SplitSpec] = VIRL_SPLITS
    max_attempts = 2
    budget_penalty = REWARD_BUDGET_EXCEEDED
    verifier_modes = MODES
    multi_decision = True
    rl_lambda = 5.1
    memorization_flags: Mapping[str, tuple[str, ...]] = {
        # Right under the training vocabulary, wrong where the rule changed to relative turns.
        "train_vocabulary_action": ("ood-rule",),
    }

    def answer_statuses(self, mode: str = "gpbench") -> tuple[str, ...]:
        """The statuses of one action (budget exhaustion ends episodes; it is no answer's).

        Reference mode can give each of them too (``unparseable`` where no action is extracted).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        return ANSWER_STATUSES

    def headline_metric(self, split: str) -> str:
        """The paper's metric: per-step accuracy, except success in unseen cities (ood-spatial).

        >>> [NavigationText().headline_metric(split) for split in ("ood-rule", "ood-spatial")]
        ['per_step_accuracy', 'success']
        """
        return "success" if split == "ood-spatial" else "per_step_accuracy"

    def decision_points(self, instance: Instance) -> int:
        """One per point of the route: start, turns, straight stretches, destination."""
        return len(instance.problem["points"])

    @property
    def episode_class(self) -> type[EpisodeEnv]:  # type: ignore[override]
        """Routes: one decision per point, the prompt rebuilt after each correct action."""
        return NavigationEpisode

    def city_key(
        self, split: SplitSpec, seed: int, index: int, rng: KeyedRng, redraw: int = 0
    ) -> str:
        """Training cities come from a fixed family; OOD cities are new for each pair of routes.

        ``redraw`` > 0 names the pair's next OOD city, drawn when the previous one offers no
        route that meets the split's constraints (a few generated cities have none).
        """
        if split.params["family"] == "train":
            return f"virl-city/train/{rng.below(TRAIN_CITY_COUNT)}"
        pair = f"virl-city/ood/{seed}/{index // ROUTES_PER_OOD_CITY}"
        return f"{pair}/redraw/{redraw}" if redraw else pair

    def build_instance(
        self,
        split: SplitSpec,
        seed: int,
        index: int,
        options: Mapping[str, Any],
        key: str,
        uid: str,
    ) -> Instance:
        """Draw a city and a route meeting the split's constraints, with its decision points.

        The draw is keyed without the task id, so virl-l and virl-vl hold the same routes at the
        same index (a text/vision pair on identical problems).
        """
        key = f"virl-v{self.version}/{key.split('/', 1)[1]}"
        rng = KeyedRng(key)
        family = str(split.params["family"])
        heldout = split.params["heldout"]
        found = None
        # The first city's draws keep their historical keys, so no existing instance moves;
        # a city without any qualifying route (OOD cities only: training cities are redrawn at
        # every draw) gives way to the pair's next one instead of failing the instance.
        for redraw in range(MAX_CITY_DRAWS):
            prefix = f"{key}/route" if redraw == 0 else f"{key}/redraw/{redraw}/route"
            for draw in range(MAX_ROUTE_DRAWS):
                city = _city(self.city_key(split, seed, index, rng, redraw), family)
                route = sample_route(city, f"{prefix}/{draw}")
                if route is None:
                    continue
                if heldout != "any" and route_is_heldout(city.id, route) != (heldout == "only"):
                    continue
                found = city, route
                break
            if found is not None:
                break
        if found is None:
            raise ConfigError(
                f"no route found for {key} in {MAX_CITY_DRAWS} cities of {MAX_ROUTE_DRAWS} draws"
            )
        city, route = found
        points = decision_points(city, route, f"{key}/points")
        vocabulary = str(split.params["vocabulary"])
        problem = {
            "city_id": city.id,
            "layout": city.layout,
            "family": family,
            "vocabulary": vocabulary,
            "instructions": list(route.instructions()),
            "actions": [p.action(vocabulary) for p in points],
            "route": route.to_json(),
            "points": [p.to_json() for p in points],
            "city": city.to_json(),
        }
        return Instance(
            uid=uid,
            task=self.id,
            task_version=self.version,
            split=split.name,
            seed=seed,
            index=index,
            problem=problem,
            reference={"actions": problem["actions"]},
            params=self.params_for(split, options),
            messages=[{"role": "user", "content": render_prompt(problem, 0)}],
        )

    def content_key(self, instance: Instance) -> str:
        """City and route endpoints: equal keys are the same navigation problem."""
        p = instance.problem
        route = p["route"]
        return f"virl/{p['city_id']}/{route['start_landmark']}/{route['destination_landmark']}"

    overlap_family = "virl"

    def overlap_keys(self, instance: Instance) -> tuple[str, ...]:
        """By its instruction text first (all a chat example holds), then its content key."""
        return (
            instruction_key("\n".join(instance.problem["instructions"])),
            self.content_key(instance),
        )

    def chat_overlap_keys(self, prompt: str, answer: str) -> tuple[str, ...]:
        """The route a chat example's ``[Instruction]`` block gives (it holds no city id; equal
        instructions mean the same route in practice)."""
        match = _INSTRUCTION_BLOCK.search(prompt)
        return (instruction_key(match.group(1)),) if match else ()

    def route_map(self, instance: Instance) -> Any:
        """The city map with the route and its decision points (for people, not the model)."""
        from gpbench.generators.street_views import render_route_map

        city = City.from_json(instance.problem["city"])
        route = Route.from_json(instance.problem["route"])
        points = [DecisionPoint.from_json(p) for p in instance.problem["points"]]
        return render_route_map(city, route, points)

    def debug_views(
        self, instance: Instance, *, point: int = 0, max_px: int = 420
    ) -> list[DebugView]:
        """The route map, then (vision) the view at the decision point where the episode ended."""
        views = [
            DebugView(
                "route map (for people; not shown to the model)",
                thumbnail_png(self.route_map(instance), max_px),
            )
        ]
        images = self.images(instance)
        if images:
            image = images[min(point, len(images) - 1)]
            views.append(
                DebugView(f"view at decision point {point + 1}", thumbnail_png(image, max_px))
            )
        return views

    def region_problems(self, instance: Instance) -> list[str]:
        """The city family, vocabulary and held-out membership match the split."""
        split = self.split(instance.split)
        p = instance.problem
        problems = []
        if p["family"] != split.params["family"] or not p["city_id"].startswith(p["family"]):
            problems.append(f"city {p['city_id']} is not from family {split.params['family']}")
        if p["vocabulary"] != split.params["vocabulary"]:
            problems.append(f"vocabulary {p['vocabulary']} != {split.params['vocabulary']}")
        heldout = split.params["heldout"]
        if heldout != "any":
            held = route_is_heldout(p["city_id"], Route.from_json(p["route"]))
            if held != (heldout == "only"):
                problems.append(f"held-out membership {held} contradicts heldout={heldout}")
        words = COMPASS_WORDS if p["vocabulary"] == "absolute" else RELATIVE_WORDS
        for action in p["actions"]:
            if action.startswith("turn_direction(") and action[15:-1] not in words:
                problems.append(f"action {action} outside the {p['vocabulary']} vocabulary")
        return problems

    def answer_at(self, instance: Instance, point_index: int) -> str:
        """The reference answer at a decision point, in the paper's response format."""
        p = instance.problem
        point = p["points"][point_index]
        observation = observation_line(point_index + 1, point).split(": ", 1)[1]
        leg = min(
            point["leg"] + (1 if point["kind"] in ("start", "turn") and point_index else 0),
            len(p["instructions"]) - 1,
        )
        return (
            "{\n"
            f'  "current observation": {json.dumps(observation)},\n'
            f'  "current instruction": {json.dumps(p["instructions"][leg])},\n'
            f'  "action": "{p["actions"][point_index]}",\n'
            "}"
        )

    def reference_answer(self, instance: Instance) -> str:
        """The reference answer at the first decision point."""
        return self.answer_at(instance, 0)

    def reference_answers(self, instance: Instance) -> list[str]:
        """A perfect agent's answers, one per decision point."""
        return [self.answer_at(instance, i) for i in range(self.decision_points(instance))]

    def wrong_answer(self, instance: Instance, reference: str, point: int = 0) -> str:
        """The reference with its action replaced: ``forward()`` for ``stop()``, else ``stop()``.

        >>> from gpbench.tasks.registry import get_task
        >>> task = get_task("virl-l")
        >>> inst = task.instance("id", 42, 0)
        >>> task.wrong_answer(inst, '{"action": "stop()"}'), task.wrong_answer(inst, '"action": "x"')
        ('{"action": "forward()"}', '"action": "stop()"')
        """
        match = _ANSWER_ACTION.search(reference)
        if match is None:
            return "I do not know."
        action = "forward()" if match.group(1) == "stop()" else "stop()"
        return _ANSWER_ACTION.sub(f'"action": "{action}"', reference, count=1)

    def reference_problems(self, instance: Instance) -> list[str]:
        """The reference answers carry a whole episode to success."""
        env = self.episode(instance)
        for answer in self.reference_answers(instance):
            step = env.step(answer)
            if not step.verdict.correct:
                return [
                    f"reference answer at point {step.info['decision_point']} is {step.verdict.status}"
                ]
        return [] if env.stop_reason == "solved" else ["reference answers did not finish the route"]

    def verify(
        self,
        instance: Instance,
        answer: str,
        *,
        mode: str = "gpbench",
        output_truncated: bool = False,
    ) -> Verdict:
        """Judge an answer at the first decision point (see :func:`verify_action`)."""
        return verify_action(
            instance.problem, 0, answer, output_truncated=output_truncated, mode=mode
        )

    def describe(self, instance: Instance) -> str:
        """The route in text: city, endpoints, instructions and actions."""
        p = instance.problem
        route = p["route"]
        return (
            f"{self.id} {instance.split} seed={instance.seed} index={instance.index}: "
            f"{p['city_id']} ({p['layout']}), {route['start_landmark']} -> "
            f"{route['destination_landmark']}, {len(p['points'])} decision points\n"
            + "\n".join(p["instructions"])
            + "\nactions: "
            + ", ".join(p["actions"])
        )


def verify_action(
    problem: Mapping[str, Any],
    point_index: int,
    answer: str,
    *,
    output_truncated: bool = False,
    mode: str = "gpbench",
) -> Verdict:
    """Judge an answer at a decision point in a verifier mode. Total: any string gives a Verdict.

    Raises:
        ValueError: ``mode`` is not one of :data:`MODES`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    point = problem["points"][point_index]
    expected = problem["actions"][point_index]
    flags = ["output_truncated"] if output_truncated else []
    if mode == "reference":
        return _verify_reference(problem, point, expected, answer, flags)
    obj = extract_object(answer)
    raw_action: Any = obj.get("action") if obj is not None else extract_field(answer, "action")
    raw_observation: Any = (
        obj.get("current observation")
        if obj is not None
        else extract_field(answer, "current observation")
    )
    action = normalize_action(raw_action) if isinstance(raw_action, str) else None
    extracted: dict[str, Any] = {"action": action, "expected": expected}
    if action is None:
        return Verdict(
            False,
            "unparseable",
            ["unparseable"],
            REWARD_UNPARSEABLE,
            "You failed this trial because no action from the action space was found in your answer.",
            extracted,
            flags,
        )
    if problem["vocabulary"] == "relative" and action[15:-1] in COMPASS_WORDS:
        flags.append("train_vocabulary_action")
    if action == expected:
        return Verdict(
            True, "correct_action", ["correct_action"], REWARD_CORRECT, "", extracted, flags
        )
    reasons = ["your action is not correct"]
    claims = isinstance(raw_observation, str) and "intersection" in raw_observation.lower()
    extracted["observed_intersection"] = claims
    if isinstance(raw_observation, str) and claims != bool(point["is_intersection"]):
        reasons.append(
            "you observed an intersection where there is none"
            if claims
            else "you missed the intersection you are at"
        )
        return Verdict(
            False,
            "wrong_action_and_observation",
            ["wrong_action_and_observation"],
            REWARD_WRONG_WITH_OBSERVATION,
            f"You failed this trial because {', '.join(reasons)}.",
            extracted,
            flags,
        )
    return Verdict(
        False,
        "wrong_action",
        ["wrong_action"],
        REWARD_WRONG,
        f"You failed this trial because {', '.join(reasons)}.",
        extracted,
        flags,
    )


def true_observation(point: Mapping[str, Any]) -> str:
    """The true observation text the paper's scoring compares with: the landmark text, then
    ``; You observe an intersection`` at an intersection (as the prompt's ``O_i`` line has it)."""
    if point["is_intersection"]:
        return f"{point['observation']}; You observe an intersection"
    return str(point["observation"])


def _verify_reference(
    problem: Mapping[str, Any],
    point: Mapping[str, Any],
    expected: str,
    answer: str,
    flags: list[str],
) -> Verdict:
    """``mode="reference"``: the paper code's reward and feedback at one decision point."""
    score = paper_rules.score_navigation(answer, expected, true_observation(point))
    extracted: dict[str, Any] = {**score.extracted_dict(), "expected": expected}
    action = extracted["action"]
    if action == paper_rules.NOT_EXTRACTED:
        extracted["action"] = None  # nothing was found: read as no answer, as in default mode
    if score.correct:
        return Verdict(
            True, "correct_action", ["correct_action"], score.reward, "", extracted, flags
        )
    if (
        problem["vocabulary"] == "relative"
        and action.startswith("turn_direction(")
        and action[15:-1] in COMPASS_WORDS
    ):
        flags.append("train_vocabulary_action")
    statuses = ["unparseable"] if extracted["action"] is None else []
    if score.reward == paper_rules.REWARD_WRONG_INTERSECTION:
        statuses.append("wrong_action_and_observation")
    statuses = statuses or ["wrong_action"]
    return Verdict(
        False, statuses[0], statuses, score.reward, score.revision_message, extracted, flags
    )


class NavigationEpisode(EpisodeEnv):
    """A route: one decision per point, the prompt rebuilt with history after a correct action."""

    def judge(self, answer: str, *, output_truncated: bool) -> Verdict:
        """Verify the action at the current decision point."""
        return verify_action(
            self.instance.problem,
            self.decision_point,
            answer,
            output_truncated=output_truncated,
            mode=self.mode,
        )

    def advance(self) -> bool:
        """Solved once the last point (the destination's ``stop()``) is answered correctly."""
        return self.decision_point + 1 >= len(self.instance.problem["points"])

    def point_messages(self) -> list[Message]:
        """The paper rebuilds the prompt with the new history after each correct action."""
        return [
            {"role": "user", "content": render_prompt(self.instance.problem, self.decision_point)}
        ]
