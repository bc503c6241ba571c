"""Backends (hf on tiny offline checkpoints, scripted) and checkpoint folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpbench.errors import (
    BackendError,
    BackendOutOfMemoryError,
    CheckpointError,
    ConfigError,
    GpbenchError,
    ModelLoadError,
)
from gpbench.harness.backends import Backend, Completion, Request, Sampling, create_backend
from gpbench.harness.backends.scripted import ScriptedBackend
from gpbench.harness.checkpoints import checkpoint_metadata, discover_series, fingerprint
from gpbench.records import Instance
from gpbench.tasks.registry import all_tasks, get_task


def _request(instance: Instance, seed: int = 0, *, images: list[Any] | None = None) -> Request:
    meta = {"uid": instance.uid, "task": instance.task, "instance": instance}
    meta |= {"decision_point": 0, "attempt": 1}
    return Request(instance.messages, images or [], seed, meta)


def _gp_requests(n: int) -> list[Request]:
    task = get_task("gp-l")
    return [_request(task.instance("ood-rule", 42, i), seed=i) for i in range(n)]


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, text
    return text


# -- hf backend on the tiny Llama ---------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_backend(tiny_llama: Path) -> Iterator[Backend]:
    backend = create_backend("hf", str(tiny_llama), batch_size=4)
    yield backend
    backend.close()


def test_hf_loads_and_generates_a_batch_greedily(llama_backend: Backend) -> None:
    assert isinstance(llama_backend, Backend)
    assert llama_backend.name == "hf" and not llama_backend.supports_images
    requests = _gp_requests(6)  # more than one batch of 4
    first = llama_backend.generate(requests, Sampling(max_tokens=12))
    assert len(first) == 6 and all(isinstance(c, Completion) for c in first)
    for completion in first:
        assert completion.finish_reason in ("stop", "length")
        assert completion.prompt_tokens is not None and completion.prompt_tokens > 100
        assert completion.completion_tokens is not None and 1 <= completion.completion_tokens <= 12
        assert completion.latency_s is not None and completion.latency_s > 0
    # Greedy decoding is a function of the prompt.
    assert [c.text for c in llama_backend.generate(requests, Sampling(max_tokens=12))] == [
        c.text for c in first
    ]


def test_hf_batched_greedy_equals_batch_of_one_with_left_padding(tiny_llama: Path) -> None:
    task = get_task("gp-l")
    instance = task.instance("id", 42, 0)
    env = task.episode(instance)
    env.step("no idea")  # a revision turn: a longer, three-message conversation
    short = Request([{"role": "user", "content": "Cards: ['A', '2']"}], [], 0, {})
    requests = [_request(instance), Request(env.messages, [], 1, {}), short, _request(instance)]
    sampling = Sampling(max_tokens=10)
    batched = create_backend("hf", str(tiny_llama), batch_size=4)
    single = create_backend("hf", str(tiny_llama), batch_size=1)
    try:
        together = batched.generate(requests, sampling)
        alone = single.generate(requests, sampling)
    finally:
        batched.close()
        single.close()
    prompt_sizes = {c.prompt_tokens for c in alone}
    assert len(prompt_sizes) == 3  # the batch really was padded
    assert [c.prompt_tokens for c in together] == [c.prompt_tokens for c in alone]
    assert [c.text for c in together] == [c.text for c in alone]


def test_hf_finish_reasons_and_token_counts(
    llama_backend: Backend, tiny_llama: Path, tmp_path: Path
) -> None:
    [cut] = llama_backend.generate(_gp_requests(1), Sampling(max_tokens=3))
    assert cut.finish_reason == "length" and cut.completion_tokens == 3
    # The greedy tokens, straight from transformers (re-tokenizing text need not round-trip).
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model: Any = AutoModelForCausalLM.from_pretrained(tiny_llama)
    prompt = tokenizer.apply_chat_template(
        _gp_requests(1)[0].messages, tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    greedy = model.generate(ids, max_new_tokens=6, do_sample=False)[0, ids.shape[1] :].tolist()
    [long] = llama_backend.generate(_gp_requests(1), Sampling(max_tokens=6))
    assert long.text == tokenizer.decode(greedy, skip_special_tokens=True)
    assert long.prompt_tokens == ids.shape[1]
    # Declare the third greedy token an end-of-sequence token: the answer stops before it.
    stopper = greedy[2]
    keep = greedy.index(stopper)
    folder = tmp_path / "stops"
    shutil.copytree(tiny_llama, folder)
    generation = json.loads((folder / "generation_config.json").read_text())
    generation["eos_token_id"] = [2, stopper]
    (folder / "generation_config.json").write_text(json.dumps(generation))
    backend = create_backend("hf", str(folder))
    try:
        [stopped] = backend.generate(_gp_requests(1), Sampling(max_tokens=6))
    finally:
        backend.close()
    assert stopped.finish_reason == "stop"
    assert stopped.completion_tokens == keep + 1  # the end token counts as generated
    assert stopped.text == tokenizer.decode(greedy[:keep], skip_special_tokens=True)


def test_hf_sampling_is_seeded_by_the_request(llama_backend: Backend) -> None:
    hot = Sampling(temperature=1.5, top_p=0.95, max_tokens=8)
    base = _gp_requests(1)[0]
    texts = [
        llama_backend.generate([Request(base.messages, [], seed, {})], hot)[0].text
        for seed in (0, 0, 1, 2, 3)
    ]
    assert texts[0] == texts[1]  # same seed, same sample
    assert len(set(texts)) > 1  # and the seed matters


def test_hf_describe_is_json_and_records_the_template(llama_backend: Backend) -> None:
    info = llama_backend.describe()
    json.dumps(info)
    assert info["backend"] == "hf" and info["dtype"] == "float32" and info["device"] == "cpu"
    assert len(info["chat_template_sha256"]) == 64 and info["chat_template_source"] == "checkpoint"
    assert info["fingerprint"] == fingerprint(info["model_path"])
    assert info["packages"]["transformers"]


def test_hf_chat_template_override(tiny_llama: Path, tmp_path: Path) -> None:
    template_file = tmp_path / "t.jinja"
    template_file.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}=>")
    for setting, source in ((str(template_file), "file:"), ("plain", "builtin:plain")):
        backend = create_backend("hf", str(tiny_llama), chat_template=setting)
        try:
            assert backend.describe()["chat_template_source"].startswith(source)
            [done] = backend.generate(_gp_requests(1), Sampling(max_tokens=2))
            assert done.completion_tokens == 2
        finally:
            backend.close()
    with pytest.raises(ConfigError, match="not a file"):
        create_backend("hf", str(tiny_llama), chat_template=str(tmp_path / "missing.jinja"))


def test_hf_text_model_refuses_images(llama_backend: Backend) -> None:
    task = get_task("gp-vl")
    instance = task.instance("id", 42, 0)
    with pytest.raises(BackendError, match="text-only") as caught:
        llama_backend.generate([_request(instance, images=task.images(instance))], Sampling())
    _one_line(caught.value)


def test_hf_out_of_memory_splits_the_batch_then_reports(
    tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    backend: Any = create_backend("hf", str(tiny_llama), batch_size=4)
    real = backend._model.generate
    sizes: list[int] = []

    def picky(**kwargs: Any) -> Any:
        sizes.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(**kwargs)

    monkeypatch.setattr(backend._model, "generate", picky)
    try:
        done = backend.generate(_gp_requests(4), Sampling(max_tokens=2))
        assert len(done) == 4 and sizes[:3] == [4, 2, 1]

        def never(**kwargs: Any) -> Any:
            raise torch.OutOfMemoryError("CUDA out of memory")

        monkeypatch.setattr(backend._model, "generate", never)
        with pytest.raises(BackendOutOfMemoryError, match="out of memory") as caught:
            backend.generate(_gp_requests(1), Sampling(max_tokens=2))
        _one_line(caught.value)
    finally:
        backend.close()


# -- load errors --------------------------------------------------------------------------------


def _broken_folders(tiny_llama: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    no_config = tmp_path / "no-config"
    no_config.mkdir()
    (no_config / "model.safetensors").write_bytes(b"x")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_llama, corrupt)
    (corrupt / "config.json").write_text('{"model_type": "llama",')
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(tiny_llama / name, no_tokenizer / name)
    missing = tmp_path / "missing"
    return {
        "missing": (missing, f"model folder not found: {missing}; pass a local checkpoint folder"),
        "no config": (no_config, f"{no_config} is not a model folder (no config.json)"),
        "corrupt": (corrupt, "is not valid JSON"),
        "no tokenizer": (no_tokenizer, "has no tokenizer"),
    }


def test_hf_load_errors_are_one_line(tiny_llama: Path, tmp_path: Path) -> None:
    for case, (folder, expected) in _broken_folders(tiny_llama, tmp_path).items():
        with pytest.raises(ModelLoadError) as caught:
            create_backend("hf", str(folder))
        assert expected in _one_line(caught.value), case


def test_hf_base_model_without_template_asks_for_one(tiny_llama: Path, tmp_path: Path) -> None:
    folder = tmp_path / "base"
    shutil.copytree(tiny_llama, folder)
    (folder / "chat_template.jinja").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="chat_template=plain") as caught:
        create_backend("hf", str(folder))
    _one_line(caught.value)


def test_factory_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'scripted'"):
        create_backend("scriptd", None)
    with pytest.raises(ConfigError, match="did you mean 'error_rate'"):
        create_backend("scripted", None, eror_rate=0.1)
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        create_backend("hf", "somewhere", batch_size="0")
    with pytest.raises(ConfigError, match="needs a model"):
        create_backend("auto", None)
    with pytest.raises(ConfigError, match="temperature"):
        Sampling(temperature=-1)


# -- hf backend on the tiny Llava ---------------------------------------------------------------


def test_hf_vision_language_model_reads_images(tiny_vlm: Path) -> None:
    task = get_task("gp-vl")
    instances = [task.instance("ood-color", 42, i) for i in range(3)]
    requests = [_request(inst, images=task.images(inst)) for inst in instances]
    env = task.episode(instances[0])
    env.step("wrong")  # a revision: image in the first turn, text feedback after it
    requests.append(Request(env.messages, task.images(instances[0]), 5, {}))
    backend = create_backend("hf", str(tiny_vlm), batch_size=2)
    try:
        assert backend.supports_images
        done = backend.generate(requests, Sampling(max_tokens=5))
        alone = [backend.generate([r], Sampling(max_tokens=5))[0] for r in requests]
    finally:
        backend.close()
    assert len(done) == 4 and all(c.completion_tokens for c in done)
    # Each image expands to (32/8)^2 = 16 patch tokens in the prompt.
    assert all(c.prompt_tokens is not None and c.prompt_tokens > 16 for c in done)
    assert [c.text for c in done] == [c.text for c in alone]


# -- scripted backend ---------------------------------------------------------------------------


def _drive(task_id: str, backend: ScriptedBackend, n: int = 6) -> list[bool]:
    """Run episodes through the task's episode protocol, answering with ``backend``."""
    task = get_task(task_id)
    solved = []
    for index in range(n):
        instance = task.instance("id", 42, index)
        env = task.episode(instance)
        turn = 0
        while not env.terminated:
            meta = {"uid": instance.uid, "task": task_id, "instance": instance}
            meta |= {"decision_point": env.decision_point, "attempt": env.attempt + 1}
            [done] = backend.generate([Request(env.messages, [], turn, meta)], Sampling())
            env.step(done.text)
            turn += 1
        solved.append(env.stop_reason == "solved")
    return solved


@pytest.mark.parametrize("task_id", [t.id for t in all_tasks()])
def test_scripted_reference_solves_and_errors_fail(task_id: str) -> None:
    assert all(_drive(task_id, ScriptedBackend()))
    assert not any(_drive(task_id, ScriptedBackend(error_rate=1.0)))
    task = get_task(task_id)
    instance = task.instance("id", 42, 0)
    [wrong] = ScriptedBackend("reference:1").generate([_request(instance)], Sampling())
    assert not task.verify(instance, wrong.text).correct


def test_scripted_error_rate_is_deterministic_and_about_right() -> None:
    requests = _gp_requests(400)
    task = get_task("gp-l")
    first = create_backend("scripted", "reference:0.3", seed=1).generate(requests, Sampling())
    again = create_backend("scripted", None, error_rate="0.3", seed="1").generate(
        list(reversed(requests)), Sampling()
    )
    assert first == list(reversed(again))  # per request, not per position in the batch
    wrong = sum(
        not task.verify(r.meta["instance"], c.text).correct
        for r, c in zip(requests, first, strict=True)
    )
    assert 80 <= wrong <= 160
    other_seed = create_backend("scripted", "reference:0.3", seed=2).generate(requests, Sampling())
    assert other_seed != first


def test_scripted_constant_policy_and_errors() -> None:
    backend = create_backend("scripted", 'constant:{"formula": "1+1"}', batch_size=8)
    assert [c.text for c in backend.generate(_gp_requests(2), Sampling())] == [
        '{"formula": "1+1"}'
    ] * 2
    assert backend.describe() == {
        "backend": "scripted",
        "policy": 'constant:{"formula": "1+1"}',
        "error_rate": 0.0,
        "seed": 0,
    }
    for policy in ("refrence", "reference:lots"):
        with pytest.raises(ConfigError):
            ScriptedBackend(policy)
    with pytest.raises(ConfigError, match="error_rate"):
        ScriptedBackend(error_rate=1.5)
    with pytest.raises(ConfigError, match="meta"):
        ScriptedBackend().generate([Request([], [], 0, {})], Sampling())


# -- checkpoint folders -------------------------------------------------------------------------


def test_fingerprint_is_stable_and_sees_weight_changes(tiny_llama: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama, copy)
    (copy / "trainer_state.json").write_text("{}")  # not part of the model
    assert fingerprint(copy) == fingerprint(tiny_llama) == fingerprint(str(tiny_llama))
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    changed = fingerprint(copy)
    assert changed != fingerprint(tiny_llama)
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert fingerprint(copy) == fingerprint(tiny_llama)
    (copy / "chat_template.jinja").write_text("{{ messages }}")
    assert fingerprint(copy) != fingerprint(tiny_llama)
    with pytest.raises(CheckpointError):
        fingerprint(tmp_path / "nope")


def test_checkpoint_metadata_precedence(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-300"
    folder.mkdir()
    assert checkpoint_metadata(folder, {}) == {
        "path": str(folder.resolve()),
        "step": 300,
        "source": {"step": "folder name"},
    }
    state = {
        "global_step": 310,
        "num_input_tokens_seen": 9000,
        "total_flos": 1.5e12,
        "log_history": [],
    }
    (folder / "trainer_state.json").write_text(json.dumps(state))
    meta = checkpoint_metadata(folder, {})
    assert (meta["step"], meta["tokens_seen"], meta["total_flos"]) == (310, 9000, 1.5e12)
    assert meta["source"]["step"] == "trainer_state.json"
    (folder / "gpbench_checkpoint.json").write_text(json.dumps({"step": 320, "method": "sft"}))
    meta = checkpoint_metadata(folder, {"method": "rl", "compute": "2.5e15"})
    assert (meta["step"], meta["tokens_seen"], meta["method"], meta["compute"]) == (
        320,
        9000,
        "rl",
        2.5e15,
    )
    assert meta["source"] == {
        "step": "gpbench_checkpoint.json",
        "tokens_seen": "trainer_state.json",
        "total_flos": "trainer_state.json",
        "method": "--meta",
        "compute": "--meta",
    }
    (folder / "gpbench_checkpoint.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="not valid JSON") as caught:
        checkpoint_metadata(folder, {})
    _one_line(caught.value)


def test_discover_series_orders_by_step(tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    for name in ("checkpoint-100", "checkpoint-2", "checkpoint-10", "final", "runs"):
        (root / name).mkdir(parents=True)
        if name != "runs":  # a Trainer's log folder: not a checkpoint
            (root / name / "config.json").write_text("{}")
    (root / "final" / "gpbench_checkpoint.json").write_text('{"step": 1000}')
    expected = ["checkpoint-2", "checkpoint-10", "checkpoint-100", "final"]
    assert [p.name for p in discover_series(str(root / "*"))] == expected
    assert [p.name for p in discover_series(str(root))] == expected
    assert [p.name for p in discover_series(str(root / "checkpoint-1*"))] == [
        "checkpoint-10",
        "checkpoint-100",
    ]
    with pytest.raises(CheckpointError, match="no folder matches"):
        discover_series(str(tmp_path / "nothing-*"))
    with pytest.raises(CheckpointError, match=r"none holds config\.json"):
        discover_series(str(root / "run*"))


def test_paper_sampling_reads_generation_config(tiny_llama: Path, tmp_path: Path) -> None:
    from gpbench.harness.backends.hf import paper_sampling

    assert paper_sampling(tiny_llama) == Sampling(0.0, 1.0, 256)
    folder = tmp_path / "sampler-5"
    shutil.copytree(tiny_llama, folder)
    (folder / "generation_config.json").write_text(
        json.dumps({"do_sample": True, "temperature": 0.6, "top_p": 0.9})
    )
    assert paper_sampling(folder) == Sampling(0.6, 0.9, 256)
    assert paper_sampling(str(tmp_path / "sampler-*")) == Sampling(0.6, 0.9, 256)
    with pytest.raises(GpbenchError):
        paper_sampling(tmp_path / "nope")


def test_backend_modules_import_no_heavy_packages() -> None:
    code = (
        "import sys, gpbench.harness.backends, gpbench.harness.backends.scripted, "
        "gpbench.harness.backends.hf, gpbench.harness.checkpoints\n"
        "print(','.join(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""
