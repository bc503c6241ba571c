"""The report's gallery: chosen episodes with their scene, the model's attempts and the feedback.

Scenes are re-rendered from each episode's instance key by its task's
:meth:`~gpbench.tasks.spec.TaskSpec.debug_views` (no model, no stored images): the table of cards
(gp-vl), the route map and the view where the episode ended (V-IRL). Episodes are picked
round-robin across checkpoint x task x split groups and, within a group, across outcomes
(failures flagged as memorization first, then each failure status, then solved episodes), so the
gallery's first pages show every kind of answer.

Every episode is listed, but only the first ``scenes`` in that order carry their scene: scenes are
the bulk of the page's bytes (tens of kB each), so they are bounded and later episodes are text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gpbench.errors import GpbenchError
from gpbench.records import Episode
from gpbench.reports.groups import Group
from gpbench.tasks.registry import get_task

T = TypeVar("T")

THUMBNAIL_PX = 420
"""Longest side of gallery images: large enough to read the cards, small enough to embed."""
RESPONSE_CHARS = 1200
"""Responses longer than this are shortened in the gallery (the run folder keeps them whole)."""


@dataclass(frozen=True)
class GalleryImage:
    """An image of the gallery: PNG bytes and what it shows."""

    caption: str
    png: bytes


@dataclass(frozen=True)
class GalleryAttempt:
    """One attempt as the gallery shows it."""

    attempt: int
    decision_point: int
    response: str
    status: str
    correct: bool
    reward: float
    feedback: str
    flags: list[str]
    output_truncated: bool


@dataclass(frozen=True)
class GalleryItem:
    """One episode of the gallery.

    Attributes:
        series, checkpoint, task, split, uid, index, sample: where it comes from.
        correct, stop_reason: how it ended.
        multi_decision: the task has several decision points (V-IRL).
        statuses: every status its attempts received; flags: every flag they carried.
        problem: the instance described in text.
        images: the re-rendered scene (none for text GeneralPoints).
        attempts: the attempts in order.
        note: why no scene could be rendered, when that happened.
        return_: the episode's return (its attempts' rewards plus any budget penalty).
        scene_left_out: the task has a scene but it was not embedded (past the scene bound).
    """

    series: str
    checkpoint: str
    task: str
    split: str
    uid: str
    index: int
    sample: int
    correct: bool
    stop_reason: str
    statuses: list[str]
    flags: list[str]
    problem: str
    multi_decision: bool = False
    images: list[GalleryImage] = field(default_factory=list)
    attempts: list[GalleryAttempt] = field(default_factory=list)
    note: str = ""
    return_: float = 0.0
    scene_left_out: bool = False

    @property
    def final_status(self) -> str:
        """The last attempt's status, or how the episode stopped when it has no attempt."""
        return self.attempts[-1].status if self.attempts else self.stop_reason


def choose_episodes(groups: Sequence[Group], limit: int) -> list[tuple[Group, Episode]]:
    """Up to ``limit`` episodes, round-robin over groups and, within each, over outcomes."""
    if limit <= 0:
        return []
    queues = []
    for group in groups:
        buckets: dict[str, list[Episode]] = {}
        for episode in sorted(group.episodes, key=lambda e: (e.index, e.sample)):
            buckets.setdefault(_outcome(episode, group.memorization_flags), []).append(episode)
        ordered = sorted(buckets, key=_outcome_rank)
        queues.append([(group, e) for e in _round_robin([buckets[b] for b in ordered])])
    return _round_robin(queues)[:limit]


def _outcome(episode: Episode, memorization_flags: Iterable[str]) -> str:
    if episode.correct:
        return "solved"
    flagged = [f for f in memorization_flags if f in episode.flags]
    if flagged:
        return f"flag:{flagged[0]}"
    last = episode.turns[-1]["verdict"]["status"] if episode.turns else episode.stop_reason
    return f"status:{last}"


def _outcome_rank(outcome: str) -> tuple[int, str]:
    rank = 0 if outcome.startswith("flag:") else 2 if outcome == "solved" else 1
    return rank, outcome


def _round_robin(queues: Sequence[Sequence[T]]) -> list[T]:
    out: list[T] = []
    depth = max((len(q) for q in queues), default=0)
    for i in range(depth):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def gallery_items(
    picks: Sequence[tuple[Group, Episode]],
    progress: Callable[[int, int], None] | None = None,
    scenes: int | None = None,
) -> list[GalleryItem]:
    """The gallery entries of the chosen episodes; scenes rendered for the first ``scenes``.

    ``scenes=None`` renders every scene.
    """
    items = []
    for number, (group, episode) in enumerate(picks, start=1):
        with_scene = scenes is None or number <= scenes
        items.append(gallery_item(group, episode, scene=with_scene))
        if progress is not None:
            progress(number, len(picks))
    return items


def gallery_item(group: Group, episode: Episode, scene: bool = True) -> GalleryItem:
    """One gallery entry: the instance re-generated from its key, its scene, the attempts.

    With ``scene=False`` the instance is still re-generated (its text description is cheap) but
    no image is rendered.
    """
    task = get_task(f"{episode.task}@{episode.task_version}")
    attempts = [_attempt(turn) for turn in episode.turns]

    def item(
        problem: str = "",
        images: list[GalleryImage] | None = None,
        note: str = "",
        left_out: bool = False,
    ) -> GalleryItem:
        return GalleryItem(
            series=group.series,
            checkpoint=group.checkpoint.name,
            task=episode.task,
            split=episode.split,
            uid=episode.uid,
            index=episode.index,
            sample=episode.sample,
            correct=episode.correct,
            stop_reason=episode.stop_reason,
            statuses=sorted({a.status for a in attempts}),
            flags=sorted({f for a in attempts for f in a.flags}),
            problem=problem,
            multi_decision=task.multi_decision,
            images=images or [],
            attempts=attempts,
            note=note,
            return_=float(episode.return_),
            scene_left_out=left_out,
        )

    try:
        instance = task.instance(episode.split, episode.seed, episode.index, group.options or {})
    except GpbenchError as exc:
        return item(note=f"instance not re-generated: {exc}")
    if instance.uid != episode.uid:
        if group.options is None:
            return item(note="instance not re-generated: the run did not record its task options")
        return item(note="instance not re-generated: the run's options do not reproduce its uid")
    if not scene:
        return item(
            task.describe(instance), left_out=_has_scene(episode.task, episode.task_version)
        )
    last_point = attempts[-1].decision_point if attempts else 0
    views = task.debug_views(instance, point=last_point, max_px=THUMBNAIL_PX)
    return item(task.describe(instance), [GalleryImage(v.caption, v.png) for v in views])


@functools.cache
def _has_scene(task_id: str, version: int) -> bool:
    """Whether the task's episodes have a scene at all (text GeneralPoints has none).

    Tasks declare no such flag, so one instance of the task's first split is rendered once.
    """
    task = get_task(f"{task_id}@{version}")
    split = next(iter(task.splits.values()))
    instance = task.instance(split.name, split.paper_seed, 0)
    return bool(task.debug_views(instance, max_px=16))


def _attempt(turn: dict[str, Any]) -> GalleryAttempt:
    verdict = turn["verdict"]
    response = str(turn.get("response", ""))
    if len(response) > RESPONSE_CHARS:
        response = response[:RESPONSE_CHARS] + f" [... {len(response) - RESPONSE_CHARS} more]"
    return GalleryAttempt(
        attempt=int(turn.get("attempt", 0)),
        decision_point=int(turn.get("decision_point", 0)),
        response=response,
        status=str(verdict.get("status", "")),
        correct=bool(verdict.get("correct")),
        reward=float(turn.get("reward", verdict.get("reward", 0.0))),
        feedback=str(verdict.get("feedback", "")),
        flags=[str(f) for f in verdict.get("flags", [])],
        output_truncated=bool(turn.get("output_truncated")),
    )
