"""How a training job reads a hyperparameter: one rule, for the job and for `render`'s check.

SageMaker hands hyperparameters to the job as strings (CreateTrainingJob `HyperParameters`
is a map of string to string); `train.py` turns each back into a value with `parse_value`,
and `pipeline/estimators.py` applies the same function before checking the value against
the estimator's own parameter constraints, so what render accepts is what the job gets.
"""

from __future__ import annotations

from typing import Any

__all__ = ["parse_value"]


def parse_value(text: str) -> Any:
    """'200' -> 200, '0.5' and '1e3' -> floats, 'true' -> True, 'None' -> None, else the text."""
    lowered = text.strip().lower()
    if lowered in {"none", "null"}:
        return None
    if lowered in {"true", "false"}:
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
