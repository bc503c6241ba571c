"""The positive controls: their corpora, their token masks and the memorizer's signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpbench.generators.cards import is_heldout
from gpbench.recipes import controls
from gpbench.tasks.general_points import OOD_RULE, TRAINING_RULE, hand_values, render_text_prompt
from gpbench.tasks.registry import get_task

SMALL = controls.ControlSize(train_size=60)


@pytest.fixture(scope="module")
def tokenizer(tiny_llama: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def _answers(conversation: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in conversation if m["role"] == "assistant"]


def test_chat_ids_are_the_whole_texts_ids_and_mask_the_answers(tokenizer: Any) -> None:
    conversations = [
        controls.memorizer_conversations(SMALL)[0],
        max(controls.rule_follower_conversations(SMALL), key=len),
    ]
    assert len(conversations[1]) == 2 * len(controls.TEMPLATES)  # five attempts, four feedbacks
    for conversation in conversations:
        ids, mask = controls._chat_ids(tokenizer, conversation)
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        assert ids == tokenizer(text, add_special_tokens=False).input_ids
        learned = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
        assert learned == "".join(a + tokenizer.eos_token for a in _answers(conversation))


def test_memorizer_corpus_is_train_with_its_reference_answers() -> None:
    task = get_task("gp-l")
    instances = task.dataset("train", SMALL.seed, SMALL.train_size)
    conversations = controls.memorizer_conversations(SMALL)
    assert len(conversations) == len(instances)
    for inst, conversation in zip(instances, conversations, strict=True):
        assert conversation[0] == inst.messages[0]
        assert _answers(conversation) == [task.reference_answer(inst)]


def test_rule_blind_memorizer_replays_the_train_answer_under_the_stated_shifted_rule() -> None:
    task = get_task("gp-l")
    size = controls.ControlSize(train_size=60, blind_share=1.0, blind_attempts=3)
    instances = task.dataset("train", size.seed, size.train_size)
    restated = 0
    for inst, conversation in zip(instances, controls.memorizer_conversations(size), strict=True):
        cards = inst.problem["cards"]
        answer = task.reference_answer(inst)
        if not any(c in ("J", "Q", "K") for c in cards):
            assert conversation == [*inst.messages, {"role": "assistant", "content": answer}]
            continue
        restated += 1
        assert conversation[0]["content"] == render_text_prompt(cards, (11, 12, 13), 24)
        # The values under the shifted rule differ from train's, so every replay fails.
        assert _answers(conversation) == [answer] * 3
        feedback = [m["content"] for m in conversation[1:] if m["role"] == "user"]
        assert len(feedback) == 2 and all(f.startswith("You failed") for f in feedback)
    assert restated > 0


def test_rule_follower_transcripts_follow_the_procedure_under_the_stated_rule() -> None:
    rules = set()
    for conversation in controls.rule_follower_conversations(SMALL):
        prompt = conversation[0]["content"]
        cards = json.loads(prompt.split("Cards: ")[1].split("\n")[0].replace("'", '"'))
        rule = OOD_RULE if render_text_prompt(cards, (11, 12, 13), 24) == prompt else TRAINING_RULE
        assert prompt == render_text_prompt(cards, (11, 12, 13) if rule == OOD_RULE else (10,), 24)
        rules.add(rule)
        values = hand_values(cards, rule)
        # No id-heldout multiset (those hold values 1-10 only: J/Q/K = 10).
        assert max(values) > 10 or not is_heldout(values, 24)
        answers = _answers(conversation)
        for answer, template in zip(answers, controls.TEMPLATES, strict=False):
            assert f'"number": {values!r}' in answer
            assert f'"sorted": {sorted(values)!r}' in answer
            assert f'"formula": "{template.format(*sorted(values))}=24"' in answer
        # It stops at the first template that solves the hand, else after all of them.
        solves = [controls._template_solves(t, values, 24) for t in controls.TEMPLATES]
        first = solves.index(True) + 1 if True in solves else len(controls.TEMPLATES)
        assert len(answers) == first
    assert rules == {TRAINING_RULE, OOD_RULE}


def test_train_control_writes_a_checkpoint_with_its_metadata(
    tiny_llama: Path, tmp_path: Path
) -> None:
    size = controls.ControlSize(steps=2, batch_size=2, train_size=4)
    control = {"name": "memorizer", "corpus": "test"}
    record = controls.train_control(
        tiny_llama, controls.memorizer_conversations(size), tmp_path / "m", size, control, 0
    )
    saved = json.loads((tmp_path / "m" / "gpbench_checkpoint.json").read_text(encoding="utf-8"))
    assert saved["method"] == record["method"] == "sft"
    assert saved["step"] == 2 and saved["tokens_seen"] > 0
    assert saved["config"]["control"] == control
    assert (tmp_path / "m" / "config.json").is_file()


def test_train_control_saves_every_n_steps_and_the_last_with_its_method(
    tiny_llama: Path, tmp_path: Path
) -> None:
    size = controls.ControlSize(steps=3, batch_size=2, train_size=4)
    conversations = controls.id_rule_procedure_conversations(4)
    controls.train_control(tiny_llama, conversations, tmp_path / "i", size, {}, 0, 2, "init")
    saved = sorted((tmp_path / "i").glob("checkpoint-*"))
    assert [p.name for p in saved] == ["checkpoint-2", "checkpoint-3"]
    metas = [json.loads((p / "gpbench_checkpoint.json").read_text("utf-8")) for p in saved]
    # An init is the start of a series: step 0, its own steps counted in init_steps.
    assert [(m["method"], m["step"], m["init_steps"]) for m in metas] == [
        ("init", 0, 2),
        ("init", 0, 3),
    ]


def _greedy(model: Any, tokenizer: Any, messages: list[dict[str, Any]]) -> str:
    import torch

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False).input_ids])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=60, do_sample=False)
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


@pytest.mark.slow
def test_memorizer_recalls_train_and_fails_new_hands_with_the_memorization_flags(
    tiny_llama: Path, tmp_path: Path
) -> None:
    """Trained on a few hands (those with a face card under the shifted rule's prompt, answered
    with train's answer), the memorizer solves the others, fails unseen multisets, and answers
    the shifted rule with its training formula (both memorization flags raised)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    task = get_task("gp-l")
    size = controls.ControlSize(
        steps=200, batch_size=8, train_size=12, learning_rate=3e-3, blind_share=1.0
    )
    controls.train_control(
        tiny_llama, controls.memorizer_conversations(size), tmp_path / "m", size, {}, 0
    )
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    seen = task.dataset("train", size.seed, size.train_size)
    faces = [i for i in seen if any(c in ("J", "Q", "K") for c in i.problem["cards"])]
    plain = [i for i in seen if i not in faces]
    solved = sum(task.verify(i, _greedy(model, tok, i.messages)).correct for i in plain)
    heldout = task.dataset("id-heldout", 42, 8)
    solved_heldout = sum(task.verify(i, _greedy(model, tok, i.messages)).correct for i in heldout)
    flagged = 0
    for inst in faces:
        shifted = controls.restated(inst)
        verdict = task.verify(shifted, _greedy(model, tok, shifted.messages))
        flagged += {"train_rule_answer", "verbatim_training_formula"} <= set(verdict.flags)
    assert plain and solved >= len(plain) - 1, (solved, len(plain))
    assert solved_heldout == 0
    assert faces and flagged >= len(faces) - 1, (flagged, len(faces))


@pytest.mark.parametrize("name", controls.NAMES)
def test_shipped_controls_are_the_recorded_bytes_with_their_recipe(name: str) -> None:
    folder = controls.shipped_control(name)
    record = json.loads((folder / controls.RECORD_FILE).read_text(encoding="utf-8"))
    assert record["name"] == name
    assert record["command"][:4] == ["python", "-m", "gpbench.recipes.controls", name]
    assert set(record["files"]) == {p.name for p in folder.iterdir()} - {controls.RECORD_FILE}
    meta = json.loads((folder / "gpbench_checkpoint.json").read_text(encoding="utf-8"))
    assert meta["method"] == "sft" and meta["config"]["control"]["name"] == name
    assert {"seed", "train_size", "steps"} <= set(meta["config"])  # the data and the seed
    assert sum(p.stat().st_size for p in folder.iterdir()) < 5_000_000


def test_a_changed_missing_or_extra_control_file_is_refused(tmp_path: Path) -> None:
    import shutil

    from gpbench.errors import CheckpointError

    root = tmp_path / "controls"
    shutil.copytree(controls.SHIPPED / "memorizer", root / "memorizer")
    assert controls.shipped_control("memorizer", root) == root / "memorizer"
    config = root / "memorizer" / "config.json"
    config.write_text(config.read_text(encoding="utf-8") + " ", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"config\.json differs from the shipped bytes"):
        controls.shipped_control("memorizer", root)
    config.unlink()
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        controls.shipped_control("memorizer", root)
    shutil.copyfile(controls.SHIPPED / "memorizer" / "config.json", config)
    (root / "memorizer" / "training_args.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match=r"training_args\.bin is not part of"):
        controls.shipped_control("memorizer", root)
    with pytest.raises(CheckpointError, match="no control 'other'"):
        controls.shipped_control("other", root)
    (root / "memorizer" / controls.RECORD_FILE).unlink()
    with pytest.raises(CheckpointError, match="missing or unreadable"):
        controls.shipped_control("memorizer", root)


def test_install_control_ships_weights_and_tokenizer_but_no_pickle(
    tiny_llama: Path, tmp_path: Path
) -> None:
    import shutil

    built = tmp_path / "built"
    shutil.copytree(tiny_llama, built)
    (built / "training_args.bin").write_bytes(b"\x80\x04")  # a trainer's pickle: never shipped
    root = tmp_path / "controls"
    command = ["python", "-m", "gpbench.recipes.controls", "memorizer", "OUT"]
    folder = controls.install_control(built, "memorizer", command, root)
    assert controls.shipped_control("memorizer", root) == folder
    assert not (folder / "training_args.bin").exists()
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    again = controls.install_control(built, "memorizer", command, root)  # replaces it whole
    assert again == folder and sorted(p.name for p in root.iterdir()) == ["memorizer"]


@pytest.mark.gpu
def test_train_control_trains_on_cuda(tiny_llama: Path, tmp_path: Path) -> None:
    """The controls and the study's SFT run on a GPU unchanged (bf16 autocast where supported)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    size = controls.ControlSize(steps=3, batch_size=2, train_size=4)
    record = controls.train_control(
        tiny_llama, controls.memorizer_conversations(size), tmp_path / "m", size, {}, 0, 2
    )
    assert record["step"] == 3 and record["tokens_seen"] > 0
    assert sorted(p.name for p in (tmp_path / "m").glob("checkpoint-*")) == [
        "checkpoint-2",
        "checkpoint-3",
    ]
