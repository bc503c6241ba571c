"""The light layers never import heavy machine-learning packages (docs/design.md §1)."""

from __future__ import annotations

import subprocess
import sys


def test_generators_tasks_and_cli_stay_light() -> None:
    code = (
        "import sys, gpbench.generators.cards, gpbench.tasks.registry, gpbench.cli, gpbench.export\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'datasets', 'pyarrow') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""
