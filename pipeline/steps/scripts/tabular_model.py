"""The saved model: raw rows in, the original labels (or numbers) out.

One scikit-learn Pipeline holds everything fitted on the training split, so the served
model takes rows as they come, with the original column names:

1. `RawRowNormalizer`: missing-value spellings to NaN, numeric columns to float, boolean
   spellings to "True"/"False", categories to text; absent columns become missing.
2. A ColumnTransformer: median imputation for numbers; a constant fill and an encoder for
   categories (ordinal codes for tree ensembles, which split on them; one-hot otherwise),
   with categories unseen in training encoded as unknown rather than refused.
3. The estimator, imported by path; for classification wrapped in `LabelEncodedClassifier`
   so any estimator (XGBoost needs 0..n-1) sees integer labels and predictions come back
   as the original labels.

This module ships beside the model (MLflow `code_paths`, and the serving container's code
folder), so it must run on scikit-learn 1.4 (the SageMaker image) as well as newer.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, OrdinalEncoder

__all__ = [
    "BOOLEAN",
    "BOOLEAN_SPELLINGS",
    "CATEGORICAL",
    "NUMERIC",
    "LabelEncodedClassifier",
    "RawRowNormalizer",
    "build_model",
    "estimator_class",
    "uses_ordinal_encoding",
]

NUMERIC, CATEGORICAL, BOOLEAN = "numeric", "categorical", "boolean"
MISSING_CATEGORY = "__missing__"
BOOLEAN_SPELLINGS = {"true": "True", "t": "True", "yes": "True", "y": "True", "1": "True", "1.0": "True",
             "false": "False", "f": "False", "no": "False", "n": "False", "0": "False", "0.0": "False"}  # fmt: skip
_TREE_ENSEMBLE_HINTS = ("forest", "boost", "tree", "xgb", "lgbm", "lightgbm", "catboost")


def estimator_class(path: str) -> type:
    """`package.module.Class` imported; ImportError or AttributeError name what is missing."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ImportError(f"estimator {path!r} is not an import path such as sklearn.ensemble.RandomForestRegressor")
    return getattr(importlib.import_module(module_name), class_name)


def uses_ordinal_encoding(estimator_path: str, encoding: str = "auto") -> bool:
    """Tree ensembles split on ordinal codes and would drown in one-hot columns at scale;
    linear and distance-based models need one-hot."""
    if encoding != "auto":
        return encoding == "ordinal"
    return any(hint in estimator_path.lower() for hint in _TREE_ENSEMBLE_HINTS)


def _boolean_text(value: Any) -> Any:
    """ "True"/"False" for any usual spelling; NaN stays missing; anything else stays
    itself, as text (an unseen category to the encoder)."""
    if value != value:  # NaN
        return value
    return BOOLEAN_SPELLINGS.get(str(value).strip().lower(), str(value))


class RawRowNormalizer(TransformerMixin, BaseEstimator):
    """Rows as a user sends them -> the typed frame the encoders were fitted on."""

    def __init__(
        self, features: list[str] | None = None, column_types: dict[str, str] | None = None, na_values: Any = ()
    ) -> None:
        self.features = features
        self.column_types = column_types
        self.na_values = na_values

    def fit(self, x: Any, y: Any = None) -> RawRowNormalizer:
        return self

    def transform(self, x: Any) -> pd.DataFrame:
        features = list(self.features or [])
        frame = x if isinstance(x, pd.DataFrame) else pd.DataFrame(x, columns=features)
        missing_spellings = set(self.na_values) | {""}
        out = {}
        for column in features:
            values = frame[column] if column in frame.columns else pd.Series(np.nan, index=frame.index)
            values = values.astype(object).where(values.notna(), np.nan)
            values = values.map(lambda v: np.nan if isinstance(v, str) and v.strip() in missing_spellings else v)
            kind = (self.column_types or {}).get(column, NUMERIC)
            if kind == NUMERIC:
                try:
                    out[column] = pd.to_numeric(values, errors="raise").astype(float)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"column {column!r} must be numeric: {exc}") from exc
            elif kind == BOOLEAN:
                out[column] = values.map(_boolean_text).astype(object)
            else:
                out[column] = values.map(lambda v: v if v != v else str(v)).astype(object)
        return pd.DataFrame(out, index=frame.index, columns=features)


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):
    """Any classifier, trained on integer labels, answering in the original ones."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, x: Any, y: Any, **fit_params: Any) -> LabelEncodedClassifier:
        self.label_encoder_ = LabelEncoder().fit(np.asarray(y))
        self.classes_ = self.label_encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(x, self.label_encoder_.transform(np.asarray(y)), **fit_params)
        return self

    def predict(self, x: Any) -> np.ndarray:
        codes = np.asarray(self.estimator_.predict(x)).astype(int).ravel()
        return self.label_encoder_.inverse_transform(codes)

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(x))


def _encoder(ordinal: bool) -> Any:
    if ordinal:
        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float32)
    return OneHotEncoder(handle_unknown="ignore", dtype=np.float32)


def build_model(
    *,
    task: str,
    features: list[str],
    column_types: dict[str, str],
    na_values: list[str],
    estimator_path: str,
    hyperparameters: dict[str, Any],
    encoding: str = "auto",
) -> Pipeline:
    """The unfitted Pipeline. Raises ValueError for a hyperparameter the estimator lacks."""
    estimator = estimator_class(estimator_path)()
    accepted = estimator.get_params()
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise ValueError(f"{estimator_path} has no hyperparameter(s) {', '.join(unknown)}")
    params = dict(hyperparameters)
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = 0  # reproducible trials
    estimator.set_params(**params)
    if task != "regression":
        estimator = LabelEncodedClassifier(estimator)
    numeric = [c for c in features if column_types.get(c, NUMERIC) == NUMERIC]
    text = [c for c in features if c not in numeric]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("numeric", SimpleImputer(strategy="median", keep_empty_features=True), numeric))
    if text:
        categories = Pipeline(
            [
                ("fill", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY, keep_empty_features=True)),
                ("encode", _encoder(uses_ordinal_encoding(estimator_path, encoding))),
            ]
        )
        transformers.append(("categorical", categories, text))
    return Pipeline(
        [
            ("normalize", RawRowNormalizer(features, column_types, list(na_values))),
            ("encode", ColumnTransformer(transformers, sparse_threshold=0.3)),
            ("estimator", estimator),
        ]
    )
