"""``gpbench eval --paper`` and ``--mode``: what the paper preset sets, and what contradicts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gpbench.cli import cli
from gpbench.runs.read import read_episodes


def _eval(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        [
            "eval",
            "--model",
            "reference:0.3",
            "--backend",
            "scripted",
            "--task",
            "gp-l",
            "--split",
            "id",
            "-q",
            "--runs-dir",
            str(tmp_path / "runs"),
            *args,
        ],
    )


def _run_folder(tmp_path: Path) -> Path:
    [folder] = (tmp_path / "runs").iterdir()
    return folder


def test_paper_sets_reference_scoring_decoding_and_the_paper_instances(tmp_path: Path) -> None:
    result = _eval(tmp_path, "--paper")
    assert result.exit_code == 0, result.output
    key = json.loads((_run_folder(tmp_path) / "run.json").read_text())["run_key"]
    assert key["mode"] == "reference"
    assert key["sampling"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256}
    assert (key["n"], key["seed"], key["budget"], key["samples"]) == (234, 42, 5, 1)
    # The paper's rewards: the scripted policy's wrong answers use the cards' values, so every
    # failed attempt gets one of the paper's reasons, never gpbench's default wording.
    feedback = [
        turn["verdict"]["feedback"]
        for episode in read_episodes(_run_folder(tmp_path))
        for turn in episode.turns
        if not turn["verdict"]["correct"]
    ]
    assert feedback and all(f.startswith("You failed this trial because ") for f in feedback)
    assert not any("does not evaluate to" in f for f in feedback)  # gpbench default's wording


@pytest.mark.parametrize(
    "flags",
    [
        ("--mode", "reference"),
        ("--max-tokens", "256"),
        ("--samples", "1"),
    ],
)
def test_paper_accepts_flags_that_repeat_it(tmp_path: Path, flags: tuple[str, ...]) -> None:
    assert _eval(tmp_path, "--paper", *flags).exit_code == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--mode", "gpbench"), "--mode gpbench contradicts --paper"),
        (("--max-tokens", "512"), "--max-tokens 512 contradicts --paper"),
        (("--temperature", "0.7"), "--temperature 0.7 contradicts --paper"),
        (("--top-p", "0.9"), "--top-p 0.9 contradicts --paper"),
        (("-n", "5"), "-n 5 contradicts --paper"),
        (("--seed", "42"), "--seed 42 contradicts --paper"),
        (("--samples", "4"), "--samples 4 contradicts --paper"),
        (("--max-attempts", "1"), "--max-attempts 1 contradicts --paper"),
    ],
)
def test_paper_refuses_contradicting_flags_in_one_line(
    tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    result = _eval(tmp_path, "--paper", *flags)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_help_says_what_paper_sets() -> None:
    text = " ".join(CliRunner().invoke(cli, ["eval", "--help"]).output.split())
    for fragment in ("--mode reference", "generation_config.json", "--max-tokens 256", "GP 234"):
        assert fragment in text


def test_mode_reference_reaches_the_verifier_and_run_json(tmp_path: Path) -> None:
    result = _eval(tmp_path, "--mode", "reference", "-n", "12")
    assert result.exit_code == 0, result.output
    folder = _run_folder(tmp_path)
    assert json.loads((folder / "run.json").read_text())["run_key"]["mode"] == "reference"
    rewards = {
        turn["verdict"]["reward"] for episode in read_episodes(folder) for turn in episode.turns
    }
    assert 5.0 in rewards
