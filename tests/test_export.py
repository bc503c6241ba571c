"""Exports as datasets users load them: DatasetDict folders, Parquet images, cards, load_split."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gpbench.errors import ConfigError, GpbenchError
from gpbench.export import dataset_split_name, load_split, split_path, write_split
from gpbench.tasks.registry import get_task

GP_L = get_task("gp-l")
GP_VL = get_task("gp-vl")


def test_split_names_map_dash_to_underscore_and_stay_distinct() -> None:
    names = {split: dataset_split_name(split) for task in ("gp-l", "gp-vl", "virl-l") for split in get_task(task).splits}  # fmt: skip
    assert names["ood-rule"] == "ood_rule" and names["id-heldout"] == "id_heldout"
    assert len(set(names.values())) == len(names)
    assert split_path(Path("d"), "gp-l", "ood-rule", "hf") == Path("d/gp-l/ood_rule")
    assert split_path(Path("d"), "gp-l", "ood-rule", "sft") == Path("d/gp-l/sft/ood_rule")
    assert split_path(Path("d"), "gp-l", "ood-rule", "jsonl") == Path("d/gp-l/ood-rule.jsonl")
    with pytest.raises(ConfigError, match="unknown format 'csv'"):
        split_path(Path("d"), "gp-l", "id", "csv")


def test_hf_writes_one_dataset_dict_per_task_with_a_card(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    write_split(GP_L, "id", 42, 4, tmp_path, fmt="hf")
    written = write_split(GP_L, "ood-rule", 42, 3, tmp_path, fmt="hf")
    loaded = datasets.load_from_disk(str(tmp_path / "gp-l"))
    assert isinstance(loaded, datasets.DatasetDict)
    assert {name: len(split) for name, split in loaded.items()} == {"id": 4, "ood_rule": 3}
    assert loaded["ood_rule"][0]["split"] == "ood-rule"
    manifest = json.loads(written.manifest_path.read_text())
    assert written.manifest_path.name == "ood-rule.manifest.json"
    assert manifest["dataset_split"] == "ood_rule" and manifest["path"] == "ood_rule"
    assert manifest["content_sha256"] == write_split(GP_L, "ood-rule", 42, 3, tmp_path / "j").content_sha256  # fmt: skip
    card = (tmp_path / "gp-l" / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n")
    assert "SFT Memorizes, RL Generalizes" in card and "Chu" in card
    assert "gpbench generate gp-l@1 --split ood-rule -n 3 --seed 42 --format hf" in card
    assert "`ood-rule` -> `ood_rule`" in card
    assert "| ood_rule | ood-rule | hf | 3 | 3 | 42 |" in card
    assert "- `messages`:" in card  # features listed


def test_hf_vision_images_are_image_features(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    write_split(GP_VL, "ood-color", 42, 2, tmp_path, fmt="hf")
    split = datasets.load_from_disk(str(tmp_path / "gp-vl"))["ood_color"]
    assert isinstance(split.features["images"].feature, datasets.Image)
    assert split[0]["images"][0].size == (1200, 1200)


@pytest.mark.parametrize("fmt", ["hf", "parquet"])
def test_text_task_exports_have_no_image_column(tmp_path: Path, fmt: str) -> None:
    datasets = pytest.importorskip("datasets")
    write_split(GP_L, "id", 42, 2, tmp_path, fmt=fmt)
    write_split(GP_VL, "id", 42, 1, tmp_path, fmt=fmt)
    if fmt == "hf":
        text = datasets.load_from_disk(str(tmp_path / "gp-l"))["id"]
        vision = datasets.load_from_disk(str(tmp_path / "gp-vl"))["id"]
    else:
        cache = str(tmp_path / "cache")
        text = datasets.load_dataset(str(tmp_path / "gp-l"), cache_dir=cache)["id"]
        vision = datasets.load_dataset(str(tmp_path / "gp-vl"), cache_dir=cache)["id"]
    assert "images" not in text.column_names and "image_paths" not in text.column_names
    assert isinstance(vision.features["images"].feature, datasets.Image)
    if fmt == "parquet":
        # gpbench's own reader still gives the text instance an empty image list.
        assert load_split(tmp_path / "gp-l" / "id.parquet")[0].instance.images == []


def test_parquet_images_load_as_image_features(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    write_split(GP_VL, "ood-rule", 42, 2, tmp_path, fmt="parquet")
    path = tmp_path / "gp-vl" / "ood_rule.parquet"
    loaded = datasets.load_dataset(
        "parquet", data_files={"ood_rule": str(path)}, cache_dir=str(tmp_path / "cache")
    )["ood_rule"]
    assert isinstance(loaded.features["images"].feature, datasets.Image)
    assert loaded[0]["images"][0].size == (1200, 1200)
    # The card's configs let load_dataset find the split from the folder alone.
    whole = datasets.load_dataset(str(tmp_path / "gp-vl"), cache_dir=str(tmp_path / "cache2"))
    assert list(whole) == ["ood_rule"] and len(whole["ood_rule"]) == 2


def test_load_split_resolves_jsonl_images_from_the_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = write_split(GP_VL, "id", 42, 2, tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    relative = Path(os.path.relpath(written.path, elsewhere))
    items = load_split(relative)
    assert [item.instance.index for item in items] == [0, 1]
    for item in items:
        [image] = item.images
        assert image.size == (1200, 1200)
        [path] = item.instance.images
        assert Path(path).is_absolute() and Path(path).is_file()
        parts = item.messages[0]["content"]
        assert parts[0] == {"type": "image", "image": image}
        assert parts[1]["type"] == "text"


def test_load_split_reads_parquet_images_and_text_splits(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from gpbench.generators.card_art import pixel_sha256

    write_split(GP_VL, "id", 42, 2, tmp_path, fmt="parquet")
    [first, _] = load_split(tmp_path / "gp-vl" / "id.parquet")
    assert first.instance == GP_VL.instance("id", 42, 0)
    assert pixel_sha256(first.images[0]) == pixel_sha256(GP_VL.images(first.instance)[0])
    text = write_split(GP_L, "id", 42, 3, tmp_path)
    assert [item.instance for item in load_split(text.path)] == list(GP_L.dataset("id", 42, 3))
    assert load_split(text.path)[0].images == []


def test_load_split_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(GpbenchError, match="no split file at"):
        load_split(tmp_path / "missing.jsonl")
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(ConfigError, match=r"reads a \.jsonl or \.parquet split, got x\.csv"):
        load_split(tmp_path / "x.csv")
    written = write_split(GP_VL, "id", 42, 1, tmp_path)
    (written.path.parent / "id" / "images" / "0.png").unlink()
    with pytest.raises(GpbenchError, match=r"image id/images/0\.png of .* is not in"):
        load_split(written.path)


def test_public_names_import_from_gpbench() -> None:
    import gpbench

    assert gpbench.load_split is load_split
    from gpbench.recipes.rewards import VerifierReward

    assert gpbench.VerifierReward is VerifierReward
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = gpbench.nope


@pytest.mark.parametrize("fmt", ["parquet", "hf", "sft", "grpo", "verl"])
def test_an_empty_split_is_refused_where_it_could_not_be_read_back(
    tmp_path: Path, fmt: str
) -> None:
    with pytest.raises(ConfigError, match=f"-n 0 writes no rows, which --format {fmt} cannot"):
        write_split(GP_L, "id", 42, 0, tmp_path, fmt=fmt)
    assert not tmp_path.joinpath("gp-l").exists()
    assert write_split(GP_L, "id", 42, 0, tmp_path).count == 0  # jsonl: an empty file is fine


def test_training_folders_get_their_own_card(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    write_split(GP_VL, "ood-rule", 42, 1, tmp_path, fmt="sft")
    card = (tmp_path / "gp-vl" / "sft" / "README.md").read_text()
    assert "--format sft -o <DIR>  # -> <DIR>/gp-vl/sft" in card
    assert 'datasets.load_from_disk("data/gp-vl/sft")["ood_rule"]' in card
    assert '`{"type": "image"}` part' in card and "<image>" not in card
    assert not (tmp_path / "gp-vl" / "README.md").exists()  # the task folder holds no export
