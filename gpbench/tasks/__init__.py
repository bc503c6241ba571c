"""Tasks: splits, seeding, prompt rendering, answer parsing, verification, rewards, registry."""
