"""``gpbench compare``: the paired test on identical instances, and refusals otherwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from report_fixtures import STUDY_N, raw_episodes, run_named, scripted_run

from gpbench.cli import cli
from gpbench.errors import GpbenchError
from gpbench.reports.compare import compare_runs
from gpbench.stats import mcnemar_exact_p, wilson_interval


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def outcomes(folder: Path) -> dict[str, bool]:
    return {e["uid"]: e["correct"] for e in raw_episodes(folder)}


def test_paired_comparison_counts_discordant_instances(study: Path) -> None:
    a, b = run_named(study, "init__gp-l__ood-rule"), run_named(study, "sft-200__gp-l__ood-rule")
    before, after = outcomes(a), outcomes(b)
    a_only = sum(before[u] and not after[u] for u in before)
    b_only = sum(after[u] and not before[u] for u in before)
    c = compare_runs(a, b)
    assert (c.task, c.task_version, c.splits, c.pairs) == ("gp-l", 1, ["ood-rule"], STUDY_N)
    assert (c.a_only, c.b_only) == (a_only, b_only) and a_only > b_only
    assert c.p_value == mcnemar_exact_p(a_only, b_only)
    assert c.a_success == sum(before.values()) and c.b_success == sum(after.values())
    assert c.difference == pytest.approx((c.b_success - c.a_success) / STUDY_N)
    assert c.a_ci95 == wilson_interval(c.a_success, STUDY_N)
    assert [d.index for d in c.diffs] == list(range(STUDY_N))
    assert {d.uid for d in c.diffs if d.a_correct != d.b_correct} == {
        u for u in before if before[u] != after[u]
    }
    first = c.diffs[0]
    episode = next(e for e in raw_episodes(b) if e["uid"] == first.uid)
    assert first.b_statuses == [t["verdict"]["status"] for t in episode["turns"]]
    assert c.settings_differ == {}


def test_cli_prints_the_test_and_the_differing_instances(study: Path) -> None:
    a, b = run_named(study, "init__gp-l__ood-rule"), run_named(study, "sft-200__gp-l__ood-rule")
    c = compare_runs(a, b)
    result = invoke("compare", a, b)
    assert result.exit_code == 0, result.output
    assert f"exact McNemar p = {c.p_value:.4g} (two-sided)" in result.output
    assert f"{c.a_only} solved only by A, {c.b_only} solved only by B" in result.output
    rows = [line for line in result.output.splitlines() if " A: " in line]
    assert len(rows) == c.a_only + c.b_only  # only the instances where the runs differ
    every = invoke("compare", a, b, "--all").output.splitlines()
    assert len([line for line in every if " A: " in line]) == STUDY_N


def test_cli_json(study: Path) -> None:
    a, b = run_named(study, "rl-100__gp-l__id"), run_named(study, "rl-200__gp-l__id")
    result = invoke("compare", a, b, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    c = compare_runs(a, b)
    assert data["p_value"] == c.p_value and data["pairs"] == STUDY_N
    assert (data["a_only"], data["b_only"]) == (c.a_only, c.b_only)
    assert len(data["diffs"]) == STUDY_N
    assert set(data["diffs"][0]) == {
        "uid",
        "index",
        "sample",
        "a_correct",
        "b_correct",
        "a_statuses",
        "b_statuses",
    }


def test_refuses_runs_on_different_instances(study: Path) -> None:
    result = invoke(
        "compare", run_named(study, "init__gp-l__id"), run_named(study, "init__gp-l__ood-rule")
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1
    assert f"hold different instances ({STUDY_N} only in A, {STUDY_N} only in B)" in result.output


def test_refuses_runs_of_different_task_versions(study: Path, tmp_path: Path) -> None:
    source = run_named(study, "init__gp-l__id")
    other = tmp_path / "v2"
    shutil.copytree(source, other)
    lines = (other / "episodes.jsonl").read_text().splitlines()
    edited = [json.dumps({**json.loads(line), "task_version": 2}) for line in lines]
    (other / "episodes.jsonl").write_text("\n".join(edited) + "\n")
    # The episodes no longer match their run.json: the reader refuses before compare can.
    with pytest.raises(GpbenchError, match="is an episode of gp-l@2, not gp-l@1"):
        compare_runs(source, other)
    spec = json.loads((other / "run.json").read_text())
    spec["tasks"] = {"gp-l": 2}
    if "run_key" in spec:
        spec["run_key"]["task"] = "gp-l@2"
    (other / "run.json").write_text(json.dumps(spec))
    with pytest.raises(GpbenchError, match=r"\(gp-l@1\) with .* \(gp-l@2\): a paired comparison"):
        compare_runs(source, other)
    result = invoke("compare", source, other)
    assert result.exit_code == 1 and result.output.count("\n") == 1


def test_refuses_an_unfinished_run(study: Path, tmp_path: Path) -> None:
    source = run_named(study, "init__gp-l__id")
    other = tmp_path / "running"
    shutil.copytree(source, other)
    spec = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**spec, "status": "running"}))
    with pytest.raises(GpbenchError, match="is running; finish it before comparing"):
        compare_runs(source, other)


def test_notes_settings_that_differ(study: Path, tmp_path: Path) -> None:
    source = run_named(study, "init__gp-l__id")
    other = tmp_path / "budget"
    shutil.copytree(source, other)
    spec = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**spec, "max_attempts": 9}))
    c = compare_runs(source, other)
    assert c.settings_differ == {"max_attempts": [2, 9]}
    assert c.p_value == 1.0 and c.a_only == c.b_only == 0
    assert "note: max_attempts differs (A 2, B 9)" in invoke("compare", source, other).output


def test_several_samples_per_instance_are_paired_by_sample_with_a_note(tmp_path: Path) -> None:
    runs = [
        scripted_run(
            tmp_path / "runs",
            name,
            task="gp-l",
            split="id",
            n=8,
            error_rate=rate,
            max_attempts=1,
            samples=2,
            checkpoint=f"/ckpts/{name}",
            metadata={},
        )
        for name, rate in (("a", 0.6), ("b", 0.2))
    ]
    c = compare_runs(*runs)
    assert c.pairs == 16 and c.samples_per_instance == 2
    assert sorted((d.index, d.sample) for d in c.diffs) == [
        (i, s) for i in range(8) for s in (0, 1)
    ]
    output = invoke("compare", *runs).output
    assert "note: 2 samples per instance are paired as if independent" in output


def test_help_shows_examples() -> None:
    result = invoke("compare", "--help")
    assert result.exit_code == 0
    assert "Paired comparison of two runs on identical instances" in result.output
    assert "gpbench compare RUN_A RUN_B --json > diff.json" in result.output
