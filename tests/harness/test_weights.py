"""Strict weight loading: weights that do not fit the model are refused in one line, never
evaluated as random weights (gpbench.harness.weights, through the real `gpbench eval`)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.errors import ModelLoadError
from gpbench.harness.weights import check_weight_files, likely_cause

pytest.importorskip("transformers")

EVAL = ("--split", "id", "-n", "1", "--max-tokens", "4", "--max-attempts", "1")


def _variant(
    source: Path,
    target: Path,
    tensors: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    config: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Path:
    """A copy of ``source`` with its tensors and/or config.json rewritten."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    if tensors is not None:
        state = load_file(source / "model.safetensors")
        save_file(tensors(state), target / "model.safetensors", metadata={"format": "pt"})
    if config is not None:
        data = json.loads((source / "config.json").read_text())
        (target / "config.json").write_text(json.dumps(config(data)))
    return target


def _eval(model: Path, runs: Path, task: str = "gp-l") -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["eval", "--model", str(model), "--task", task, *EVAL, "--runs-dir", str(runs)]
    )
    return result.exit_code, result.output


def _refused_in_one_line(code: int, output: str, runs: Path) -> str:
    """The error line of a refused eval; nothing was run, nothing marked complete."""
    assert code != 0, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert not runs.exists() or not any(runs.iterdir())
    return errors[0]


def _gpt2_config(config: dict[str, Any]) -> dict[str, Any]:
    """Another architecture's config (GPT-2), sized like the tiny Llama, over Llama weights."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_layer": 2,
        "n_head": 2,
        "n_embd": 128,
        "vocab_size": config["vocab_size"],
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


CASES: dict[str, tuple[Any, Any, list[str]]] = {
    "ddp-prefix": (
        lambda state: {f"module.{k}": v for k, v in state.items()},
        None,
        ["21 parameter(s) missing", "module.lm_head.weight", "'module.' prefix", "DataParallel"],
    ),
    "compile-prefix": (
        lambda state: {f"_orig_mod.{k}": v for k, v in state.items()},
        None,
        ["_orig_mod.model.embed_tokens.weight", "'_orig_mod.' prefix", "torch.compile"],
    ),
    "gpt2-config": (
        None,
        _gpt2_config,
        [
            "GPT2LMHeadModel",
            "model_type 'gpt2'",
            "model.embed_tokens.weight",
            "another architecture",
        ],
    ),
    "missing-tensor": (
        lambda state: {k: v for k, v in state.items() if k != "model.layers.1.mlp.up_proj.weight"},
        None,
        ["1 parameter(s) missing", "model.layers.1.mlp.up_proj.weight", "partial save"],
    ),
    "extra-tensor": (
        lambda state: {**state, "v_head.summary.weight": state["model.norm.weight"].clone()},
        None,
        ["1 tensor(s) in the weights", "v_head.summary.weight", "value head"],
    ),
    "other-size": (
        None,
        lambda config: {**config, "intermediate_size": 192},
        ["another shape", "model.layers.0.mlp.down_proj.weight", "another size"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_weights_that_do_not_fit_are_refused_through_eval(
    tiny_llama: Path, tmp_path: Path, case: str
) -> None:
    tensors, config, expected = CASES[case]
    folder = _variant(tiny_llama, tmp_path / case, tensors, config)
    line = _refused_in_one_line(*_eval(folder, tmp_path / "runs"), tmp_path / "runs")
    assert f"refusing the weights of {folder}" in line
    for words in expected:
        assert words in line, (words, line)


def test_the_same_checkpoint_unbroken_evaluates(tiny_llama: Path, tmp_path: Path) -> None:
    """The variants above differ from a checkpoint that loads only in what they break."""
    folder = _variant(tiny_llama, tmp_path / "copy", lambda state: dict(state))
    code, output = _eval(folder, tmp_path / "runs")
    assert code == 0, output


def test_a_vision_checkpoint_with_a_prefix_is_refused(tiny_vlm: Path, tmp_path: Path) -> None:
    folder = _variant(
        tiny_vlm, tmp_path / "vlm", lambda state: {f"module.{k}": v for k, v in state.items()}
    )
    code, output = _eval(folder, tmp_path / "runs", task="gp-vl")
    line = _refused_in_one_line(code, output, tmp_path / "runs")
    assert "LlavaForConditionalGeneration" in line and "'module.' prefix" in line


def test_tied_weights_saved_once_are_not_missing(tiny_llama: Path, tmp_path: Path) -> None:
    """An lm_head tied to the embeddings is saved once; that is the architecture's own rule."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, LlamaForCausalLM

    from gpbench.harness.weights import load_pretrained

    config = AutoConfig.from_pretrained(tiny_llama)
    config.tie_word_embeddings = True
    torch.manual_seed(0)
    folder = tmp_path / "tied"
    LlamaForCausalLM(config).save_pretrained(folder)
    assert "lm_head.weight" not in load_file(folder / "model.safetensors")
    model = load_pretrained(LlamaForCausalLM, folder)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_a_truncated_safetensors_file_is_one_line(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _variant(tiny_llama, tmp_path / "truncated")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    line = _refused_in_one_line(*_eval(folder, tmp_path / "runs"), tmp_path / "runs")
    assert f"{weights} is truncated" in line and "copy the file again" in line
    weights.write_bytes(data[:5])
    with pytest.raises(ModelLoadError, match="not even a header"):
        check_weight_files(folder)
    weights.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelLoadError, match="is not a safetensors file"):
        check_weight_files(folder)


@pytest.fixture(scope="module")
def sharded(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama saved in several safetensors shards with model.safetensors.index.json."""
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("sharded") / "model"
    AutoModelForCausalLM.from_pretrained(tiny_llama).save_pretrained(folder, max_shard_size="300KB")
    for path in tiny_llama.iterdir():
        if not path.name.startswith("model"):
            shutil.copy(path, folder / path.name)
    return folder


def test_a_sharded_folder_with_a_missing_shard_is_one_line(sharded: Path, tmp_path: Path) -> None:
    shards = sorted(sharded.glob("model-*.safetensors"))
    assert len(shards) > 2 and (sharded / "model.safetensors.index.json").is_file()
    assert check_weight_files(sharded) == shards
    folder = _variant(sharded, tmp_path / "partial")
    (folder / shards[1].name).unlink()
    line = _refused_in_one_line(*_eval(folder, tmp_path / "runs"), tmp_path / "runs")
    assert f"missing 1 of the {len(shards)} shard(s)" in line and shards[1].name in line


def test_a_shard_from_another_save_is_refused(sharded: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = _variant(sharded, tmp_path / "mixed")
    shard = sorted(folder.glob("model-*.safetensors"))[0]
    state = load_file(shard)
    dropped = sorted(state)[0]
    save_file({k: v for k, v in state.items() if k != dropped}, shard, metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=f"lacks 1 tensor.*{dropped}.*different saves"):
        check_weight_files(folder)


def test_an_index_naming_a_file_outside_the_folder_is_refused(
    sharded: Path, tmp_path: Path
) -> None:
    folder = _variant(sharded, tmp_path / "escape")
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    first = next(iter(data["weight_map"]))
    data["weight_map"][first] = "../../elsewhere.safetensors"
    index.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="outside the checkpoint folder"):
        check_weight_files(folder)


class _Marker:
    """Unpickling this object writes a marker file: what a hostile pickle could do instead."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.path}",))


def test_a_pickle_with_code_is_refused_without_the_advice_to_run_it(
    tiny_llama: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    folder = _variant(tiny_llama, tmp_path / "pickled")
    state: dict[str, Any] = dict(load_file(folder / "model.safetensors"))
    marker = tmp_path / "ran"
    state["model.norm.weight"] = _Marker(marker)
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    line = _refused_in_one_line(*_eval(folder, tmp_path / "runs"), tmp_path / "runs")
    assert not marker.exists()
    assert "refusing the pickled weights" in line and "system" in line and "safetensors" in line
    assert "weights_only" not in line  # torch's own message advises turning it off: never


def test_a_plain_tensor_pickle_loads(tiny_llama: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from gpbench.harness.weights import load_pretrained

    folder = _variant(tiny_llama, tmp_path / "bin")
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    model = load_pretrained(AutoModelForCausalLM, folder)
    original = load_file(tiny_llama / "model.safetensors")
    assert torch.equal(model.model.norm.weight, original["model.norm.weight"])


def test_a_tokenizer_larger_than_the_embeddings_is_refused(
    tiny_llama: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_llama)
    config.vocab_size = 256  # the tokenizer has 512 tokens
    folder = tmp_path / "small-vocab"
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    for path in tiny_llama.iterdir():
        if path.name.startswith("tokenizer") or path.suffix == ".jinja":
            shutil.copy(path, folder / path.name)
    line = _refused_in_one_line(*_eval(folder, tmp_path / "runs"), tmp_path / "runs")
    assert "has 512 tokens" in line and "256 rows" in line


def test_no_weight_files_is_one_line(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _variant(tiny_llama, tmp_path / "bare")
    (folder / "model.safetensors").unlink()
    line = _refused_in_one_line(*_eval(folder, tmp_path / "runs"), tmp_path / "runs")
    assert "has no weights" in line


@pytest.mark.parametrize(
    ("missing", "unexpected", "words"),
    [
        (["a.w", "b.w"], ["backbone.a.w", "backbone.b.w"], "extra 'backbone.' prefix"),
        (["model.a.w", "model.b.w"], ["a.w", "b.w"], "lack the 'model.' prefix"),
        (["a.w"], ["a._fsdp_wrapped_module.w"], "FSDP"),
        ([f"k{i}" for i in range(9)], ["x", "y"], "another architecture"),
        ([f"k{i}" for i in range(9)], [], "partial or truncated"),
        (["k1"], [], "partial save"),
        ([], ["extra.w"], "smaller variant"),
        (["k1"], ["other.w"], "different variants"),
    ],
)
def test_likely_causes(missing: list[str], unexpected: list[str], words: str) -> None:
    assert words in likely_cause(missing, unexpected, False, 10, "LlamaForCausalLM")
