"""Regression checks of known checkpoints: ``checkpoints.md`` and ``gpbench regress``.

Modules:
    :mod:`~gpbench.regress.manifest`   reads and writes checkpoints.md (table and JSON block).
    :mod:`~gpbench.regress.checks`     the metrics, the tests and what a regression is.
    :mod:`~gpbench.regress.run`        reach, evaluate, compare, report, update.
    :mod:`~gpbench.regress.reference`  builds the CPU reference checkpoint CI checks for real.

Importing this package is light: evaluation, torch and the hub client load only when used.
"""
