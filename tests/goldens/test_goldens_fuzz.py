"""Golden fuzz: 5,000 deterministic fuzz strings through every task's verifier, in each mode.

No verifier may raise on any string; the status counts and the digest of all verdicts are
pinned, and a snapshot (``data/fuzz/<task>.<mode>.jsonl.gz``: status and sha of each verdict)
names the strings whose verdicts changed.
"""

from __future__ import annotations

import pytest
from goldens_compute import fuzz_answer, fuzz_instance, fuzz_verifier, verdict_pairs
from goldens_fuzz import fuzz_strings
from goldens_support import REGENERATE_HINT, clip, digest, load_json, load_rows

from gpbench.serialization import to_json
from gpbench.tasks.registry import get_task

GOLDEN = load_json("fuzz.json")


def strings_digest() -> str:
    return digest(text.encode("utf-8", "surrogatepass") for text in fuzz_strings())


def test_fuzz_strings_are_the_pinned_ones() -> None:
    assert strings_digest() == GOLDEN["strings"], (
        "the fuzz strings changed (tests/goldens/goldens_fuzz.py or its seed answers): the "
        f"verdict pins below cannot be compared. {REGENERATE_HINT}"
    )


def snapshot_name(task_id: str, mode: str) -> str:
    return f"fuzz/{task_id}.{mode}.jsonl.gz"


@pytest.mark.parametrize(("task_id", "mode"), verdict_pairs())
def test_fuzz_verdicts_match_their_goldens(task_id: str, mode: str) -> None:
    golden = GOLDEN[f"{task_id}/{mode}"]
    fuzzed = fuzz_verifier(task_id, mode)
    if fuzzed.digest == golden["digest"]:
        assert fuzzed.statuses == golden["statuses"]
        assert load_rows(snapshot_name(task_id, mode)) == fuzzed.rows, (
            f"{snapshot_name(task_id, mode)} is out of step with the digest. {REGENERATE_HINT}"
        )
        return
    old = load_rows(snapshot_name(task_id, mode))
    changed = [i for i, row in enumerate(fuzzed.rows) if i >= len(old) or old[i] != row]
    task = get_task(task_id)
    strings = fuzz_strings()
    shown = []
    for index in changed[:10]:
        answer = fuzz_answer(task_id, index, strings[index])
        verdict = task.verify(fuzz_instance(task_id, index), answer, mode=mode)
        shown.append(
            f"  [{index}] {clip(answer, 120)}\n      old [status, sha] = "
            f"{old[index] if index < len(old) else '<none>'}; new {fuzzed.rows[index]}: "
            f"{clip(to_json(verdict), 240)}"
        )
    pytest.fail(
        f"{task_id}/{mode}: {len(changed)} of {len(fuzzed.rows)} fuzz verdicts changed "
        f"(statuses pinned {golden['statuses']}, now {fuzzed.statuses}); the first:\n"
        + "\n".join(shown)
        + f"\n{REGENERATE_HINT}",
        pytrace=False,
    )
