from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gpbench.cli.options import meta_option, parse_meta, parse_options, parse_pairs, task_option
from gpbench.errors import ConfigError


def test_pairs_split_at_the_first_equals_sign_and_strip_spaces() -> None:
    assert parse_pairs(("a=1", " b = x=y ")) == {"a": "1", "b": "x=y"}
    assert parse_options(("target=30",)) == {"target": "30"}
    assert parse_meta(("method=sft", "step=")) == {"method": "sft", "step": ""}


def test_a_bad_pair_is_a_one_line_error_naming_the_flag() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_meta(("method",))
    assert str(caught.value) == "--meta 'method' is not NAME=VALUE (e.g. --meta method=sft)"
    with pytest.raises(ConfigError, match="option '=1' is not NAME=VALUE"):
        parse_options(("=1",))


def test_the_shared_options_fill_their_parameters() -> None:
    @click.command()
    @task_option()
    @meta_option("Metadata.")
    def command(option_pairs: tuple[str, ...], meta_pairs: tuple[str, ...]) -> None:
        click.echo(f"{parse_options(option_pairs)} {parse_meta(meta_pairs)}")

    result = CliRunner().invoke(command, ["-O", "a=1", "--option", "b=2", "--meta", "step=3"])
    assert result.exit_code == 0, result.output
    assert result.output == "{'a': '1', 'b': '2'} {'step': '3'}\n"
    assert "NAME=VALUE" in CliRunner().invoke(command, ["--help"]).output
