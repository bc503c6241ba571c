"""The data behind each report figure, checked against counts taken from the raw run files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from report_fixtures import (
    ID_BUDGET,
    INIT_TOKENS,
    PARAMETERS,
    STUDY,
    STUDY_N,
    TOKENS_PER_STEP,
    flagged_failures,
    raw_episodes,
    run_named,
    scripted_run,
)

from gpbench.reports.figure_data import (
    all_figure_data,
    figure_json,
    memorization_shares,
    ood_change,
    recognition_vs_success,
    success_by_attempt,
    success_curves,
)
from gpbench.reports.groups import Group, build_groups
from gpbench.reports.inputs import find_run_folders, load_runs
from gpbench.reports.series import parse_series
from gpbench.stats import mcnemar_exact_p, wilson_interval


def groups_of(root: Path, axis: str = "step", series: tuple[str, ...] = ()) -> list[Group]:
    runs, left_out = load_runs(find_run_folders([root]))
    assert not left_out
    return build_groups(runs, parse_series(series), axis)


def raw_success(root: Path, checkpoint: str, split: str) -> tuple[int, int]:
    episodes = raw_episodes(run_named(root, f"{checkpoint}__gp-l__{split}"))
    return sum(e["correct"] for e in episodes), len(episodes)


def test_success_curves_start_every_series_at_init_and_count_like_the_raw_files(
    study: Path,
) -> None:
    [figure] = success_curves(groups_of(study), "step")
    assert figure.task == "gp-l" and figure.name == "success-gp-l-v1"
    assert [p.split for p in figure.panels] == ["id", "ood-rule"]
    for panel in figure.panels:
        assert panel.metric == "success"
        assert sorted(line.series for line in panel.lines) == ["rl", "sft"]
        for line in panel.lines:
            assert [p.x for p in line.points] == [0, 100, 200]
            assert [p.init for p in line.points] == [True, False, False]
            names = ["init", f"{line.series}-100", f"{line.series}-200"]
            assert [p.checkpoint for p in line.points] == names
            for point, name in zip(line.points, names, strict=True):
                k, n = raw_success(study, name, panel.split)
                assert (point.k, point.n) == (k, n) and n == STUDY_N
                assert point.rate == k / n
                assert (point.low, point.high) == pytest.approx(wilson_interval(k, n))


def test_the_study_shows_sft_forgetting_and_rl_generalizing_out_of_distribution(
    study: Path,
) -> None:
    [figure] = success_curves(groups_of(study), "step")
    curves = {
        (panel.split, line.series): [p.rate for p in line.points]
        for panel in figure.panels
        for line in panel.lines
    }
    sft_ood, rl_ood = curves[("ood-rule", "sft")], curves[("ood-rule", "rl")]
    assert sft_ood[0] > sft_ood[1] > sft_ood[2]
    assert rl_ood[0] < rl_ood[1] < rl_ood[2]
    assert curves[("id", "sft")][-1] > curves[("id", "sft")][0]


def test_ood_change_is_final_minus_initial_with_mcnemar_on_the_same_instances(
    study: Path,
) -> None:
    [figure] = ood_change(groups_of(study), "step")
    assert {(c.split, c.series) for c in figure.changes} == {
        ("ood-rule", "rl"),
        ("ood-rule", "sft"),
    }
    for change in figure.changes:
        first = {
            e["uid"]: e["correct"] for e in raw_episodes(run_named(study, "init__gp-l__ood-rule"))
        }
        last_name = f"{change.series}-200__gp-l__ood-rule"
        last = {e["uid"]: e["correct"] for e in raw_episodes(run_named(study, last_name))}
        assert first.keys() == last.keys()
        initial_only = sum(first[u] and not last[u] for u in first)
        final_only = sum(last[u] and not first[u] for u in first)
        assert (change.initial_only, change.final_only) == (initial_only, final_only)
        assert change.p_value == mcnemar_exact_p(initial_only, final_only)
        expected = (sum(last.values()) - sum(first.values())) / STUDY_N
        assert change.delta == pytest.approx(expected)
        assert [x for x, _ in change.path] == [0, 100, 200]
        assert change.path[0][1] == 0 and change.path[-1][1] == pytest.approx(expected)
    deltas = {c.series: c.delta for c in figure.changes}
    assert deltas["rl"] > 0 > deltas["sft"]


def test_success_by_attempt_runs_from_first_try_to_success_within_the_budget(
    study: Path,
) -> None:
    [figure] = success_by_attempt(groups_of(study))
    assert [p.split for p in figure.panels] == ["id", "ood-rule"]
    for panel in figure.panels:
        budget = ID_BUDGET if panel.split == "id" else 5
        assert len(panel.curves) == len(STUDY)
        for curve in panel.curves:
            episodes = raw_episodes(run_named(study, f"{curve.checkpoint}__gp-l__{panel.split}"))
            first = sum(e["turns"][0]["verdict"]["correct"] for e in episodes) / len(episodes)
            solved = sum(e["correct"] for e in episodes) / len(episodes)
            assert [p.k for p in curve.points] == list(range(1, budget + 1))
            assert curve.points[0].rate == pytest.approx(first)
            assert curve.points[-1].rate == pytest.approx(solved)
            rates = [p.rate for p in curve.points]
            assert rates == sorted(rates)
            assert all(p.low <= p.rate <= p.high for p in curve.points)


def test_memorization_shares_count_flagged_failed_attempts(study: Path) -> None:
    [figure] = memorization_shares(groups_of(study), "step")
    assert [(p.flag, p.split) for p in figure.panels] == [
        ("train_rule_answer", "ood-rule"),
        ("verbatim_training_formula", "ood-rule"),
    ]
    for panel in figure.panels:
        for line in panel.lines:
            for point in line.points:
                episodes = raw_episodes(run_named(study, f"{point.checkpoint}__gp-l__ood-rule"))
                flagged, failed = flagged_failures(episodes, panel.flag)
                assert (point.k, point.n) == (flagged, failed) and failed > 0
                assert (point.low, point.high) == pytest.approx(wilson_interval(flagged, failed))
    shares = {line.series: [p.rate for p in line.points] for line in figure.panels[0].lines}
    assert shares["sft"][0] < shares["sft"][1] < shares["sft"][2]
    assert shares["rl"][-1] < shares["sft"][-1]


def test_recognition_and_navigation_figures_from_small_runs(mixed_runs: Path) -> None:
    groups = groups_of(mixed_runs)
    [recognition] = recognition_vs_success(groups)
    [point] = recognition.points
    episodes = raw_episodes(run_named(mixed_runs, "vlm__gp-vl__ood-color"))
    turns = [t for e in episodes for t in e["turns"]]
    misread = sum(t["verdict"]["status"] == "misrecognized_cards" for t in turns)
    assert misread == 3 and len(turns) == 9  # every other instance misread once, then right
    assert point.recognition == pytest.approx(1 - misread / len(turns))
    assert point.success == 1.0 and point.split == "ood-color"

    [vocabulary] = [f for f in memorization_shares(groups, "step") if f.task == "virl-l"]
    [panel] = vocabulary.panels
    assert (panel.flag, panel.split) == ("train_vocabulary_action", "ood-rule")
    [line] = panel.lines
    [nav] = line.points
    episodes = raw_episodes(run_named(mixed_runs, "nav__virl-l__ood-rule"))
    assert (nav.k, nav.n) == flagged_failures(episodes, "train_vocabulary_action")
    assert nav.rate == 1.0  # every failure used a compass word

    curves = {f.task: f for f in success_curves(groups, "step")}
    assert curves["virl-l"].panels[0].metric == "per_step_accuracy"
    assert curves["virl-vl"].panels[0].metric == "success"  # unseen cities: route success
    assert "virl-l" not in {f.task for f in success_by_attempt(groups)}


def test_compute_axis_follows_the_papers_formula(study: Path) -> None:
    [figure] = success_curves(groups_of(study, axis="compute"), "compute")
    n, d_init = PARAMETERS, INIT_TOKENS
    for line in figure.panels[0].lines:
        xs = [p.x for p in line.points]
        d = [0, 100 * TOKENS_PER_STEP, 200 * TOKENS_PER_STEP]
        if line.series == "sft":
            expected = [6 * n * (d_init + t) for t in d]
        else:
            expected = [6 * n * (d_init + t) + 2 * n * 6.0 * t for t in d]
        assert xs == pytest.approx(expected)


def test_series_rules_name_the_series_and_keep_init_as_the_start(study: Path) -> None:
    groups = groups_of(study, series=("Fine-tuned=*sft-*", "Reinforced=*rl-*"))
    assert [g.series for g in groups if g.split == "id"] == [
        "init",
        "Fine-tuned",
        "Fine-tuned",
        "Reinforced",
        "Reinforced",
    ]
    [figure] = success_curves(groups, "step")
    assert [line.series for line in figure.panels[0].lines] == ["Fine-tuned", "Reinforced"]
    assert all(line.points[0].checkpoint == "init" for line in figure.panels[0].lines)


def test_every_figure_has_json_data(study: Path, mixed_runs: Path) -> None:
    groups = groups_of(study) + groups_of(mixed_runs)
    figures = all_figure_data(groups, "step")
    names = [f.name for f in figures]
    assert len(names) == len(set(names))
    for figure in figures:
        data = json.loads(json.dumps(figure_json(figure)))
        assert data["kind"] == type(figure).__name__ and data["name"] == figure.name


def test_ood_change_has_no_mcnemar_test_with_several_samples(tmp_path: Path) -> None:
    for name, method, step, rate in (("i", "init", 0, 0.5), ("s", "sft", 10, 0.2)):
        scripted_run(
            tmp_path / "runs",
            name,
            task="gp-l",
            split="ood-rule",
            n=6,
            error_rate=rate,
            max_attempts=1,
            samples=2,
            checkpoint=f"/ckpts/{name}",
            metadata={"method": method, "step": step},
        )
    shutil.rmtree(tmp_path / "runs" / ".scratch")
    [figure] = ood_change(groups_of(tmp_path / "runs"), "step")
    [change] = figure.changes
    assert change.p_value is None and change.initial_only is None
    assert change.initial.n == change.final.n == 12
