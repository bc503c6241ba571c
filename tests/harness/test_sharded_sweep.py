"""A sweep split over processes (``--shard i/N``, as a cluster's array jobs run it) and joined
with ``gpbench merge`` equals the same sweep run by one process."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.records import Episode
from gpbench.runs.read import read_episodes, read_run_spec


def _launch(*args: str) -> subprocess.Popen[str]:
    """``gpbench eval ARGS`` in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "gpbench", "eval", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0, out


def _merge_groups(parts: Path, out: Path) -> dict[str, Path]:
    """Merge the shard runs of each checkpoint x task x split (the folder name's first three
    fields), as the README's loop does."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for folder in sorted(parts.iterdir()):
        groups["__".join(folder.name.split("__")[:3])].append(folder)
    merged = {}
    for name, folders in groups.items():
        result = CliRunner().invoke(cli, ["merge", *map(str, folders), "-o", str(out / name)])
        assert result.exit_code == 0, result.output
        merged[name] = out / name
    return merged


def _single(runs: Path) -> dict[str, Path]:
    return {"__".join(f.name.split("__")[:3]): f for f in runs.iterdir()}


def _sorted(folder: Path) -> list[Episode]:
    """A run's episodes by instance and sample (a run writes them as they finish; merge sorts)."""
    return sorted(read_episodes(folder), key=lambda e: (e.index, e.sample))


def _without_timing(episode: Episode) -> Episode:
    return replace(episode, turns=[{**t, "latency_s": None} for t in episode.turns])


def test_two_scripted_shard_processes_merge_to_the_single_process_run(tmp_path: Path) -> None:
    common = (
        "--backend",
        "scripted",
        "--model",
        "reference:0.4",
        "--task",
        "gp-l",
        "--task",
        "virl-l",
        "--split",
        "id",
        "--split",
        "ood-rule",
        "-n",
        "9",
    )
    parts, whole = tmp_path / "parts", tmp_path / "whole"
    _wait(
        _launch(*common, "--shard", "0/2", "--runs-dir", str(parts)),
        _launch(*common, "--shard", "1/2", "--runs-dir", str(parts)),
        _launch(*common, "--runs-dir", str(whole)),
    )
    assert len(list(parts.iterdir())) == 8  # 2 tasks x 2 splits x 2 shards
    merged = _merge_groups(parts, tmp_path / "merged")
    single = _single(whole)
    assert merged.keys() == single.keys() and len(merged) == 4
    for name, folder in merged.items():
        assert list(read_episodes(folder)) == _sorted(single[name]), name
        assert read_run_spec(folder)["run_key"] == read_run_spec(single[name])["run_key"]
        # the merged run.json's summary is the merged episodes', equal to the single run's
        assert read_run_spec(folder)["summary"] == read_run_spec(single[name])["summary"], name


@pytest.mark.slow
def test_two_hf_shard_processes_merge_to_the_single_process_run(
    tiny_llama: Path, tmp_path: Path
) -> None:
    """Greedy decoding at batch size 1 on one machine: the same answers, whichever process
    produced them (latency aside)."""
    pytest.importorskip("transformers")
    common = (
        "--backend",
        "hf",
        "--model",
        str(tiny_llama),
        "--task",
        "gp-l",
        "--split",
        "ood-rule",
        "-n",
        "4",
        "--max-tokens",
        "12",
        "--max-attempts",
        "2",
        "--batch-size",
        "1",
    )
    parts, whole = tmp_path / "parts", tmp_path / "whole"
    _wait(
        _launch(*common, "--shard", "0/2", "--runs-dir", str(parts)),
        _launch(*common, "--shard", "1/2", "--runs-dir", str(parts)),
    )
    _wait(_launch(*common, "--runs-dir", str(whole)))
    merged = _merge_groups(parts, tmp_path / "merged")
    single = _single(whole)
    assert merged.keys() == single.keys() and len(merged) == 1
    for name, folder in merged.items():
        ours = [_without_timing(e) for e in read_episodes(folder)]
        assert ours == [_without_timing(e) for e in _sorted(single[name])]
        assert len(ours) == 4 and all(t["response"] for e in ours for t in e.turns)
        assert read_run_spec(folder)["run_key"] == read_run_spec(single[name])["run_key"]
