"""Data drift: a baseline of the training split, and a batch compared with it per feature.

Train writes `baseline.json` (`baseline`) next to the model; the batch pipeline's drift
check compares the rows it scores with it (`compare`) and reports each violation in the
layout of SageMaker Model Monitor's `constraint_violations.json` (source: SageMaker
Developer Guide, "Schema for Violations (constraint_violations.json file)"): a list of
`{feature_name, constraint_check_type, description}`.

The statistics are the field's standard ones, per kind of feature:
- numeric: the population stability index (PSI; Siddiqi, "Credit Risk Scorecards", 2006:
  < 0.1 stable, > 0.25 a major shift) over the training values themselves when there are at
  most BINS distinct ones, plus an "other" bin (so 0 -> 50 in a 95 %-zero column shows),
  else over quantile bins, a value holding 1/BINS of training in a bin of its own, and a bin
  below the training minimum and one above its maximum (training share 0); the mean's shift
  in training standard deviations; text that is no number, inf, and a value other than a
  constant training column's are violations by themselves;
- categorical and boolean: the Jensen-Shannon distance of the category shares (base 2, 0 to
  1; scipy's `jensenshannon`) and the share of values training never saw; booleans as
  True/False whatever their spelling (yes/no, 1/0, ...);
- all: the rise in the share of missing values (an all-missing column is that, not drift).
A feature's ratio is its worst statistic over that statistic's limit: the threshold, raised
to what sampling noise alone exceeds with probability _NOISE_P at these sample sizes (PSI ~
(1/n + 1/m) chi2 (Yurdakul, "Statistical properties of population stability index", 2018);
JS divergence ~ (1/n + 1/m) chi2 / 8 (second order; Grosse et al., Phys. Rev. E 65, 041905,
2002)). The thresholds are large-sample conventions: a fresh sample of 30 training rows is
no drift. Below `min_rows` nothing is judged and `small_batch` decides. `gate_ratio` (above
1: fail) is the number the pipeline's condition reads; every number is finite (strict JSON).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from tabular_model import BOOLEAN, BOOLEAN_SPELLINGS, CATEGORICAL, NUMERIC

BASELINE_FILE = "baseline.json"
VERSION = 2
BINS = 10
BATCH = "(batch)"  # the feature name of a violation by the whole batch
SMALL_BATCH = ("fail", "flag", "score")
_SMOOTHING = 1e-4  # a share's floor where the count behind it is unknown (an empty bin would make PSI infinite)
_NOISE_P = 1e-4  # the chance that sampling noise alone reaches a statistic's limit
_CAP = 1e9  # every ratio's cap, and the ratio of a violation that needs no threshold
_SHOWN = 5  # offending values named in a violation
_SAME_VALUE = 1e-6  # relative difference under which a batch number is a training value (CSV rounding)

DEFAULT_THRESHOLDS = dict(psi=0.2, js_distance=0.1, unseen_share=0.05, missing_share_increase=0.1, mean_shift_std=0.5)
CHECK_TYPES = {  # Model Monitor's constraint_check_type of each statistic
    **dict.fromkeys(("psi", "js_distance", "mean_shift_std", "constant_changed"), "baseline_drift_check"),
    **dict.fromkeys(("missing_share_increase", "n_rows"), "completeness_check"),
    **dict.fromkeys(("unparsed_count", "non_finite_count"), "data_type_check"),
    "unseen_share": "categorical_values_check",
    "missing_column": "missing_column_check",
}
_ANY = ("missing_column", "unparsed_count", "non_finite_count", "constant_changed")  # above 0: a violation

Stats = dict[str, float]


def _missing(values: pd.Series, na_values: list[str]) -> np.ndarray:
    text = values.astype("string").str.strip()
    return (values.isna() | text.isin(na_values) | (text == "").fillna(False)).to_numpy(dtype=bool)


def _parse(present: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """The present values as numbers (inf kept), and those that are no number."""
    if not pd.api.types.is_numeric_dtype(present):
        present = present.astype(str).str.strip()
    numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return numbers[~np.isnan(numbers)], present[np.isnan(numbers)]


def _category_counts(present: pd.Series, kind: str) -> dict[str, int]:
    """Rows per category (stripped text); a boolean's spellings as "True"/"False"."""
    counts = present.value_counts()
    keys = [str(key).strip() for key in counts.index]
    if kind == BOOLEAN:
        keys = [BOOLEAN_SPELLINGS.get(key.lower(), key) for key in keys]
    return {str(k): int(c) for k, c in counts.groupby(keys).sum().items()} if keys else {}


def _edges(numbers: np.ndarray, distinct: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """[min, inner quantile edges, max]; a value holding 1/BINS of training gets a bin of its
    own (else a 95 % spike shares its bin with the rest, and moving to that rest is unseen)."""
    low, high = distinct[0], distinct[-1]
    heavy = distinct[counts * BINS >= len(numbers)]
    apart = np.where(heavy < high, np.nextafter(heavy, np.inf), np.nextafter(heavy, -np.inf))
    inner = np.quantile(numbers, np.linspace(0, 1, BINS + 1)[1:-1])
    return np.unique(np.concatenate([[low, high], inner, heavy, apart]))


def _bin_counts(numbers: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in [below min, [e0, e1), ..., [e(k-1), max], above max] for edges [min, ..., max]."""
    index = np.searchsorted(edges, numbers, side="right")
    index[numbers == edges[-1]] = len(edges) - 1
    return np.bincount(index, minlength=len(edges) + 1)


def _numeric_baseline(numbers: np.ndarray) -> dict[str, Any]:
    numbers = numbers[np.isfinite(numbers)]
    if not len(numbers):
        return {"count": 0, "values": [], "value_shares": []}
    distinct, counts = np.unique(numbers, return_counts=True)
    mean, std = _finite(numbers.mean()), _finite(numbers.std())
    skew = _finite(np.mean(((numbers - mean) / std) ** 3)) if std > 0 else 0.0
    entry = {"count": len(numbers), "mean": mean, "std": std, "skew": skew}
    entry |= {"min": float(distinct[0]), "max": float(distinct[-1])}
    if len(distinct) <= BINS:
        return entry | {"values": distinct.tolist(), "value_shares": (counts / len(numbers)).tolist()}
    edges = _edges(numbers, distinct, counts)
    anchors = np.unique(np.concatenate([distinct[[0, -1]], distinct[counts * BINS >= len(numbers)]]))
    return entry | {"bin_edges": edges.tolist(), "bin_shares": (_bin_counts(numbers, edges) / len(numbers)).tolist(),
                    "anchors": anchors.tolist()}  # fmt: skip


def baseline(frame: pd.DataFrame, column_types: dict[str, str], na_values: list[str]) -> dict[str, Any]:
    """Per-feature statistics of the training split (JSON-ready, version 2), with the
    spellings of a missing value it was read with (a batch is read the same way)."""
    features: dict[str, Any] = {}
    for column, kind in column_types.items():
        missing = _missing(frame[column], na_values)
        present = frame[column][~missing]
        entry: dict[str, Any] = {"kind": kind if kind in (NUMERIC, BOOLEAN) else CATEGORICAL}
        entry["missing_share"] = float(missing.mean()) if len(missing) else 0.0
        if kind == NUMERIC:
            entry |= _numeric_baseline(_parse(present)[0])
        else:
            counts = _category_counts(present, kind)
            total = sum(counts.values())
            entry |= {"count": total, "frequencies": {k: c / total for k, c in counts.items()}}
        features[column] = entry
    return {"version": VERSION, "n_rows": len(frame), "na_values": list(na_values), "features": features}


def psi(expected: list[float], actual: list[float], n_expected: float = 0, n_actual: float = 0) -> float:
    """Population stability index sum((a - e) ln(a / e)) of two share vectors over the same
    bins (Siddiqi 2006). A share of 0 counts as half a row of its sample (1e-4 when the size
    is not given), so an empty bin adds a finite amount; a bin empty in both adds nothing."""
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    used = (e > 0) | (a > 0)
    e = np.maximum(e[used], 0.5 / n_expected if n_expected > 0 else _SMOOTHING)
    a = np.maximum(a[used], 0.5 / n_actual if n_actual > 0 else _SMOOTHING)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Jensen-Shannon distance of two category share maps (scipy's `jensenshannon`, base 2)."""
    from scipy.spatial.distance import jensenshannon

    categories = sorted(set(expected) | set(actual))
    if not categories:
        return 0.0
    value = jensenshannon([expected.get(c, 0.0) for c in categories], [actual.get(c, 0.0) for c in categories], base=2)
    return 0.0 if math.isnan(value) else float(value)


def noise_limit(statistic: str, n: float, m: float, df: int = 1, share: float = 0.0, skew: float = 0.0) -> float:
    """What the statistic exceeds with probability _NOISE_P when a batch of n and a baseline
    of m values are drawn from one population (the module docstring's sources; the mean's
    shift in stds ~ N(0, 1/n + 1/m), its quantile moved by the skewness of a mean of n,
    skew / sqrt(n) (Cornish and Fisher 1938); a share's rise ~ N(0, share (1 - share) (1/n + 1/m)))."""
    from scipy.stats import chi2, norm

    if n <= 0 or m <= 0:
        return 0.0
    scale, chi, z = 1 / n + 1 / m, chi2.isf(_NOISE_P, df), norm.isf(_NOISE_P / 2)
    return float({"psi": chi * scale, "js_distance": math.sqrt(chi * scale / (8 * math.log(2))),
                  "mean_shift_std": z * math.sqrt(scale) + abs(skew) * (z * z - 1) / (6 * n),
                  "missing_share_increase": norm.isf(_NOISE_P) * math.sqrt(share * (1 - share) * scale),
                  }.get(statistic, 0.0))  # fmt: skip


def _finite(value: float) -> float:
    return float(np.nan_to_num(value, nan=0.0, posinf=_CAP, neginf=-_CAP))


def _nearest(values: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """The index of the sorted `values` nearest each number."""
    right = np.minimum(np.searchsorted(values, numbers), len(values) - 1)
    left = np.maximum(right - 1, 0)
    return np.where(np.abs(values[left] - numbers) < np.abs(values[right] - numbers), left, right)


def _expected_and_counts(base: dict[str, Any], numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training shares and batch counts over the same bins: the training values and "other",
    version 2's closed range between outer bins, or version 1's inner edges (de-duplicated)."""
    if "values" in base:
        values = np.asarray(base["values"], dtype=float)
        index = _nearest(values, numbers)
        # the same value written with fewer digits (0.05068011874 for 0.0506801187398187) is that value
        index = np.where(np.isclose(values[index], numbers, rtol=_SAME_VALUE, atol=0.0), index, len(values))
        return np.append(base["value_shares"], 0.0), np.bincount(index, minlength=len(values) + 1)
    edges = np.asarray(base["bin_edges"], dtype=float)
    if "count" in base:
        # the min, the max and a spike written with fewer digits are those values, not a bin beside them
        anchors = np.asarray(base.get("anchors", [base["min"], base["max"]]), dtype=float)
        nearest = anchors[_nearest(anchors, numbers)]
        numbers = np.where(np.isclose(nearest, numbers, rtol=_SAME_VALUE, atol=0.0), nearest, numbers)
        return np.asarray(base["bin_shares"], dtype=float), _bin_counts(numbers, edges)
    unique = np.unique(edges)  # version 1: a bin starting at edges[j - 1] falls in the bin of that edge
    into = np.concatenate([[0], np.searchsorted(unique, edges, side="right")]).astype(int)
    shares = np.bincount(into, weights=base["bin_shares"], minlength=len(unique) + 1)
    return shares, np.bincount(np.searchsorted(unique, numbers, side="right"), minlength=len(unique) + 1)


def _numeric_stats(base: dict[str, Any], present: pd.Series, n_rows: int, m: float) -> tuple[Stats, Stats, dict]:
    numbers, unparsed = _parse(present)
    finite = numbers[np.isfinite(numbers)]
    shown = ", ".join(repr(str(v)[:40]) for v in unparsed.unique()[:_SHOWN])
    stats: Stats = {"unparsed_count": len(unparsed), "unparsed_share": len(unparsed) / n_rows if n_rows else 0.0}
    stats["non_finite_count"] = len(numbers) - len(finite)
    notes = {"unparsed_count": f"{len(unparsed)} value(s) ({stats['unparsed_share']:.2%}) are not numbers: {shown}",
             "non_finite_count": f"{stats['non_finite_count']} value(s) are infinite (inf or -inf)"}  # fmt: skip
    if not len(finite) or not m:
        return stats, {}, notes
    expected, counts = _expected_and_counts(base, finite)
    df = max(int(np.count_nonzero(expected)) - 1, 1)
    stats["psi"], stats["mean"] = psi(expected, counts / len(finite), m, len(finite)), _finite(finite.mean())
    noise = {"psi": noise_limit("psi", len(finite), m, df)}
    if base["std"] > 0:
        stats["mean_shift_std"] = min(abs(stats["mean"] - base["mean"]) / base["std"], _CAP)
        noise["mean_shift_std"] = noise_limit("mean_shift_std", len(finite), m, skew=base.get("skew", 0.0))
    else:
        stats["constant_changed"] = changed = float(np.mean(finite != base["min"]))
        notes["constant_changed"] = f"training was constant at {base['min']:g}; {changed:.2%} of the batch differs"
    return stats, noise, notes


def _categorical_stats(base: dict[str, Any], present: pd.Series, m: float) -> tuple[Stats, Stats, dict]:
    counts = _category_counts(present, base["kind"])
    n = sum(counts.values())
    if not n:
        return {}, {}, {}
    shares = {k: c / n for k, c in counts.items()}
    unseen = sorted(set(shares) - set(base["frequencies"]), key=lambda c: (-shares[c], c))
    stats = {"js_distance": js_distance(base["frequencies"], shares), "unseen_share": sum(shares[c] for c in unseen)}
    noise = {"js_distance": noise_limit("js_distance", n, m, max(len(base["frequencies"]) - 1, 1))}
    return stats, noise, {"unseen_share": f" (unseen: {', '.join(unseen[:_SHOWN])})"}


def _feature_stats(base: dict, values: pd.Series, na_values: list[str], n_train: int) -> tuple[Stats, Stats, dict]:
    """A feature's statistics, their sampling noise, and what a violation of each would add to say."""
    missing = _missing(values, na_values)
    share = float(missing.mean()) if len(values) else 0.0
    stats: Stats = {"missing_share": share, "missing_share_increase": max(0.0, share - base["missing_share"])}
    rise = noise_limit("missing_share_increase", len(values), n_train, share=base["missing_share"])
    noise = {"missing_share_increase": rise}
    notes = {"missing_share_increase": f" (missing share {share:.4g}, training {base['missing_share']:.4g})"}
    m = base.get("count", n_train * (1 - base["missing_share"]))  # version 1 stored no count
    if base["kind"] == NUMERIC:
        more = _numeric_stats(base, values[~missing], len(values), m)
    else:
        more = _categorical_stats(base, values[~missing], m)
    return stats | more[0], noise | more[1], notes | more[2]


def _violation(feature: str, name: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": CHECK_TYPES[name], "description": description}


def _judge(feature: str, stats: Stats, noise: Stats, notes: dict[str, str], thresholds: Stats) -> tuple:
    """Each statistic's ratio to its limit (its threshold, or the sampling noise if higher;
    for those of _ANY, any value above 0 is over), the limits, and a violation for each over."""
    limits = {k: max(t, noise.get(k, 0.0)) for k, t in thresholds.items() if k in stats and t > 0}
    ratios = {k: min(stats[k] / limit, _CAP) for k, limit in limits.items()}
    ratios |= {k: _CAP if stats[k] > 0 else 0.0 for k in _ANY if k in stats}
    found = []
    for name in (k for k in ratios if ratios[k] > 1):
        if name in _ANY:
            found.append(_violation(feature, name, notes[name]))
            continue
        raised = " (the threshold raised to this batch's sampling noise)" if limits[name] > thresholds[name] else ""
        text = f"{name} {stats[name]:.4g} is above its limit {limits[name]:.4g}{raised}{notes.get(name, '')}"
        found.append(_violation(feature, name, text))
    return ratios, limits, found


def compare(
    reference: dict[str, Any],
    frame: pd.DataFrame,
    na_values: list[str],
    thresholds: dict[str, float] | None = None,
    *,
    min_rows: int = 30,
    small_batch: str = "fail",
) -> dict[str, Any]:
    """The batch (text, NaN for missing) against the baseline: statistics per feature, the
    violations (Model Monitor's layout), the worst feature and `gate_ratio` (above 1: the
    gate fails). Below `min_rows` rows the statistics are computed but not judged, and
    `small_batch` says what that does: "fail" (a violation of "(batch)", gate_ratio > 1),
    "flag" (that violation listed, `flagged`, gate_ratio 0) or "score" (no violation,
    gate_ratio 0). `judged`: gate_ratio is a verdict (not so under "flag" and "score")."""
    if small_batch not in SMALL_BATCH:
        raise ValueError(f"small_batch must be one of {', '.join(SMALL_BATCH)}, not {small_batch!r}")
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    n_rows, features, limits, worst_of, violations = len(frame), {}, {}, {}, []
    small = n_rows < min_rows
    for column, base in reference["features"].items():
        if column in frame.columns:
            stats, noise, notes = _feature_stats(base, frame[column], na_values, reference["n_rows"])
        else:
            stats, noise, notes = {"missing_column": 1}, {}, {"missing_column": f"the batch has no column {column}"}
        ratios, limits[column], found = _judge(column, stats, noise, notes, thresholds)
        worst_of[column] = max(ratios, key=lambda k: ratios[k]) if ratios else "missing_share_increase"
        features[column] = stats | {"ratio": ratios.get(worst_of[column], 0.0)}
        violations += [] if small else found
    worst = max(features, key=lambda f: features[f]["ratio"]) if features else ""
    statistic, ratio = worst_of.get(worst, ""), features[worst]["ratio"] if worst else 0.0
    report = {"n_rows": n_rows, "features": features, "violations": violations, "worst_feature": worst,
              "worst_statistic": statistic, "worst_value": float(features[worst].get(statistic, 0)) if worst else 0.0,
              "worst_ratio": ratio, "gate_ratio": 0.0 if small else ratio, "small_batch": small, "min_rows": min_rows,
              "judged": not small or small_batch == "fail", "flagged": small and small_batch == "flag",
              "limits": limits}  # fmt: skip
    if small and small_batch != "score":
        text = f"the batch has {n_rows} row(s), fewer than min_rows {min_rows}: too few to judge drift"
        violations.append(_violation(BATCH, "n_rows", text))
    if small and small_batch == "fail":
        ratio = min((min_rows + 1) / (n_rows + 1), _CAP)  # > 1 for any n_rows < min_rows
        report |= {"worst_feature": BATCH, "worst_statistic": "n_rows", "worst_value": float(n_rows)}
        report |= {"worst_ratio": ratio, "gate_ratio": ratio}
    return report
