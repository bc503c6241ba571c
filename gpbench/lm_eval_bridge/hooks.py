"""The functions lm-eval calls for a gpbench task: dataset, image and scoring hooks.

Description:
    A gpbench task YAML (written by :mod:`gpbench.lm_eval_bridge.configs`) names these through
    ``!function gpbench_hooks.NAME``; ``gpbench_hooks.py`` beside the YAMLs re-exports them, since
    some lm-eval releases (0.4.9 among them) load ``!function`` modules only from the YAML's own
    folder.

    * :func:`custom_dataset` builds the ``test`` split from gpbench's generator, with the seed,
      size and options the YAML's ``metadata`` holds (``gpbench_task``, ``gpbench_split``,
      ``gpbench_seed``, ``gpbench_n`` instances, which are routes for V-IRL, and
      ``gpbench_options``) and the verifier mode (``gpbench_mode``: ``gpbench``, the default, or
      ``reference`` for the paper code's rewards, e.g. ``--metadata '{"gpbench_mode":
      "reference"}'``); lm-eval passes it the whole metadata merged with ``--model_args`` and
      ``--metadata``, so unknown keys are ignored. Each doc carries the mode it is scored in.
    * :func:`doc_to_image` renders a vision item's image from its instance key (docs hold no
      pixels).
    * :func:`process_results` judges the one answer with gpbench's verifier and returns the metrics
      :func:`metric_names` declares for the task.

Single-turn:
    lm-eval asks for one answer per item and has no loop that appends the verifier's feedback, so
    the paper's sequential revision (GeneralPoints: 5 attempts; V-IRL: 2 per decision point) runs
    only in ``gpbench eval``. A GeneralPoints item is a hand, answered once. A V-IRL item is one
    decision point of a route, with the true observation/action history so far in the prompt;
    its ``success`` averages to the per-step accuracy of docs/tasks.md §2 (first tries only), not to
    route success.

Metrics (each a 0/1 or reward value per item, aggregated by the mean):
    ``success`` (the answer is correct), ``reward`` (the paper's reward for that one answer,
    without the budget penalty, which belongs to multi-turn episodes), ``status_<s>`` for every
    status the task's verifier can give (the first failure in its check order), and
    ``flag_<f>`` for the memorization flags of docs/tasks.md §5.

>>> docs = items("gp-l@1", "ood-rule", 42, 2, {})
>>> [d["point"] for d in docs], docs[0]["prompt"] == get_task("gp-l").instance("ood-rule", 42, 0).messages[0]["content"]
([0, 0], True)
>>> scores = process_results(docs[0], [docs[0]["target"]])
>>> scores["success"], scores["reward"], scores["status_correct"]
(1.0, 5.0, 1.0)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gpbench.errors import ConfigError, MissingDependencyError
from gpbench.records import Instance, Verdict
from gpbench.serialization import parse_json
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

IMAGE_PLACEHOLDER = "<image>"
"""Where an image goes in lm-eval's prompt text: ``hf-multimodal`` turns it into the image part
of the chat message (or the model's image token without ``--apply_chat_template``)."""

METADATA_KEYS = ("gpbench_task", "gpbench_split", "gpbench_seed", "gpbench_n")
"""The generator settings a YAML's ``metadata`` must hold (``gpbench_options`` is optional)."""


def statuses(task: TaskSpec) -> tuple[str, ...]:
    """The statuses one answer to ``task`` can get in any of its verifier modes: the default
    mode's in check order, then those only another mode gives (a YAML's metrics are fixed, the
    mode is chosen when lm-eval runs)."""
    found = dict.fromkeys(task.answer_statuses("gpbench"))
    for mode in task.verifier_modes:
        found.update(dict.fromkeys(task.answer_statuses(mode)))
    return tuple(found)


def flags(task: TaskSpec) -> tuple[str, ...]:
    """The memorization flags (docs/tasks.md §5) reported for ``task``.

    ``output_truncated`` is not one: lm-eval hands back text only, not whether it hit the limit.
    """
    return tuple(task.memorization_flags)


def metric_names(task: TaskSpec) -> list[str]:
    """Every metric :func:`process_results` returns for ``task``, in the YAMLs' order."""
    return [
        "success",
        "reward",
        *(f"status_{s}" for s in statuses(task)),
        *(f"flag_{f}" for f in flags(task)),
    ]


def higher_is_better(metric: str) -> bool:
    """Success, reward and the correct status go up with a better model; failures and flags down."""
    return metric in ("success", "reward", "status_correct", "status_correct_action")


def user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The single user turn of gpbench's messages as lm-eval's prompt text.

    Text content stays byte for byte; an image part becomes :data:`IMAGE_PLACEHOLDER` at its place
    (first, as in the paper).
    """
    if len(messages) != 1 or messages[0].get("role") != "user":
        raise ValueError("lm-eval items need exactly one user message")
    content = messages[0]["content"]
    if isinstance(content, str):
        return content
    return "".join(
        IMAGE_PLACEHOLDER if part["type"] == "image" else str(part["text"]) for part in content
    )


def items(
    task_name: str,
    split: str,
    seed: int,
    n: int,
    options: Mapping[str, Any],
    mode: str = "gpbench",
) -> list[dict[str, Any]]:
    """The lm-eval docs of ``n`` instances of a split: one per instance, or per decision point.

    Every doc is flat and JSON-able (``uid``, ``instance_uid``, ``task``, ``split``, ``seed``,
    ``index``, ``point``, ``options`` as a JSON string, ``mode``, ``prompt``, ``target``):
    lm-eval logs it with each sample, so a route's city is rebuilt from the key instead of being
    carried along.
    """
    if n < 1:
        raise ConfigError(f"gpbench_n must be >= 1 (lm-eval needs a document), got {n}")
    task = get_task(task_name)
    if mode not in task.verifier_modes:
        raise ConfigError(
            f"gpbench_mode {mode!r} is not a verifier mode of {task.id} "
            f"({', '.join(task.verifier_modes)}); pass one in --metadata"
        )
    options_text = json.dumps(dict(options), sort_keys=True)
    pinned = f"{task.id}@{task.version}"
    docs: list[dict[str, Any]] = []
    for instance in task.dataset(split, seed, n, options):
        base = {
            "instance_uid": instance.uid,
            "task": pinned,
            "split": instance.split,
            "seed": instance.seed,
            "index": instance.index,
            "options": options_text,
            "mode": mode,
        }
        targets = task.reference_answers(instance)
        for point in range(task.decision_points(instance)):
            docs.append(
                {
                    "uid": f"{instance.uid}/{point}" if task.multi_decision else instance.uid,
                    **base,
                    "point": point,
                    "prompt": user_text(task.episode(instance, start=point).messages),
                    "target": targets[point],
                }
            )
    return docs


def custom_dataset(**metadata: Any) -> dict[str, Any]:
    """lm-eval's ``custom_dataset`` hook: ``{"test": datasets.Dataset}`` of :func:`items`."""
    missing = [key for key in METADATA_KEYS if key not in metadata]
    if missing:
        raise ConfigError(
            f"lm-eval task metadata lacks {', '.join(missing)}; regenerate the YAMLs with "
            '`gpbench lm-eval-export DIR` or use `--include_path "$(gpbench lm-eval-path)"`'
        )
    options = metadata.get("gpbench_options") or {}
    if isinstance(options, str):  # --metadata passes JSON through, but a string may slip in
        try:
            options = parse_json(options)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"gpbench_options is not valid JSON ({exc.msg}); pass a mapping of task options"
            ) from None
    if not isinstance(options, dict):
        raise ConfigError(f"gpbench_options must be a mapping of task options, got {options!r}")
    docs = items(
        str(metadata["gpbench_task"]),
        str(metadata["gpbench_split"]),
        _integer(metadata["gpbench_seed"], "gpbench_seed"),
        _integer(metadata["gpbench_n"], "gpbench_n"),
        options,
        str(metadata.get("gpbench_mode") or "gpbench"),
    )
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("datasets", "lm-eval", "the lm-eval bridge") from None
    return {"test": datasets.Dataset.from_list(docs)}


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


@functools.lru_cache(maxsize=256)
def _instance(task_name: str, split: str, seed: int, index: int, options: str) -> Instance:
    return get_task(task_name).instance(split, seed, index, json.loads(options))


def _key(doc: Mapping[str, Any]) -> tuple[str, str, int, int, str]:
    return (
        str(doc["task"]),
        str(doc["split"]),
        int(doc["seed"]),
        int(doc["index"]),
        str(doc["options"]),
    )


def instance_of(doc: Mapping[str, Any]) -> Instance:
    """The instance a doc was made from, rebuilt from its key (and checked against its uid)."""
    instance = _instance(*_key(doc))
    if instance.uid != doc["instance_uid"]:
        raise ValueError(
            f"doc {doc['uid']} was made by another gpbench version (instance uid "
            f"{doc['instance_uid']} != {instance.uid}); regenerate the lm-eval YAMLs"
        )
    return instance


@functools.lru_cache(maxsize=2)
def _images(task_name: str, split: str, seed: int, index: int, options: str) -> tuple[Any, ...]:
    # lm-eval asks for a route's decision points in order: render the route's views once.
    instance = _instance(task_name, split, seed, index, options)
    return tuple(get_task(task_name).images(instance))


def doc_to_image(doc: Mapping[str, Any]) -> list[Any]:
    """lm-eval's ``doc_to_image`` hook: the item's images (PIL), rendered from its instance key."""
    instance = instance_of(doc)  # checks that the doc matches this gpbench
    messages = get_task(str(doc["task"])).episode(instance, start=int(doc["point"])).messages
    paths = [
        part["path"]
        for message in messages
        if not isinstance(message["content"], str)
        for part in message["content"]
        if part.get("type") == "image"
    ]
    images = _images(*_key(doc))
    return [images[instance.images.index(path)] for path in paths]


def verdict(doc: Mapping[str, Any], answer: str) -> Verdict:
    """gpbench's verdict on one answer to one doc in the doc's verifier mode (the same judge
    ``gpbench score`` uses; a doc from before modes were recorded is scored by default)."""
    instance = instance_of(doc)
    task = get_task(str(doc["task"]))
    mode = str(doc.get("mode") or "gpbench")
    return task.episode(instance, start=int(doc["point"]), mode=mode).step(answer).verdict


def process_results(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """lm-eval's ``process_results`` hook: the item's metrics from gpbench's verifier.

    Total over model output: ``results`` holds the generated text (anything that is not a string
    is judged as an empty answer).
    """
    answer = results[0] if results and isinstance(results[0], str) else ""
    task = get_task(str(doc["task"]))
    judged = verdict(doc, answer)
    known = statuses(task)
    if judged.status not in known:  # a verifier newer than this bridge: never report it as 0
        raise ValueError(f"{task.id} verdict status {judged.status!r} is not one of {known}")
    scores = {"success": 1.0 if judged.correct else 0.0, "reward": float(judged.reward)}
    for status in known:
        scores[f"status_{status}"] = 1.0 if judged.status == status else 0.0
    for flag in flags(task):
        scores[f"flag_{flag}"] = 1.0 if flag in judged.flags else 0.0
    return scores
