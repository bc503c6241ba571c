"""The harness: backends, the batched multi-turn loop, the run store and resumption."""
