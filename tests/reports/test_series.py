"""Series, checkpoints and the x axis: the paper's compute formula and metadata handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from report_fixtures import run_named

from gpbench.errors import ConfigError
from gpbench.reports.compute import training_compute
from gpbench.reports.groups import build_groups
from gpbench.reports.inputs import load_run
from gpbench.reports.series import Checkpoint, checkpoint_of, parse_series, x_value

N = 2_000_000


@pytest.mark.parametrize(
    ("metadata", "rl_lambda", "expected"),
    [
        # SFT: 6 N (D_init + D_sft)
        ({"method": "sft", "parameter_count": N, "tokens_seen": 300, "init_tokens": 100}, 6.0,
         6 * N * 400),
        # RL: 6 N (D_init + D_rl) + 2 N lambda D_rl, lambda 6 (GeneralPoints) or 5.1 (V-IRL)
        ({"method": "rl", "parameter_count": N, "tokens_seen": 300, "init_tokens": 100}, 6.0,
         6 * N * 400 + 2 * N * 6.0 * 300),
        ({"method": "RL", "parameters": N, "tokens_seen": 300}, 5.1, 6 * N * 300 + 2 * N * 5.1 * 300),
        # init: 6 N D_init
        ({"method": "init", "parameter_count": N, "init_tokens": 100}, 6.0, 6 * N * 100),
        # --meta values arrive as text
        ({"method": "sft", "num_parameters": str(N), "tokens_seen": "300"}, 6.0, 6 * N * 300),
        # a recorded compute wins
        ({"method": "sft", "parameter_count": N, "tokens_seen": 300, "compute": 1.5e18}, 6.0,
         1.5e18),
        # not enough to compute
        ({"method": "sft", "tokens_seen": 300}, 6.0, None),
        ({"method": "sft", "parameter_count": N}, 6.0, None),
        ({"parameter_count": N, "tokens_seen": 300}, 6.0, None),
        ({"method": "dpo", "parameter_count": N, "tokens_seen": 300}, 6.0, None),
    ],
)  # fmt: skip
def test_training_compute(metadata: dict[str, object], rl_lambda: float, expected: float) -> None:
    assert training_compute(metadata, rl_lambda) == (
        None if expected is None else pytest.approx(expected)
    )


def test_x_value_by_step_and_by_compute() -> None:
    sft = Checkpoint("k", "c", "/c", {"method": "sft", "step": "500", "parameter_count": 10,
                                      "tokens_seen": 7})  # fmt: skip
    assert x_value(sft, "step", init=False, rl_lambda=6.0) == 500
    assert x_value(sft, "compute", init=False, rl_lambda=6.0) == 6 * 10 * 7
    init = Checkpoint("i", "init", "/i", {"parameter_count": 10, "init_tokens": 3})
    assert x_value(init, "step", init=True, rl_lambda=6.0) == 0
    assert x_value(init, "compute", init=True, rl_lambda=6.0) == 6 * 10 * 3
    rl = Checkpoint("r", "r", "/r", {"method": "rl", "parameter_count": 10, "tokens_seen": 7})
    assert x_value(rl, "compute", init=False, rl_lambda=5.1) == pytest.approx(
        6 * 10 * 7 + 2 * 10 * 5.1 * 7
    )
    assert x_value(Checkpoint("u", "u", "/u"), "step", init=False, rl_lambda=6.0) is None
    with pytest.raises(ConfigError, match="--x must be one of step, compute"):
        x_value(sft, "tokens", init=False, rl_lambda=6.0)


def test_parse_series() -> None:
    rules = parse_series(["SFT=runs/sft-*", "SFT=runs/old-sft-*", " RL = *rl* "])
    assert [(r.name, r.pattern) for r in rules] == [
        ("SFT", "runs/sft-*"),
        ("SFT", "runs/old-sft-*"),
        ("RL", "*rl*"),
    ]
    for bad in ("SFT", "=x", "SFT="):
        with pytest.raises(ConfigError, match="is not NAME=GLOB"):
            parse_series([bad])


def test_checkpoint_of_eval_and_score_runs(study: Path, mixed_runs: Path, tmp_path: Path) -> None:
    run = load_run(run_named(study, "sft-100__gp-l__id"))
    checkpoint = checkpoint_of(run)
    assert (checkpoint.name, checkpoint.path, checkpoint.method) == (
        "sft-100",
        "/ckpts/sft/sft-100",
        "sft",
    )
    assert checkpoint.key == run.spec["checkpoint"]["fingerprint"]
    source = run_named(mixed_runs, "vlm__gp-vl__ood-color")
    shutil.copytree(source, tmp_path / "scored")
    spec = json.loads((tmp_path / "scored" / "run.json").read_text())
    del spec["checkpoint"]
    (tmp_path / "scored" / "run.json").write_text(json.dumps(spec))
    scored = checkpoint_of(load_run(tmp_path / "scored"))
    assert (scored.name, scored.metadata, scored.method) == ("scored", {}, None)


def test_checkpoints_sharing_a_folder_name_are_told_apart(study: Path, tmp_path: Path) -> None:
    for method in ("sft", "rl"):
        target = tmp_path / f"{method}-run"
        shutil.copytree(run_named(study, f"{method}-100__gp-l__id"), target)
        spec = json.loads((target / "run.json").read_text())
        spec["checkpoint"]["checkpoint"] = f"/ckpts/{method}/checkpoint-100"
        (target / "run.json").write_text(json.dumps(spec))
    runs = [load_run(tmp_path / "sft-run"), load_run(tmp_path / "rl-run")]
    names = sorted(g.checkpoint.name for g in build_groups(runs, [], "step"))
    assert names == ["rl/checkpoint-100", "sft/checkpoint-100"]


def _as_step(source: Path, target: Path, step: int) -> Path:
    """A copy of a run folder whose checkpoint (same fingerprint) was recorded at ``step``."""
    shutil.copytree(source, target)
    spec = json.loads((target / "run.json").read_text())
    spec["checkpoint"]["metadata"] = {**spec["checkpoint"]["metadata"], "step": step}
    (target / "run.json").write_text(json.dumps(spec))
    return target


def test_a_runs_own_metadata_places_its_point(study: Path, tmp_path: Path) -> None:
    # One checkpoint (one fingerprint) evaluated with --meta step=200 and --meta step=300: each
    # run is plotted and tabled at its own step, never both at the last one read.
    from gpbench.reports.figure_data import success_curves
    from gpbench.reports.table import summary_rows

    runs = [
        load_run(_as_step(run_named(study, "sft-100__gp-l__id"), tmp_path / "id-200", 200)),
        load_run(_as_step(run_named(study, "sft-100__gp-l__ood-rule"), tmp_path / "ood-200", 200)),
        load_run(_as_step(run_named(study, "sft-100__gp-l__id"), tmp_path / "id-300", 300)),
    ]
    assert len({checkpoint_of(run).key for run in runs}) == 1
    groups = build_groups(runs, [], "step")
    placed = sorted((g.split, g.x, [str(f.name) for f in g.folders]) for g in groups)
    assert placed == [
        ("id", 200.0, ["id-200"]),
        ("id", 300.0, ["id-300"]),
        ("ood-rule", 200.0, ["ood-200"]),
    ]
    _, rows = summary_rows(groups)
    assert sorted((r["split"], r["step"], r["x"], r["runs"]) for r in rows) == [
        ("id", 200, 200.0, str(tmp_path / "id-200")),
        ("id", 300, 300.0, str(tmp_path / "id-300")),
        ("ood-rule", 200, 200.0, str(tmp_path / "ood-200")),
    ]
    [figure] = success_curves(groups, "step")
    lines = {panel.split: panel.lines for panel in figure.panels}
    assert [[p.x for p in line.points] for line in lines["id"]] == [[200.0, 300.0]]
    assert [[p.x for p in line.points] for line in lines["ood-rule"]] == [[200.0]]
