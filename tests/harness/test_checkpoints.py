"""Checkpoint folders' JSON files are read as untrusted input: anything Python cannot decode is a
one-line error (gpbench.harness.checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpbench.errors import CheckpointError
from gpbench.harness.checkpoints import TRAINER_STATE_FILE, checkpoint_metadata
from gpbench.harness.folders import METADATA_FILE


@pytest.mark.parametrize("name", [METADATA_FILE, TRAINER_STATE_FILE])
@pytest.mark.parametrize(
    ("text", "reason"),
    [("[" * 100_000, "nested too deeply"), ('{"step": 1' + "0" * 5000 + "}", "too many digits")],
)
def test_undecodable_metadata_is_one_line(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    folder = tmp_path / "checkpoint-10"
    folder.mkdir()
    (folder / name).write_text(text, encoding="utf-8")
    with pytest.raises(CheckpointError, match=reason) as caught:
        checkpoint_metadata(folder)
    assert "\n" not in str(caught.value)
