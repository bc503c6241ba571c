"""The gallery: which episodes it picks, and scenes re-rendered from instance keys."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from PIL import Image
from report_fixtures import misread_cards, scored_run

from gpbench.reports.gallery import THUMBNAIL_PX, choose_episodes, gallery_item, gallery_items
from gpbench.reports.groups import Group, build_groups
from gpbench.reports.inputs import find_run_folders, load_runs
from gpbench.tasks.registry import get_task


def groups_of(*roots: Path) -> list[Group]:
    runs, _ = load_runs(find_run_folders(list(roots)))
    return build_groups(runs, [], "step")


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_picks_round_robin_over_groups_up_to_the_cap(study: Path) -> None:
    groups = groups_of(study)
    assert choose_episodes(groups, 0) == []
    picks = choose_episodes(groups, 7)
    assert len(picks) == 7
    assert len({id(g) for g, _ in picks}) == 7  # seven groups, one episode each
    everything = choose_episodes(groups, 10_000)
    assert len(everything) == sum(len(g.episodes) for g in groups)
    assert len({(g.checkpoint.key, g.split, e.uid) for g, e in everything}) == len(everything)


def test_a_group_shows_memorization_failures_first_then_other_failures(study: Path) -> None:
    [sft] = [
        g for g in groups_of(study) if g.checkpoint.name == "sft-200" and g.split == "ood-rule"
    ]
    picks = [e for _, e in choose_episodes([sft], 3)]
    assert "train_rule_answer" in picks[0].flags and not picks[0].correct
    assert not picks[1].correct and "train_rule_answer" not in picks[1].flags
    assert picks[2].correct


def test_card_scene_is_the_instance_re_rendered(mixed_runs: Path) -> None:
    [group] = [g for g in groups_of(mixed_runs) if g.task == "gp-vl"]
    episode = group.episodes[0]
    item = gallery_item(group, episode)
    assert item.note == "" and [i.caption for i in item.images] == ["scene"]
    scene = decode(item.images[0].png)
    assert max(scene.size) == THUMBNAIL_PX
    task = get_task("gp-vl")
    instance = task.instance(episode.split, episode.seed, episode.index, group.options)
    expected = task.images(instance)[0].copy()
    expected.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    assert scene.convert("RGB").tobytes() == expected.convert("RGB").tobytes()
    assert item.problem == task.describe(instance)
    assert [a.status for a in item.attempts] == [t["verdict"]["status"] for t in episode.turns]
    assert item.attempts[0].feedback == episode.turns[0]["verdict"]["feedback"]


def test_route_scenes_show_the_map_and_the_view_where_the_episode_ended(
    mixed_runs: Path,
) -> None:
    groups = {g.task: g for g in groups_of(mixed_runs)}
    vision = groups["virl-vl"]
    episode = vision.episodes[0]
    item = gallery_item(vision, episode)
    last = episode.turns[-1]["decision_point"]
    assert [i.caption for i in item.images] == [
        "route map (for people; not shown to the model)",
        f"view at decision point {last + 1}",
    ]
    for image in item.images:
        assert max(decode(image.png).size) <= THUMBNAIL_PX
    text = gallery_item(groups["virl-l"], groups["virl-l"].episodes[0])
    assert [i.caption for i in text.images] == ["route map (for people; not shown to the model)"]
    assert text.multi_decision and " -> " in text.problem  # start -> destination


def test_text_puzzles_have_no_scene_but_their_problem(study: Path) -> None:
    group = groups_of(study)[0]
    item = gallery_item(group, group.episodes[0])
    assert item.images == [] and item.problem.startswith("gp-l id seed=42")


def test_a_run_without_its_options_says_why_there_is_no_scene(tmp_path: Path) -> None:
    run = scored_run(
        tmp_path / "runs",
        "small-cards",
        task_name="gp-vl",
        split="id",
        n=2,
        answers=misread_cards,
        checkpoint=None,
        options={"resolution": 256},
    )
    [group] = groups_of(run)
    assert gallery_item(group, group.episodes[0]).images  # options recorded: re-rendered
    shutil.copytree(run, tmp_path / "no-options")
    spec = json.loads((tmp_path / "no-options" / "run.json").read_text())
    del spec["options"]
    (tmp_path / "no-options" / "run.json").write_text(json.dumps(spec))
    [bare] = groups_of(tmp_path / "no-options")
    item = gallery_item(bare, bare.episodes[0])
    assert item.images == []
    assert item.note == "instance not re-generated: the run did not record its task options"


def test_scenes_stop_at_the_bound_and_later_episodes_are_text(mixed_runs: Path) -> None:
    groups = groups_of(mixed_runs)
    picks = choose_episodes(groups, 10_000)
    items = gallery_items(picks, scenes=2)
    assert len(items) == len(picks) > 2
    assert all(item.images and not item.scene_left_out for item in items[:2])
    for item, (group, episode) in zip(items[2:], picks[2:], strict=True):
        assert item.images == [] and item.scene_left_out  # every mixed task has a scene
        assert item.problem and item.problem == gallery_item(group, episode).problem
    assert [i.images for i in gallery_items(picks[:3], scenes=None)] == [
        i.images for i in gallery_items(picks[:3], scenes=3)
    ]


def test_text_puzzles_past_the_bound_lose_no_scene(study: Path) -> None:
    group = groups_of(study)[0]
    item = gallery_items([(group, group.episodes[0])], scenes=0)[0]
    assert item.images == [] and not item.scene_left_out and item.problem


def test_an_item_carries_the_return_and_the_final_status(study: Path) -> None:
    for group in groups_of(study)[:2]:
        for episode in group.episodes[:5]:
            item = gallery_item(group, episode, scene=False)
            assert item.return_ == episode.return_
            assert item.final_status == episode.turns[-1]["verdict"]["status"]
