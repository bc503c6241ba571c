"""``python -m gpbench.recipes.sft`` (and ``accelerate launch``/``torchrun -m``): the ``gpbench recipes sft``
command. An entry point only: the SFT recipe itself never imports the CLI."""

from gpbench.cli.recipes import sft_command

sft_command(prog_name="python -m gpbench.recipes.sft")
