"""Pure procedural problem generation and reference solvers: no prompts, no I/O, no models."""
