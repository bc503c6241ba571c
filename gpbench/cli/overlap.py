"""``gpbench overlap``: how many evaluation instances a training file already holds."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from gpbench.cli.options import parse_options, task_option


@click.command("overlap")
@click.option(
    "--train",
    "train_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Training data, JSON lines: gpbench instances or chat examples "
    '({"messages": [...]}, {"prompt": ..., "completion": ...}, {"text": ...}).',
)
@click.option("--task", required=True, help="Evaluation task (gp-l, gp-vl, virl-l, virl-vl).")
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="SPLIT",
    help="Evaluation split (repeatable). Default: every split but train.",
)
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluation instances per split. Default: the paper's size.",
)
@click.option("--seed", type=int, default=None, help="Instance seed. Default: the paper's.")
@task_option("Task option of the evaluation instances, as for `gpbench generate`.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON lines.")
def overlap(
    train_file: Path,
    task: str,
    splits: tuple[str, ...],
    count: int | None,
    seed: int | None,
    option_pairs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Count evaluation instances whose problem a training file already holds.

    Problems are compared by canonical content: sorted card values, target and rule for
    GeneralPoints; city and route for V-IRL (a chat line's instruction text, as it names no
    city). Lines that cannot be read are counted and skipped.

    \b
    Examples:
      gpbench overlap --train my_sft.jsonl --task gp-l --split id-heldout
      gpbench overlap --train data/gp-l/train.jsonl --task gp-l
    """
    from gpbench.recipes.overlap import overlap as compare
    from gpbench.recipes.overlap import read_training_keys
    from gpbench.tasks.registry import get_task

    spec = get_task(task)
    names = list(splits) or [s for s in spec.splits if s != "train"]
    for name in names:
        spec.split(name)  # unknown split: one line with a did-you-mean hint
    options = parse_options(option_pairs)
    training = read_training_keys(train_file, spec)
    for name in names:
        split = spec.split(name)
        report = compare(
            training,
            spec,
            name,
            split.paper_seed if seed is None else seed,
            split.paper_size if count is None else count,
            options,
        )
        if as_json:
            click.echo(json.dumps({**asdict(report), "rate": report.rate}, sort_keys=True))
            continue
        click.echo(
            f"{report.task} {name} (seed {report.seed}, {report.eval_instances} instances): "
            f"{len(report.overlapping)} in {train_file} ({100 * report.rate:.1f}%)"
        )
    if not as_json:
        click.echo(
            f"read {training.lines} lines: {training.instance_lines} gpbench instances, "
            f"{training.chat_lines} chat examples, {training.skipped} skipped; "
            f"{len(training.problems)} distinct problems"
        )
        for example in training.skipped_examples:
            click.echo(f"  skipped {example}")
