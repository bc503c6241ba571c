"""The main job's command line: a failed separation of the controls is a non-zero exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpbench.recipes import demo


def test_the_job_exits_1_when_the_controls_were_not_separated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def finished(*args: Any) -> dict[str, Any]:
        return {"total_s": 1.0, "timings_s": {}, "controls_separated": False}

    monkeypatch.setattr(demo, "run_demo", finished)
    monkeypatch.setattr(demo, "print_results", lambda out: None)
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--out", str(tmp_path)])
    assert exit_info.value.code == 1
    assert "did not separate its positive controls" in capsys.readouterr().err


def test_sizes_keep_the_saves_evenly_spaced() -> None:
    for size in demo.SIZES.values():
        assert size.sft_steps % size.save_points == 0
    with pytest.raises(ValueError, match="multiple of save_points"):
        demo.DemoSize(sft_steps=10, save_points=3)
