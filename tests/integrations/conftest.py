"""Tiny checkpoints for the TRL tests (the hf and recipes extras: torch, transformers, TRL)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _need_training_stack() -> None:
    for package in ("torch", "transformers", "trl", "datasets"):
        pytest.importorskip(package, reason="TRL tests need: pip install 'gpbench[hf,recipes]'")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama with a BPE tokenizer and chat template."""
    _need_training_stack()
    from gpbench.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llava on the tiny Llama."""
    _need_training_stack()
    from gpbench.tiny_models import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-llava"))
