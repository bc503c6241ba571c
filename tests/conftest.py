"""Shared test settings: never reach a model hub, and never run more threads than the CPUs.

The thread count is gpbench's default (``GPBENCH_THREADS``, else ``OMP_NUM_THREADS``, else the
CPUs this process may use: :mod:`gpbench.harness.threads`). It goes into the environment before
any test imports torch, so torch's intra-op threads in this process start with it, and so does
every subprocess a test starts (gpbench commands read ``GPBENCH_THREADS``, torch reads
``OMP_NUM_THREADS``). torch's inter-op pool reads no environment variable: once a test has
imported torch, the count is applied to torch itself before the next test.

The tiny checkpoints (:mod:`gpbench.tiny_models`) are built once per session and shared by every
test folder: tests read them and copy them before changing anything.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gpbench.harness.threads import apply_threads, default_threads, thread_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

THREADS = default_threads()
os.environ.update(thread_env(THREADS.count))
_applied = False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """conftest.py files hold fixtures, not doctests: --doctest-modules would import each test
    folder's conftest as one more module named ``conftest`` and refuse the second
    (``pytest tests/reports tests/regress`` failed with "import file mismatch")."""
    return True if collection_path.name == "conftest.py" else None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Give the count to torch once it is imported (a dictionary look-up per test until then)."""
    global _applied
    if not _applied and "torch" in sys.modules:
        apply_threads(THREADS.count)
        _applied = True


def need_hf() -> None:
    """Skip a test where the hf extra (torch, transformers, tokenizers) is not installed."""
    for package in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(package, reason="the tiny checkpoints need: pip install 'gpbench[hf]'")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama (hidden 128, 2 heads of 64) with a BPE tokenizer and chat template."""
    need_hf()
    from gpbench.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llava: a 1-layer CLIP vision tower on 32x32 images and the tiny Llama as LM."""
    need_hf()
    from gpbench.tiny_models import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete 20-episode scripted multi-turn run folder (one per test module): read it only."""
    from run_fixtures import eval_run

    return eval_run(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def run(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine run folder, for a test to damage."""
    import shutil

    return Path(shutil.copytree(pristine, tmp_path / "run"))
