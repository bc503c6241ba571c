"""The TRL tests on the tiny checkpoints (tests/conftest.py) need the hf and recipes extras
(torch, transformers, TRL)."""

from __future__ import annotations

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test on a tiny checkpoint without the training stack (before the build)."""
    if {"tiny_llama", "tiny_vlm"} & set(getattr(item, "fixturenames", ())):
        for package in ("torch", "transformers", "trl", "datasets"):
            pytest.importorskip(package, reason="TRL tests need: pip install 'gpbench[hf,recipes]'")
