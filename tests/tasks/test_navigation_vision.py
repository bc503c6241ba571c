"""virl-vl: one view image per decision point, the paper's VL prompt, detection scoring."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from gpbench.cli import cli
from gpbench.export import write_split
from gpbench.generators.card_art import pixel_sha256
from gpbench.tasks.registry import get_task

TASK = get_task("virl-vl")
TEXT = get_task("virl-l")


def test_same_routes_as_the_text_task_with_an_image_per_point() -> None:
    inst = TASK.instance("id", 12, 0)
    text = TEXT.instance("id", 12, 0)
    assert inst.problem == text.problem and inst.uid != text.uid
    assert inst.images == [f"id/images/0/{k}.png" for k in range(len(inst.problem["points"]))]
    image_part, text_part = inst.messages[0]["content"]
    assert image_part == {"type": "image", "path": "id/images/0/0.png"}
    assert "[Observation format]\nYou observe a 2x2 grid of streetview images" in text_part["text"]
    assert "O_1: street view grid\nA_1:" in text_part["text"]
    assert inst.problem["points"][0]["observation"] not in text_part["text"]


def test_episode_prompts_carry_the_current_view() -> None:
    inst = TASK.instance("ood-spatial", 12, 1)
    env = TASK.episode(inst)
    answers = TASK.reference_answers(inst)
    env.step(answers[0])
    assert env.messages[0]["content"][0]["path"] == "ood-spatial/images/1/1.png"
    for answer in answers[1:]:
        assert env.step(answer).verdict.correct
    assert env.stop_reason == "solved"


def test_detection_is_scored_from_the_observation() -> None:
    inst = TASK.instance("id", 12, 2)
    point = inst.problem["points"][0]
    names = ", ".join(lm["name"] for lm in point["landmarks"])
    claim = f"{names}; You observe an intersection" if point["is_intersection"] else names
    answer = json.dumps({"current observation": claim, "action": inst.problem["actions"][0]})
    detection = TASK.verify(inst, answer).extracted["detection"]
    assert detection["intersection_correct"]
    assert detection["landmarks_named"] == detection["landmarks_visible"]
    wrong = json.dumps({"current observation": "nothing", "action": "stop()"})
    assert TASK.verify(inst, wrong).extracted["detection"]["landmarks_named"] == 0


def test_generate_writes_one_folder_of_views_per_route(tmp_path: Path) -> None:
    written = write_split(TASK, "ood-spatial", 12, 2, tmp_path)
    for line in written.path.read_text().splitlines():
        record = json.loads(line)
        inst = TASK.instance("ood-spatial", 12, record["index"])
        images = TASK.images(inst)
        assert len(record["images"]) == len(images) == len(inst.problem["points"])
        for path, image in zip(record["images"], images, strict=True):
            with Image.open(written.path.parent / path) as saved:
                assert pixel_sha256(saved.convert("RGB")) == pixel_sha256(image)


def test_show_writes_the_map_and_every_view(tmp_path: Path) -> None:
    out = tmp_path / "route"
    result = CliRunner().invoke(
        cli,
        [
            "show",
            "virl-vl",
            "--split",
            "ood-spatial",
            "--seed",
            "0",
            "--index",
            "0",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    inst = TASK.instance("ood-spatial", 0, 0)
    assert (out / "route-map.png").is_file()
    assert len(list((out / "views").iterdir())) == len(inst.problem["points"])
    assert "A_1: " in (out / "answers.txt").read_text()
