"""Vision splits on disk: PNG files for jsonl, bytes for parquet, datasets.Image for hf."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from gpbench.export import write_split
from gpbench.generators.card_art import pixel_sha256
from gpbench.tasks.registry import get_task

TASK = get_task("gp-vl")


def test_jsonl_writes_one_png_per_instance_referenced_by_relative_path(tmp_path: Path) -> None:
    written = write_split(TASK, "ood-color", 42, 6, tmp_path)
    lines = [json.loads(x) for x in written.path.read_text().splitlines()]
    assert len(lines) == 6
    for line in lines:
        [image_path] = line["images"]
        assert line["messages"][0]["content"][0] == {"type": "image", "path": image_path}
        png = written.path.parent / image_path
        with Image.open(png) as image:
            assert image.size == (1200, 1200)
            inst = TASK.instance("ood-color", 42, line["index"])
            assert pixel_sha256(image.convert("RGB")) == pixel_sha256(TASK.images(inst)[0])
    manifest = json.loads(written.manifest_path.read_text())
    assert manifest["images"]["pillow_version"]
    assert manifest["content_sha256"] == written.content_sha256
    # Rewriting with fewer instances leaves no stale images behind.
    write_split(TASK, "ood-color", 42, 2, tmp_path)
    assert sorted(p.name for p in (tmp_path / "gp-vl" / "ood-color" / "images").iterdir()) == [
        "0.png",
        "1.png",
    ]


def test_manifest_hash_is_the_same_across_formats_and_hash_seeds(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    a = write_split(TASK, "id", 42, 3, tmp_path / "a")
    b = write_split(TASK, "id", 42, 3, tmp_path / "b", fmt="parquet")
    assert a.content_sha256 == b.content_sha256
    code = (
        "from pathlib import Path; from gpbench.export import write_split;"
        "from gpbench.tasks.registry import get_task;"
        f"print(write_split(get_task('gp-vl'), 'id', 42, 3, Path({str(tmp_path / 'c')!r})).content_sha256)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "977"},
    )
    assert out.stdout.strip() == a.content_sha256
    for name in ("0.png", "1.png", "2.png"):
        first = (tmp_path / "a" / "gp-vl" / "id" / "images" / name).read_bytes()
        assert first == (tmp_path / "c" / "gp-vl" / "id" / "images" / name).read_bytes()


def test_parquet_holds_png_bytes_and_the_jsonl_paths(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    written = write_split(TASK, "ood-rule", 42, 3, tmp_path, fmt="parquet")
    assert written.path.name == "ood_rule.parquet"
    rows = pq.read_table(written.path).to_pylist()
    assert len(rows) == 3
    for row in rows:
        [image] = row["images"]
        assert image["path"] == f"ood-rule/images/{row['index']}.png"
        with Image.open(io.BytesIO(image["bytes"])) as png:
            assert png.size == (1200, 1200)


def test_hf_uses_image_features_and_placeholders(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    written = write_split(TASK, "ood-color", 42, 3, tmp_path, fmt="hf")
    ds = datasets.load_from_disk(str(written.path))
    assert isinstance(ds.features["images"].feature, datasets.Image)
    row = ds[0]
    assert row["images"][0].size == (1200, 1200)
    assert row["messages"][0]["content"][0]["type"] == "image"
    assert row["messages"][0]["content"][1]["type"] == "text"


def test_hf_refuses_to_replace_a_folder_of_jsonl_images(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    from gpbench.errors import GpbenchError

    write_split(TASK, "id", 42, 2, tmp_path)
    with pytest.raises(GpbenchError, match="not a saved dataset"):
        write_split(TASK, "id", 42, 2, tmp_path, fmt="hf")
    assert (tmp_path / "gp-vl" / "id" / "images" / "0.png").exists()
