"""A feature of the team's own: the ratio of two numeric columns.

It lives in a module of the source_dir, not in the training script: the saved model refers
to the class by module name, and the Evaluate job and the serving container import it from
the code bundle when they load `model.joblib` (a class defined in `__main__` could not be
found there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["RatioFeature"]


class RatioFeature(TransformerMixin, BaseEstimator):
    """Adds `numerator / denominator` as column `name`; missing where the denominator is 0."""

    def __init__(self, numerator: str = "", denominator: str = "", name: str = "ratio") -> None:
        self.numerator = numerator
        self.denominator = denominator
        self.name = name

    def fit(self, x: Any, y: Any = None) -> RatioFeature:
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        out = x.copy()
        out[self.name] = x[self.numerator] / x[self.denominator].replace(0, np.nan)
        return out
