"""Shell completion: task and split names for the options that take them, and the
``gpbench completion SHELL`` command that prints the script a shell sources.

Option and command names complete through click itself; this module adds the values click
cannot know (the registry's task ids and each task's splits).
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

SHELLS = ("bash", "zsh", "fish")


def complete_task(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Task ids (``gp-l``, ...) starting with ``incomplete``, each with its title."""
    from gpbench.tasks.registry import all_tasks

    return [
        CompletionItem(task.id, help=task.description)
        for task in all_tasks()
        if task.id.startswith(incomplete)
    ]


def complete_split(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Split names of the tasks already given by ``--task`` (every task's when none is: click
    leaves a positional TASK unparsed while an option's value is being completed)."""
    from gpbench.tasks.registry import all_tasks

    chosen = _chosen_tasks(ctx)
    names: dict[str, None] = {}
    for task in all_tasks():
        if not chosen or task.id in chosen:
            names.update(dict.fromkeys(task.splits))
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def _chosen_tasks(ctx: click.Context) -> set[str]:
    chosen: set[str] = set()
    for key in ("tasks", "task"):
        value = ctx.params.get(key)
        if isinstance(value, str):
            chosen.add(value.split("@", 1)[0])
        elif isinstance(value, (tuple, list)):
            chosen.update(str(v).split("@", 1)[0] for v in value)
    return chosen


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (commands, options, task and split names).

    \b
    Examples:
      eval "$(gpbench completion bash)"      # in ~/.bashrc
      eval "$(gpbench completion zsh)"       # in ~/.zshrc
      gpbench completion fish > ~/.config/fish/completions/gpbench.fish
    """
    from gpbench.cli import cli

    shell_class = get_completion_class(shell)
    if shell_class is None:  # click ships all three; kept for a click without one
        raise click.ClickException(f"this click has no {shell} completion")
    click.echo(shell_class(cli, {}, "gpbench", "_GPBENCH_COMPLETE").source())
