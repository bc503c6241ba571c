"""Shared test settings: never reach a model hub, and never run more threads than the CPUs.

The thread count is gpbench's default (``GPBENCH_THREADS``, else ``OMP_NUM_THREADS``, else the
CPUs this process may use: :mod:`gpbench.harness.threads`). It goes into the environment before
any test imports torch, so torch's intra-op threads in this process start with it, and so does
every subprocess a test starts (gpbench commands read ``GPBENCH_THREADS``, torch reads
``OMP_NUM_THREADS``). torch's inter-op pool reads no environment variable: once a test has
imported torch, the count is applied to torch itself before the next test.
"""

from __future__ import annotations

import os
import sys

import pytest

from gpbench.harness.threads import apply_threads, default_threads, thread_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

THREADS = default_threads()
os.environ.update(thread_env(THREADS.count))
_applied = False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Give the count to torch once it is imported (a dictionary look-up per test until then)."""
    global _applied
    if not _applied and "torch" in sys.modules:
        apply_threads(THREADS.count)
        _applied = True
