"""The batched multi-turn rollout: every live episode goes to the backend once per turn.

The loop owns the conversation mechanics; tasks own their meaning (through the episode protocol
of :mod:`gpbench.tasks.episode`). Each request's sampling seed derives from (run seed, uid,
sample, turn), so batching, resuming and sharding never change which seed a request gets.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from gpbench.harness.backends import Backend, Request, Sampling
from gpbench.harness.episodes import close_episode, turn_from_step
from gpbench.records import Episode, Instance, Turn, build_record
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
    on_progress: Callable[[int], None] | None = None,
    live_episodes: int = LIVE_EPISODES,
) -> LoopStats:
    """Run one episode per ``(instance, sample)`` in ``work``; report each as it finishes.

    ``work`` is consumed lazily: at most ``live_episodes`` episodes are in flight. Each round
    tops the live set up from ``work``, then sends every live episode's next turn to the backend
    (in calls of at most :data:`MAX_REQUESTS_PER_CALL`) and closes the episodes that ended, so a
    new episode's first turn can share a call with an older one's revision. Seeds depend on each
    request's identity, never on the round it falls in.
    """
    if live_episodes < 1:
        raise ValueError(f"live_episodes must be >= 1, got {live_episodes}")
    with _collect_young_rarely():
        start = time.perf_counter()
        pending = iter(work)
        live: list[_Live] = []
        more = True
        calls = requests_sent = 0
        backend_seconds = 0.0
        finished = 0
        while True:
            if more and len(live) < live_episodes:
                room = live_episodes - len(live)
                live.extend(
                    _Live(instance, sample, task.episode(instance, budget=budget, mode=mode))
                    for instance, sample in islice(pending, room)
                )
                more = len(live) == live_episodes  # fewer than asked for: the work is used up
            if not live:
                break
            for offset in range(0, len(live), MAX_REQUESTS_PER_CALL):
                chunk = live[offset : offset + MAX_REQUESTS_PER_CALL]
                requests = [_request(task, item, run_seed) for item in chunk]
                t0 = time.perf_counter()
                completions = backend.generate(requests, sampling)
                backend_seconds += time.perf_counter() - t0
                calls += 1
                requests_sent += len(requests)
                if len(completions) != len(requests):
                    raise RuntimeError(
                        f"backend {backend.name} returned {len(completions)} completions "
                        f"for {len(requests)} requests"
                    )
                for item, completion in zip(chunk, completions, strict=True):
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
            still: list[_Live] = []
            for item in live:
                if item.env.terminated:
                    on_episode(close_episode(item.env, item.turns, sample=item.sample))
                    finished += 1
                else:
                    still.append(item)
            live = still
            if on_progress is not None:
                on_progress(finished)
        return LoopStats(calls, requests_sent, backend_seconds, time.perf_counter() - start)


YOUNG_GC_THRESHOLD = 50_000
"""The garbage collector's first-generation threshold during a rollout (CPython's default: 700)."""


@contextlib.contextmanager
def _collect_young_rarely() -> Iterator[None]:
    """Raise the collector's first threshold for the rollout, then restore it.

    Each episode allocates ~100 short-lived containers (messages, verdicts, records) and lives
    for a round of up to 1,024 episodes. At the default threshold every live episode's objects
    survive two young collections, reach the oldest generation and trigger full collections over
    the whole heap: a quarter of a scripted run's time. At 50,000 they mostly die young. Cyclic
    garbage waits at most that many allocations longer; a higher threshold set by the caller is
    kept, and a disabled collector stays disabled (``gc.disable()``, or a threshold of 0).
    """
    old = gc.get_threshold()
    if old[0]:  # 0 means automatic collection is off: leave it off
        gc.set_threshold(max(old[0], YOUNG_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


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
    return build_record(Request, (messages, images, seed, meta))
