"""``python -m gpbench`` runs the command-line interface."""

from gpbench.cli import main

main()
