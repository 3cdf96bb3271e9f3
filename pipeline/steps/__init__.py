"""Step builders (one module per step kind) and, in `scripts/`, the code the jobs run."""
