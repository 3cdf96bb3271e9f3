"""Example datasets built from what scikit-learn bundles (no download), written as CSV so
the whole pipeline runs offline, one per task:

- `diabetes`: regression, 442 rows, 10 numeric features (the default config's data);
- `breast-cancer`: binary classification, 569 rows, labels `malignant`/`benign`, made
  messy as real tables are: column names with spaces, a text category, a yes/no column,
  missing values in several spellings;
- `wine`: multiclass classification, 178 rows, three string classes, a category with
  non-ASCII values and missing cells.

    python -m pipeline.example_data .local/data/diabetes.csv [diabetes|breast-cancer|wine]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLES", "TASK_EXAMPLE", "example_frame", "write_diabetes_csv", "write_example_csv"]

EXAMPLES = ("diabetes", "breast-cancer", "wine")
TASK_EXAMPLE = {"regression": "diabetes", "binary_classification": "breast-cancer", "multiclass_classification": "wine"}


def _sprinkle_missing(frame: Any, columns: list[str], share: float, seed: int) -> None:
    import numpy as np

    rng = np.random.RandomState(seed)
    spellings = ["", "NA", "?", "null"]
    for i, column in enumerate(columns):
        rows = rng.rand(len(frame)) < share
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = spellings[i % len(spellings)]


def example_frame(name: str) -> Any:
    """The dataset as a pandas DataFrame; the target column is `target` (diabetes),
    `diagnosis` (breast-cancer) or `cultivar` (wine)."""
    import numpy as np
    from sklearn import datasets

    if name == "diabetes":
        return datasets.load_diabetes(as_frame=True).frame  # features age..s6 and "target"
    rng = np.random.RandomState(7)
    if name == "breast-cancer":
        bunch = datasets.load_breast_cancer(as_frame=True)
        frame = bunch.frame.iloc[:, :8].copy()  # "mean radius", "mean texture", ...
        frame["clinic"] = rng.choice(["north", "south", "east"], size=len(frame))
        frame["smoker"] = rng.choice(["yes", "no"], size=len(frame))
        frame["diagnosis"] = np.where(bunch.target == 0, "malignant", "benign")
        _sprinkle_missing(frame, ["mean radius", "clinic", "smoker", "mean area"], share=0.05, seed=1)
        return frame
    if name == "wine":
        bunch = datasets.load_wine(as_frame=True)
        frame = bunch.frame.drop(columns="target").copy()
        frame["région"] = rng.choice(["Bourgogne", "Rhône", "Alsace", "Médoc"], size=len(frame))
        frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[bunch.target]
        _sprinkle_missing(frame, ["alcohol", "région", "magnesium"], share=0.05, seed=2)
        return frame
    raise ValueError(f"unknown example {name!r} (choose from {', '.join(EXAMPLES)})")


def write_example_csv(path: Path | str, name: str = "diabetes", drop: list[str] | None = None) -> Path:
    """The example as CSV; `drop`: columns left out (the target, for rows to score)."""
    frame = example_frame(name).drop(columns=drop or [])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(path)
    return path


def write_diabetes_csv(path: Path | str) -> Path:
    return write_example_csv(path, "diabetes")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else ".local/data/diabetes.csv"
    print(write_example_csv(target, sys.argv[2] if len(sys.argv) > 2 else "diabetes"))
