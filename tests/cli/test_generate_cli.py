from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.records import Instance
from gpbench.serialization import read_records


def _run(args: list[str], cwd: Path | None = None) -> tuple[int, str]:
    runner = CliRunner()
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(cli, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.output


def test_generate_writes_jsonl_and_manifest(tmp_path: Path) -> None:
    code, out = _run(
        [
            "generate",
            "gp-l",
            "--split",
            "ood-rule",
            "-n",
            "234",
            "--seed",
            "42",
            "-o",
            str(tmp_path),
        ]
    )
    assert code == 0, out
    path = tmp_path / "gp-l" / "ood-rule.jsonl"
    records = list(read_records(Instance, path))
    assert len(records) == 234
    assert [r.index for r in records] == list(range(234))
    assert {r.split for r in records} == {"ood-rule"} and {r.seed for r in records} == {42}
    first = json.loads(path.read_text().splitlines()[0])
    for key in (
        "uid",
        "task",
        "task_version",
        "split",
        "seed",
        "index",
        "problem",
        "reference",
        "params",
        "messages",
    ):
        assert key in first
    for key in ("cards", "suits", "values", "target", "rule"):
        assert key in first["problem"]
    manifest = json.loads((tmp_path / "gp-l" / "ood-rule.manifest.json").read_text())
    assert manifest["count"] == 234 and manifest["seed"] == 42
    assert manifest["content_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "ood-rule.jsonl" in out


@pytest.mark.slow
def test_generate_without_arguments_writes_every_paper_split_to_data(tmp_path: Path) -> None:
    code, out = _run(["generate"], cwd=tmp_path)
    assert code == 0, out
    data = tmp_path / "data" / "gp-l"
    sizes = {p.stem: sum(1 for _ in p.open()) for p in data.glob("*.jsonl")}
    assert sizes == {"train": 10_000, "id": 234, "id-heldout": 234, "ood-rule": 234}
    vision = tmp_path / "data" / "gp-vl"
    sizes = {p.stem: sum(1 for _ in p.open()) for p in vision.glob("*.jsonl")}
    assert sizes == {"train": 1000, "id": 234, "id-heldout": 234, "ood-rule": 234, "ood-color": 234}
    assert len(list((vision / "ood-color" / "images").iterdir())) == 234
    navigation = tmp_path / "data" / "virl-l"
    sizes = {p.stem: sum(1 for _ in p.open()) for p in navigation.glob("*.jsonl")}
    assert sizes == {"train": 1000, "id": 48, "id-heldout": 48, "ood-rule": 48, "ood-spatial": 18}
    views = tmp_path / "data" / "virl-vl"
    sizes = {p.stem: sum(1 for _ in p.open()) for p in views.glob("*.jsonl")}
    assert sizes == {"train": 100, "id": 48, "id-heldout": 48, "ood-rule": 48, "ood-spatial": 18}
    first = json.loads((views / "ood-spatial.jsonl").read_text().splitlines()[0])
    assert all((views / path).is_file() for path in first["images"])
    assert out.count("wrote ") == 19


def test_files_are_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    digests = []
    for hash_seed in ("0", "12345"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gpbench",
                "generate",
                "gp-l",
                "-n",
                "300",
                "-o",
                str(out),
                "-O",
                "paired=true",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        digests.append(
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "gp-l").iterdir()}
        )
    assert digests[0] == digests[1]
    assert len(digests[0]) == 8


def test_parquet_holds_the_same_instances(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    assert _run(["generate", "gp-l", "--split", "id", "-n", "50", "-o", str(tmp_path)])[0] == 0
    code, out = _run(
        [
            "generate",
            "gp-l",
            "--split",
            "id",
            "-n",
            "50",
            "-o",
            str(tmp_path),
            "--format",
            "parquet",
        ]
    )
    assert code == 0, out
    rows = pq.read_table(tmp_path / "gp-l" / "id.parquet").to_pylist()
    lines = [json.loads(x) for x in (tmp_path / "gp-l" / "id.jsonl").read_text().splitlines()]
    assert rows == lines


def test_hf_format_saves_a_loadable_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    code, out = _run(
        ["generate", "gp-l", "--split", "id", "-n", "20", "-o", str(tmp_path), "--format", "hf"]
    )
    assert code == 0, out
    ds = datasets.load_from_disk(str(tmp_path / "gp-l" / "id"))
    assert len(ds) == 20
    assert ds[0]["messages"][0]["role"] == "user"
    # Writing again replaces the folder cleanly.
    assert (
        _run(
            ["generate", "gp-l", "--split", "id", "-n", "5", "-o", str(tmp_path), "--format", "hf"]
        )[0]
        == 0
    )
    assert len(datasets.load_from_disk(str(tmp_path / "gp-l" / "id"))) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "gp-l", "--split", "ood_rule"], "did you mean 'ood-rule'"),
        (["generate", "gpl"], "unknown task 'gpl'"),
        (["generate", "gp-l", "-O", "target"], "is not NAME=VALUE"),
        (["generate", "gp-l", "-O", "sampling=poker"], "expects one of uniform, deck"),
        (["generate", "gp-l", "-O", "target=100000"], "can reach target 100000"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path: Path, args: list[str], message: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, [*args, "-o", str(tmp_path)])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.rglob("*.jsonl"))


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["generate", "gp-l", "-n", "3", "-o", str(blocker / "sub")])
    assert result.exit_code != 0
    assert "cannot create output folder" in result.output


def test_interrupted_write_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpbench import export
    from gpbench.tasks.registry import get_task

    task = get_task("gp-l")

    def explode(done: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export.write_split(task, "id", 42, 100, tmp_path, progress=explode)
    assert list(tmp_path.rglob("*")) == [tmp_path / "gp-l"]


def test_tasks_lists_ids_versions_and_splits() -> None:
    code, out = _run(["tasks"])
    assert code == 0
    assert "gp-l@1" in out and "ood-rule" in out and "id-heldout" in out
    code, out = _run(["tasks", "--json"])
    rows = json.loads(out)
    assert rows[0]["task"] == "gp-l"
    assert [s["name"] for s in rows[0]["splits"]] == ["train", "id", "id-heldout", "ood-rule"]


def test_help_teaches() -> None:
    code, out = _run(["generate", "--help"])
    assert code == 0
    assert "gpbench generate gp-l --split ood-rule -n 234 --seed 42 -o out/" in out
