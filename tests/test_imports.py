"""The light layers never import heavy machine-learning packages (docs/design.md §1)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_generators_tasks_and_cli_stay_light() -> None:
    code = (
        "import sys, gpbench.generators.cards, gpbench.tasks.registry, gpbench.cli, gpbench.export\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'datasets', 'pyarrow') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_every_public_name_resolves_and_importing_gpbench_stays_light() -> None:
    code = (
        "import sys, gpbench\n"
        "assert 'torch' not in sys.modules and 'gpbench.tasks' not in sys.modules\n"
        "missing = [n for n in gpbench.__all__ if getattr(gpbench, n, None) is None]\n"
        "assert sorted(dir(gpbench)) == sorted(gpbench.__all__)\n"
        "print(','.join(missing))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_an_unknown_name_is_an_attribute_error() -> None:
    import gpbench

    with pytest.raises(AttributeError, match="no attribute 'evaluat'"):
        gpbench.evaluat  # noqa: B018
