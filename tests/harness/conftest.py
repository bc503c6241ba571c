"""Tiny checkpoints for the harness tests (built by :mod:`gpbench.tiny_models`), and a private
gpbench cache so the tests never write hash-cache entries or conversions under the user's home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


def _need_hf() -> None:
    """Skip tests of the hf backend where its extra is not installed (the light CI job)."""
    for package in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(package, reason="the hf backend tests need: pip install 'gpbench[hf]'")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$GPBENCH_CACHE_DIR`` in the session's temporary folder (a test may set its own)."""
    folder = tmp_path_factory.mktemp("gpbench-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GPBENCH_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama (hidden 128, 2 heads of 64) with a BPE tokenizer and chat template."""
    _need_hf()
    from gpbench.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llava: a 1-layer CLIP vision tower on 32x32 images and the tiny Llama as LM."""
    _need_hf()
    from gpbench.tiny_models import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-llava"))
