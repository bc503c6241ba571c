"""A private gpbench cache for the harness tests, so they never write hash-cache entries or
conversions under the user's home (the tiny checkpoints are tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$GPBENCH_CACHE_DIR`` in the session's temporary folder (a test may set its own)."""
    folder = tmp_path_factory.mktemp("gpbench-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GPBENCH_CACHE_DIR", str(folder))
        yield folder
