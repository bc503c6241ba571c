"""A checker run over every registered task (like Gymnasium's ``check_env``).

``check_task`` generates a few instances of every split and returns the problems it finds: an
empty list means the task honours the contract every later layer relies on.
"""

from __future__ import annotations

import json

from gpbench.generators.rng import content_hash
from gpbench.records import Instance
from gpbench.serialization import from_dict, to_json
from gpbench.tasks.spec import TaskSpec


def check_task(task: TaskSpec, n: int = 12, seeds: tuple[int, int] = (42, 43)) -> list[str]:
    """Problems found in ``task`` (empty when it conforms).

    Checks, for every split: instances are deterministic and survive a JSON round trip; the
    record fields and uid match the instance key; ``params`` equal the split's declared region
    and the task's own region check passes; a reference answer and messages are present and the
    reference answer verifies as correct; two seeds give different instances.
    """
    problems: list[str] = []
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
