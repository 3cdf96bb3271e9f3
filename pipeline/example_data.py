"""The bundled example dataset: scikit-learn's diabetes regression data (442 rows, 10
features), written as CSV so the whole pipeline runs offline.

    python -m pipeline.example_data .local/data/diabetes.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["write_diabetes_csv"]


def write_diabetes_csv(path: Path | str) -> Path:
    from sklearn.datasets import load_diabetes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = load_diabetes(as_frame=True).frame  # features age..s6 and the column "target"
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(path)
    return path


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else ".local/data/diabetes.csv"
    print(write_diabetes_csv(target))
