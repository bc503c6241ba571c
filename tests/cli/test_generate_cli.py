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
    # A text task's parquet has no images column (the JSON lines keep their empty list).
    assert all(line.pop("images") == [] for line in lines)
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


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
@pytest.mark.parametrize("seed", [2**63, -(2**63) - 1, 10**30])
def test_seeds_beyond_int64_are_refused_for_parquet_and_hf(
    tmp_path: Path, fmt: str, seed: int
) -> None:
    result = CliRunner().invoke(
        cli, ["generate", "gp-l", "--split", "id", "--split", "ood-rule", "-n", "2",
              "--seed", str(seed), "--format", fmt, "-o", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        f"Error: --seed must be in [-2**63, 2**63) for --format {fmt} (its seed column is "
        f"int64), got {seed}; use --format jsonl for larger seeds"
    ]
    assert list(tmp_path.iterdir()) == []


def test_seeds_beyond_int64_are_valid_in_jsonl_and_at_the_int64_edges(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    for seed in (2**63 - 1, -(2**63)):
        args = ["generate", "gp-l", "--split", "id", "-n", "2", "--seed", str(seed)]
        code, out = _run([*args, "--format", "parquet", "-o", str(tmp_path / str(seed))])
        assert code == 0, out
        table = pq.read_table(tmp_path / str(seed) / "gp-l" / "id.parquet")
        assert table.column("seed").to_pylist() == [seed, seed]
    code, out = _run(["generate", "gp-l", "--split", "id", "-n", "2", "--seed", str(2**70),
                      "-o", str(tmp_path / "big")])  # fmt: skip
    assert code == 0, out
    records = list(read_records(Instance, tmp_path / "big" / "gp-l" / "id.jsonl"))
    assert [r.seed for r in records] == [2**70, 2**70]


_FULL_DISK = """
import resource, signal, sys
from gpbench.cli import cli
# A file-size limit makes the kernel refuse writes past it (EFBIG), as a full disk does (ENOSPC).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
cli.main(sys.argv[1:], prog_name="gpbench")
"""


def test_a_full_disk_is_one_line_and_keeps_the_old_split_and_manifest(tmp_path: Path) -> None:
    args = ["generate", "gp-l", "--split", "id", "-o", str(tmp_path)]
    assert _run([*args, "-n", "5"])[0] == 0
    folder = tmp_path / "gp-l"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, *args, "-n", "200"],
        capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"Error: cannot write {folder / 'id.jsonl'}: File too large"
    ]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporary file


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


def test_new_data_never_sits_beside_the_old_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpbench import export
    from gpbench.errors import GpbenchError
    from gpbench.tasks.registry import get_task

    task = get_task("gp-l")
    export.write_split(task, "id", 42, 3, tmp_path)
    manifest = tmp_path / "gp-l" / "id.manifest.json"
    assert json.loads(manifest.read_text())["count"] == 3

    def fail(target: Path, text: str) -> None:
        raise GpbenchError(f"cannot write {target}: No space left on device")

    monkeypatch.setattr(export, "write_text_atomic", fail)
    with pytest.raises(GpbenchError, match="No space left"):
        export.write_split(task, "id", 42, 5, tmp_path)
    # The data is the new split; the old manifest (count 3, another hash) is gone, not left.
    assert sum(1 for _ in (tmp_path / "gp-l" / "id.jsonl").open()) == 5
    assert not manifest.exists()


def test_help_says_how_split_names_change_for_datasets() -> None:
    code, out = _run(["generate", "--help"])
    assert code == 0
    flat = " ".join(out.split())
    assert "'-' -> '_'" in flat and "-> ood_rule)" in flat  # click may wrap inside ood-rule
    assert "sft / grpo" in flat and "verl" in flat


def test_hf_splits_of_one_task_load_as_one_dataset_dict_and_q_is_silent(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    args = ["generate", "gp-l", "--split", "id", "--split", "ood-rule", "-n", "3"]
    result = CliRunner().invoke(cli, [*args, "--format", "hf", "-q", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # no progress bars from datasets either
    loaded = datasets.load_from_disk(str(tmp_path / "gp-l"))
    assert sorted(loaded) == ["id", "ood_rule"]
    code, out = _run([*args, "--format", "sft", "-o", str(tmp_path)])
    assert code == 0, out
    assert f"wrote {tmp_path / 'gp-l' / 'sft' / 'ood_rule'} (3 instances" in out
    assert sorted(datasets.load_from_disk(str(tmp_path / "gp-l" / "sft"))) == ["id", "ood_rule"]
