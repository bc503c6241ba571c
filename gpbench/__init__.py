"""gpbench: "SFT Memorizes, RL Generalizes" (Chu et al., 2025) as a benchmark anyone can run.

Procedural GeneralPoints and V-IRL tasks with in-distribution and out-of-distribution splits,
an exact verifier, and tools to evaluate and compare checkpoints.
"""

__version__ = "0.1.0"
