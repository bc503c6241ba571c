"""The main job end to end at the CI size: the shipped controls separated, then the study."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpbench.harness.checkpoints import checkpoint_metadata

pytestmark = pytest.mark.slow


def test_demo_at_ci_size(tmp_path: Path) -> None:
    pytest.importorskip("trl", reason="the main job needs: pip install 'gpbench[hf,recipes]'")
    pytest.importorskip("matplotlib", reason="the main job's report needs gpbench[reports]")
    out = tmp_path / "demo"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "gpbench.recipes.demo", "--out", str(out), "--size", "ci"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{out / 'report' / 'study'}/{{report.html,direction.txt}}" in done.stdout

    # The positive controls, told apart at the CI size (60 hands a split).
    separation = json.loads((out / "controls.json").read_text(encoding="utf-8"))
    assert separation["separated"], separation["failures"]
    by_split = {row["split"]: row for row in separation["splits"]}
    for split in ("id-heldout", "ood-rule"):
        row = by_split[split]
        assert row["rule_follower"]["low"] > row["memorizer"]["high"]
        assert row["comparison"]["p_value"] < 0.01
    ood = by_split["ood-rule"]
    assert ood["memorizer_flagged"]["low"] > ood["rule_follower_flagged"]["high"]
    assert "controls separated (n=60 per split)" in done.stdout
    separation_txt = (out / "report" / "controls" / "separation.txt").read_text(encoding="utf-8")
    assert (
        separation_txt.splitlines()[-1]
        == "controls separated (n=60 per split): intervals disjoint, flags apart"
    )

    summary = json.loads((out / "timings.json").read_text(encoding="utf-8"))
    assert summary["controls_separated"] is True
    threads = int(os.environ["GPBENCH_THREADS"])  # tests/conftest.py: gpbench's default
    assert summary["threads"]["count"] == summary["threads"]["torch_intra_op"] == threads
    init = checkpoint_metadata(out / "init")
    assert init["method"] == "init" and init["config"]["control"]["name"] == "study-sft"
    base_compute = init["compute"]
    sft_run = summary["sft"]["compute"] - base_compute
    rl_run = summary["rl"]["compute"] - base_compute
    rl_step = rl_run / summary["rl"]["steps"]
    assert sft_run <= rl_run < sft_run + rl_step  # equal compute, to within one RL step

    for method in ("sft", "rl"):
        folders = sorted((out / "series" / method).glob("checkpoint-*"))
        assert len(folders) == 2
        metas = [checkpoint_metadata(f) for f in folders]
        assert {m["method"] for m in metas} == {method}
        computes = sorted(m["compute"] for m in metas)
        assert computes[0] > base_compute and len(set(computes)) == 2

    study = json.loads((out / "study.json").read_text(encoding="utf-8"))
    assert [row["split"] for row in study["splits"]] == ["id", "id-heldout", "ood-rule"]
    assert "direction on ood-rule: RL's change minus SFT's" in done.stdout
    direction_txt = (out / "report" / "study" / "direction.txt").read_text(encoding="utf-8")
    assert direction_txt.splitlines()[-1].startswith("direction on ood-rule:")
    with (out / "report" / "study" / "summary.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["series"], r["split"]) for r in rows} >= {
        (s, split) for s in ("init", "sft", "rl") for split in ("id", "id-heldout", "ood-rule")
    }
    assert len(rows) == 5 * 3  # init + 2 SFT + 2 RL checkpoints, on three splits
    for report in ("controls", "study"):
        assert (out / "report" / report / "report.html").stat().st_size > 10_000
