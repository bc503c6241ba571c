"""Training recipes: SFT and RL on gpbench tasks, with checkpoint metadata for the compute axis.

Modules (one job each; nothing here imports torch, transformers or TRL at import time except the
recipe runners and their callbacks, which the CLI imports only when a recipe command runs):

- :mod:`gpbench.recipes.training_items` one decision point per training item, by ref; replays
- :mod:`gpbench.recipes.data`      train instances -> chat examples in the paper's response format
- :mod:`gpbench.recipes.rewards`   TRL reward functions from gpbench's verifier; shaping kept apart
- :mod:`gpbench.recipes.metadata`  ``gpbench_checkpoint.json``: method, step, tokens, compute, ...
- :mod:`gpbench.recipes.config`    the typed settings both recipes share, ``--set`` overrides
- :mod:`gpbench.recipes.overlap`   how many evaluation instances a training file already holds
- :mod:`gpbench.recipes.sft`       the SFT recipe (TRL ``SFTTrainer``); ``python -m`` runs it
- :mod:`gpbench.recipes.rl`        the RL recipe (TRL ``GRPOTrainer``); ``python -m`` runs it
- :mod:`gpbench.recipes.rollout`   the multi-turn verifier loop inside GRPO rollouts
- :mod:`gpbench.recipes.demo`      the embedded main job (``make demo``)
"""
