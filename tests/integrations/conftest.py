"""The integration tests on the tiny checkpoints (tests/conftest.py) need the hf extra (torch,
transformers, datasets); the TRL ones also need TRL (the recipes extra). The verl ones run in
.venv-verl, which has no TRL."""

from __future__ import annotations

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test on a tiny checkpoint without the stack it needs (before the build)."""
    if {"tiny_llama", "tiny_vlm"} & set(getattr(item, "fixturenames", ())):
        packages = ["torch", "transformers", "datasets"]
        if "trl" in item.path.name:
            packages.append("trl")
        for package in packages:
            pytest.importorskip(package, reason="needs: pip install 'gpbench[hf,recipes]'")
