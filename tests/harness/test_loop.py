"""The rollout loop: a bounded set of live episodes, work pulled lazily, results independent of it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pytest

from gpbench.generators.rng import content_hash
from gpbench.harness.backends import Completion, Request, Sampling, create_backend
from gpbench.harness.loop import (
    LoopProgress,
    LoopStats,
    TurnRecord,
    request_seed,
    rollout,
)
from gpbench.records import Episode, Instance
from gpbench.serialization import to_json
from gpbench.tasks.registry import get_task


def _play(
    live_episodes: int, work: list[tuple[Instance, int]]
) -> tuple[list[Episode], list[int], LoopStats]:
    task = get_task("gp-l")
    backend = create_backend("scripted", "reference:0.5")
    episodes: list[Episode] = []
    sizes: list[int] = []
    generate = backend.generate

    def counting(requests: list[Request], sampling: Sampling) -> list[Completion]:
        sizes.append(len(requests))
        return generate(requests, sampling)

    backend.generate = counting  # type: ignore[method-assign]
    stats = rollout(
        task,
        work,
        backend,
        Sampling(),
        budget=5,
        run_seed=7,
        on_episode=episodes.append,
        live_episodes=live_episodes,
    )
    return episodes, sizes, stats


def _work(n: int, samples: int = 2) -> list[tuple[Instance, int]]:
    task = get_task("gp-l")
    return [(i, s) for i in task.dataset("ood-rule", 3, n) for s in range(samples)]


def test_results_do_not_depend_on_how_many_episodes_are_live() -> None:
    work = _work(12)
    wide, wide_sizes, _ = _play(1024, work)
    narrow, narrow_sizes, stats = _play(5, work)
    by_id = {(e.uid, e.sample): to_json(e) for e in wide}
    assert {(e.uid, e.sample): to_json(e) for e in narrow} == by_id
    assert len(by_id) == 24
    # The scripted backend answers wrong 50% of the time, so revisions happen...
    assert any(len(e.turns) > 1 for e in wide)
    # ...and a wide window sends each turn of every episode in one call, a narrow one never more
    # than its window, yet every request is sent exactly once.
    assert len(wide_sizes) == max(len(e.turns) for e in wide)
    assert max(narrow_sizes) <= 5
    assert sum(narrow_sizes) == sum(wide_sizes) == sum(len(e.turns) for e in wide)
    assert stats.requests == sum(narrow_sizes) and stats.backend_calls == len(narrow_sizes)


def test_work_is_pulled_only_as_room_frees_up() -> None:
    work = _work(10, samples=1)
    pulled: list[int] = []
    in_flight: list[int] = []
    finished: list[Episode] = []

    def lazily() -> Iterator[tuple[Instance, int]]:
        for position, item in enumerate(work):
            pulled.append(position)
            # Never more than the window started and not yet finished.
            in_flight.append(len(pulled) - len(finished))
            yield item

    task = get_task("gp-l")
    rollout(
        task,
        lazily(),
        create_backend("scripted", "reference:0.5"),
        Sampling(),
        budget=5,
        on_episode=finished.append,
        live_episodes=3,
    )
    assert pulled == list(range(10)) and len(finished) == 10
    assert max(in_flight) <= 3


def test_a_window_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="live_episodes"):
        _play(0, _work(1))


def test_a_rollout_leaves_the_garbage_collector_as_it_found_it() -> None:
    # A library shares the interpreter with torch or vLLM: it must not retune the collector.
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    rollout(
        get_task("gp-l"),
        _work(2, samples=1),
        create_backend("scripted", "reference:0.0"),
        Sampling(),
        budget=1,
        on_episode=lambda episode: seen.append(gc.get_threshold()),
    )
    assert seen == [before, before]


@pytest.mark.parametrize(
    "identity", [(0, "abc", 0, 0), (7, "e948080ab951cdb0", 2, 4), (1, "ü", 0, 1)]
)
def test_request_seeds_are_the_first_31_bits_of_the_content_hash(
    identity: tuple[int, str, int, int],
) -> None:
    run_seed, uid, sample, turn = identity
    text = f"sampling/{run_seed}/{uid}/{sample}/{turn}"
    assert request_seed(*identity) == int(content_hash(text, 8), 16) & 0x7FFFFFFF


def _recording(
    work: list[tuple[Instance, int]], stop_after_calls: int | None = None
) -> tuple[list[Episode], list[TurnRecord], list[LoopProgress]]:
    """A rollout that keeps its episodes, in-flight turns and progress events; it stops (as a
    kill would) when the backend is called for the ``stop_after_calls + 1``-th time."""
    task = get_task("gp-l")
    backend = create_backend("scripted", "reference:0.6")
    episodes: list[Episode] = []
    records: list[TurnRecord] = []
    events: list[LoopProgress] = []
    generate = backend.generate
    calls = {"n": 0}

    def stopping(requests: list[Request], sampling: Sampling) -> list[Completion]:
        if stop_after_calls is not None and calls["n"] == stop_after_calls:
            raise KeyboardInterrupt
        calls["n"] += 1
        return generate(requests, sampling)

    backend.generate = stopping  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):
        rollout(
            task,
            work,
            backend,
            Sampling(),
            budget=5,
            run_seed=3,
            on_episode=episodes.append,
            on_turns=records.extend,
            on_progress=events.append,
        )
    return episodes, records, events


def test_in_flight_turns_are_reported_after_every_call_and_replay_to_the_same_episodes() -> None:
    work = _work(16, samples=1)
    whole, _, _ = _recording(work)
    assert any(len(e.turns) > 2 for e in whole)
    finished, records, _ = _recording(work, stop_after_calls=2)
    done = {(e.uid, e.sample) for e in finished}
    assert records and not done >= {(r.uid, r.sample) for r in records}
    # Every answered turn of an unfinished episode was handed over, in turn order.
    resume: dict[tuple[str, int], list[Completion]] = {}
    for record in records:
        pair = (record.uid, record.sample)
        if pair not in done:
            assert record.turn == len(resume.setdefault(pair, []))
            resume[pair].append(record.completion)
    assert all(len(answers) == 2 for answers in resume.values())
    recorded = sum(len(answers) for answers in resume.values())
    # Resuming: the unfinished episodes replay their answers and go on from the next turn.
    task = get_task("gp-l")
    backend = create_backend("scripted", "reference:0.6")
    rest: list[Episode] = []
    stats = rollout(
        task,
        [(i, s) for i, s in work if (i.uid, s) not in done],
        backend,
        Sampling(),
        budget=5,
        run_seed=3,
        on_episode=rest.append,
        resume=resume,
    )
    assert not resume  # consumed
    by_id = {(e.uid, e.sample): to_json(e) for e in whole}
    assert {(e.uid, e.sample): to_json(e) for e in [*finished, *rest]} == by_id
    # Nothing recorded is asked again: only the turns after the recorded ones.
    assert stats.requests == sum(len(e.turns) for e in rest) - recorded


def test_progress_is_reported_before_and_after_every_call() -> None:
    work = _work(6, samples=1)
    episodes, _, events = _recording(work)
    calls = max(len(e.turns) for e in episodes)
    assert [e.turn for e in events] == [t for t in range(1, calls + 1) for _ in (0, 1)]
    before, after = events[0], events[1]
    assert (before.requests_done, before.requests_total) == (0, 6)
    assert (after.requests_done, after.requests_total, after.requests_answered) == (6, 6, 6)
    # The bound on requests left: the rest of every live episode's budget.
    assert before.attempts_left == 6 * 5 and before.episodes_live == 6
    assert after.attempts_left == 4 * after.episodes_live
    assert after.turns_in_flight == after.episodes_live
    assert events[-1].episodes_finished == 6 and events[-1].episodes_live == 0
    assert events[-1].attempts_left == 0


def test_a_resumed_episode_that_its_replay_ends_is_closed_without_a_request() -> None:
    task = get_task("gp-l")
    [instance] = list(task.dataset("ood-rule", 3, 1))
    answer = Completion(task.reference_answer(instance), "stop", None, None, 0.5)
    episodes: list[Episode] = []
    backend = create_backend("scripted", "constant:never asked")
    stats = rollout(
        task,
        [(instance, 0)],
        backend,
        Sampling(),
        budget=5,
        on_episode=episodes.append,
        resume={(instance.uid, 0): [answer]},
    )
    assert stats.requests == 0
    [episode] = episodes
    assert episode.correct and episode.turns[0]["latency_s"] == 0.5
