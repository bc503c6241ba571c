"""PEFT adapter folders and Trainer ``checkpoint-N`` folders, written by the libraries on CPU."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.errors import BackendUnavailableError, MissingDependencyError, ModelLoadError
from gpbench.harness.adapters import apply_adapter, vllm_lora_request, vllm_lora_settings
from gpbench.harness.backends import Sampling
from gpbench.harness.checkpoints import checkpoint_metadata, discover_series, fingerprint
from gpbench.harness.evaluate import EvalConfig, evaluate
from gpbench.harness.folders import find_adapter
from gpbench.runs.read import read_episodes, read_run_spec

pytest.importorskip("transformers")
pytest.importorskip("peft")

EVAL = ("--task", "gp-l", "--split", "id", "-n", "2", "--max-tokens", "16", "--max-attempts", "1")


@pytest.fixture(scope="module")
def lora(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A LoRA adapter over the tiny Llama (random, non-zero B so it changes answers), saved by
    peft, and the same adapter merged by peft into a full checkpoint."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("lora")
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    config = LoraConfig(
        r=4,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "down_proj"],
        init_lora_weights=False,
    )
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(root / "adapter")
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(root / "merged")
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(root / "merged")
    return {"adapter": root / "adapter", "merged": root / "merged", "root": root}


def _eval(*args: str) -> Any:
    return CliRunner().invoke(cli, ["eval", *args])


def _texts(runs: Path) -> list[list[str]]:
    [folder] = list(runs.iterdir())
    return [[turn["response"] for turn in episode.turns] for episode in read_episodes(folder)]


def test_adapter_answers_equal_the_merged_models_and_not_the_bases(
    lora: dict[str, Path], tiny_llama: Path, tmp_path: Path
) -> None:
    texts = {}
    for name, model in (
        ("adapter", lora["adapter"]),
        ("merged", lora["merged"]),
        ("base", tiny_llama),
    ):
        result = _eval(
            "--model", str(model), *EVAL, "--batch-size", "1", "--runs-dir", str(tmp_path / name)
        )
        assert result.exit_code == 0, result.output
        texts[name] = _texts(tmp_path / name)
    assert texts["adapter"] == texts["merged"]
    assert texts["adapter"] != texts["base"]  # the adapter was applied
    [folder] = list((tmp_path / "adapter").iterdir())
    spec = read_run_spec(folder)
    assert spec["backend"]["adapter"]["base_path"] == str(tiny_llama.resolve())
    assert spec["backend"]["adapter"]["merged"] is True
    assert spec["checkpoint"]["metadata"]["adapter"]["peft_type"] == "LORA"
    assert spec["checkpoint"]["fingerprint"] == fingerprint(lora["adapter"])


def test_fingerprint_covers_the_adapter_and_its_base(
    lora: dict[str, Path], tiny_llama: Path, tmp_path: Path
) -> None:
    original = fingerprint(lora["adapter"])
    assert original != fingerprint(tiny_llama)
    other_base = tmp_path / "other-base"
    shutil.copytree(tiny_llama, other_base)
    weights = other_base / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    weights.write_bytes(bytes(data))
    assert fingerprint(lora["adapter"], other_base) != original
    assert checkpoint_metadata(lora["adapter"], None, other_base)["adapter"]["base_from"] == (
        "--base-model"
    )
    assert fingerprint(lora["adapter"]) == original
    changed = tmp_path / "changed"
    shutil.copytree(lora["adapter"], changed)
    adapter_weights = changed / "adapter_model.safetensors"
    data = bytearray(adapter_weights.read_bytes())
    data[-1] ^= 1
    adapter_weights.write_bytes(bytes(data))
    assert fingerprint(changed) != original


def test_a_missing_base_is_one_line_naming_base_model(
    lora: dict[str, Path], tiny_llama: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved-adapter"
    shutil.copytree(lora["adapter"], moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone" / "base")
    (moved / "adapter_config.json").write_text(json.dumps(config))
    result = _eval("--model", str(moved), *EVAL, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code != 0
    assert "--base-model" in result.output and "gone" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    # --base-model supplies it; the run records where the base came from.
    result = _eval(
        "--model",
        str(moved),
        "--base-model",
        str(tiny_llama),
        *EVAL,
        "--runs-dir",
        str(tmp_path / "ok"),
    )
    assert result.exit_code == 0, result.output
    [folder] = list((tmp_path / "ok").iterdir())
    assert read_run_spec(folder)["backend"]["adapter"]["base_from"] == "--base-model"
    assert _texts(tmp_path / "ok")  # it evaluated
    # A Python caller passing the base in EvalConfig gets the CLI's run key: the run is reused.
    config = EvalConfig(
        model=str(moved),
        base_model=str(tiny_llama),
        tasks=("gp-l",),
        splits=("id",),
        n=2,
        sampling=Sampling(0.0, 1.0, 16),
        max_attempts=1,
        runs_dir=tmp_path / "ok",
    )
    [run], _ = evaluate(config)
    assert run.folder == folder and run.reused
    # ... and refuses to be ignored on a full checkpoint.
    result = _eval("--model", str(tiny_llama), "--base-model", str(tiny_llama), *EVAL)
    assert result.exit_code != 0 and "holds none; drop --base-model" in result.output


def test_adapters_are_discovered_in_a_series(lora: dict[str, Path], tmp_path: Path) -> None:
    series = tmp_path / "run"
    for step in (20, 10):
        shutil.copytree(lora["adapter"], series / f"checkpoint-{step}")
    (series / "runs").mkdir()  # a Trainer's log folder: not a checkpoint
    found = discover_series(str(series))
    assert [p.name for p in found] == ["checkpoint-10", "checkpoint-20"]
    assert checkpoint_metadata(found[0])["step"] == 10


def test_without_peft_the_error_names_the_extra(
    lora: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = find_adapter(lora["adapter"])
    assert adapter is not None
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'gpbench\[peft\]'"):
        apply_adapter(object(), adapter)


def test_wrong_base_is_a_load_error(lora: dict[str, Path]) -> None:
    adapter = find_adapter(lora["adapter"])
    assert adapter is not None
    from transformers import AutoModelForCausalLM

    # A model without the adapter's target modules at those names.
    other = AutoModelForCausalLM.from_config(_gpt2_config())
    with pytest.raises(ModelLoadError, match="--base-model"):
        apply_adapter(other, adapter)


def _renamed_adapter(source: Path, target: Path, rename: Any) -> Path:
    """A copy of an adapter folder whose tensor names went through ``rename``."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    state = load_file(source / "adapter_model.safetensors")
    renamed = {rename(k): v for k, v in state.items()}
    save_file(renamed, target / "adapter_model.safetensors", metadata={"format": "pt"})
    return target


@pytest.mark.parametrize(
    ("case", "rename", "words"),
    [
        # Layer 1's tensors named for a layer 7 the base lacks: misplaced and missing.
        ("other-layers", lambda k: k.replace(".layers.1.", ".layers.7."), "layers.7."),
        # Saved from a wrapper: nothing fits, PEFT warns and the bare base would be evaluated.
        (
            "prefixed",
            lambda k: k.replace("base_model.model.", "base_model.model.module."),
            "module",
        ),
    ],
)
def test_an_adapter_whose_tensors_do_not_fit_the_base_is_refused(
    lora: dict[str, Path], tmp_path: Path, case: str, rename: Any, words: str
) -> None:
    folder = _renamed_adapter(lora["adapter"], tmp_path / case, rename)
    result = _eval("--model", str(folder), *EVAL, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code != 0 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert f"refusing the adapter {folder}" in line and "--base-model" in line, line
    assert "fit no adapter module of the base" in line and words in line, line
    assert "are not in the file" in line, line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_adapter_with_only_extra_tensors_is_refused(
    lora: dict[str, Path], tmp_path: Path
) -> None:
    """Tensors for a layer the base lacks, beside a complete adapter: PEFT drops them without a
    word, and the run would not evaluate the adapter that was trained."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "extra"
    shutil.copytree(lora["adapter"], folder)
    state = load_file(folder / "adapter_model.safetensors")
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    extra = key.replace(".layers.0.", ".layers.9.")
    save_file({**state, extra: state[key].clone()}, folder / "adapter_model.safetensors")
    adapter = find_adapter(folder)
    assert adapter is not None
    base = AutoModelForCausalLM.from_pretrained(adapter.base)
    with pytest.raises(ModelLoadError, match=r"1 adapter tensor\(s\) fit no adapter module") as e:
        apply_adapter(base, adapter)
    assert extra in str(e.value) and "are not in the file" not in str(e.value)


def test_prompt_learning_adapters_load_and_stay_strict(tiny_llama: Path, tmp_path: Path) -> None:
    """PEFT loads a prompt encoder's tensors apart from the model's load_state_dict (which lists
    them as unexpected): they are its own, not misplaced; anything beyond them is refused."""
    from peft import PrefixTuningConfig, PromptTuningConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    for name, config in (
        ("prompt", PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)),
        ("prefix", PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)),
    ):
        folder = tmp_path / name
        get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama), config).save_pretrained(
            folder
        )
        adapter = find_adapter(folder)
        assert adapter is not None and adapter.prompt_learning
        wrapped = apply_adapter(AutoModelForCausalLM.from_pretrained(tiny_llama), adapter)
        assert type(wrapped).__module__.startswith("peft")  # stays wrapped
    state = load_file(folder / "adapter_model.safetensors")
    save_file({**state, "stray.weight": next(iter(state.values())).clone()}, folder / "x")
    (folder / "x").replace(folder / "adapter_model.safetensors")
    with pytest.raises(ModelLoadError, match=r"stray\.weight"):
        apply_adapter(AutoModelForCausalLM.from_pretrained(tiny_llama), adapter)


def test_convert_keeps_no_merge_that_does_not_load_back(
    lora: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merged folder is loaded back strictly before it is renamed into place."""
    from safetensors.torch import load_file, save_file

    from gpbench.harness import convert

    copy = convert._copy_processing

    def copy_then_lose_a_tensor(source: Path, out: Path) -> None:
        copy(source, out)  # ... and a save that silently lost a tensor:
        state = load_file(out / "model.safetensors")
        state.pop("model.norm.weight")
        save_file(state, out / "model.safetensors", metadata={"format": "pt"})

    monkeypatch.setattr(convert, "_copy_processing", copy_then_lose_a_tensor)
    out = tmp_path / "merged"
    result = CliRunner().invoke(cli, ["convert", str(lora["adapter"]), "-o", str(out)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "does not load back strictly, so it was not kept" in line, line
    assert "model.norm.weight" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def _gpt2_config() -> Any:
    from transformers import GPT2Config

    return GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=64)


def test_vllm_lora_settings(lora: dict[str, Path], tmp_path: Path) -> None:
    adapter = find_adapter(lora["adapter"])
    assert adapter is not None
    settings = vllm_lora_settings(adapter)
    assert settings == {"enable_lora": True, "max_lora_rank": 8, "max_loras": 1}
    for change, words in (
        ({"use_dora": True}, "DoRA"),
        ({"peft_type": "IA3"}, "IA3 adapter"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ):
        folder = tmp_path / words.split()[0]
        shutil.copytree(lora["adapter"], folder)
        config = json.loads((folder / "adapter_config.json").read_text())
        (folder / "adapter_config.json").write_text(json.dumps({**config, **change}))
        other = find_adapter(folder)
        assert other is not None
        with pytest.raises(BackendUnavailableError, match=words) as caught:
            vllm_lora_settings(other)
        assert f"gpbench convert {folder}" in str(caught.value)


def test_vllm_lora_request_names_the_adapter_folder(lora: dict[str, Path]) -> None:
    pytest.importorskip("vllm")
    adapter = find_adapter(lora["adapter"])
    assert adapter is not None
    request = vllm_lora_request(adapter)
    assert request.lora_path == str(lora["adapter"].resolve()) and request.lora_int_id == 1


def test_convert_merges_an_adapter_into_a_full_checkpoint(
    lora: dict[str, Path], tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "merged-by-gpbench"
    result = CliRunner().invoke(cli, ["convert", str(lora["adapter"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "converted peft-adapter" in result.output
    ours = load_file(out / "model.safetensors")
    peft_merged = load_file(lora["merged"] / "model.safetensors")
    assert ours.keys() == peft_merged.keys()
    assert all((ours[k] == peft_merged[k]).all() for k in ours)
    record = json.loads((out / "gpbench_checkpoint.json").read_text())
    assert record["merged_from"] == str(lora["adapter"].resolve())
    assert record["source_fingerprint"] == fingerprint(lora["adapter"])
    assert (out / "tokenizer.json").is_file()
    again = CliRunner().invoke(cli, ["convert", str(lora["adapter"]), "-o", str(out)])
    assert again.exit_code == 0 and "already converted" in again.output


@pytest.mark.slow
def test_trainer_checkpoints_are_evaluated_as_a_series(tiny_llama: Path, tmp_path: Path) -> None:
    """transformers' Trainer saves checkpoint-1 and checkpoint-2; the sweep reads their steps
    from trainer_state.json and evaluates them in order."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    texts = ["user 3 4 5 6 assistant (3+5-4)*6", "user 1 2 3 4 assistant (1+2+3)*4"] * 2
    data = [tokenizer(text) for text in texts]
    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        save_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_llama),
        args=args,
        train_dataset=data,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        processing_class=tokenizer,
    )
    trainer.train()
    pattern = str(tmp_path / "out" / "checkpoint-*")
    assert [p.name for p in discover_series(pattern)] == ["checkpoint-1", "checkpoint-2"]
    result = _eval("--model", pattern, *EVAL, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    metas = sorted(
        (
            read_run_spec(folder)["checkpoint"]["metadata"]
            for folder in (tmp_path / "runs").iterdir()
        ),
        key=lambda meta: meta["step"],
    )
    assert [(m["step"], m["source"]["step"]) for m in metas] == [
        (1, "trainer_state.json"),
        (2, "trainer_state.json"),
    ]
    assert len({m["path"] for m in metas}) == 2


def test_paper_sampling_of_an_adapter_reads_its_base_generation_config(
    lora: dict[str, Path], tiny_llama: Path, tmp_path: Path
) -> None:
    import json
    import shutil

    from gpbench.harness.backends.hf import paper_sampling

    base = tmp_path / "base"
    shutil.copytree(tiny_llama, base)
    (base / "generation_config.json").write_text(
        json.dumps({"do_sample": True, "temperature": 0.6, "top_p": 0.9})
    )
    adapter = tmp_path / "adapter"
    shutil.copytree(lora["adapter"], adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(base)
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    sampling = paper_sampling(adapter)
    assert (sampling.temperature, sampling.top_p, sampling.max_tokens) == (0.6, 0.9, 256)
