"""``python -m gpbench.recipes.rl`` (and ``accelerate launch``/``torchrun -m``): the ``gpbench recipes rl``
command. An entry point only: the RL recipe itself never imports the CLI."""

from gpbench.cli.recipes import rl_command

rl_command(prog_name="python -m gpbench.recipes.rl")
