"""The saved model: raw rows in, the original labels (or numbers) out.

One scikit-learn Pipeline holds everything fitted on the training split, so the served
model takes rows as they come, with the original column names:

1. `RawRowNormalizer`: missing-value spellings to NaN, numeric columns to float, boolean
   spellings to "True"/"False", categories to text; absent columns become missing.
2. A ColumnTransformer: median imputation for numbers (`MedianImputer`); a constant fill and an encoder for
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


def _category_text(value: Any) -> Any:
    return value if value != value else str(value)


def _without_missing(values: pd.Series, spellings: list[str]) -> pd.Series:
    """Every missing value (None, NA, NaT, NaN) and every text that spells one (blanks
    around it ignored) as NaN; text as `str` objects, other values with the dtype pandas
    infers for them (numbers with NaN: float). Vectorised: a million rows take
    milliseconds, where a Python function per value took a second."""
    if isinstance(values.dtype, pd.StringDtype) or (values.dtype == object and _only_text(values)):
        return _text_without_missing(values, spellings)
    values = values.astype(object).where(values.notna(), np.nan)
    try:
        stripped = values.str.strip()  # NaN where a value is not text
    except (AttributeError, TypeError):  # no text at all (numbers, booleans or bytes only)
        pass
    else:
        values = values.mask(stripped.isin(spellings), np.nan)
    return _text_without_missing(values, spellings) if _only_text(values) else values.infer_objects()


def _text_without_missing(values: pd.Series, spellings: list[str]) -> pd.Series:
    """`_without_missing` for a column of text, worked out once per distinct value: each
    distinct text becomes one `str` object shared by its rows, so a million rows of a few
    categories cost a pointer each, not a string each (pandas 3 reads text into Arrow
    buffers, and converting every cell made a Python string per cell)."""
    codes, distinct = pd.factorize(values)  # missing: -1
    texts = pd.Series([str(text) for text in distinct], dtype=object)
    texts = texts.mask(texts.str.strip().isin(spellings), np.nan)
    by_code = np.append(texts.to_numpy(dtype=object), np.nan)  # code -1 (missing) is the last
    return pd.Series(by_code[codes], index=values.index, dtype=object)


def _only_text(values: pd.Series) -> bool:
    """Every value text or missing (so str(value) is the value itself)."""
    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


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
        missing_spellings = list(set(self.na_values) | {""})
        out = {}
        for column in features:
            values = frame[column] if column in frame.columns else pd.Series(np.nan, index=frame.index)
            kind = (self.column_types or {}).get(column, NUMERIC)
            if kind == NUMERIC:
                out[column] = self._numeric(column, values, missing_spellings)
                continue
            values = _without_missing(values, missing_spellings)
            if kind == BOOLEAN:
                out[column] = _boolean_column(values)
            elif _only_text(values):
                out[column] = values
            else:  # numbers or other objects among the categories: each as its text
                out[column] = values.map(_category_text).astype(object)
        return pd.DataFrame(out, index=frame.index, columns=features, copy=False)  # the columns as they are

    @staticmethod
    def _numeric(column: str, values: pd.Series, missing_spellings: list[str]) -> pd.Series:
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":  # numbers already
            return values.astype(float)
        try:
            return pd.to_numeric(_without_missing(values, missing_spellings), errors="raise").astype(float)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"column {column!r} must be numeric: {exc}") from exc


def _boolean_column(values: pd.Series) -> pd.Series:
    """`_boolean_text` of every value: vectorised for text and for booleans."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("string", "empty"):
        spelled = values.str.strip().str.lower().map(BOOLEAN_SPELLINGS).astype(object)
        return spelled.where(spelled.notna(), values).astype(object)
    if kind == "boolean":
        return values.map({True: "True", False: "False"}).astype(object)
    return values.map(_boolean_text).astype(object)


class MedianImputer(TransformerMixin, BaseEstimator):
    """Missing numbers -> the training split's median of each column (0 for a column with
    no value, as SimpleImputer's keep_empty_features does). scikit-learn's
    SimpleImputer(strategy="median") computes the same medians through a masked array and
    sorts a copy of the whole matrix: about 450 MB at 700k rows x 20 columns, the training
    job's peak. pandas' median works one column at a time."""

    def fit(self, x: pd.DataFrame, y: Any = None) -> MedianImputer:
        medians = pd.DataFrame(x).median(skipna=True)
        self.statistics_ = medians.fillna(0.0).to_numpy(dtype=float)
        self.n_features_in_ = len(self.statistics_)
        return self

    def transform(self, x: pd.DataFrame) -> np.ndarray:
        values = pd.DataFrame(x).to_numpy(dtype=float, copy=True)  # the one copy; filled in place
        rows, columns = np.nonzero(np.isnan(values))
        values[rows, columns] = self.statistics_[columns]
        return values

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features if input_features is not None else [], dtype=object)


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
        transformers.append(("numeric", MedianImputer(), numeric))
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
