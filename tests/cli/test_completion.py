"""Shell completion: the script ``gpbench completion SHELL`` prints, and the task and split
names it completes (through click's own completion machinery, as a shell would drive it)."""

from __future__ import annotations

import pytest
from click.shell_completion import BashComplete
from click.testing import CliRunner

from gpbench.cli import cli


def _complete(*words: str) -> list[str]:
    args, incomplete = list(words[:-1]), words[-1]
    completer = BashComplete(cli, {}, "gpbench", "_GPBENCH_COMPLETE")
    return [item.value for item in completer.get_completions(args, incomplete)]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_each_shell(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert "_GPBENCH_COMPLETE" in result.output


def test_commands_options_tasks_and_splits_complete() -> None:
    assert "eval" in _complete("ev")
    assert "--split" in _complete("eval", "--sp")
    assert _complete("eval", "--task", "gp-") == ["gp-l", "gp-vl"]
    # Splits of the task already given; every task's when none is.
    assert _complete("eval", "--task", "gp-l", "--split", "ood") == ["ood-rule"]
    assert set(_complete("eval", "--split", "ood")) == {"ood-rule", "ood-color", "ood-spatial"}
    # The commands that take a task as an argument.
    assert _complete("generate", "virl") == ["virl-l", "virl-vl"]
    # (click leaves a positional TASK unparsed while an option's value is being completed, so
    # there --split offers every task's splits)
    assert set(_complete("generate", "gp-vl", "--split", "ood")) == {
        "ood-rule",
        "ood-color",
        "ood-spatial",
    }
    assert _complete("show", "gp-l", "--split", "id") == ["id", "id-heldout"]
    assert _complete("score", "virl-v") == ["virl-vl"]


def test_an_unknown_shell_is_refused() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert result.exit_code == 2 and "tcsh" in result.output
