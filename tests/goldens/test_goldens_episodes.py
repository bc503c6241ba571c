"""Golden episodes: scripted multi-turn episodes through ``task.episode``, record for record.

A few hundred instances per task each get a fixed sequence of answers (first-try solves,
revisions after feedback, exhausted budgets, answers that end early, answers after the end,
budgets of 1 and 3, truncated attempts; V-IRL retries and failures along the route; the
GeneralPoints reference mode on a few hands). Pinned: the ``Episode`` records that
:func:`gpbench.harness.transcripts.score_responses` makes (their canonical JSON lines), and the
replayed transcript (the messages shown before each answer and what each step did). The
snapshot ``data/episodes/<task>.jsonl.gz`` names the episodes that changed.
"""

from __future__ import annotations

import pytest
from goldens_compute import play_scripts, scripts
from goldens_corpus import TASKS
from goldens_support import REGENERATE_HINT, digest, load_json, load_rows

GOLDEN = load_json("episodes.json")


def snapshot_name(task_id: str) -> str:
    return f"episodes/{task_id}.jsonl.gz"


def test_every_task_is_pinned() -> None:
    assert set(GOLDEN) == set(TASKS), REGENERATE_HINT


@pytest.mark.parametrize("task_id", TASKS)
def test_episodes_match_their_goldens(task_id: str) -> None:
    golden = GOLDEN[task_id]
    played = play_scripts(task_id)
    if digest(played.episodes) != golden["episodes"]:
        old = load_rows(snapshot_name(task_id))
        changed = [i for i, row in enumerate(played.rows) if i >= len(old) or old[i] != row]
        listed = scripts(task_id)
        shown = []
        for i in changed[:10]:
            instance, script = listed[i]
            shown.append(
                f"  [{i}] {script.name} ({script.mode}, budget {script.budget}) on "
                f"{instance.split} seed={instance.seed} index={instance.index}:\n"
                f"      old [position, script, uid, stop, return, attempts, sha] = "
                f"{old[i] if i < len(old) else '<none>'}\n      new {played.rows[i]}"
            )
        pytest.fail(
            f"{task_id}: {len(changed)} of {len(played.rows)} episode records changed; the "
            f"first:\n" + "\n".join(shown) + f"\n{REGENERATE_HINT}",
            pytrace=False,
        )
    assert load_rows(snapshot_name(task_id)) == played.rows, (
        f"{snapshot_name(task_id)} is out of step with the digest. {REGENERATE_HINT}"
    )
    assert digest(played.transcripts) == golden["transcripts"], (
        f"{task_id}: the episode records are unchanged but the messages shown or the steps "
        f"differ ({len(played.transcripts)} transcript lines). {REGENERATE_HINT}"
    )
