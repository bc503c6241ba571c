"""summary.csv: one row per checkpoint x task x split, values checked against the raw runs."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from report_fixtures import (
    STUDY_N,
    flagged_failures,
    raw_episodes,
    run_named,
    scored_run,
    scripted_run,
)

from gpbench.records import Instance
from gpbench.reports.build import ReportConfig, build_report
from gpbench.reports.table import to_csv
from gpbench.stats import wilson_interval
from gpbench.tasks.spec import TaskSpec


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def report_rows(tmp_path: Path, *runs: Path, **kw: object) -> list[dict[str, str]]:
    config = ReportConfig(runs=runs, out=tmp_path / "report", gallery=0, **kw)  # type: ignore[arg-type]
    result = build_report(config)
    return read_csv(result.csv)


def test_one_row_per_checkpoint_task_split_with_the_raw_counts(study: Path, tmp_path: Path) -> None:
    rows = report_rows(tmp_path, study)
    assert len(rows) == 10
    assert [(r["series"], r["checkpoint"], r["split"]) for r in rows[:5]] == [
        ("init", "init", "id"),
        ("rl", "rl-100", "id"),
        ("rl", "rl-200", "id"),
        ("sft", "sft-100", "id"),
        ("sft", "sft-200", "id"),
    ]
    for row in rows:
        episodes = raw_episodes(run_named(study, f"{row['checkpoint']}__gp-l__{row['split']}"))
        turns = [t for e in episodes for t in e["turns"]]
        k = sum(e["correct"] for e in episodes)
        low, high = wilson_interval(k, STUDY_N)
        assert row["task"] == "gp-l" and row["task_version"] == "1"
        assert int(row["episodes"]) == int(row["instances"]) == STUDY_N
        assert float(row["success"]) == pytest.approx(k / STUDY_N, abs=1e-6)
        assert float(row["success_low"]) == pytest.approx(low, abs=1e-6)
        assert float(row["success_high"]) == pytest.approx(high, abs=1e-6)
        assert row["ci_method"] == "wilson"
        first = sum(e["first_try_correct"] for e in episodes)
        assert float(row["first_try_success"]) == pytest.approx(first / STUDY_N, abs=1e-6)
        assert int(row["attempts"]) == len(turns)
        assert float(row["truncation_rate"]) == 0
        # Text GeneralPoints: no recognition, no per-step accuracy, no V-IRL flag.
        assert row["recognition_accuracy"] == row["per_step_accuracy"] == ""
        assert "flag_train_vocabulary_action" not in row  # no V-IRL run, no V-IRL column
        statuses = {c: float(v) for c, v in row.items() if c.startswith("status_") and v}
        assert sum(statuses.values()) == pytest.approx(1, abs=1e-5)
        correct = sum(t["verdict"]["status"] == "correct" for t in turns)
        assert statuses["status_correct"] == pytest.approx(correct / len(turns), abs=1e-6)
        flagged, _ = flagged_failures(episodes, "train_rule_answer")
        expected = flagged / len(turns)
        assert float(row["flag_train_rule_answer"]) == pytest.approx(expected, abs=1e-6)
        assert row["step"] == {"init": "0"}.get(row["checkpoint"], row["checkpoint"][-3:])
        assert row["x"] == row["step"]


def test_rows_of_vision_and_navigation_tasks(mixed_runs: Path, tmp_path: Path) -> None:
    rows = {r["task"]: r for r in report_rows(tmp_path, mixed_runs)}
    assert float(rows["gp-vl"]["recognition_accuracy"]) == pytest.approx(6 / 9, abs=1e-6)
    assert rows["gp-vl"]["per_step_accuracy"] == ""
    nav = raw_episodes(run_named(mixed_runs, "nav__virl-l__ood-rule"))
    turns = [t for e in nav for t in e["turns"]]
    per_step = sum(t["verdict"]["correct"] for t in turns) / len(turns)
    assert float(rows["virl-l"]["per_step_accuracy"]) == pytest.approx(per_step, abs=1e-6)
    assert rows["virl-l"]["recognition_accuracy"] == ""
    flagged, _ = flagged_failures(nav, "train_vocabulary_action")
    assert float(rows["virl-l"]["flag_train_vocabulary_action"]) == pytest.approx(
        flagged / len(turns), abs=1e-6
    )
    # A status of another task family is left empty, not reported as 0.
    assert rows["virl-l"]["status_misrecognized_cards"] == ""
    assert rows["gp-vl"]["status_wrong_action"] == ""
    assert rows["gp-vl"]["flag_train_vocabulary_action"] == ""


def test_nine_of_ten_gives_the_known_wilson_interval(tmp_path: Path) -> None:
    def answers(task: TaskSpec, instance: Instance) -> list[str]:
        reference = task.reference_answer(instance)
        return ["no formula here"] * task.max_attempts if instance.index == 3 else [reference]

    run = scored_run(
        tmp_path / "runs",
        "known",
        task_name="gp-l",
        split="id",
        n=10,
        answers=answers,
        checkpoint=None,
    )
    [row] = report_rows(tmp_path, run)
    assert (row["success"], row["success_low"], row["success_high"]) == (
        "0.9",
        "0.59585",
        "0.982124",
    )
    assert row["series"] == "runs" and row["checkpoint"] == "known" and row["x"] == ""
    assert float(row["status_illegal_formula"]) == pytest.approx(5 / 14, abs=1e-6)


def test_several_samples_per_instance_use_the_clustered_bootstrap(tmp_path: Path) -> None:
    run = scripted_run(
        tmp_path / "runs",
        "sampled",
        task="gp-l",
        split="id",
        n=12,
        error_rate=0.6,
        max_attempts=1,
        samples=3,
        checkpoint="/ckpts/sampled",
        metadata={"method": "sft", "step": 1},
    )
    shutil.rmtree(tmp_path / "runs" / ".scratch", ignore_errors=True)
    [row] = report_rows(tmp_path, run)
    assert (row["episodes"], row["instances"]) == ("36", "12")
    assert row["ci_method"] == "clustered-bootstrap"
    low, high, rate = float(row["success_low"]), float(row["success_high"]), float(row["success"])
    assert low < rate < high
    # The same files give the same interval (the bootstrap is seeded).
    assert report_rows(tmp_path, run)[0]["success_low"] == row["success_low"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-inf", "'-inf"),
        ("-5", "-5"),  # a number written as text (--meta step=-5) is a number, not a formula
        ("+1.5e3", "+1.5e3"),
        ("-.5", "-.5"),
        ("sft", "sft"),
        ("a=b", "a=b"),
        ('a,\r\nb "c"\r', 'a,\r\nb "c"\r'),  # quoted, so it reads back as one cell
        (-3, "-3"),
        (-0.25, "-0.25"),
        (None, ""),
    ],
)
def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(value: object, cell: str) -> None:
    text = to_csv(["v", "w"], [{"v": value, "w": 1}])  # type: ignore[dict-item]
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["v", "w"], [cell, "1"]]


def test_series_and_metadata_from_the_command_line_are_escaped_in_the_csv(
    study: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(run_named(study, "sft-100__gp-l__id"), runs / "a")
    rows = report_rows(tmp_path, runs, series=("@SUM(1)=*",))
    assert [r["series"] for r in rows] == ["'@SUM(1)"]
