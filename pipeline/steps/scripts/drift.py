"""Data drift: a baseline of the training split, and a batch compared with it per feature.

Train writes `baseline.json` (`baseline`) next to the model; the batch pipeline's drift
check compares the rows it scores with it (`compare`) and reports each violation in the
layout of SageMaker Model Monitor's `constraint_violations.json` (source: SageMaker
Developer Guide, "Schema for Violations (constraint_violations.json file)"): a list of
`{feature_name, constraint_check_type, description}`.

The statistics are the field's standard ones, per kind of feature:
- numeric: the population stability index (PSI) over ten quantile bins of the training
  values (Siddiqi, "Credit Risk Scorecards", 2006; < 0.1 stable, > 0.25 a major shift);
- categorical: the Jensen-Shannon distance of the category shares (base 2, 0 to 1; scipy's
  `jensenshannon`), and the share of rows whose category training never saw;
- both: the rise in the share of missing values.
Each has a threshold; a feature's drift is its worst value over its threshold, so one
number (`worst_ratio`, above 1 means drift) decides the pipeline's condition.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

BASELINE_FILE = "baseline.json"
NUMERIC = "numeric"
BINS = 10
_SMOOTHING = 1e-4  # an empty bin would make PSI infinite

DEFAULT_THRESHOLDS = {"psi": 0.2, "js_distance": 0.1, "unseen_share": 0.05, "missing_share_increase": 0.1}
CHECK_TYPES = {  # Model Monitor's constraint_check_type of each statistic
    "psi": "baseline_drift_check",
    "js_distance": "baseline_drift_check",
    "unseen_share": "categorical_values_check",
    "missing_share_increase": "completeness_check",
    "missing_column": "missing_column_check",
}


def _missing(values: pd.Series, na_values: list[str]) -> pd.Series:
    text = values.astype("string").str.strip()
    return values.isna() | text.isin(na_values) | (text == "")


def baseline(frame: pd.DataFrame, column_types: dict[str, str], na_values: list[str]) -> dict[str, Any]:
    """Per-feature statistics of the training split (JSON-ready), with the spellings of a
    missing value it was read with (a batch is read the same way)."""
    features: dict[str, Any] = {}
    for column, kind in column_types.items():
        values = frame[column]
        missing = _missing(values, na_values)
        present = values[~missing]
        entry: dict[str, Any] = {"missing_share": float(missing.mean()) if len(values) else 0.0}
        if kind == NUMERIC:
            numbers = pd.to_numeric(present, errors="coerce").dropna().to_numpy(dtype=float)
            edges = np.unique(np.quantile(numbers, np.linspace(0, 1, BINS + 1)[1:-1])) if len(numbers) else []
            entry |= {
                "kind": NUMERIC,
                "mean": float(numbers.mean()) if len(numbers) else 0.0,
                "std": float(numbers.std()) if len(numbers) else 0.0,
                "min": float(numbers.min()) if len(numbers) else 0.0,
                "max": float(numbers.max()) if len(numbers) else 0.0,
                "bin_edges": [float(e) for e in edges],  # inner edges; the outer bins are open
                "bin_shares": _bin_shares(numbers, list(edges)),
            }
        else:
            shares = present.astype(str).str.strip().value_counts(normalize=True)
            entry |= {"kind": "categorical", "frequencies": {str(k): float(v) for k, v in shares.items()}}
        features[column] = entry
    return {"version": 1, "n_rows": len(frame), "na_values": list(na_values), "features": features}


def _bin_shares(numbers: np.ndarray, inner_edges: list[float]) -> list[float]:
    if not len(numbers):
        return [0.0] * (len(inner_edges) + 1)
    counts = np.bincount(np.searchsorted(inner_edges, numbers, side="right"), minlength=len(inner_edges) + 1)
    return [float(c) / len(numbers) for c in counts]


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), _SMOOTHING, None)
    a = np.clip(np.asarray(actual, dtype=float), _SMOOTHING, None)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: dict[str, float], actual: dict[str, float]) -> float:
    from scipy.spatial.distance import jensenshannon

    categories = sorted(set(expected) | set(actual))
    if not categories:
        return 0.0
    value = jensenshannon([expected.get(c, 0.0) for c in categories], [actual.get(c, 0.0) for c in categories], base=2)
    return 0.0 if math.isnan(value) else float(value)


def compare(
    reference: dict[str, Any], frame: pd.DataFrame, na_values: list[str], thresholds: dict[str, float] | None = None
) -> dict[str, Any]:
    """The batch against the baseline: statistics per feature, the violations (Model
    Monitor's layout) and the worst feature. Shapes: `{"features": {name: {statistic:
    value, ..., "ratio": worst value / threshold}}, "violations": [...], "worst_feature",
    "worst_statistic", "worst_value", "worst_ratio", "n_rows"}`."""
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    features: dict[str, Any] = {}
    worst_of: dict[str, str] = {}  # feature -> its statistic furthest over its threshold
    violations: list[dict[str, str]] = []
    for column, base in reference["features"].items():
        if column not in frame.columns:
            features[column], worst_of[column] = {"missing_column": 1.0, "ratio": math.inf}, "missing_column"
            violations.append({"feature_name": column, "constraint_check_type": CHECK_TYPES["missing_column"],
                               "description": f"the batch has no column {column}"})  # fmt: skip
            continue
        values = frame[column]
        missing = _missing(values, na_values)
        present = values[~missing]
        missing_share = float(missing.mean()) if len(values) else 0.0
        stats: dict[str, float] = {
            "missing_share": missing_share,
            "missing_share_increase": max(0.0, missing_share - base["missing_share"]),
        }
        if base["kind"] == NUMERIC:
            numbers = pd.to_numeric(present, errors="coerce").dropna().to_numpy(dtype=float)
            stats["psi"] = psi(base["bin_shares"], _bin_shares(numbers, base["bin_edges"]))
            stats["mean"] = float(numbers.mean()) if len(numbers) else 0.0
            stats["mean_shift_in_std"] = abs(stats["mean"] - base["mean"]) / base["std"] if base["std"] else 0.0
        else:
            shares = {str(k): float(v) for k, v in present.astype(str).str.strip().value_counts(normalize=True).items()}
            stats["js_distance"] = js_distance(base["frequencies"], shares)
            unseen = sorted(set(shares) - set(base["frequencies"]))
            stats["unseen_share"] = float(sum(shares[c] for c in unseen))
        ratios = {name: stats[name] / limits[name] for name in limits if name in stats and limits[name] > 0}
        worst_of[column] = max(ratios, key=lambda name: ratios[name])
        stats["ratio"] = ratios[worst_of[column]]
        for name, ratio in ratios.items():
            if ratio > 1:
                violations.append({
                    "feature_name": column, "constraint_check_type": CHECK_TYPES[name],
                    "description": f"{name} {stats[name]:.4g} is above its threshold {limits[name]:g}"
                    + (f" (unseen: {', '.join(unseen[:5])})" if name == "unseen_share" else ""),
                })  # fmt: skip
        features[column] = stats
    worst_feature = max(features, key=lambda name: features[name]["ratio"]) if features else ""
    worst = features.get(worst_feature, {})
    statistic = worst_of.get(worst_feature, "missing_column")
    return {
        "n_rows": len(frame),
        "features": features,
        "violations": violations,
        "worst_feature": worst_feature,
        "worst_statistic": statistic,
        "worst_value": float(worst.get(statistic, 0.0)) if worst else 0.0,
        "worst_ratio": float(min(worst.get("ratio", 0.0), 1e9)) if worst else 0.0,
    }
