"""A checker run over every registered task (like Gymnasium's ``check_env``).

``check_task`` generates a few instances of every split and returns the problems it finds: an
empty list means the task honours the contract every later layer relies on.
"""

from __future__ import annotations

import json

from gpbench.generators.rng import content_hash
from gpbench.records import Instance
from gpbench.serialization import from_dict, to_json
from gpbench.tasks.spec import DebugView, TaskSpec


def check_task(task: TaskSpec, n: int = 12, seeds: tuple[int, int] = (42, 43)) -> list[str]:
    """Problems found in ``task`` (empty when it conforms).

    Checks, for every split: instances are deterministic and survive a JSON round trip; the
    record fields and uid match the instance key; ``params`` equal the split's declared region
    and the task's own region check passes; a reference answer and messages are present and the
    reference answer verifies as correct; two seeds give different instances. Then the duties
    the layers above rely on (:func:`check_duties`).
    """
    problems = check_duties(task)
    options = task.resolve_options()
    for split_name, split in task.splits.items():
        uids_by_seed: list[set[str]] = []
        for seed in seeds:
            uids: set[str] = set()
            for index in range(n):
                where = f"{task.id}@{task.version} {split_name} seed={seed} index={index}"
                first = task.instance(split_name, seed, index)
                again = task.instance(split_name, seed, index)
                if to_json(first) != to_json(again):
                    problems.append(f"{where}: not deterministic")
                if from_dict(Instance, json.loads(to_json(first))) != first:
                    problems.append(f"{where}: does not survive a JSON round trip")
                expected = (task.id, task.version, split_name, seed, index)
                actual = (first.task, first.task_version, first.split, first.seed, first.index)
                if actual != expected:
                    problems.append(f"{where}: record fields {actual} != {expected}")
                key = task.instance_key(split_name, seed, index, options)
                if first.uid != content_hash(key):
                    problems.append(f"{where}: uid is not the hash of its key {key!r}")
                if first.params != task.params_for(split, options):
                    problems.append(f"{where}: params {first.params} outside the split's region")
                problems.extend(f"{where}: {p}" for p in task.region_problems(first))
                if not first.reference:
                    problems.append(f"{where}: no reference answer")
                if not first.messages or any(set(m) != {"role", "content"} for m in first.messages):
                    problems.append(f"{where}: messages are not [{{role, content}}, ...]")
                try:
                    problems.extend(f"{where}: {p}" for p in task.reference_problems(first))
                except Exception as exc:  # a conformance checker reports, it does not stop
                    problems.append(f"{where}: verifying the reference raised {exc!r}")
                uids.add(first.uid)
            if len(uids) != n:
                problems.append(f"{task.id} {split_name} seed={seed}: uids are not unique")
            uids_by_seed.append(uids)
        if uids_by_seed[0] & uids_by_seed[1]:
            problems.append(f"{task.id} {split_name}: seeds {seeds} share instances")
    return problems


def check_duties(task: TaskSpec) -> list[str]:
    """Problems with what the layers above ask of a task (reports, regress, lm-eval, recipes).

    Nothing outside ``gpbench.tasks`` knows a task's insides, so a task declares: its paper's RL
    compute lambda; for every verifier mode, the statuses one answer can get (the success status
    first); its memorization flags and the splits they count on; whether it reports recognition;
    the headline metric of every split; its overlap family and keys, a chat example of its own
    prompt and reference answer giving one of them; its decision points, each with a prompt
    (single-turn items start there), a reference answer and a wrong answer (the scripted
    backend's mistakes) that verifies as incorrect; for vision tasks, one image per image
    path of an instance and debug views as PNG bytes.
    """
    problems: list[str] = []
    rl_lambda = getattr(task, "rl_lambda", None)
    if isinstance(rl_lambda, bool) or not isinstance(rl_lambda, (int, float)) or rl_lambda <= 0:
        problems.append(f"{task.id}: rl_lambda must be a positive number, got {rl_lambda!r}")
    for flag, splits in task.memorization_flags.items():
        unknown = [s for s in splits if s not in task.splits]
        if not isinstance(flag, str) or not splits or unknown:
            problems.append(f"{task.id}: memorization flag {flag!r} names splits {splits!r}")
    if not isinstance(task.reports_recognition, bool):
        problems.append(f"{task.id}: reports_recognition must be true or false")
    family = getattr(task, "overlap_family", None)
    if not isinstance(family, str) or not family:
        problems.append(f"{task.id}: overlap_family must name the task's family, got {family!r}")
    metrics = ("success", "per_step_accuracy") if task.multi_decision else ("success",)
    for split_name in task.splits:
        if task.headline_metric(split_name) not in metrics:
            problems.append(
                f"{task.id}: headline_metric({split_name!r}) is "
                f"{task.headline_metric(split_name)!r}, not one of {', '.join(metrics)}"
            )
    try:
        split = next(iter(task.splits))
        instance = task.instance(split, 42, 0)
        for mode in task.verifier_modes:
            statuses = task.answer_statuses(mode)
            if not statuses or not all(isinstance(s, str) and s for s in statuses):
                problems.append(f"{task.id}: answer_statuses({mode!r}) is {statuses!r}")
                continue
            verdict = task.verify(instance, task.reference_answer(instance), mode=mode)
            if verdict.status != statuses[0]:
                problems.append(
                    f"{task.id}: in mode {mode} the reference answer is {verdict.status!r}, "
                    f"not the first of answer_statuses ({statuses[0]!r})"
                )
        points = task.decision_points(instance)
        answers = task.reference_answers(instance)
        if points < 1 or len(answers) != points:
            problems.append(
                f"{task.id}: {points} decision points but {len(answers)} reference answers"
            )
        for point in range(min(points, len(answers))):
            env = task.episode(instance, start=point)
            if not env.messages or any(set(m) != {"role", "content"} for m in env.messages):
                problems.append(f"{task.id}: the prompt at decision point {point} is not messages")
            elif not env.step(answers[point]).verdict.correct:
                problems.append(f"{task.id}: the reference answer at point {point} is not correct")
            wrong = task.wrong_answer(instance, answers[point], point)
            if task.episode(instance, start=point).step(wrong).verdict.correct:
                problems.append(f"{task.id}: wrong_answer() at point {point} verifies as correct")
        if task.modality == "vision" and len(task.images(instance)) != len(instance.images):
            problems.append(f"{task.id}: images() does not give one image per path in images")
        problems.extend(_overlap_problems(task, instance))
        views = task.debug_views(instance, point=points - 1, max_px=64)
        if task.modality == "vision" and not views:
            problems.append(f"{task.id}: debug_views() gives no image of a vision instance")
        if any(not isinstance(v, DebugView) or not v.png.startswith(_PNG) for v in views):
            problems.append(f"{task.id}: debug_views() must give DebugView(caption, PNG bytes)")
    except Exception as exc:  # a conformance checker reports, it does not stop
        problems.append(f"{task.id}: checking its duties raised {exc!r}")
    return problems


_PNG = b"\x89PNG\r\n\x1a\n"


def _overlap_problems(task: TaskSpec, instance: Instance) -> list[str]:
    """The instance's overlap keys, and the task reading its own prompt as a chat example."""
    keys = task.overlap_keys(instance)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        return [f"{task.id}: overlap_keys() must give the instance's keys, got {keys!r}"]
    prompt = "\n".join(
        part if isinstance(part, str) else str(part.get("text") or "")
        for message in instance.messages
        for part in (
            message["content"] if isinstance(message["content"], list) else [message["content"]]
        )
    )
    found = task.chat_overlap_keys(prompt, task.reference_answer(instance))
    if not set(found) & set(keys):
        return [
            f"{task.id}: chat_overlap_keys() of its own prompt and reference answer gives "
            f"{found!r}, none of the instance's overlap keys {keys!r}"
        ]
    return []
