"""Serving code for the SageMaker scikit-learn container (SAGEMAKER_PROGRAM=inference.py).

The container calls model_fn once, then input_fn/predict_fn/output_fn per request
(source: the SageMaker scikit-learn container's serving contract). The model is the
tabular Pipeline of tabular_model.py, which takes raw rows:

- `text/csv`: one record a line, the features in training order; or a first line that is
  a header naming exactly the features, in any order (a header that lacks a feature or
  names an unknown column is refused, naming both). Blank lines, ragged records and
  quoted values running over a line break are refused with the record's number: each is
  a record of its own to SageMaker's `Line` split, and reading past it would shift every
  later answer.
- `application/json`: `{"instances": [{column: value, ...}, ...]}` or a bare list of such
  objects (an absent column is a missing value; an unknown one is refused).

Answers, one per record, in order (batch transform's `AssembleWith: Line` and
`JoinSource: Input` rely on it): `text/csv`, one prediction a line (the original label,
or a number at full precision), after a `prediction` line answering a header (the header
is a record, as SageMaker's Line split sends it); `application/jsonlines`, one object a
line, `{"prediction": ...}` plus `"probabilities": {class: p}` for classifiers;
`application/json`, one object for the request, `{"predictions": [...]}` plus
`"classes"` and `"probabilities"` for classifiers (real-time endpoints).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import training_environment
from batch_records import column_faults, ragged_line

MODEL_FILE = "model.joblib"
HEADER_ANSWER = "prediction"


def model_fn(model_dir: str) -> Any:
    """The model; RuntimeError naming both versions when it was trained under another
    scikit-learn minor version than this container's (training_environment.py)."""
    refused = training_environment.refusal(Path(model_dir))
    if refused:
        raise RuntimeError(refused)
    return joblib.load(os.path.join(model_dir, MODEL_FILE))


def _features(model: Any) -> list[str]:
    return list(model.named_steps["normalize"].features)


def _text_columns(model: Any) -> set[str]:
    """The features that are not numbers: read as text, so "007" stays a category."""
    normalize = model.named_steps["normalize"]
    return {c for c, kind in (normalize.column_types or {}).items() if kind != "numeric"}


def _header(first_line: str, features: list[str]) -> list[str] | None:
    """The first line's names when it is a header (it names a feature), else None."""
    try:
        fields = [v.strip() for v in next(csv.reader([first_line], strict=True))]
    except (csv.Error, StopIteration):
        return None
    return fields if set(fields) & set(features) else None


def parse_rows(
    body: Any, content_type: str, features: list[str], text_columns: set[str] | None = None
) -> tuple[pd.DataFrame, bool]:
    """(the request's records as a frame of the model's features, whether it began with a
    header). CSV numbers are parsed by pandas' C reader (a batch transform sends megabytes
    at once); the model's normalizer then types every column as in training and names a
    column that is not what it should be. `text_columns` (default: every feature) are kept
    as text. Raises ValueError naming the record or the columns at fault."""
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
    if content_type == "application/json":
        payload = json.loads(text)
        rows = payload.get("instances") if isinstance(payload, dict) else payload
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError('send {"instances": [{column: value, ...}, ...]}')
        unknown = sorted({k for r in rows for k in r} - set(features))
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)}; the model takes {', '.join(features)}")
        return pd.DataFrame(rows, columns=features), False
    if content_type != "text/csv":
        raise ValueError(f"unsupported content type {content_type!r}; send text/csv or application/json")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    body = text[:-1] if text.endswith("\n") else text
    n_lines = body.count("\n") + 1 if text else 0
    first = body[: body.find("\n")] if n_lines > 1 else body
    names = _header(first, features) if n_lines else None
    if names is not None:
        fault = column_faults(names, features)
        if fault:
            raise ValueError(f"the header {fault}")
    n = len(features)
    # Every line holds n fields when no quote hides a comma, the first line has n fields and
    # the commas add up: pandas refuses a later line with more than the first, so none can
    # have fewer. Only otherwise split the lines, to name the record (a batch sends 6 MB
    # requests: the fast path counts without making a string per line).
    fast = (
        '"' not in text
        and (not n_lines or first.count(",") == n - 1)
        and text.count(",") == (n - 1) * n_lines
        and (n > 1 or ("\n\n" not in body and first != ""))
    )
    fault = "" if fast else ragged_line(body, n)
    if fault:
        raise ValueError(f"record {fault}")
    as_text = set(features) if text_columns is None else text_columns
    frame = pd.read_csv(
        io.StringIO(text), header=0 if names else None, names=None if names else features,
        dtype={c: str for c in features if c in as_text}, keep_default_na=False, na_values=[""],
        skip_blank_lines=False,
    )  # fmt: skip
    return frame[features].reset_index(drop=True), names is not None


def input_fn(body: Any, content_type: str) -> Any:
    # The model is not known here; predict_fn aligns the columns.
    return body, content_type


def predict_fn(data: Any, model: Any) -> dict[str, Any]:
    body, content_type = data
    rows, header = parse_rows(body, content_type, _features(model), _text_columns(model))
    answer: dict[str, Any] = {"predictions": [], "header": header}
    if rows.empty:  # a header alone, or an empty request: nothing to predict
        return answer
    answer["predictions"] = np.asarray(model.predict(rows)).tolist()
    if hasattr(model, "predict_proba"):
        answer["classes"] = np.asarray(model.classes_).tolist()
        answer["probabilities"] = np.asarray(model.predict_proba(rows)).tolist()
    return answer


def output_fn(prediction: dict[str, Any], accept: str) -> tuple[str, str]:
    predictions = prediction["predictions"]
    if accept == "application/json":
        return json.dumps({k: v for k, v in prediction.items() if k != "header"}), "application/json"
    if accept == "application/jsonlines":
        classes = [str(c) for c in prediction.get("classes") or []]
        probabilities = prediction.get("probabilities") or [None] * len(predictions)
        records = (
            {"prediction": p, **({"probabilities": dict(zip(classes, row, strict=True))} if classes else {})}
            for p, row in zip(predictions, probabilities, strict=True)
        )
        return "".join(json.dumps(r) + "\n" for r in records), "application/jsonlines"
    if accept != "text/csv":
        raise ValueError(f"unsupported accept {accept!r}; ask for text/csv, application/jsonlines or application/json")
    lines = [HEADER_ANSWER] if prediction.get("header") else []
    # a float at full precision (its shortest round-trip repr); a label as its text
    lines += map(repr if predictions and isinstance(predictions[0], float) else str, predictions)
    return "\n".join(lines) + "\n" if lines else "", "text/csv"
