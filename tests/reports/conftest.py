"""Session fixtures for the report tests: run folders built once (see report_fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import build_mixed_runs, build_study


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/`` of the gp-l study: 5 checkpoints x (id, ood-rule), one run folder each."""
    return build_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="session")
def mixed_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small runs of gp-vl, virl-l and virl-vl (image scenes, per-step metrics)."""
    return build_mixed_runs(tmp_path_factory.mktemp("mixed"))
