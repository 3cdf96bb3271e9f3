"""Serving code for the SageMaker scikit-learn container (SAGEMAKER_PROGRAM=inference.py).

The container calls model_fn once, then input_fn/predict_fn/output_fn per request.
CSV rows arrive without a header, in the training feature order.
"""

from __future__ import annotations

import io
import os
from typing import Any

import joblib
import numpy as np
import pandas as pd

MODEL_FILE = "model.joblib"


def model_fn(model_dir: str) -> Any:
    return joblib.load(os.path.join(model_dir, MODEL_FILE))


def input_fn(body: Any, content_type: str) -> pd.DataFrame:
    if content_type != "text/csv":
        raise ValueError(f"unsupported content type {content_type!r}; send text/csv")
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
    return pd.read_csv(io.StringIO(text), header=None)


def predict_fn(data: Any, model: Any) -> np.ndarray:
    frame = pd.DataFrame(np.asarray(data))
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        if frame.shape[1] != len(names):
            raise ValueError(f"expected {len(names)} features ({', '.join(names)}), got {frame.shape[1]}")
        frame.columns = list(names)
    return model.predict(frame)


def output_fn(prediction: Any, accept: str) -> tuple[str, str]:
    return "\n".join(f"{float(v):.6g}" for v in np.ravel(prediction)) + "\n", "text/csv"
