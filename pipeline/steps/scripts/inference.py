"""Serving code for the SageMaker scikit-learn container (SAGEMAKER_PROGRAM=inference.py).

The container calls model_fn once, then input_fn/predict_fn/output_fn per request
(source: the SageMaker scikit-learn container's serving contract). The model is the
tabular Pipeline of tabular_model.py, which takes raw rows:

- `text/csv`: rows in the training feature order without a header, or with a header row
  naming the columns (any order, absent columns are missing values);
- `application/json`: `{"instances": [{column: value, ...}, ...]}` or a bare list of such
  objects.

Answers: `text/csv`, one prediction (the original label, or a number) per line; or
`application/json`, `{"predictions": [...]}` plus `"probabilities"` (one list per row,
in the order of `"classes"`) for classifiers.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import joblib
import numpy as np
import pandas as pd

MODEL_FILE = "model.joblib"


def model_fn(model_dir: str) -> Any:
    return joblib.load(os.path.join(model_dir, MODEL_FILE))


def _features(model: Any) -> list[str]:
    return list(model.named_steps["normalize"].features)


def _text_columns(model: Any) -> set[str]:
    """The features that are not numbers: read as text, so "007" stays a category."""
    normalize = model.named_steps["normalize"]
    return {c for c, kind in (normalize.column_types or {}).items() if kind != "numeric"}


def parse_rows(body: Any, content_type: str, features: list[str], text_columns: set[str] | None = None) -> pd.DataFrame:
    """The request's rows as a frame of the model's features. CSV numbers are parsed by
    pandas' C reader (a batch transform sends megabytes at once); the model's normalizer
    then types every column as in training and names a column that is not what it should be.
    `text_columns` (default: every feature) are kept as text."""
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
    if content_type == "application/json":
        payload = json.loads(text)
        rows = payload.get("instances") if isinstance(payload, dict) else payload
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError('send {"instances": [{column: value, ...}, ...]}')
        return pd.DataFrame(rows)
    if content_type != "text/csv":
        raise ValueError(f"unsupported content type {content_type!r}; send text/csv or application/json")
    first = [v.strip().strip('"') for v in text.split("\n", 1)[0].split(",")] if text.strip() else []
    has_header = bool(first) and set(first) <= set(features)
    names = first if has_header else features
    if not has_header and first and len(first) != len(features):
        raise ValueError(f"expected {len(features)} features ({', '.join(features)}), got {len(first)}")
    as_text = set(features) if text_columns is None else text_columns
    frame = pd.read_csv(
        io.StringIO(text), header=0 if has_header else None, names=None if has_header else names,
        dtype={c: str for c in names if c in as_text}, keep_default_na=False, na_values=[""],
    )  # fmt: skip
    return frame.reset_index(drop=True)


def input_fn(body: Any, content_type: str) -> Any:
    # The model is not known here; predict_fn aligns the columns.
    return body, content_type


def predict_fn(data: Any, model: Any) -> dict[str, Any]:
    body, content_type = data
    rows = parse_rows(body, content_type, _features(model), _text_columns(model))
    answer: dict[str, Any] = {"predictions": np.asarray(model.predict(rows)).tolist()}
    if hasattr(model, "predict_proba"):
        answer["classes"] = np.asarray(model.classes_).tolist()
        answer["probabilities"] = np.asarray(model.predict_proba(rows)).round(6).tolist()
    return answer


def output_fn(prediction: dict[str, Any], accept: str) -> tuple[str, str]:
    if accept == "application/json":
        return json.dumps(prediction), "application/json"
    lines = (f"{v:.6g}" if isinstance(v, float) else str(v) for v in prediction["predictions"])
    return "\n".join(lines) + "\n", "text/csv"
