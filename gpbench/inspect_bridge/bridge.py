"""The dataset, solver and scorer that make a gpbench task split an inspect ``Task``.

Description:
    * :func:`samples` builds one inspect ``Sample`` per instance from gpbench's generator. Its
      input is the instance's prompt as chat messages (images as ``ContentImage`` PNG data URIs,
      rendered from the instance), its target the reference answers (one per decision point),
      its id the instance uid, and its metadata the instance key and everything needed to
      rebuild the instance (task, split, seed, index, options) plus the verifier mode.
    * :func:`revision_loop` is the solver: it drives the task's own episode protocol
      (``task.episode(instance)``, then ``env.step(answer)`` until it terminates). After a
      failed attempt the episode's next prompt holds the verifier's feedback as a new user turn;
      after a correct V-IRL action it is the next decision point's prompt. Budgets are the
      task's (GeneralPoints 5 attempts, V-IRL 2 per decision point) unless ``budget`` is given.
      The finished episode is kept in the sample's store as gpbench's ``Episode`` record.
    * :func:`gpbench_scorer` scores that episode: ``success`` (solved), ``first_try_success``
      (solved without a failed attempt), ``return`` (the episode's summed reward, budget
      penalty included), ``attempts``, and ``status_<s>``: how many attempts got each verifier
      status (summed over samples by the ``total`` metric, like the status counts of
      ``gpbench eval``). The Episode record goes into the score's metadata.

    Nothing here knows a particular task: prompts, answers, images, statuses and the episode
    protocol all come from the task's API.
"""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gpbench.errors import ConfigError, MissingDependencyError
from gpbench.harness.transcripts import close_episode, score_responses, turn_from_step
from gpbench.records import Episode, Instance, Turn
from gpbench.serialization import to_dict
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

try:
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import (
        ChatMessage,
        ChatMessageAssistant,
        ChatMessageUser,
        Content,
        ContentImage,
        ContentText,
    )
    from inspect_ai.scorer import (
        Metric,
        SampleScore,
        Score,
        Scorer,
        Target,
        mean,
        metric,
        scorer,
        stderr,
    )
    from inspect_ai.solver import Generate, Solver, TaskState, solver
except ImportError:
    raise MissingDependencyError("inspect_ai", "inspect", "gpbench's inspect_ai tasks") from None

EPISODE_KEY = "gpbench_episode"
"""Where the solver leaves the finished Episode record (a dict) in the sample's store."""


def statuses(task: TaskSpec) -> tuple[str, ...]:
    """Every status an answer to ``task`` can get in any verifier mode, default mode's first
    (the score's keys must not depend on the mode chosen at run time)."""
    found = dict.fromkeys(task.answer_statuses("gpbench"))
    for mode in task.verifier_modes:
        found.update(dict.fromkeys(task.answer_statuses(mode)))
    return tuple(found)


def score_keys(task: TaskSpec) -> list[str]:
    """The keys of every score :func:`gpbench_scorer` gives for ``task``, in display order."""
    return [
        "success",
        "first_try_success",
        "return",
        "attempts",
        *(f"status_{s}" for s in statuses(task)),
    ]


@metric
def total() -> Metric:
    """The sum of a score over the samples (the status counts)."""

    def compute(scores: list[SampleScore]) -> float:
        return float(sum(item.score.as_float() for item in scores))

    return compute


def _metrics(task: TaskSpec) -> dict[str, list[Metric]]:
    rates: dict[str, list[Metric]] = {
        "success": [mean(), stderr()],
        "first_try_success": [mean(), stderr()],
        "return": [mean()],
        "attempts": [mean()],
    }
    return rates | {f"status_{s}": [total()] for s in statuses(task)}


def check_mode(task: TaskSpec, mode: str) -> str:
    """``mode`` if it is one of ``task``'s verifier modes, else a one-line error."""
    if mode not in task.verifier_modes:
        raise ConfigError(
            f"mode {mode!r} is not a verifier mode of {task.id}; pass -T mode=one of "
            f"{', '.join(task.verifier_modes)}"
        )
    return mode


def png_data_uri(image: Any) -> str:
    """A PIL image as a ``data:image/png;base64,...`` URI (what ``ContentImage`` takes)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class InstanceImages:
    """An instance's images as data URIs, looked up by their relative path.

    The task renders all of an instance's images at once; each is encoded only when a prompt
    shows it (a V-IRL route has a view per decision point, and its first prompt shows one).
    """

    def __init__(self, task: TaskSpec, instance: Instance) -> None:
        self._task = task
        self._instance = instance
        self._images: list[Any] | None = None
        self._uris: dict[str, str] = {}

    def uri(self, path: str) -> str:
        """The data URI of the image at ``path`` (one of ``instance.images``)."""
        if path not in self._uris:
            if self._images is None:  # text tasks never get here, so they render nothing
                self._images = self._task.images(self._instance)
            self._uris[path] = png_data_uri(self._images[self._instance.images.index(path)])
        return self._uris[path]


def chat_messages(
    messages: Sequence[Mapping[str, Any]], images: InstanceImages
) -> list[ChatMessage]:
    """gpbench's chat messages as inspect's: text stays byte for byte, image parts become
    ``ContentImage`` at their place."""
    chat: list[ChatMessage] = []
    for message in messages:
        raw = message["content"]
        content: str | list[Content]
        if isinstance(raw, str):
            content = raw
        else:
            content = [
                ContentImage(image=images.uri(str(part["path"])))
                if part["type"] == "image"
                else ContentText(text=str(part["text"]))
                for part in raw
            ]
        if message["role"] == "assistant":
            chat.append(ChatMessageAssistant(content=content))
        elif message["role"] == "user":
            chat.append(ChatMessageUser(content=content))
        else:  # gpbench prompts hold user and assistant turns only
            raise ValueError(f"unexpected chat role {message['role']!r} in a gpbench prompt")
    return chat


def sample_metadata(
    task: TaskSpec, instance: Instance, options: Mapping[str, Any], mode: str
) -> dict[str, Any]:
    """What a sample carries: the instance key and uid, how to rebuild it, the verifier mode."""
    return {
        "instance_key": task.instance_key(instance.split, instance.seed, instance.index, options),
        "uid": instance.uid,
        "task": f"{task.id}@{task.version}",
        "split": instance.split,
        "seed": instance.seed,
        "index": instance.index,
        "options": dict(options),
        "mode": mode,
        "decision_points": task.decision_points(instance),
    }


def samples(
    task_name: str,
    split: str,
    seed: int,
    n: int,
    options: Mapping[str, Any],
    mode: str = "gpbench",
) -> MemoryDataset:
    """The inspect dataset of ``n`` instances of a split (one sample per instance)."""
    task = get_task(task_name)
    check_mode(task, mode)
    if n < 1:
        raise ConfigError(f"n must be >= 1 (inspect needs a sample), got {n}")
    dataset = task.dataset(split, seed, n, options)
    items = []
    for instance in dataset:
        images = InstanceImages(task, instance)
        items.append(
            Sample(
                input=chat_messages(task.episode(instance, mode=mode).messages, images),
                target=task.reference_answers(instance),
                id=instance.uid,
                metadata=sample_metadata(task, instance, dataset.options, mode),
            )
        )
    return MemoryDataset(items, name=f"{task.id}/{split}")


@functools.lru_cache(maxsize=64)
def _instance(task_name: str, split: str, seed: int, index: int, options: str) -> Instance:
    return get_task(task_name).instance(split, seed, index, json.loads(options))


def instance_of(metadata: Mapping[str, Any]) -> Instance:
    """The instance a sample was made from, rebuilt from its metadata (and checked by uid)."""
    try:
        instance = _instance(
            str(metadata["task"]),
            str(metadata["split"]),
            int(metadata["seed"]),
            int(metadata["index"]),
            json.dumps(metadata["options"], sort_keys=True),
        )
    except KeyError as missing:
        raise ConfigError(
            f"sample metadata lacks {missing}; use the samples of gpbench's inspect tasks"
        ) from None
    if instance.uid != metadata["uid"]:
        raise ConfigError(
            f"sample {metadata['uid']} was made by another gpbench version (this one builds "
            f"{instance.uid} from its key); rerun the task with this gpbench"
        )
    return instance


@solver
def revision_loop(budget: int | None = None) -> Solver:
    """The paper's sequential revision: answer, get the verifier's feedback, answer again.

    Follows the task's episode protocol until it terminates (solved or out of budget), or
    until inspect ends the sample (a token or message limit), which closes the episode as
    ``responses_ended``. ``budget`` overrides the task's attempts per decision point.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        task = get_task(str(state.metadata["task"]))
        instance = instance_of(state.metadata)
        env = task.episode(instance, budget=budget, mode=str(state.metadata["mode"]))
        images = InstanceImages(task, instance)
        sample = state.epoch - 1  # inspect's epochs are gpbench's samples per instance
        turns: list[Turn] = []
        # The record is kept current after every step: when inspect stops the sample at a
        # limit, generate raises and the scorer still finds the attempts made so far (closed
        # as ``responses_ended``).
        state.store.set(EPISODE_KEY, to_dict(close_episode(env, turns, sample=sample)))
        while not env.terminated and not state.completed:
            state.messages = chat_messages(env.messages, images)
            state = await generate(state)
            answer = state.output.completion
            cut = state.output.stop_reason == "max_tokens"
            usage = state.output.usage
            step = env.step(answer, output_truncated=cut)
            turns.append(
                turn_from_step(
                    step,
                    answer,
                    output_truncated=cut,
                    prompt_tokens=usage.input_tokens if usage else None,
                    completion_tokens=usage.output_tokens if usage else None,
                    latency_s=state.output.time,
                )
            )
            state.store.set(EPISODE_KEY, to_dict(close_episode(env, turns, sample=sample)))
        return state

    return solve


def _episode(state: TaskState) -> dict[str, Any]:
    stored = state.store.get(EPISODE_KEY)
    if stored is not None:
        return dict(stored)
    # Another solver answered once: judge that answer as a one-attempt episode.
    task = get_task(str(state.metadata["task"]))
    episode: Episode = score_responses(
        task,
        instance_of(state.metadata),
        [state.output.completion],
        budget=1,
        sample=state.epoch - 1,
        mode=str(state.metadata["mode"]),
    )
    return to_dict(episode)


def episode_scores(task: TaskSpec, episode: Mapping[str, Any]) -> dict[str, float]:
    """The score values of one Episode record (a dict), keyed as :func:`score_keys` says."""
    scores = {
        "success": 1.0 if episode["correct"] else 0.0,
        "first_try_success": 1.0 if episode["first_try_correct"] else 0.0,
        "return": float(episode["return"]),
        "attempts": float(episode["attempts_used"]),
    }
    known = statuses(task)
    counts = dict.fromkeys(known, 0)
    for turn in episode["turns"]:
        status = str(turn["verdict"]["status"])
        if status not in counts:  # a verifier newer than this bridge: never drop a status
            raise ValueError(f"{task.id} verdict status {status!r} is not one of {known}")
        counts[status] += 1
    return scores | {f"status_{s}": float(c) for s, c in counts.items()}


def gpbench_scorer(task: TaskSpec) -> Scorer:
    """gpbench's verifier as an inspect scorer for ``task`` (its statuses fix the keys)."""

    @scorer(metrics=[_metrics(task)], name="gpbench")
    def gpbench() -> Scorer:
        async def score(state: TaskState, target: Target) -> Score:
            del target  # the verifier judges against the instance itself
            episode = _episode(state)
            turns = episode["turns"]
            last = turns[-1] if turns else None
            return Score(
                value=episode_scores(task, episode),
                answer=str(last["response"]) if last else None,
                explanation=(
                    f"{episode['stop_reason']} after {len(turns)} attempt(s); last: "
                    f"{last['verdict']['status']}"
                    if last
                    else f"{episode['stop_reason']} before any attempt"
                ),
                metadata={"episode": episode},
            )

        return score

    return gpbench()
