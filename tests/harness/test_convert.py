"""Sharded checkpoints: verl's FSDP layout saved by torch.distributed, detection, `gpbench convert`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.errors import CheckpointError
from gpbench.harness.checkpoints import checkpoint_metadata
from gpbench.harness.folders import find_sharded, loadable_folder
from gpbench.runs.read import read_episodes, read_run_spec

pytest.importorskip("transformers")

EVAL = ("--task", "gp-l", "--split", "id", "-n", "2", "--max-tokens", "12", "--max-attempts", "1")

# Two gloo processes shard the tiny Llama with FSDP2 (torch.distributed.fsdp.fully_shard) and
# save it as verl's FSDPCheckpointManager does: each rank torch.saves its sharded state dict
# (DTensors) to model_world_size_{W}_rank_{R}.pt, rank 0 writes huggingface/ (config and
# tokenizer) and fsdp_config.json.
FSDP_SAVER = """
import json, sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def work(rank, world, base, actor, store):
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from transformers import AutoModelForCausalLM, AutoTokenizer

    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("fsdp",))
    model = AutoModelForCausalLM.from_pretrained(base)
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    torch.save(model.state_dict(), actor / f"model_world_size_{world}_rank_{rank}.pt")
    if rank == 0:
        model.config.save_pretrained(actor / "huggingface")
        AutoTokenizer.from_pretrained(base).save_pretrained(actor / "huggingface")
        (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": world}))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    base, actor, store = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    actor.mkdir(parents=True)
    mp.spawn(work, args=(2, base, actor, store), nprocs=2)
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """gpbench's cache in the test's folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("GPBENCH_CACHE_DIR", str(folder))
    return folder


def _hf_files(source: Path, target: Path) -> Path:
    """Config and tokenizer of ``source`` (no weights) in ``target``."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix != ".safetensors":
            shutil.copy(path, target / path.name)
    return target


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


@pytest.mark.slow
def test_fsdp2_shards_in_verls_layout_convert_exactly_and_evaluate(
    tiny_llama: Path, tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from safetensors.torch import load_file

    script = tmp_path / "save_fsdp.py"
    script.write_text(FSDP_SAVER)
    step = tmp_path / "ckpts" / "global_step_7"
    subprocess.run(
        [sys.executable, str(script), str(tiny_llama), str(step / "actor"), str(tmp_path / "pg")],
        check=True,
        timeout=300,
    )
    assert sorted(p.name for p in (step / "actor").glob("*.pt")) == [
        "model_world_size_2_rank_0.pt",
        "model_world_size_2_rank_1.pt",
    ]
    sharded = find_sharded(step)
    assert sharded is not None and find_sharded(step / "actor") == sharded
    assert (sharded.kind, sharded.world_size, sharded.step, sharded.method) == (
        "verl-fsdp",
        2,
        7,
        "rl",
    )

    # Never converted silently: evaluating it names the command.
    result = _run("eval", "--model", str(step), *EVAL, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code != 0 and f"gpbench convert {step}" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()
    series = str(tmp_path / "ckpts" / "global_step_*")
    result = _run("eval", "--model", series, *EVAL, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code != 0 and "gpbench convert" in result.output

    result = _run("convert", str(step))
    assert result.exit_code == 0, result.output
    [converted] = list((cache / "converted").iterdir())
    assert f"-> {converted}" in result.output and "step 7" in result.output
    original = load_file(tiny_llama / "model.safetensors")
    ours = load_file(converted / "model.safetensors")
    assert ours.keys() == original.keys()
    for key, tensor in original.items():
        assert ours[key].dtype == tensor.dtype and bool((ours[key] == tensor).all()), key
    record = json.loads((converted / "gpbench_checkpoint.json").read_text())
    assert record["step"] == 7 and record["method"] == "rl"
    assert record["converted_from"] == str(step.resolve())
    assert (record["world_size"], record["fsdp_version"]) == (2, 2)
    assert record["source_format"] == "verl-fsdp" and len(record["source_fingerprint"]) == 64
    assert (converted / "tokenizer.json").is_file()
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".")]

    again = _run("convert", str(step / "actor"))
    assert (
        again.exit_code == 0
        and f"already converted (verl-fsdp, step 7): {converted}" in again.output
    )
    assert loadable_folder(step) == converted
    assert checkpoint_metadata(step)["step"] == 7

    # The series now evaluates through the cached conversion, and says so.
    result = _run(
        "eval", "--model", series, *EVAL, "--batch-size", "1", "--runs-dir", str(tmp_path / "runs")
    )
    assert result.exit_code == 0, result.output
    # On the gpbench logger, which the command line shows on stderr; once, however often the
    # folder is looked up.
    notes = [r.getMessage() for r in caplog.records if "using its conversion" in r.getMessage()]
    assert len(notes) == 1 and f"using its conversion cached at {converted}" in notes[0]
    [run] = list((tmp_path / "runs").iterdir())
    meta = read_run_spec(run)["checkpoint"]["metadata"]
    assert (meta["step"], meta["method"], meta["source_format"]) == (7, "rl", "verl-fsdp")
    result = _run(
        "eval",
        "--model",
        str(tiny_llama),
        *EVAL,
        "--batch-size",
        "1",
        "--runs-dir",
        str(tmp_path / "base"),
    )
    assert result.exit_code == 0, result.output
    [base_run] = list((tmp_path / "base").iterdir())
    answers = [[t["response"] for t in e.turns] for e in read_episodes(run)]
    assert answers == [[t["response"] for t in e.turns] for e in read_episodes(base_run)]


def test_incomplete_rank_files_are_named(tmp_path: Path) -> None:
    actor = tmp_path / "global_step_3" / "actor"
    actor.mkdir(parents=True)
    (actor / "model_world_size_4_rank_0.pt").write_bytes(b"x")
    (actor / "model_world_size_4_rank_2.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"world size 4 but no .* rank\(s\) 1, 3"):
        find_sharded(tmp_path / "global_step_3")


def test_a_failed_conversion_leaves_nothing(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    actor = tmp_path / "global_step_5" / "actor"
    _hf_files(tiny_llama, actor / "huggingface")
    for rank in range(2):
        (actor / f"model_world_size_2_rank_{rank}.pt").write_bytes(b"not a torch file")
    result = _run("convert", str(actor.parent))
    assert result.exit_code != 0 and "cannot read" in result.output and "rank_0.pt" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (cache / "converted").exists() or not list((cache / "converted").iterdir())
    out = tmp_path / "out"
    result = _run("convert", str(actor.parent), "-o", str(out))
    assert result.exit_code != 0 and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "global_step_5"]


def test_deepspeed_zero_is_detected_and_needs_deepspeed(
    tiny_llama: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Trainer's checkpoint-9 under ZeRO-3 without gathered weights: config, tokenizer,
    # trainer_state.json, `latest` and the tag folder with DeepSpeed's per-rank files.
    root = _hf_files(tiny_llama, tmp_path / "checkpoint-9")
    (root / "trainer_state.json").write_text(json.dumps({"global_step": 9}))
    (root / "latest").write_text("global_step9")
    tag = root / "global_step9"
    tag.mkdir()
    for name in (
        "zero_pp_rank_0_mp_rank_00_model_states.pt",
        "bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt",
    ):
        (tag / name).write_bytes(b"\0")
    sharded = find_sharded(root)
    assert sharded is not None
    assert (sharded.kind, sharded.step, sharded.hf_folder, sharded.zero_tag) == (
        "deepspeed-zero",
        9,
        root,
        "global_step9",
    )
    assert find_sharded(tag) is not None
    result = _run("eval", "--model", str(root), *EVAL)
    assert result.exit_code != 0 and f"gpbench convert {root}" in result.output
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # as on a machine without it
    monkeypatch.setitem(sys.modules, "deepspeed.utils", None)
    monkeypatch.setitem(sys.modules, "deepspeed.utils.zero_to_fp32", None)
    # DeepSpeed's loader unpickles its files fully: never without an explicit yes.
    result = _run("convert", str(root))
    assert result.exit_code != 0 and f"gpbench convert {root} --trust-pickles" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = _run("convert", str(root), "--trust-pickles")
    assert result.exit_code != 0 and "pip install deepspeed" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (cache / "converted").exists() or not list((cache / "converted").iterdir())


def test_loadable_and_unconvertible_folders(tiny_llama: Path, tmp_path: Path) -> None:
    assert find_sharded(tiny_llama) is None and loadable_folder(tiny_llama) == tiny_llama
    result = _run("convert", str(tiny_llama))
    assert result.exit_code != 0 and "already a Hugging Face folder" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run("convert", str(empty))
    assert result.exit_code != 0 and "nothing to convert" in result.output


def test_mesh_folding_joins_hsdp_and_2d_shards() -> None:
    """verl's HSDP mesh (ddp, fsdp) with (Replicate, Shard(0)), and two shard dimensions."""
    import torch
    from torch.distributed.tensor import Replicate, Shard

    from gpbench.harness.convert import _walk

    full = torch.arange(24.0).reshape(4, 6)

    class Fake:
        def __init__(self, mesh: Any, placements: Any) -> None:
            self.device_mesh = type("Mesh", (), {"mesh": mesh})()
            self.placements = placements

    mesh = torch.arange(4).reshape(2, 2)
    pieces = {0: full[:2], 1: full[2:], 2: full[:2] + 100, 3: full[2:] + 100}  # 2, 3: replicas
    seen: list[int] = []

    def visit(rank: int) -> Any:
        seen.append(rank)
        return pieces[rank]

    def cat(parts: list[Any], dim: int) -> Any:
        return torch.cat(parts, dim=dim)

    joined = _walk("w", Fake(mesh, (Replicate(), Shard(0))), visit, cat)
    assert torch.equal(joined, full) and seen == [0, 1]
    rows = full.tensor_split(2, dim=0)
    quarters = {
        2 * i + j: part
        for i, row in enumerate(rows)
        for j, part in enumerate(row.tensor_split(2, dim=1))
    }
    joined = _walk("w", Fake(mesh, (Shard(0), Shard(1))), quarters.__getitem__, cat)
    assert torch.equal(joined, full)
    from torch.distributed.tensor import Partial

    with pytest.raises(CheckpointError, match="Partial"):
        _walk("w", Fake(mesh, (Partial(), Shard(0))), quarters.__getitem__, cat)


def _verl_plain(tiny_llama: Path, step: Path, state: dict[str, Any] | None = None) -> Path:
    """verl's layout saved by one rank: model_world_size_1_rank_0.pt with plain tensors (what
    the merger takes as replicated) and huggingface/ with the config and tokenizer."""
    import torch
    from safetensors.torch import load_file

    actor = step / "actor"
    _hf_files(tiny_llama, actor / "huggingface")
    if state is None:
        state = dict(load_file(tiny_llama / "model.safetensors"))
    torch.save(state, actor / "model_world_size_1_rank_0.pt")
    return step


def _leave_marker(path: str) -> int:
    """What a hostile pickle runs on load (here: it only writes a file)."""
    Path(path).write_text("ran")
    return 0


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_leave_marker, (self.marker,))


def test_plain_tensor_rank_files_convert_as_weights_only(
    tiny_llama: Path, tmp_path: Path, cache: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    step = _verl_plain(tiny_llama, tmp_path / "global_step_3")
    result = _run("convert", str(step))
    assert result.exit_code == 0, result.output
    [converted] = list((cache / "converted").iterdir())
    ours, original = (
        load_file(converted / "model.safetensors"),
        load_file(tiny_llama / "model.safetensors"),
    )
    assert ours.keys() == original.keys()
    assert all(torch.equal(ours[k], original[k]) for k in original)


def test_a_rank_file_whose_pickle_runs_code_is_refused(
    tiny_llama: Path, tmp_path: Path, cache: Path
) -> None:
    from safetensors.torch import load_file

    marker = tmp_path / "ran"
    state: dict[str, Any] = dict(load_file(tiny_llama / "model.safetensors"))
    state["model.norm.weight"] = _Hostile(marker)
    step = _verl_plain(tiny_llama, tmp_path / "global_step_4", state)
    result = _run("convert", str(step))
    assert result.exit_code != 0 and not marker.exists()
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert "model_world_size_1_rank_0.pt" in result.output and "_leave_marker" in result.output
    assert "--trust-pickles" in result.output and "weights_only" not in result.output
    assert not (cache / "converted").exists() or not list((cache / "converted").iterdir())
    # --trust-pickles unpickles fully, as verl's merger does: the file's code runs.
    result = _run("convert", str(step), "--trust-pickles")
    assert marker.read_text() == "ran"
    assert result.exit_code != 0 and "not a tensor" in result.output


def test_a_conversion_that_does_not_load_back_is_not_kept(
    tiny_llama: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file, save_file

    from gpbench.harness import convert

    copy = convert._copy_processing

    def copy_then_lose_a_tensor(source: Path, out: Path) -> None:
        copy(source, out)  # ... and a save that silently lost a tensor:
        state = load_file(out / "model.safetensors")
        state.pop("model.layers.0.mlp.up_proj.weight")
        save_file(state, out / "model.safetensors", metadata={"format": "pt"})

    monkeypatch.setattr(convert, "_copy_processing", copy_then_lose_a_tensor)
    step = _verl_plain(tiny_llama, tmp_path / "global_step_5")
    result = _run("convert", str(step))
    assert result.exit_code != 0 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "does not load back strictly, so it was not kept" in line, line
    assert "model.layers.0.mlp.up_proj.weight" in line
    assert not (cache / "converted").exists() or not list((cache / "converted").iterdir())
