"""The main job end to end at the CI size, on the regress reference checkpoint as its init."""

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
    from gpbench.regress.reference import check_reference

    init = check_reference()  # the shipped reference checkpoint of `gpbench regress`
    out = tmp_path / "demo"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "gpbench.recipes.demo", "--out", str(out), "--size", "ci"]
    done = subprocess.run(
        [*command, "--init", str(init)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"report      {out / 'report' / 'report.html'}" in done.stdout

    summary = json.loads((out / "timings.json").read_text(encoding="utf-8"))
    threads = int(os.environ["GPBENCH_THREADS"])  # tests/conftest.py: gpbench's default
    assert summary["threads"]["count"] == summary["threads"]["torch_intra_op"] == threads
    base_compute = checkpoint_metadata(init)["compute"]
    sft_run = summary["sft"]["compute"] - base_compute
    rl_run = summary["rl"]["compute"] - base_compute
    rl_step = rl_run / summary["rl"]["steps"]
    assert sft_run <= rl_run < sft_run + rl_step  # equal compute, to within one RL step

    for method in ("sft", "rl"):
        folders = sorted((out / "series" / method).glob("checkpoint-*"))
        assert len(folders) == 2
        metas = [checkpoint_metadata(f) for f in folders]
        assert {m["method"] for m in metas} == {method}
        assert {m["config"]["threads"] for m in metas} == {threads}
        computes = sorted(m["compute"] for m in metas)
        assert computes[0] > base_compute and len(set(computes)) == 2

    with (out / "report" / "summary.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["series"], r["split"]) for r in rows} >= {
        (s, split) for s in ("init", "sft", "rl") for split in ("id", "id-heldout", "ood-rule")
    }
    assert len(rows) == 5 * 3  # init + 2 SFT + 2 RL checkpoints, on three splits
    assert (out / "report" / "report.html").stat().st_size > 10_000
