"""What this project keeps for every workspace of one user on one machine: rendered
definitions (pipeline/definition) and the jobs' Python environments
(pipeline/local/job_environment.py). Everything under it is keyed by content, so it may be
deleted at any time and is never wrong for another workspace."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["machine_cache_dir"]


def machine_cache_dir() -> Path:
    """`$MLOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/sagemaker-mlflow-mlops` (the XDG Base
    Directory convention), else `~/.cache/sagemaker-mlflow-mlops`."""
    if os.environ.get("MLOPS_CACHE_DIR"):
        return Path(os.environ["MLOPS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sagemaker-mlflow-mlops"
