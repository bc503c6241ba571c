"""The CLI's option parsers and the click options several commands share (one definition each).

>>> parse_pairs(("target=30", " paired = true"))
{'target': '30', 'paired': 'true'}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from gpbench.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

TASK_OPTION_HELP = "Task option, as for `gpbench generate`."


def parse_pairs(
    pairs: tuple[str, ...], what: str = "option", example: str = "-O target=30"
) -> dict[str, str]:
    """``("a=1", "b=x")`` -> ``{"a": "1", "b": "x"}``, with a one-line error for a bad pair."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{what} {pair!r} is not NAME=VALUE (e.g. {example})")
        parsed[name.strip()] = value.strip()
    return parsed


def parse_options(pairs: tuple[str, ...]) -> dict[str, str]:
    """Task options given as ``-O NAME=VALUE``."""
    return parse_pairs(pairs)


def parse_meta(pairs: tuple[str, ...]) -> dict[str, str]:
    """Checkpoint metadata given as ``--meta KEY=VAL``."""
    return parse_pairs(pairs, "--meta", "--meta method=sft")


def task_option(help_text: str = TASK_OPTION_HELP) -> Callable[[F], F]:
    """``-O/--option NAME=VALUE`` (repeatable) into the ``option_pairs`` parameter."""
    return click.option(
        "-O", "--option", "option_pairs", multiple=True, metavar="NAME=VALUE", help=help_text
    )


def meta_option(help_text: str) -> Callable[[F], F]:
    """``--meta KEY=VAL`` (repeatable) into the ``meta_pairs`` parameter."""
    return click.option("--meta", "meta_pairs", multiple=True, metavar="KEY=VAL", help=help_text)
