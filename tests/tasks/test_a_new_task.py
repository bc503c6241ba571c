"""A new task needs its module and one registry line: a toy task runs through every layer.

The toy task (``toy_task.py`` beside this file) is registered the way a task is added, as one more
line of the registry's table; nothing else in gpbench is told about it. Generation, ``gpbench
eval`` with the scripted backend, ``gpbench score``, ``gpbench report``, the lm-eval hooks and
configs, the regress manifest's statuses and ``gpbench overlap`` must all take it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from toy_task import ToySum

from gpbench.cli import cli
from gpbench.lm_eval_bridge import configs, hooks
from gpbench.records import Instance
from gpbench.regress.manifest import ManifestError, parse_block
from gpbench.tasks import registry
from gpbench.tasks.conformance import check_task
from gpbench.tasks.spec import TaskSpec


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ToySum]:
    """The toy task as one more line of the registry's table."""
    task = ToySum()
    monkeypatch.setitem(registry._TASKS, (task.id, task.version), task)
    registry.get_task.cache_clear()
    yield task
    registry.get_task.cache_clear()


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_toy_task_conforms(toy: ToySum) -> None:
    assert registry.get_task("toy-sum") is toy and "toy-sum" in registry.task_ids()
    assert check_task(toy) == []


def test_a_new_task_missing_a_duty_fails_conformance(toy: ToySum) -> None:
    class Forgetful(ToySum):
        chat_overlap_keys = TaskSpec.chat_overlap_keys  # reads no chat example

    key = toy.content_key(toy.instance("train", 42, 0))  # the first split's first instance
    assert [p for p in check_task(Forgetful()) if "chat_overlap_keys" in p] == [
        "toy-sum: chat_overlap_keys() of its own prompt and reference answer gives (), none of "
        f"the instance's overlap keys ({key!r},)"
    ]


def test_a_new_task_runs_through_generate_eval_score_and_report(
    toy: ToySum, tmp_path: Path
) -> None:
    data, runs = tmp_path / "data", tmp_path / "runs"
    run("generate", "toy-sum", "--split", "id", "--split", "ood-big", "-o", str(data), "-q")
    ood = [
        json.loads(line) for line in (data / "toy-sum" / "ood-big.jsonl").read_text().splitlines()
    ]
    assert [i["problem"] for i in ood] == [
        toy.instance("ood-big", 42, index).problem for index in range(8)
    ]

    output = run(
        "eval",
        "--backend",
        "scripted",
        "--model",
        "reference",
        "--task",
        "toy-sum",
        "--split",
        "id",
        "--split",
        "ood-big",
        "--runs-dir",
        str(runs),
        "-q",
        "--json",
    )
    evaluated = json.loads(output)["runs"]
    assert sorted((r["task"], r["split"]) for r in evaluated) == [
        ("toy-sum", "id"),
        ("toy-sum", "ood-big"),
    ]
    assert all(r["summary"]["success"]["rate"] == 1.0 for r in evaluated), evaluated

    # Every ood-big answer is 3: wrong, and below the training range's largest sum.
    responses = tmp_path / "responses.jsonl"
    responses.write_text(
        "".join(json.dumps({"uid": i["uid"], "response": "3"}) + "\n" for i in ood)
    )
    run(
        "score",
        "toy-sum",
        "--instances",
        str(data / "toy-sum" / "ood-big.jsonl"),
        "--responses",
        str(responses),
        "-o",
        str(runs / "scored"),
    )

    run("report", str(runs), "-o", str(tmp_path / "report"))
    with (tmp_path / "report" / "summary.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["task"], r["split"]) for r in rows} == {("toy-sum", "id"), ("toy-sum", "ood-big")}
    scored = [r for r in rows if r["split"] == "ood-big" and float(r["success"]) == 0.0]
    assert len(scored) == 1
    assert float(scored[0]["status_wrong_sum"]) == 1.0
    assert float(scored[0]["flag_train_range_answer"]) == 1.0


def test_a_new_task_in_lm_eval_regress_and_overlap(toy: ToySum, tmp_path: Path) -> None:
    docs = hooks.items("toy-sum@1", "ood-big", 42, 2, {})
    scores = hooks.process_results(docs[0], ["3"])
    assert scores["success"] == 0.0 and scores["status_wrong_sum"] == 1.0
    assert scores["flag_train_range_answer"] == 1.0
    assert hooks.process_results(docs[1], [docs[1]["target"]])["success"] == 1.0
    config = configs.task_config(toy, "ood-big")
    assert config["task"] == configs.task_name(toy, "ood-big")

    check = {
        "task": "toy-sum",
        "split": "ood-big",
        "n": 8,
        "seed": 42,
        "budget": 2,
        "decoding": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 8},
        "expect": {"status:wrong_sum": {"rate": 0.1, "tol": 0.1}},
    }
    entry = {
        "name": "toy",
        "policy": "reference",
        "licence": "n/a",
        "architecture": "none",
        "backend": "scripted",
        "checks": [check],
    }
    block = {"version": 1, "alpha": 0.01, "checkpoints": [entry]}
    [parsed], _ = parse_block(json.dumps(block), 1, "m.md")
    assert [e.metric for e in parsed.checks[0].expect] == ["status:wrong_sum"]
    check["expect"] = {"status:wrong_value": {"rate": 0.1, "tol": 0.1}}  # GeneralPoints'
    with pytest.raises(ManifestError, match="unknown status 'wrong_value' for toy-sum"):
        parse_block(json.dumps(block), 1, "m.md")

    first, second = toy.instance("id", 42, 0), toy.instance("id", 42, 1)
    train = tmp_path / "train.jsonl"
    swapped = f"What is {first.problem['b']} + {first.problem['a']}? Answer with the number only."
    train.write_text(
        json.dumps({"messages": [{"role": "user", "content": swapped}]})
        + "\n"
        + json.dumps({"prompt": "no problem here", "completion": "1"})
        + "\n"
    )
    output = run(
        "overlap", "--train", str(train), "--task", "toy-sum", "--split", "id", "-n", "8", "--json"
    )
    [report] = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    expected = [
        i for i in range(8) if toy.content_key(toy.instance("id", 42, i)) == toy.content_key(first)
    ]
    assert report["overlapping"] == expected and 0 in expected
    assert second.uid != first.uid and report["chat_lines"] == 1 and report["skipped"] == 1


def test_a_wrong_answer_that_verifies_fails_conformance(toy: ToySum) -> None:
    class Lenient(ToySum):
        def wrong_answer(self, instance: Instance, reference: str, point: int = 0) -> str:
            return reference  # the scripted backend's "mistakes" would all be right

    assert [p for p in check_task(Lenient()) if "wrong_answer" in p] == [
        "toy-sum: wrong_answer() at point 0 verifies as correct"
    ]
