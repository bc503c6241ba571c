"""``gpbench generate``: write task splits to disk."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gpbench.cli.completion import complete_split, complete_task
from gpbench.cli.options import parse_options
from gpbench.export import FORMATS, check_count, check_seed, write_split
from gpbench.tasks.registry import all_tasks, get_task
from gpbench.tasks.spec import TaskSpec

if TYPE_CHECKING:  # click's progress bar class is not public: named for the type checker only
    from click._termui_impl import ProgressBar

_PROGRESS_FROM = {"text": 2000, "vision": 20}  # smaller splits finish before a bar helps


@click.command("generate")
@click.argument("task_names", metavar="[TASK]...", nargs=-1, shell_complete=complete_task)
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="SPLIT",
    shell_complete=complete_split,
    help="Split to write (repeatable). Default: every split of each task.",
)
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=0),
    default=None,
    help="Instances per split. Default: the paper's size for each split (see `gpbench tasks`).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Instance seed. Default: the paper's seed for each split.",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Output folder; files go to OUTPUT/<task>/.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="jsonl",
    show_default=True,
    help=(
        "jsonl (one Instance a line); parquet; hf (OUTPUT/<task> is a datasets.DatasetDict); "
        "sft / grpo (TRL SFTTrainer / GRPOTrainer rows in OUTPUT/<task>/sft|grpo); "
        "verl (verl RL parquet in OUTPUT/<task>/verl). All but jsonl name splits as datasets "
        "allows, '-' -> '_' (ood-rule -> ood_rule), and write a dataset card (README.md)."
    ),
)
@click.option(
    "-O",
    "--option",
    "option_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Task option beyond the paper (repeatable), e.g. -O target=30 -O paired=true.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def generate(
    task_names: tuple[str, ...],
    splits: tuple[str, ...],
    count: int | None,
    seed: int | None,
    out_dir: Path,
    fmt: str,
    option_pairs: tuple[str, ...],
    quiet: bool,
) -> None:
    """Write instances of task splits, each with a manifest.

    With no arguments, writes every task's paper splits with the paper's sizes and seeds to
    ./data. Output is byte-identical for the same arguments on any machine; files appear only
    when complete.

    \b
    Examples:
      gpbench generate
      gpbench generate gp-l --split ood-rule -n 234 --seed 42 -o out/
      gpbench generate gp-l@1 --split id --format parquet -O sampling=deck
      gpbench generate gp-vl --format hf      # datasets.load_from_disk("data/gp-vl")
      gpbench generate gp-l --split train --format sft   # data/gp-l/sft, for TRL
    """
    tasks: list[TaskSpec] = [get_task(name) for name in task_names] or all_tasks()
    options = parse_options(option_pairs)
    plan: list[tuple[TaskSpec, str, int, int]] = []
    for task in tasks:
        task.resolve_options(options)  # fail before writing anything
        chosen = list(splits) or list(task.splits)
        for split in chosen:
            spec = task.split(split)
            task.instance(spec.name, 0, 0, options)  # a bad option combination fails before writing
            split_seed = spec.paper_seed if seed is None else seed
            check_seed(split_seed, fmt)  # before any split is written, not after the first
            size = spec.paper_size if count is None else count
            check_count(size, fmt)
            plan.append((task, spec.name, split_seed, size))
    for task, split, split_seed, n in plan:
        show_bar = not quiet and n >= _PROGRESS_FROM[task.modality] and sys.stderr.isatty()
        with contextlib.ExitStack() as stack:
            progress = None
            if show_bar:
                bar = stack.enter_context(
                    click.progressbar(
                        length=n, label=f"{task.id} {split}", file=sys.stderr, show_pos=True
                    )
                )
                progress = _Advance(bar)
            written = write_split(
                task, split, split_seed, n, out_dir, fmt=fmt, options=options, progress=progress
            )
        if not quiet:
            click.echo(
                f"wrote {written.path} ({written.count} instances, seed {split_seed}) "
                f"and {written.manifest_path.name}"
            )


class _Advance:
    """Turns write_split's running count into progress-bar steps."""

    def __init__(self, bar: ProgressBar[int]) -> None:
        self.bar = bar
        self.done = 0

    def __call__(self, done: int) -> None:
        self.bar.update(done - self.done)
        self.done = done
