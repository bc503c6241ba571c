"""``gpbench overlap``: counts on crafted training files, lenient reading, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.errors import GpbenchError
from gpbench.recipes.data import examples, messages_row
from gpbench.recipes.overlap import overlap, read_training_keys
from gpbench.serialization import to_json
from gpbench.tasks.registry import get_task

GP = get_task("gp-l")


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        encoding="utf-8",
    )
    return path


def _count(
    path: Path, split: str = "id-heldout", n: int = 40, task: str = "gp-l", seed: int = 42
) -> list[int]:
    spec = get_task(task)
    return overlap(read_training_keys(path, spec), spec, split, seed, n).overlapping


def test_gpbench_train_split_never_overlaps_id_heldout(tmp_path: Path) -> None:
    lines = [to_json(i) for i in GP.dataset("train", 0, 2000)]
    path = _write(tmp_path / "train.jsonl", lines)
    assert _count(path, "id-heldout", 234) == []
    assert len(_count(path, "id", 234)) > 150  # id is the training distribution


def test_instance_lines_of_the_split_itself_overlap_fully(tmp_path: Path) -> None:
    heldout = list(GP.dataset("id-heldout", 42, 40))
    path = _write(tmp_path / "leak.jsonl", [to_json(i) for i in heldout[:10]])
    hits = _count(path)
    # the ten leaked hands, plus any later index drawing the same value multiset
    assert set(range(10)) <= set(hits)
    keys = {GP.content_key(i) for i in heldout[:10]}
    assert hits == [i.index for i in heldout if GP.content_key(i) in keys]


def test_chat_lines_are_matched_by_value_multiset_not_card_order(tmp_path: Path) -> None:
    target = GP.instance("id-heldout", 42, 3)
    cards = list(reversed(target.problem["cards"]))
    prompt = target.messages[0]["content"].replace(repr(target.problem["cards"]), repr(cards))
    assert prompt != target.messages[0]["content"]
    lines = [
        {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "x"}]},
        {"prompt": prompt, "completion": "x"},
        {"text": prompt},
    ]
    for number, line in enumerate(lines):
        path = _write(tmp_path / f"chat{number}.jsonl", [line])
        assert 3 in _count(path), line.keys()


def test_sft_chat_examples_written_by_the_recipes_are_read_back(tmp_path: Path) -> None:
    heldout = list(GP.dataset("id-heldout", 42, 5))
    lines = [messages_row(ex) for ex in examples(GP, heldout)]
    path = _write(tmp_path / "sft.jsonl", lines)
    training = read_training_keys(path, GP)
    assert training.chat_lines == 5 and training.skipped == 0
    assert set(range(5)) <= set(_count(path))


def test_the_rule_is_part_of_the_problem(tmp_path: Path) -> None:
    ood = [to_json(i) for i in GP.dataset("ood-rule", 42, 40)]
    path = _write(tmp_path / "ood.jsonl", ood)
    assert _count(path, "id-heldout") == []
    assert _count(path, "ood-rule") == list(range(40))


def test_gp_vl_chat_lines_use_the_answer_cards(tmp_path: Path) -> None:
    vl = get_task("gp-vl")
    hands = list(vl.dataset("id-heldout", 42, 3))
    lines = [messages_row(ex) for ex in examples(vl, hands)]
    assert "Cards:" not in json.dumps(lines)  # the hand is only in the image and the answer
    path = _write(tmp_path / "vl.jsonl", lines)
    assert set(range(3)) <= set(_count(path, task="gp-vl"))
    # the same arithmetic problems count for gp-l too
    keys = {vl.content_key(h) for h in hands}
    want = [i.index for i in GP.dataset("id-heldout", 42, 40) if GP.content_key(i) in keys]
    assert _count(path, task="gp-l") == want


def test_virl_by_instances_and_by_instruction_text(tmp_path: Path) -> None:
    virl = get_task("virl-l")
    heldout = list(virl.dataset("id-heldout", 12, 6))
    chat = [messages_row(ex) for ex in examples(virl, heldout[:2])]
    instances = [to_json(i) for i in heldout[2:4]]
    path = _write(tmp_path / "virl.jsonl", chat + instances)
    training = read_training_keys(path, virl)
    assert (training.chat_lines, training.instance_lines) == (len(chat), 2)
    assert set(_count(path, "id-heldout", 6, "virl-l", 12)) >= {0, 1, 2, 3}
    assert 5 not in _count(path, "id-heldout", 6, "virl-l", 12)
    train_path = _write(
        tmp_path / "train.jsonl", [to_json(i) for i in virl.dataset("train", 0, 200)]
    )
    assert _count(train_path, "id-heldout", 48, "virl-l", 12) == []


def test_unreadable_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    good = to_json(GP.instance("id-heldout", 42, 0))
    path = _write(
        tmp_path / "mixed.jsonl",
        [good, "{not json", "[1, 2]", {"messages": [{"role": "user", "content": "hi"}]}, "", good],
    )
    training = read_training_keys(path, GP)
    assert training.lines == 5 and training.instance_lines == 2 and training.skipped == 3
    assert training.skipped_examples[0].startswith("line 2: not valid JSON")
    virl_line = to_json(get_task("virl-l").instance("train", 0, 0))
    mixed = _write(tmp_path / "other.jsonl", [good, virl_line])
    assert "not a gp-l-family problem" in read_training_keys(mixed, GP).skipped_examples[0]


def test_lines_python_cannot_decode_are_counted_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = to_json(GP.instance("id-heldout", 42, 0))
    deep = "[" * 100_000 + "]" * 100_000  # valid JSON, deeper than Python's parser goes
    long_number = '{"text": ' + "9" * 5000 + "}"  # more digits than Python converts
    path = _write(tmp_path / "hostile.jsonl", [deep, long_number, good])
    training = read_training_keys(path, GP)
    assert (training.lines, training.instance_lines, training.skipped) == (3, 1, 2)
    assert training.skipped_examples == [
        "line 1: not valid JSON (nested too deeply to decode)",
        "line 2: not valid JSON (an integer with too many digits)",
    ]
    result = CliRunner().invoke(
        cli, ["overlap", "--train", str(path), "--task", "gp-l", "--split", "id-heldout"]
    )
    assert result.exit_code == 0 and "2 skipped" in result.output, result.output

    # A line that parses but is too deep for what reads it next is skipped the same way.
    from gpbench.recipes import overlap as module

    def too_deep(task: object, data: object) -> set[str]:
        raise RecursionError("maximum recursion depth exceeded while getting the repr")

    monkeypatch.setattr(module, "chat_keys", too_deep)
    chat = _write(tmp_path / "chat.jsonl", [{"messages": []}, good])
    training = read_training_keys(chat, GP)
    assert training.skipped_examples == ["line 1: nested too deeply to read"]
    assert training.instance_lines == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "training file not found"),
        ("", "is empty"),
        ("{bad\n[1]\n", "none of its 2 lines holds a gpbench instance or a chat example"),
        (b"\xff\xfe\x00", "bad.jsonl:1: not UTF-8 text"),
        (b'{"a": 1}\n{"text": "caf\xe9"}\n', "bad.jsonl:2: not UTF-8 text"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(GpbenchError, match=message):
        read_training_keys(path, GP)
    result = CliRunner().invoke(
        cli, ["overlap", "--train", str(path), "--task", "gp-l", "--split", "id-heldout"]
    )
    assert result.exit_code == 1
    assert message.split(" ")[0] in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_cli_reports_each_split(tmp_path: Path) -> None:
    lines = [to_json(i) for i in GP.dataset("id-heldout", 42, 12)]
    path = _write(tmp_path / "leak.jsonl", lines)
    result = CliRunner().invoke(
        cli,
        ["overlap", "--train", str(path), "--task", "gp-l", "--split", "id-heldout", "-n", "12"],
    )
    assert result.exit_code == 0, result.output
    first, summary = result.output.strip().splitlines()
    assert first == f"gp-l@1 id-heldout (seed 42, 12 instances): 12 in {path} (100.0%)"
    assert summary.startswith("read 12 lines: 12 gpbench instances, 0 chat examples, 0 skipped")
    result = CliRunner().invoke(
        cli, ["overlap", "--train", str(path), "--task", "gp-l", "-n", "5", "--json"]
    )
    reports = [json.loads(line) for line in result.output.splitlines()]
    assert [r["split"] for r in reports] == ["id", "id-heldout", "ood-rule"]
    assert reports[1]["rate"] == 1.0 and reports[2]["overlapping"] == []


def test_cli_refuses_an_unknown_split_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jsonl", [to_json(GP.instance("train", 0, 0))])
    result = CliRunner().invoke(
        cli, ["overlap", "--train", str(path), "--task", "gp-l", "--split", "id_heldout"]
    )
    assert result.exit_code == 1
    assert "did you mean 'id-heldout'" in result.output
