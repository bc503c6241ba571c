"""The CLI's root: errors from the input or the machine end as one line on stderr, exit 1."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from gpbench.cli import cli
from gpbench.errors import GpbenchError


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # nothing escaped
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def failing() -> Iterator[Callable[[BaseException], Result]]:
    """Runs a throwaway subcommand of ``gpbench`` that raises the given error."""
    raised: list[BaseException] = []

    @click.command("fail-for-test")
    def fail() -> None:
        raise raised[0]

    cli.add_command(fail)

    def run(error: BaseException) -> Result:
        raised[:] = [error]
        return CliRunner().invoke(cli, ["fail-for-test"])

    try:
        yield run
    finally:
        cli.commands.pop("fail-for-test")


def test_os_errors_name_the_path_and_the_reason(failing: Callable[..., Result]) -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "out/summary.csv")
    assert _one_line_error(failing(full)) == "Error: out/summary.csv: No space left on device"
    rename = OSError(errno.EXDEV, "Invalid cross-device link", "a/.tmp", None, "b/run")
    assert _one_line_error(failing(rename)) == "Error: a/.tmp -> b/run: Invalid cross-device link"
    assert _one_line_error(failing(PermissionError(errno.EACCES, "Permission denied", "ro/x")))
    assert _one_line_error(failing(OSError(errno.ENOSPC, "No space left on device"))) == (
        "Error: No space left on device"
    )


def test_deep_json_and_bad_text_are_one_line(failing: Callable[..., Result]) -> None:
    try:
        json.loads("[" * 100_000)
    except RecursionError as exc:
        deep = exc
    assert "nested too deeply" in _one_line_error(failing(deep))
    try:
        b"ok \xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        undecodable = exc
    assert "not UTF-8 text (invalid start byte at byte 3)" in _one_line_error(failing(undecodable))
    try:
        "\ud800".encode("utf-8")
    except UnicodeEncodeError as exc:
        unencodable = exc
    assert "U+D800, which UTF-8 cannot encode" in _one_line_error(failing(unencodable))


def test_a_message_holding_a_line_break_stays_on_one_line(
    failing: Callable[..., Result], tmp_path: Path
) -> None:
    folder = tmp_path / "a\nb"
    error = GpbenchError(f"{folder} is not a run folder\r")
    line = _one_line_error(failing(error))
    assert line.endswith("a\\nb is not a run folder\\r")


def test_programming_errors_are_not_hidden(failing: Callable[..., Result]) -> None:
    result = failing(KeyError("bug"))
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)


def _scored_run(tmp_path: Path, name: str) -> Path:
    """A small run folder written by ``gpbench score``."""
    runner = CliRunner()
    data = tmp_path / "data"
    if not data.exists():
        generated = runner.invoke(
            cli, ["generate", "gp-l", "--split", "id", "-n", "3", "-o", str(data)]
        )
        assert generated.exit_code == 0, generated.output
    instances = data / "gp-l" / "id.jsonl"
    uids = [json.loads(line)["uid"] for line in instances.read_text().splitlines()]
    responses = tmp_path / f"{name}.jsonl"
    responses.write_text("".join(json.dumps({"uid": u, "response": "1+1"}) + "\n" for u in uids))
    run = tmp_path / name
    result = runner.invoke(
        cli, ["score", "gp-l", "--instances", str(instances), "--responses", str(responses),
              "-o", str(run)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("run.json", b'{"kind": "gpbench-run", "note": "caf\xe9"}\n'),
        ("episodes.jsonl", b"\xff\n"),
        ("run.json", b"[" * 100_000),
    ],
)
def test_compare_and_merge_read_bad_run_files_in_one_line(
    tmp_path: Path, file: str, content: bytes
) -> None:
    good, bad = _scored_run(tmp_path, "a"), _scored_run(tmp_path, "b")
    (bad / file).write_bytes(content)
    for args in (["compare", good, bad], ["merge", good, bad, "-o", tmp_path / "merged"]):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        _one_line_error(result)
    assert not (tmp_path / "merged").exists()
