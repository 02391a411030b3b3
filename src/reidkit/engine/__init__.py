"""Training: solver, trainer with hooks, launch helpers."""
