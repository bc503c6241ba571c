"""Exports and hooks for the training stacks gpbench's users run.

- :mod:`gpbench.integrations.trl_data`  ``--format sft|grpo`` rows for TRL's trainers
- :mod:`gpbench.integrations.verl`      ``--format verl`` rows and verl's ``compute_score``

Nothing here imports torch, TRL or verl: the rows are plain dicts and the reward is gpbench's
verifier.
"""
