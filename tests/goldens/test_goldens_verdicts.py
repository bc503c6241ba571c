"""Golden verdicts: 10,000 varied answers per task and verifier mode, judged exactly as before.

Each (task, mode) pins the sha256 of the canonical JSON lines of its verdicts in order, and a
compact snapshot (``data/verdicts/<task>.<mode>.jsonl.gz``: index, status, reward, flags, sha
of the feedback, sha of the whole verdict line) that names the answers whose verdicts changed.
The corpus itself is pinned too, so a changed corpus (instances, reference answers) is told
apart from a changed verifier. The exact evaluator is pinned on its own formulas.
"""

from __future__ import annotations

from typing import Any

import pytest
from goldens_compute import (
    arithmetic_formulas,
    arithmetic_lines,
    judge_corpus,
    verdict_pairs,
)
from goldens_corpus import corpus, corpus_pool
from goldens_support import (
    REGENERATE_HINT,
    clip,
    digest,
    load_json,
    load_rows,
    short_sha,
)

GOLDEN = load_json("verdicts.json")
ARITHMETIC_SNAPSHOT = "arithmetic.jsonl.gz"


def corpus_digest(task_id: str, mode: str) -> str:
    """sha256 over the corpus: each entry's instance uid, decision point and answer."""
    pool = corpus_pool(task_id, mode)
    return digest(
        f"{pool[e.instance].uid}\t{e.point}\t{e.kind}\t{e.answer}".encode("utf-8", "surrogatepass")
        for e in corpus(task_id, mode)
    )


def snapshot_name(task_id: str, mode: str) -> str:
    return f"verdicts/{task_id}.{mode}.jsonl.gz"


def test_every_task_and_mode_is_pinned() -> None:
    pinned = {key for key in GOLDEN if key != "arithmetic"}
    declared = {f"{task}/{mode}" for task, mode in verdict_pairs()}
    assert pinned == declared, (
        f"pinned {sorted(pinned)}, declared {sorted(declared)}. {REGENERATE_HINT}"
    )


def _changed_rows(task_id: str, mode: str, new_rows: list[list[Any]]) -> str:
    old_rows = load_rows(snapshot_name(task_id, mode))
    entries = corpus(task_id, mode)
    pool = corpus_pool(task_id, mode)
    changed = [
        i
        for i in range(max(len(old_rows), len(new_rows)))
        if i >= len(old_rows) or i >= len(new_rows) or old_rows[i] != new_rows[i]
    ]
    out = [
        f"{len(changed)} of {len(new_rows)} verdicts changed; the first {min(10, len(changed))}:"
    ]
    for i in changed[:10]:
        entry = entries[i]
        instance = pool[entry.instance]
        old = old_rows[i] if i < len(old_rows) else "<none>"
        out.append(
            f"  [{i}] {entry.kind} on {instance.task} {instance.split} seed={instance.seed} "
            f"index={instance.index} point={entry.point}: answer {clip(entry.answer)}\n"
            f"      old [index, status, reward, flags, feedback sha, line sha] = {old}\n"
            f"      new {new_rows[i] if i < len(new_rows) else '<none>'}"
        )
    return "\n".join(out)


@pytest.mark.parametrize(("task_id", "mode"), verdict_pairs())
def test_verdicts_match_their_goldens(task_id: str, mode: str) -> None:
    golden = GOLDEN[f"{task_id}/{mode}"]
    if corpus_digest(task_id, mode) != golden["corpus"]:
        pytest.fail(
            f"{task_id}/{mode}: the answer corpus itself changed (its instances, the reference "
            f"answers or tests/goldens/goldens_corpus.py), so its verdicts cannot be compared; "
            f"see the instance goldens first. {REGENERATE_HINT}",
            pytrace=False,
        )
    judged = judge_corpus(task_id, mode)
    if judged.digest != golden["digest"]:
        pytest.fail(
            f"{task_id}/{mode}: verdicts changed (statuses pinned {golden['statuses']}, now "
            f"{judged.statuses}).\n{_changed_rows(task_id, mode, judged.rows)}\n{REGENERATE_HINT}",
            pytrace=False,
        )
    assert judged.statuses == golden["statuses"]
    # The snapshot must describe the pinned verdicts, or its diagnoses would mislead.
    assert load_rows(snapshot_name(task_id, mode)) == judged.rows, (
        f"{snapshot_name(task_id, mode)} is out of step with the digest. {REGENERATE_HINT}"
    )


def test_exact_evaluator_matches_its_golden() -> None:
    """Formulas under the default limits, with unicode operators and under small limits."""
    golden = GOLDEN["arithmetic"]
    lines = arithmetic_lines()
    if digest(lines) != golden["digest"]:
        old = [row[0] for row in load_rows(ARITHMETIC_SNAPSHOT)]
        formulas = arithmetic_formulas()
        shown = []
        for i, line in enumerate(lines):
            if i >= len(old) or short_sha(line, 6) != old[i]:
                shown.append(
                    f"  {clip(formulas[i // 3])} ({('default', 'unicode', 'small')[i % 3]}): now {line.decode()[:200]}"
                )
            if len(shown) == 10:
                break
        pytest.fail(
            "evaluate() results changed; the first:\n" + "\n".join(shown) + f"\n{REGENERATE_HINT}",
            pytrace=False,
        )
