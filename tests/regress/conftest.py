"""Fixtures of the regress tests (the helpers are in regress_fixtures.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from regress_fixtures import ManifestWriter, manifest_text


@pytest.fixture
def write_manifest(tmp_path: Path) -> ManifestWriter:
    """Write a manifest of ``entries`` to ``tmp_path/checkpoints.md`` and return its path."""

    def write(entries: list[dict[str, Any]], **kw: Any) -> Path:
        path = tmp_path / "checkpoints.md"
        path.write_text(manifest_text(entries, **kw), encoding="utf-8")
        return path

    return write
