"""``gpbench show``: look at one instance as the model sees it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from gpbench.cli.completion import complete_split, complete_task
from gpbench.cli.options import parse_options, task_option
from gpbench.errors import GpbenchError
from gpbench.records import Instance
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec


@click.command("show")
@click.argument("task_name", metavar="TASK", shell_complete=complete_task)
@click.option(
    "--split",
    required=True,
    shell_complete=complete_split,
    help="Split name (see `gpbench tasks`).",
)
@click.option(
    "--seed", type=int, default=None, help="Instance seed. Default: the split's paper seed."
)
@click.option("--index", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "-o",
    "--output",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the image (gp-vl: a .png file) or the images (virl-vl: a folder with "
    "one view per decision point, route-map.png and answers.txt). "
    "Default: TASK-SPLIT-SEED-INDEX[.png] here.",
)
@task_option()
@click.option("--prompt/--no-prompt", default=False, help="Also print the prompt text.")
def show(
    task_name: str,
    split: str,
    seed: int | None,
    index: int,
    out_path: Path | None,
    option_pairs: tuple[str, ...],
    prompt: bool,
) -> None:
    """Print one instance's hand (or problem) and write its image for a person to look at.

    \b
    Example:
      gpbench show gp-vl --split ood-color --seed 42 --index 3 -o card.png
    """
    task = get_task(task_name)
    spec = task.split(split)
    chosen_seed = spec.paper_seed if seed is None else seed
    instance = task.instance(spec.name, chosen_seed, index, parse_options(option_pairs))
    click.echo(task.describe(instance))
    images = task.images(instance)
    stem = f"{task.id}-{spec.name}-{chosen_seed}-{index}"
    if len(images) > 1:  # one image per decision point (virl-vl): a folder
        _write_episode_folder(task, instance, images, out_path or Path(stem))
    elif images:
        path = out_path or Path(f"{stem}.png")
        _write_png(path, images[0])
        click.echo(f"wrote {path} ({images[0].width}x{images[0].height})")
    elif out_path is not None:
        raise GpbenchError(f"{task.id} is a text task with no image; drop -o")
    if prompt or not images:
        for message in instance.messages:
            content = message["content"]
            text = (
                content
                if isinstance(content, str)
                else "\n".join(p.get("text") or f"<image {p.get('path')}>" for p in content)
            )
            click.echo(f"--- {message['role']} ---{text}")


def _write_png(path: Path, image: Any) -> None:
    from gpbench.generators.card_art import scene_png

    _write_bytes(path, scene_png(image))


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise GpbenchError(f"cannot write {path}: {exc.strerror}") from None


def _write_episode_folder(
    task: TaskSpec, instance: Instance, images: list[Any], folder: Path
) -> None:
    """The model's view at every decision point, the task's debug views of a whole episode
    (virl-vl: its route map) and the reference answer at every point, named by step."""
    if folder.exists() and not folder.is_dir():
        raise GpbenchError(f"{folder} is a file; give -o a folder for {task.id}")
    try:
        (folder / "views").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GpbenchError(f"cannot create {folder}: {exc.strerror}") from None
    for step, image in enumerate(images):
        _write_png(folder / "views" / f"{step:03d}.png", image)
    largest = max(max(image.size) for image in images)
    extra = task.debug_views(instance, point=len(images) - 1, max_px=largest)
    names = [f"{_slug(view.caption)}.png" for view in extra]
    for name, view in zip(names, extra, strict=True):
        _write_bytes(folder / name, view.png)
    answers = task.reference_answers(instance)
    lines = [
        f"{step:03d}.png  A_{step + 1}: {' '.join(a.split())}" for step, a in enumerate(answers)
    ]
    _write_bytes(folder / "answers.txt", ("\n".join(lines) + "\n").encode("utf-8"))
    click.echo(f"wrote {len(images)} views in {folder}/views/, {', '.join(names)} and answers.txt")


def _slug(caption: str) -> str:
    """A file name from a caption: its words before any parenthesis, joined by dashes."""
    words = re.findall(r"[a-z0-9]+", caption.split("(")[0].lower())
    return "-".join(words) or "view"
