"""Where the container's /opt/ml is: /opt/ml in SageMaker, elsewhere when MLOPS_OPT_ML
says so (local mode runs each job under its own folder)."""

from __future__ import annotations

import os

__all__ = ["opt_ml"]


def opt_ml(*parts: str) -> str:
    return os.path.join(os.environ.get("MLOPS_OPT_ML", "/opt/ml"), *parts)
