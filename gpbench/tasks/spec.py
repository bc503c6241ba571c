"""The contract every task implements: splits, options, and index-addressable instances."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from gpbench.errors import ConfigError, UnknownSplitError, did_you_mean
from gpbench.generators.rng import content_hash
from gpbench.records import Instance, Verdict
from gpbench.tasks.episode import EpisodeEnv, SingleDecisionEpisode


@dataclass(frozen=True)
class OptionSpec:
    """A generation option beyond the paper's configuration (off or at the paper's value by default).

    Attributes:
        name: option name as given on the command line (``--option name=value``).
        kind: ``int``, ``float``, ``str``, ``bool`` or ``choice``.
        default: the paper's value.
        help: one line for ``gpbench tasks``.
        choices: allowed values for ``choice`` options.
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    def parse(self, raw: Any) -> Any:
        """Convert a command-line string (or a Python value) to the option's type, validated."""
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"option {self.name} expects true or false, got {raw!r}")
        if self.kind == "int":
            if isinstance(raw, bool):
                raise ConfigError(f"option {self.name} expects an integer, got {raw!r}")
            try:
                return int(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"option {self.name} expects an integer, got {raw!r}") from None
        if self.kind == "float":
            if isinstance(raw, bool):
                raise ConfigError(f"option {self.name} expects a number, got {raw!r}")
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"option {self.name} expects a number, got {raw!r}") from None
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"option {self.name} expects a finite number, got {raw!r}")
            return value
        text = str(raw)
        if self.kind == "str":
            return text
        if text not in self.choices:
            raise ConfigError(
                f"option {self.name} expects one of {', '.join(self.choices)}, got {text!r}"
                f"{did_you_mean(text, self.choices)}"
            )
        return text


@dataclass(frozen=True)
class SplitSpec:
    """A declared region of a task's parameter space with its own seed namespace.

    Attributes:
        name: split name shared across tasks (``train``, ``id``, ``id-heldout``, ``ood-rule``, ...).
        description: one line for ``gpbench tasks``.
        paper_size: instances written by ``gpbench generate`` without ``-n`` (the paper's size).
        paper_seed: the instance seed used without ``--seed`` (the paper's seed).
        params: the split's generation parameters; copied into every instance's ``params``.
    """

    name: str
    description: str
    paper_size: int
    paper_seed: int
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DebugView:
    """An image that shows people an episode (the report's gallery): a caption and PNG bytes."""

    caption: str
    png: bytes


def thumbnail_png(image: Any, max_px: int) -> bytes:
    """``image`` (a PIL image) shrunk to fit ``max_px`` on its longest side, as PNG bytes."""
    from PIL import Image

    from gpbench.generators.imaging import scene_png

    thumb = image.copy()
    thumb.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    return scene_png(thumb, compress_level=9)


def split_spec(name: str, description: str, size: int, seed: int, **params: Any) -> SplitSpec:
    """A :class:`SplitSpec` with its parameters as keyword arguments (for the task tables)."""
    return SplitSpec(name, description, size, seed, params)


class TaskSpec(abc.ABC):
    """One task: its id, version, modality, splits, options and instance generator.

    Subclasses set the class attributes and implement :meth:`build_instance`.
    """

    id: str
    version: int
    modality: str  # "text" or "vision"
    description: str
    splits: Mapping[str, SplitSpec]
    options: Mapping[str, OptionSpec] = {}

    def split(self, name: str) -> SplitSpec:
        """The split called ``name``; an unknown name raises with a did-you-mean hint."""
        try:
            return self.splits[name]
        except KeyError:
            raise UnknownSplitError(
                f"unknown split {name!r} for {self.id}{did_you_mean(name, self.splits)} "
                f"(choices: {', '.join(self.splits)})"
            ) from None

    def resolve_options(self, raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validated options with defaults filled in, in declaration order."""
        raw = dict(raw or {})
        unknown = [k for k in raw if k not in self.options]
        if unknown:
            name = unknown[0]
            choices = ", ".join(self.options) or "none"
            raise ConfigError(
                f"unknown option {name!r} for {self.id}{did_you_mean(name, self.options)} "
                f"(options: {choices})"
            )
        return {
            name: spec.parse(raw[name]) if name in raw else spec.default
            for name, spec in self.options.items()
        }

    def variant(self, options: Mapping[str, Any]) -> str:
        """The options that differ from the paper's, as ``[k=v,...]`` (empty for the paper's)."""
        changed = [
            f"{name}={_option_text(value)}"
            for name, value in options.items()
            if value != self.options[name].default
        ]
        return f"[{','.join(changed)}]" if changed else ""

    def instance_key(self, split: str, seed: int, index: int, options: Mapping[str, Any]) -> str:
        """``"{task}-v{version}/{split}{variant}/{seed}/{index}"``: what an instance is a function of."""
        return f"{self.key_prefix(split, seed, options)}{index}"

    def key_prefix(self, split: str, seed: int, options: Mapping[str, Any]) -> str:
        """The instance keys' common start for a split, seed and options (the index follows)."""
        return f"{self.id}-v{self.version}/{split}{self.variant(options)}/{seed}/"

    def instance(
        self,
        split: str,
        seed: int,
        index: int,
        options: Mapping[str, Any] | None = None,
    ) -> Instance:
        """The instance at ``index`` of ``split`` for ``seed``: a pure function of its arguments."""
        spec = self.split(split)
        resolved = self.resolve_options(options)
        if index < 0:
            raise ConfigError(f"index must be >= 0, got {index}")
        key = self.instance_key(split, seed, index, resolved)
        return self.build_instance(spec, seed, index, resolved, key, content_hash(key))

    def dataset(
        self,
        split: str,
        seed: int,
        n: int,
        options: Mapping[str, Any] | None = None,
        start: int = 0,
    ) -> SplitDataset:
        """A lazy, index-addressable sequence of ``n`` instances starting at ``start``."""
        self.split(split)
        if n < 0 or start < 0:
            raise ConfigError(f"n and start must be >= 0, got n={n}, start={start}")
        return SplitDataset(self, split, seed, n, self.resolve_options(options), start)

    @abc.abstractmethod
    def build_instance(
        self,
        split: SplitSpec,
        seed: int,
        index: int,
        options: Mapping[str, Any],
        key: str,
        uid: str,
    ) -> Instance:
        """Generate one instance; ``key`` is its canonical key and ``uid`` the key's hash."""

    @abc.abstractmethod
    def content_key(self, instance: Instance) -> str:
        """Canonical content of an instance, for leak checks and overlap reports.

        Two instances with equal content keys pose the same problem (e.g. the same value multiset,
        target and rule for GeneralPoints), whatever their split, seed or index.
        """

    max_attempts: int = 1
    """The paper's verification budget: evaluated attempts per episode (or per decision point)."""
    budget_penalty: float = -1.0
    """Reward added when the budget runs out without success."""
    verifier_modes: tuple[str, ...] = ("gpbench",)
    episode_class: type[EpisodeEnv] = SingleDecisionEpisode
    """The episode protocol :meth:`episode` builds (multi-decision tasks bring their own)."""
    multi_decision: bool = False
    """Several decision points per episode (V-IRL): budgets apply per point."""
    rl_lambda: float
    """The paper's lambda in its RL compute formula, ``6 N (D_init + D_rl) + 2 N lambda D_rl``
    (sampling cost per training token; GeneralPoints 6, V-IRL 5.1)."""
    memorization_flags: Mapping[str, tuple[str, ...]] = {}
    """The verdict flags that say an answer replays the training distribution, each with the
    splits on which it marks a failure the training distribution explains (reports count them
    there), in report order."""
    reports_recognition: bool = False
    """Answers also state what the model perceived (gp-vl's cards), checked first; reports give
    the share of attempts that perceived it right."""
    overlap_family: str
    """Tasks whose problems can be the same training item share a family (gp-l and gp-vl pose
    the same hands): an overlap check reads training lines of the family and skips the rest."""

    def overlap_keys(self, instance: Instance) -> tuple[str, ...]:
        """The keys under which a training file holds ``instance``'s problem, the one that
        identifies it across instance and chat lines first (by default its content key)."""
        return (self.content_key(instance),)

    def chat_overlap_keys(self, prompt: str, answer: str) -> tuple[str, ...]:
        """The keys of the problem a chat training example poses (its prompt and answer text),
        as :meth:`overlap_keys` gives them; empty when it poses no problem of the family.

        Every task reads its own prompts (the conformance check asks it to); by default none."""
        return ()

    @abc.abstractmethod
    def answer_statuses(self, mode: str = "gpbench") -> tuple[str, ...]:
        """Every status one answer can get from the verifier in ``mode``, in its check order
        (the success status first). Budget exhaustion is an episode's stop reason, not one."""

    @abc.abstractmethod
    def verify(
        self,
        instance: Instance,
        answer: str,
        *,
        mode: str = "gpbench",
        output_truncated: bool = False,
    ) -> Verdict:
        """Judge one answer; total over any string (model output never makes this raise)."""

    def episode(
        self,
        instance: Instance,
        *,
        budget: int | None = None,
        mode: str = "gpbench",
        start: int = 0,
    ) -> EpisodeEnv:
        """A fresh episode on ``instance`` (the protocol of :mod:`gpbench.tasks.episode`).

        ``start`` positions it at that decision point, with the true history before it in its
        prompt: the single-turn items of lm-eval and of the training recipes.
        """
        if not 0 <= start < self.decision_points(instance):
            raise ValueError(f"{instance.uid} has no decision point {start}")
        env = self.episode_class(
            self,
            instance,
            budget=budget or self.max_attempts,
            penalty=self.budget_penalty,
            mode=mode,
        )
        env.reset()
        if start:
            env.decision_point = start
            env.messages = env.point_messages()
        return env

    def headline_metric(self, split: str) -> str:
        """The paper's headline metric on ``split``, a summary key: ``success`` (the share of
        solved episodes) unless the task says otherwise (``per_step_accuracy``)."""
        return "success"

    def decision_points(self, instance: Instance) -> int:
        """Decision points in an episode on ``instance`` (1 for one-decision tasks)."""
        return 1

    def reference_answers(self, instance: Instance) -> list[str]:
        """The answers of a perfect agent, one per decision point, in order."""
        return [self.reference_answer(instance)]

    @abc.abstractmethod
    def reference_answer(self, instance: Instance) -> str:
        """The reference solution written as a model answer in the task's response format."""

    @abc.abstractmethod
    def wrong_answer(self, instance: Instance, reference: str, point: int = 0) -> str:
        """A plausible wrong answer for tests and the scripted backend: shaped like
        ``reference`` (the reference answer at decision point ``point``) but judged incorrect.

        It must be a pure function of its arguments, so scripted runs stay reproducible."""

    def images(self, instance: Instance) -> list[Any]:
        """The instance's images (PIL images), re-rendered from its key; empty for text tasks.

        ``instance.images`` holds their relative paths; the pixels are a pure function of the
        instance, so they are rendered on demand and never stored inside the record.
        """
        return []

    def debug_views(
        self, instance: Instance, *, point: int = 0, max_px: int = 420
    ) -> list[DebugView]:
        """Images that show people an episode on ``instance`` that ended at decision point
        ``point``, each at most ``max_px`` on its longest side (default: the instance's image
        at that point; none for text tasks)."""
        images = self.images(instance)
        if not images:
            return []
        return [DebugView("scene", thumbnail_png(images[min(point, len(images) - 1)], max_px))]

    def describe(self, instance: Instance) -> str:
        """A short human-readable description of the instance (for ``gpbench show``)."""
        return self.reference_answer(instance)

    def region_problems(self, instance: Instance) -> list[str]:
        """Ways an instance falls outside its split's declared region (empty when inside)."""
        return []

    def reference_problems(self, instance: Instance) -> list[str]:
        """Ways the reference answer fails to verify as correct (empty when it verifies)."""
        verdict = self.verify(instance, self.reference_answer(instance))
        if not verdict.correct:
            return [f"reference answer verifies as {verdict.status}: {verdict.feedback}"]
        return []

    def params_for(self, split: SplitSpec, options: Mapping[str, Any]) -> dict[str, Any]:
        """The ``params`` recorded in each instance: the split's parameters plus the options."""
        return {**split.params, **options}


class SplitDataset(Sequence[Instance]):
    """``n`` instances of one split, generated on access (so sharding and resuming are trivial)."""

    def __init__(
        self,
        task: TaskSpec,
        split: str,
        seed: int,
        n: int,
        options: Mapping[str, Any],
        start: int = 0,
    ) -> None:
        self.task = task
        self.split = split
        self.seed = seed
        self.n = n
        self.options = dict(options)
        self.start = start

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> Instance: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Instance]: ...
    def __getitem__(self, i: int | slice) -> Instance | Sequence[Instance]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} instances")
        return self.task.instance(self.split, self.seed, self.start + i, self.options)

    def __iter__(self) -> Iterator[Instance]:
        return self.select(range(self.n))

    def select(self, positions: Iterable[int]) -> Iterator[Instance]:
        """The instances at ``positions`` (each in ``[0, n)``), generated one at a time on demand.

        >>> from gpbench.tasks.registry import get_task
        >>> [i.index for i in get_task("gp-l").dataset("id", 42, 10).select(range(1, 10, 4))]
        [1, 5, 9]
        """
        # The split and options were validated when the dataset was made: build directly, with
        # the key computed exactly as TaskSpec.instance does.
        task, spec = self.task, self.task.split(self.split)
        prefix = task.key_prefix(self.split, self.seed, self.options)
        for position in positions:
            if not 0 <= position < self.n:
                raise IndexError(f"index {position} out of range for {self.n} instances")
            index = self.start + position
            key = f"{prefix}{index}"  # = task.instance_key(split, seed, index, options)
            yield task.build_instance(spec, self.seed, index, self.options, key, content_hash(key))


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
