"""``gpbench show``: look at one instance as the model sees it."""

from __future__ import annotations

from pathlib import Path

import click

from gpbench.cli.generate import parse_options
from gpbench.errors import GpbenchError
from gpbench.tasks.registry import get_task


@click.command("show")
@click.argument("task_name", metavar="TASK")
@click.option("--split", required=True, help="Split name (see `gpbench tasks`).")
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
    help="Where to write the image (vision tasks). Default: TASK-SPLIT-SEED-INDEX.png here.",
)
@click.option(
    "-O",
    "--option",
    "option_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Task option, as for `gpbench generate`.",
)
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
    if images:
        path = out_path or Path(f"{task.id}-{spec.name}-{chosen_seed}-{index}.png")
        from gpbench.generators.card_art import scene_png

        try:
            path.write_bytes(scene_png(images[0]))
        except OSError as exc:
            raise GpbenchError(f"cannot write {path}: {exc.strerror}") from None
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
