"""The main job's readings from run folders: the controls' separation and the study's direction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_fixtures import episode_lines, eval_run, write_episode_lines

from gpbench.errors import GpbenchError
from gpbench.recipes import demo_results
from gpbench.reports.inputs import load_run

SPLITS = ("id", "id-heldout", "ood-rule")


def _runs(root: Path, model: str, n: int = 20, **meta: str) -> list[Path]:
    return [eval_run(root, model=model, splits=(s,), n=n, meta=meta) for s in SPLITS]


def _flag_every_first_answer(folder: Path, flag: str) -> None:
    lines = []
    for line in episode_lines(folder):
        episode = json.loads(line)
        episode["turns"][0]["verdict"]["flags"] = [flag]
        lines.append(json.dumps(episode) + "\n")
    write_episode_lines(folder, lines)


def test_controls_separated_needs_both_the_success_gap_and_the_flag_gap(tmp_path: Path) -> None:
    memorizer = _runs(tmp_path, "reference:1.0", control="memorizer")  # never right
    _runs(tmp_path, "reference", control="rule-follower")  # always right
    s = demo_results.controls_separation(tmp_path, SPLITS)
    assert [r.split for r in s.splits] == list(SPLITS)
    ood = s.splits[2]
    assert (ood.memorizer.successes, ood.rule_follower.successes) == (0, 20)
    assert ood.comparison.b_only == 20 and ood.comparison.p_value < 1e-5
    assert 0.7 < ood.comparison.low < 1.0 == ood.comparison.high  # a 20-of-20 paired gap
    # No answer is flagged train_rule_answer: the flag half of the separation fails, by name.
    assert not s.separated
    assert s.failures == [
        "ood-rule: the memorizer's train_rule_answer share 0.0% [0.0, 16.1] does not lie above "
        "the rule-follower's 0.0% [0.0, 16.1]"
    ]
    assert "CONTROLS NOT SEPARATED" in demo_results.format_separation(s)

    _flag_every_first_answer(memorizer[2], demo_results.SHIFT_FLAG)
    assert load_run(memorizer[2]).episodes  # still a valid run folder
    s = demo_results.controls_separation(tmp_path, SPLITS)
    assert s.separated and s.failures == []
    assert s.splits[2].memorizer_flagged.successes == 20
    assert "controls separated (n=20 per split)" in demo_results.format_separation(s)


def test_controls_not_separated_when_the_rule_follower_does_no_better(tmp_path: Path) -> None:
    _runs(tmp_path, "reference:1.0", control="memorizer")
    _runs(tmp_path, "reference:1.0", control="rule-follower")
    s = demo_results.controls_separation(tmp_path, SPLITS)
    assert not s.separated
    assert [f.split(":")[0] for f in s.failures] == ["id-heldout", "ood-rule", "ood-rule"]


def test_a_missing_control_run_is_an_error_not_a_zero(tmp_path: Path) -> None:
    _runs(tmp_path, "reference", control="rule-follower")
    with pytest.raises(GpbenchError, match="no complete run of the memorizer on id"):
        demo_results.controls_separation(tmp_path, SPLITS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GpbenchError, match="no run folders"):
        demo_results.controls_separation(tmp_path / "empty", SPLITS)


def test_study_direction_reads_the_last_checkpoint_of_each_series(tmp_path: Path) -> None:
    _runs(tmp_path, "reference:0.5", method="init", step="0")
    _runs(tmp_path, "reference", method="sft", step="4")  # an earlier SFT checkpoint: ignored
    _runs(tmp_path, "reference:1.0", method="sft", step="8")
    _runs(tmp_path, "reference", method="rl", step="3")
    d = demo_results.study_direction(tmp_path, SPLITS)
    assert (d.sft_step, d.rl_step) == (8, 3)
    ood = d.splits[2]
    assert (ood.sft.successes, ood.rl.successes) == (0, 20)
    assert ood.sft_change.difference == -ood.init.rate
    assert ood.rl_minus_sft.difference == 1.0 and ood.rl_minus_sft.p_value < 1e-5
    text = demo_results.format_direction(d)
    assert "direction on ood-rule: RL's change minus SFT's = +100.0" in text
    assert text.endswith("RL ends higher than SFT")


def test_no_significant_difference_is_said_as_such(tmp_path: Path) -> None:
    for method in ("init", "sft", "rl"):
        _runs(tmp_path, "reference:0.5", method=method, step="1")
    text = demo_results.format_direction(demo_results.study_direction(tmp_path, SPLITS))
    assert text.endswith("no significant difference at n=20")


def test_paired_reading_refuses_runs_of_other_instances(tmp_path: Path) -> None:
    a = load_run(eval_run(tmp_path / "a", n=20)).episodes
    b = load_run(eval_run(tmp_path / "b", n=10)).episodes
    with pytest.raises(GpbenchError, match="same instances"):
        demo_results.paired(a, b)
