"""Golden fingerprints: the instances of every task and split are pinned byte for byte.

An instance is a pure function of (task, version, split, seed, index, options). A change to a
generator, the random stream, a prompt or a record field that alters any instance must come with
a new task version (and new fingerprints here); a speed-up must leave every line identical.
"""

from __future__ import annotations

import hashlib

import pytest

from gpbench.serialization import to_json
from gpbench.tasks.registry import all_tasks, get_task

# sha256 (first 16 hex digits) over the JSON lines of instances 0..29, seed 42.
GOLDEN = {
    ("gp-l", "train"): "5d27d062523ee8e5",
    ("gp-l", "id"): "d56decd3d8c5348b",
    ("gp-l", "id-heldout"): "14791fc84928b7de",
    ("gp-l", "ood-rule"): "7aa08f96a03030e2",
    ("gp-vl", "train"): "34bf4816e9ec7116",
    ("gp-vl", "id"): "9d4a68cdefc70484",
    ("gp-vl", "id-heldout"): "cb6ecbbe15956e5c",
    ("gp-vl", "ood-rule"): "94244d0bca9d10f3",
    ("gp-vl", "ood-color"): "d6d8f4df2d9c125d",
    ("virl-l", "train"): "f2ad391940f5a7ab",
    ("virl-l", "id"): "9db6ee953b8064ec",
    ("virl-l", "id-heldout"): "24464dd6c7fd6142",
    ("virl-l", "ood-rule"): "89b79d3bbf7637d4",
    ("virl-l", "ood-spatial"): "0cadeec02fa95d63",
    ("virl-vl", "train"): "25ef4e74c4f9be7f",
    ("virl-vl", "id"): "9d124c5764294de1",
    ("virl-vl", "id-heldout"): "06477554eea7a118",
    ("virl-vl", "ood-rule"): "18653caf61260950",
    ("virl-vl", "ood-spatial"): "2cf757dd3b6b3c66",
}


def _fingerprint(task_id: str, split: str) -> str:
    digest = hashlib.sha256()
    for instance in get_task(task_id).dataset(split, 42, 30):
        digest.update(to_json(instance).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def test_every_task_and_split_is_pinned() -> None:
    pinned = {(task.id, split) for task in all_tasks() for split in task.splits}
    assert pinned == set(GOLDEN)


@pytest.mark.parametrize(("task_id", "split"), sorted(GOLDEN))
def test_instances_match_their_golden_fingerprint(task_id: str, split: str) -> None:
    assert _fingerprint(task_id, split) == GOLDEN[(task_id, split)], (
        f"{task_id} {split} instances changed: bump the task version if this is intended"
    )
