"""The harness: backends, the batched multi-turn loop, checkpoint folders, writing runs and
resuming them (the run-folder format it writes is :mod:`gpbench.runs`)."""
