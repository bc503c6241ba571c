"""Rewrite the golden data files from the code as it is now, and say which goldens moved.

Run from the repository root, only after deciding that a behaviour change is intended::

    .venv/bin/python tests/goldens/regenerate.py                     # everything
    .venv/bin/python tests/goldens/regenerate.py --only verdicts     # one area (repeatable)

Areas: ``instances``, ``verdicts``, ``episodes``, ``fuzz``. A refactor must not need this: if
a golden test fails after one, the refactor changed behaviour. Commit ``tests/goldens/data/``
with the reason in the message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from goldens_compute import (
    arithmetic_lines,
    fuzz_verifier,
    instance_configs,
    instance_lines,
    judge_corpus,
    play_scripts,
    reference_episode_lines,
    verdict_pairs,
)
from goldens_corpus import TASKS, VIRL_TASKS
from goldens_support import digest, load_json, save_json, save_rows, short_sha
from test_goldens_episodes import snapshot_name as episode_snapshot
from test_goldens_fuzz import snapshot_name as fuzz_snapshot
from test_goldens_fuzz import strings_digest
from test_goldens_verdicts import ARITHMETIC_SNAPSHOT, corpus_digest
from test_goldens_verdicts import snapshot_name as verdict_snapshot


def instances() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for config in instance_configs():
        lines = instance_lines(config)
        out[config.name] = {"digest": digest(lines), "shas": " ".join(map(short_sha, lines))}
    for task_id in VIRL_TASKS:
        lines = reference_episode_lines(task_id)
        out[f"reference-episodes/{task_id}"] = {
            "digest": digest(lines),
            "shas": " ".join(map(short_sha, lines)),
        }
    return out


def verdicts() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task_id, mode in verdict_pairs():
        judged = judge_corpus(task_id, mode)
        save_rows(verdict_snapshot(task_id, mode), judged.rows)
        out[f"{task_id}/{mode}"] = {
            "corpus": corpus_digest(task_id, mode),
            "digest": judged.digest,
            "count": len(judged.rows),
            "statuses": judged.statuses,
        }
    lines = arithmetic_lines()
    save_rows(ARITHMETIC_SNAPSHOT, ([short_sha(line, 6)] for line in lines))
    out["arithmetic"] = {"digest": digest(lines), "count": len(lines)}
    return out


def episodes() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task_id in TASKS:
        played = play_scripts(task_id)
        save_rows(episode_snapshot(task_id), played.rows)
        out[task_id] = {
            "episodes": digest(played.episodes),
            "transcripts": digest(played.transcripts),
            "count": len(played.episodes),
        }
    return out


def fuzz() -> dict[str, Any]:
    out: dict[str, Any] = {"strings": strings_digest()}
    for task_id, mode in verdict_pairs():
        fuzzed = fuzz_verifier(task_id, mode)
        save_rows(fuzz_snapshot(task_id, mode), fuzzed.rows)
        out[f"{task_id}/{mode}"] = {"statuses": fuzzed.statuses, "digest": fuzzed.digest}
    return out


AREAS: dict[str, Callable[[], dict[str, Any]]] = {
    "instances": instances,
    "verdicts": verdicts,
    "episodes": episodes,
    "fuzz": fuzz,
}


def moved(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys whose golden changed, appeared or disappeared."""
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(AREAS), help="area to rewrite")
    args = parser.parse_args(argv)
    for area in args.only or list(AREAS):
        name = f"{area}.json"
        old = load_json(name)
        new = AREAS[area]()
        save_json(name, new)
        changes = moved(old, new)
        print(f"{name}: {len(new)} goldens, {len(changes)} changed")
        for key in changes[:20]:
            print(f"  {key}")
        if len(changes) > 20:
            print(f"  ... and {len(changes) - 20} more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
