"""The batched multi-turn rollout: every live episode goes to the backend once per turn.

The loop owns the conversation mechanics; tasks own their meaning (through the episode protocol
of :mod:`gpbench.tasks.episode`). Each request's sampling seed derives from (run seed, uid,
sample, turn), so batching, resuming and sharding never change which seed a request gets.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from gpbench.harness.backends import Backend, Completion, Request, Sampling
from gpbench.harness.transcripts import close_episode, turn_from_step
from gpbench.records import Episode, Instance, Turn
from gpbench.tasks.episode import EpisodeEnv
from gpbench.tasks.spec import TaskSpec

MAX_REQUESTS_PER_CALL = 1024
"""Upper bound on one backend call."""

LIVE_EPISODES = MAX_REQUESTS_PER_CALL
"""Episodes in flight at once: memory stays bounded however large the run, and every round of
the loop is one full backend call while work remains."""


def request_seed(run_seed: int, uid: str, sample: int, turn: int) -> int:
    """The sampling seed of one request: a pure function of its identity, never of batching.

    The first 31 bits of ``content_hash(f"sampling/{run_seed}/{uid}/{sample}/{turn}")`` (read
    from the digest's bytes rather than its hex text).
    """
    digest = hashlib.sha256(f"sampling/{run_seed}/{uid}/{sample}/{turn}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class TurnRecord:
    """One answered turn of an episode still in flight: what a resume replays.

    Attributes:
        uid, index: the instance.
        sample: which sample of the instance.
        turn: the turn's 0-based position in the episode (the ``turn`` of its request seed).
        completion: the backend's answer.
    """

    uid: str
    index: int
    sample: int
    turn: int
    completion: Completion


@dataclass(frozen=True)
class LoopProgress:
    """Where a rollout stands; reported before and after every backend call.

    Attributes:
        turn: the rollout's round (1-based): one turn of every episode in flight.
        requests_done: requests of this turn answered so far.
        requests_total: requests this turn sends.
        requests_answered: requests answered since the rollout started.
        tokens: tokens generated since the rollout started (0 where the backend counts none).
        episodes_finished: episodes finished since the rollout started.
        episodes_live: episodes in flight.
        turns_in_flight: turns already answered of the episodes in flight.
        attempts_left: the most requests the episodes in flight can still make (one-decision
            tasks: each may use the rest of its budget); None where decision points are open.
        elapsed_s: seconds since the rollout started.
    """

    turn: int
    requests_done: int
    requests_total: int
    requests_answered: int
    tokens: int
    episodes_finished: int
    episodes_live: int
    turns_in_flight: int
    attempts_left: int | None
    elapsed_s: float


@dataclass
class _Live:
    instance: Instance
    sample: int
    env: EpisodeEnv
    turns: list[Turn] = field(default_factory=list)
    images: dict[str, Any] | None = None


@dataclass(frozen=True)
class LoopStats:
    """What one rollout cost: backend calls, requests and the time spent inside the backend."""

    backend_calls: int
    requests: int
    backend_seconds: float
    total_seconds: float


Resume = MutableMapping[tuple[str, int], list[Completion]]
"""Answered turns of interrupted episodes by ``(uid, sample)``, in turn order."""


def rollout(
    task: TaskSpec,
    work: Iterable[tuple[Instance, int]],
    backend: Backend,
    sampling: Sampling,
    *,
    budget: int,
    mode: str = "gpbench",
    run_seed: int = 0,
    on_episode: Callable[[Episode], None],
    on_turns: Callable[[list[TurnRecord]], None] | None = None,
    resume: Resume | None = None,
    on_progress: Callable[[LoopProgress], None] | None = None,
    live_episodes: int = LIVE_EPISODES,
) -> LoopStats:
    """Run one episode per ``(instance, sample)`` in ``work``; report each as it finishes.

    ``work`` is consumed lazily: at most ``live_episodes`` episodes are in flight. Each round
    tops the live set up from ``work``, then sends every live episode's next turn to the backend
    (in calls of at most :data:`MAX_REQUESTS_PER_CALL`). After each call, the episodes that
    ended go to ``on_episode`` and the turns just answered of the others to ``on_turns`` (so a
    caller can make them durable). An episode whose ``(uid, sample)`` is in ``resume`` first
    replays those answers through the task's episode protocol (the entry is consumed) and goes
    on from the next turn, so it ends as it would have without the interruption. Seeds depend on
    each request's identity, never on the round it falls in.
    """
    if live_episodes < 1:
        raise ValueError(f"live_episodes must be >= 1, got {live_episodes}")
    play = _Rollout(task, backend, sampling, budget, mode, run_seed, resume)
    play.on_episode = on_episode
    play.on_turns = on_turns
    play.on_progress = on_progress
    return play.run(work, live_episodes)


class _Rollout:
    """The state of one rollout: its episodes in flight and what they cost so far."""

    def __init__(
        self,
        task: TaskSpec,
        backend: Backend,
        sampling: Sampling,
        budget: int,
        mode: str,
        run_seed: int,
        resume: Resume | None,
    ) -> None:
        self.task, self.backend, self.sampling = task, backend, sampling
        self.budget, self.mode, self.run_seed = budget, mode, run_seed
        self.resume = resume
        self.on_episode: Callable[[Episode], None] = _ignore
        self.on_turns: Callable[[list[TurnRecord]], None] | None = None
        self.on_progress: Callable[[LoopProgress], None] | None = None
        self.calls = self.requests = self.tokens = self.finished = self.turn = 0
        self.backend_seconds = 0.0
        self.start = time.perf_counter()

    def run(self, work: Iterable[tuple[Instance, int]], live_episodes: int) -> LoopStats:
        pending = iter(work)
        live: list[_Live] = []
        more = True
        while True:
            if more and len(live) < live_episodes:
                more = self._top_up(pending, live, live_episodes)
            if not live:
                break
            self.turn += 1
            live = self._play_turn(live)
        return LoopStats(
            backend_calls=self.calls,
            requests=self.requests,
            backend_seconds=self.backend_seconds,
            total_seconds=time.perf_counter() - self.start,
        )

    def _top_up(
        self, pending: Iterator[tuple[Instance, int]], live: list[_Live], limit: int
    ) -> bool:
        """Start episodes until ``limit`` are live; False once the work is used up."""
        while len(live) < limit:
            room = limit - len(live)
            taken = 0
            for instance, sample in islice(pending, room):
                taken += 1
                item = self._start(instance, sample)
                if item.env.terminated:  # a resumed episode whose replay ended it
                    self._close(item)
                else:
                    live.append(item)
            if taken < room:
                return False
        return True

    def _start(self, instance: Instance, sample: int) -> _Live:
        env = self.task.episode(instance, budget=self.budget, mode=self.mode)
        item = _Live(instance, sample, env)
        recorded = self.resume.pop((instance.uid, sample), ()) if self.resume else ()
        for completion in recorded:
            if env.terminated:
                break
            _answer(item, completion)
        return item

    def _play_turn(self, live: list[_Live]) -> list[_Live]:
        """One turn of every live episode; returns those still in flight."""
        still: list[_Live] = []
        done = 0
        for offset in range(0, len(live), MAX_REQUESTS_PER_CALL):
            chunk = live[offset : offset + MAX_REQUESTS_PER_CALL]
            requests = [_request(self.task, item, self.run_seed) for item in chunk]
            self._progress(live, done)
            completions = self._generate(requests)
            records: list[TurnRecord] = []
            for item, completion in zip(chunk, completions, strict=True):
                _answer(item, completion)
                self.tokens += completion.completion_tokens or 0
                if item.env.terminated:
                    self._close(item)
                else:
                    still.append(item)
                    turn = len(item.turns) - 1
                    instance = item.instance
                    records.append(
                        TurnRecord(
                            uid=instance.uid,
                            index=instance.index,
                            sample=item.sample,
                            turn=turn,
                            completion=completion,
                        )
                    )
            if records and self.on_turns is not None:
                self.on_turns(records)
            done += len(chunk)
            self._progress(live, done)
        return still

    def _generate(self, requests: list[Request]) -> list[Completion]:
        t0 = time.perf_counter()
        completions = self.backend.generate(requests, self.sampling)
        self.backend_seconds += time.perf_counter() - t0
        self.calls += 1
        self.requests += len(requests)
        if len(completions) != len(requests):
            raise RuntimeError(
                f"backend {self.backend.name} returned {len(completions)} completions "
                f"for {len(requests)} requests"
            )
        return completions

    def _close(self, item: _Live) -> None:
        self.on_episode(close_episode(item.env, item.turns, sample=item.sample))
        self.finished += 1

    def _progress(self, live: list[_Live], done: int) -> None:
        if self.on_progress is None:
            return
        going = [item for item in live if not item.env.terminated]
        left = (
            None
            if self.task.multi_decision
            else sum(self.budget - item.env.attempt for item in going)
        )
        self.on_progress(
            LoopProgress(
                turn=self.turn,
                requests_done=done,
                requests_total=len(live),
                requests_answered=self.requests,
                tokens=self.tokens,
                episodes_finished=self.finished,
                episodes_live=len(going),
                turns_in_flight=sum(len(item.turns) for item in going),
                attempts_left=left,
                elapsed_s=time.perf_counter() - self.start,
            )
        )


def _ignore(episode: Episode) -> None:
    del episode


def _answer(item: _Live, completion: Completion) -> None:
    """Pass one answer to the episode and record the turn."""
    cut = completion.finish_reason == "length"
    step = item.env.step(completion.text, output_truncated=cut)
    item.turns.append(
        turn_from_step(
            step,
            completion.text,
            output_truncated=cut,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_s=completion.latency_s,
        )
    )


def _request(task: TaskSpec, item: _Live, run_seed: int) -> Request:
    messages = item.env.messages
    images = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            continue
        for part in content:
            if part.get("type") == "image":
                if item.images is None:
                    # Rendered once per episode, from the instance key: never stored in records.
                    item.images = dict(
                        zip(item.instance.images, task.images(item.instance), strict=True)
                    )
                images.append(item.images[part["path"]])
    meta = {
        "uid": item.instance.uid,
        "task": item.instance.task,
        "instance": item.instance,
        "decision_point": item.env.decision_point,
        "attempt": item.env.attempt + 1,
        "sample": item.sample,
    }
    turn = len(item.turns)
    seed = request_seed(run_seed, item.instance.uid, item.sample, turn)
    return Request(messages=messages, images=images, seed=seed, meta=meta)
