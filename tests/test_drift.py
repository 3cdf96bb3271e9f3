"""Drift statistics (pipeline/steps/scripts/drift.py): a fresh sample of the training
population does not drift at any batch size from 30 rows; each kind of change users met is
a violation named by feature (a shifted mean, a 95 %-zero column moved to 50, a rare flag
set everywhere, out-of-range values, text or inf in a numeric column, an unseen category,
an all-missing column), and booleans are compared whatever their spelling. Every statistic
is checked against a computation of its own here: PSI by hand over shares counted with
plain Python, the Jensen-Shannon distance with scipy's `jensenshannon(base=2)`. Every
report is strict JSON (SageMaker's JsonGet reads it)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections import Counter
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from pipeline.code_bundle import SCRIPTS_DIR
from tests.tracking_fixtures import tracking_server  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def drift():
    """drift.py as a job imports it: beside tabular_model.py."""
    sys.path.insert(0, str(SCRIPTS_DIR))
    try:
        spec = importlib.util.spec_from_file_location("drift", SCRIPTS_DIR / "drift.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS_DIR))
    return module


def frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(50, 10, n).round(1),
        "bmi": rng.normal(26, 4, n),
        "sex": rng.choice(["F", "M"], n),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
    })  # fmt: skip


TYPES = {"age": "numeric", "bmi": "numeric", "sex": "categorical", "plan": "categorical"}


def population(n: int, seed: int) -> pd.DataFrame:
    """Columns of the shapes a table has: normal, skewed, discrete, a rare flag, a spike at
    0 with a continuous rest, missing values, categories and a yes/no boolean."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "normal": rng.normal(50, 10, n).round(1),
        "skewed": rng.lognormal(0, 1, n),
        "count": rng.poisson(3, n),
        "level": rng.integers(1, 6, n),
        "flag": (rng.random(n) < 0.1).astype(int),
        "spiky": np.where(rng.random(n) < 0.6, 0.0, rng.gamma(2, 10, n)),
        "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(100, 20, n)),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        "member": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
    })  # fmt: skip


POPULATION_TYPES = {**dict.fromkeys(["normal", "skewed", "count", "level", "flag", "spiky", "income"], "numeric"),
                    "plan": "categorical", "member": "boolean"}  # fmt: skip


def as_text(data: pd.DataFrame) -> pd.DataFrame:
    """A batch as the drift job reads it: text, NaN for missing."""
    return data.astype(object).map(lambda v: v if v != v else str(v))


def strict(report: dict) -> dict:
    """The report through strict JSON, as SageMaker's JsonGet parses the property file."""
    return json.loads(json.dumps(report, allow_nan=False))


def psi_by_hand(expected_counts: list[int], actual_counts: list[int]) -> float:
    """sum((a - e) ln(a / e)) over the bins; a count of 0 counts as half a row (drift.py's
    smoothing); a bin empty on both sides is left out."""
    m, n = sum(expected_counts), sum(actual_counts)
    pairs = [(max(e, 0.5) / m, max(a, 0.5) / n) for e, a in zip(expected_counts, actual_counts, strict=True) if e or a]
    return sum((a - e) * math.log(a / e) for e, a in pairs)


def counts_in_bins(values: list[float], edges: list[float]) -> list[int]:
    """Below the minimum, [edge, next edge) up to the maximum (closed), above the maximum."""
    low, high = edges[0], edges[-1]
    inner = [sum(left <= v < right or v == right == high for v in values) for left, right in pairwise(edges)]
    return [sum(v < low for v in values), *inner, sum(v > high for v in values)]


def violated(report: dict) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in report["violations"]}


def test_a_fresh_sample_of_the_same_population_does_not_drift(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    report = drift.compare(reference, frame(n=1000, seed=1), ["NA"])
    assert report["violations"] == [] and report["worst_ratio"] < 1, report["worst_feature"]
    assert all(report["features"][f]["psi"] < 0.05 for f in ("age", "bmi"))
    assert report["features"]["sex"]["unseen_share"] == 0


@pytest.mark.parametrize("n", [30, 100, 1000])
def test_fresh_samples_of_every_size_from_30_rows_do_not_drift(drift, n: int) -> None:
    """Sampling noise alone is no drift: five fresh samples per size, every column shape."""
    reference = strict(drift.baseline(population(2000, 0), POPULATION_TYPES, ["NA"]))
    for seed in range(1, 6):
        report = strict(drift.compare(reference, as_text(population(n, seed)), ["NA"]))
        assert report["violations"] == [] and report["gate_ratio"] <= 1, (seed, report["worst_feature"])
        assert report["judged"] and not report["small_batch"] and not report["flagged"]
        assert report["gate_ratio"] == report["worst_ratio"]


def test_thresholds_are_raised_to_the_sampling_noise_of_a_small_batch(drift) -> None:
    """PSI ~ (1/n + 1/m) chi2(bins - 1) and the mean's shift ~ N(0, 1/n + 1/m) when nothing
    changed: at 30 rows those exceed the large-sample thresholds, at 1000 they do not."""
    from scipy.stats import chi2, norm

    reference = drift.baseline(pd.DataFrame({"x": np.arange(1000)}), {"x": "numeric"}, [])
    assert reference["features"]["x"]["skew"] == pytest.approx(0, abs=1e-12)
    small = drift.compare(reference, as_text(pd.DataFrame({"x": np.arange(0, 1000, 33)[:30]})), [])
    assert small["limits"]["x"]["psi"] == pytest.approx(chi2.isf(1e-4, 10 - 1) * (1 / 30 + 1 / 1000))
    assert small["limits"]["x"]["mean_shift_std"] == pytest.approx(norm.isf(1e-4 / 2) * math.sqrt(1 / 30 + 1 / 1000))
    assert small["limits"]["x"]["psi"] > 1 and small["violations"] == []
    large = drift.compare(reference, as_text(pd.DataFrame({"x": np.arange(1000)})), [])
    assert large["limits"]["x"] == {"psi": 0.2, "missing_share_increase": 0.1, "mean_shift_std": 0.5}
    assert large["features"]["x"]["psi"] == 0 and large["features"]["x"]["mean_shift_std"] == 0


def test_a_shifted_mean_and_a_new_category_are_violations_named_by_feature(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    shifted = frame(n=1000, seed=1)
    shifted["age"] = shifted["age"] + 2 * 10  # two standard deviations
    shifted.loc[:99, "plan"] = "enterprise"  # 10 % of rows: a category training never saw
    shifted["bmi"] = shifted["bmi"].astype(object)
    shifted.loc[:299, "bmi"] = "NA"  # 30 % missing
    report = strict(drift.compare(reference, as_text(shifted), ["NA"]))
    by_feature = violated(report)
    assert ("age", "baseline_drift_check") in by_feature
    assert ("plan", "categorical_values_check") in by_feature and ("bmi", "completeness_check") in by_feature
    assert ("sex", "baseline_drift_check") not in by_feature
    age = report["features"]["age"]
    assert age["psi"] > 1 and age["mean_shift_std"] == pytest.approx(2, rel=0.1)  # was mean_shift_in_std
    assert report["features"]["plan"]["unseen_share"] == pytest.approx(0.1)
    assert (report["worst_feature"], report["worst_statistic"]) == ("age", "psi") and report["worst_ratio"] > 1
    assert report["gate_ratio"] == report["worst_ratio"]
    unseen = next(v for v in report["violations"] if v["constraint_check_type"] == "categorical_values_check")
    assert "enterprise" in unseen["description"]


def test_psi_and_mean_shift_of_a_shifted_numeric_match_a_hand_computation(drift) -> None:
    """Training 0..999 (ten quantile bins of 100 values), the batch 500..1499: half of it
    above the training maximum, in the outer bin, where training had nothing."""
    train = pd.DataFrame({"x": np.arange(1000)})
    reference = drift.baseline(train, {"x": "numeric"}, [])
    x = reference["features"]["x"]
    assert (x["min"], x["max"], x["count"], x["mean"]) == (0, 999, 1000, 499.5)
    assert len(x["bin_shares"]) == len(x["bin_edges"]) + 1 == 12
    assert x["bin_shares"] == [c / 1000 for c in counts_in_bins(list(range(1000)), x["bin_edges"])]
    assert x["bin_shares"][0] == x["bin_shares"][-1] == 0 and x["bin_shares"][1:-1] == [0.1] * 10
    batch = list(range(500, 1500))
    report = strict(drift.compare(reference, as_text(pd.DataFrame({"x": batch})), []))
    stats = report["features"]["x"]
    expected = psi_by_hand(counts_in_bins(list(range(1000)), x["bin_edges"]), counts_in_bins(batch, x["bin_edges"]))
    assert counts_in_bins(batch, x["bin_edges"])[-1] == 500
    assert stats["psi"] == pytest.approx(expected, rel=1e-12) and stats["psi"] > 2
    assert stats["mean"] == 999.5 and stats["mean_shift_std"] == pytest.approx(500 / np.arange(1000).std())
    assert violated(report) == {("x", "baseline_drift_check")}
    assert {v["description"].split()[0] for v in report["violations"]} == {"psi", "mean_shift_std"}


def test_out_of_range_values_count_in_the_edge_bins(drift) -> None:
    """5 % of the batch below the training minimum and 5 % above its maximum: they are not
    lumped with the extreme training values, and PSI counts them."""
    train = list(np.random.default_rng(0).uniform(0, 100, 2000))
    reference = drift.baseline(pd.DataFrame({"x": train}), {"x": "numeric"}, [])
    edges = reference["features"]["x"]["bin_edges"]
    inside = list(np.random.default_rng(1).uniform(0, 100, 900))
    batch = [-50.0] * 50 + inside + [500.0] * 50
    report = strict(drift.compare(reference, as_text(pd.DataFrame({"x": batch})), []))
    counts = counts_in_bins(batch, edges)
    assert (counts[0], counts[-1]) == (50, 50)
    assert report["features"]["x"]["psi"] == pytest.approx(psi_by_hand(counts_in_bins(train, edges), counts))
    alone = drift.compare(reference, as_text(pd.DataFrame({"x": inside})), [])["features"]["x"]["psi"]
    assert report["features"]["x"]["psi"] > alone + 0.5 and ("x", "baseline_drift_check") in violated(report)


def test_a_95_percent_zero_column_moved_to_50_is_drift(drift) -> None:
    """The zeros get a bin of their own, so 50 (inside the training range) is not in theirs."""
    rng = np.random.default_rng(0)
    train = [0.0] * 1900 + list(rng.uniform(1, 100, 100))
    reference = drift.baseline(pd.DataFrame({"spiky": train}), {"spiky": "numeric"}, [])
    edges = reference["features"]["spiky"]["bin_edges"]
    counts = counts_in_bins(train, edges)
    assert counts[1] == 1900 and counts_in_bins([50.0], edges)[1] == 0  # 0 alone in its bin
    batch = [50.0] * 200
    report = strict(drift.compare(reference, as_text(pd.DataFrame({"spiky": batch})), []))
    stats = report["features"]["spiky"]
    assert stats["psi"] == pytest.approx(psi_by_hand(counts, counts_in_bins(batch, edges))) and stats["psi"] > 5
    assert stats["mean_shift_std"] == pytest.approx((50 - np.mean(train)) / np.std(train))
    assert violated(report) == {("spiky", "baseline_drift_check")} and report["worst_feature"] == "spiky"


def test_a_rare_flag_set_in_every_row_is_drift(drift) -> None:
    """Few distinct values are compared value by value (plus an "other" bin)."""
    train = [0] * 980 + [1] * 20
    reference = drift.baseline(pd.DataFrame({"flag": train}), {"flag": "numeric"}, [])
    flag = reference["features"]["flag"]
    assert (flag["values"], flag["value_shares"]) == ([0.0, 1.0], [0.98, 0.02]) and "bin_edges" not in flag
    report = strict(drift.compare(reference, as_text(pd.DataFrame({"flag": ["1"] * 100})), []))
    stats = report["features"]["flag"]
    assert stats["psi"] == pytest.approx(psi_by_hand([980, 20, 0], [0, 100, 0]))
    assert stats["psi"] == pytest.approx((0.005 - 0.98) * math.log(0.005 / 0.98) + 0.98 * math.log(1 / 0.02))
    assert stats["mean_shift_std"] == pytest.approx(0.98 / np.std(train))
    assert violated(report) == {("flag", "baseline_drift_check")}
    # a value training never had lands in "other": 0 -> 50 shows
    report = drift.compare(reference, as_text(pd.DataFrame({"flag": ["50"] * 100})), [])
    assert report["features"]["flag"]["psi"] == pytest.approx(psi_by_hand([980, 20, 0], [0, 0, 100]))


def test_a_constant_training_column_and_any_other_value(drift) -> None:
    reference = drift.baseline(pd.DataFrame({"c": [7.0] * 500}), {"c": "numeric"}, [])
    assert reference["features"]["c"]["std"] == 0
    same = drift.compare(reference, as_text(pd.DataFrame({"c": [7] * 100})), [])
    assert same["violations"] == [] and same["features"]["c"]["constant_changed"] == 0
    report = strict(drift.compare(reference, as_text(pd.DataFrame({"c": [7] * 98 + [8, 9]})), []))
    stats = report["features"]["c"]
    assert stats["constant_changed"] == 0.02 and "mean_shift_std" not in stats
    changed = [v for v in report["violations"] if "constant" in v["description"]]
    assert changed == [{"feature_name": "c", "constraint_check_type": "baseline_drift_check",
                        "description": "training was constant at 7; 2.00% of the batch differs"}]  # fmt: skip
    assert report["gate_ratio"] > 1 and math.isfinite(report["gate_ratio"])


@pytest.mark.parametrize("column", ["bmi", "plan"])
def test_an_all_missing_batch_column_is_a_completeness_violation_not_drift(drift, column: str) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    batch = as_text(frame(n=200, seed=1))
    batch[column] = "NA"
    report = strict(drift.compare(reference, batch, ["NA"]))
    assert violated(report) == {(column, "completeness_check")}
    stats = report["features"][column]
    assert stats["missing_share"] == 1 and stats["missing_share_increase"] == 1
    assert not {"psi", "mean", "mean_shift_std", "js_distance", "unseen_share"} & set(stats)
    assert "missing share 1" in report["violations"][0]["description"]


def test_text_in_a_numeric_column_is_counted_and_named(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    batch = as_text(frame(n=200, seed=1))
    batch.loc[:2, "age"] = ["abc", "12,5", "abc"]
    report = strict(drift.compare(reference, batch, ["NA"]))
    age = report["features"]["age"]
    assert (age["unparsed_count"], age["unparsed_share"]) == (3, 3 / 200)
    assert violated(report) == {("age", "data_type_check")}
    (violation,) = report["violations"]
    assert "3 value(s)" in violation["description"] and "'abc', '12,5'" in violation["description"]
    numbers = pd.to_numeric(batch["age"][3:]).to_numpy()
    assert age["mean"] == pytest.approx(numbers.mean())  # the rest still scored


def test_infinite_values_are_counted_named_and_the_report_is_strict_json(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    batch = as_text(frame(n=200, seed=1))
    batch.loc[:2, "bmi"] = ["inf", "-inf", "Infinity"]
    report = drift.compare(reference, batch, ["NA"])
    text = json.dumps(report, allow_nan=False)
    assert "Infinity" not in text and "NaN" not in text
    assert report["features"]["bmi"]["non_finite_count"] == 3
    assert violated(report) == {("bmi", "data_type_check")}
    assert report["violations"][0]["description"] == "3 value(s) are infinite (inf or -inf)"
    assert report["features"]["bmi"]["mean"] == pytest.approx(pd.to_numeric(batch["bmi"][3:]).mean())


def test_an_unseen_category_and_the_js_distance_by_scipy(drift) -> None:
    train = frame(seed=0)
    reference = drift.baseline(train, TYPES, ["NA"])
    batch = frame(n=500, seed=1)
    batch.loc[:49, "plan"] = "enterprise"
    report = strict(drift.compare(reference, as_text(batch), ["NA"]))
    expected, actual = Counter(train["plan"]), Counter(batch["plan"])
    names = sorted(set(expected) | set(actual))
    by_scipy = jensenshannon([expected[c] / 2000 for c in names], [actual[c] / 500 for c in names], base=2)
    assert report["features"]["plan"]["js_distance"] == pytest.approx(by_scipy, rel=1e-12)
    assert report["features"]["plan"]["unseen_share"] == 0.1
    assert ("plan", "categorical_values_check") in violated(report)


def test_booleans_spelled_yes_no_and_true_false_are_the_same_values(drift) -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"member": rng.choice(["yes", "no", " Yes"], 1000, p=[0.2, 0.7, 0.1])})
    reference = drift.baseline(train, {"member": "boolean"}, [])
    assert reference["features"]["member"]["frequencies"] == pytest.approx({"True": 0.3, "False": 0.7}, abs=0.03)
    batch = pd.DataFrame({"member": rng.choice(["True", "False", "false", "1"], 400, p=[0.25, 0.35, 0.35, 0.05])})
    report = strict(drift.compare(reference, batch, []))
    spelled = Counter(train["member"].str.strip().str.lower().map({"yes": "True", "no": "False"}))
    batch_spelled = Counter(batch["member"].str.lower().map({"true": "True", "1": "True", "false": "False"}))
    by_scipy = jensenshannon([spelled["True"] / 1000, spelled["False"] / 1000],
                             [batch_spelled["True"] / 400, batch_spelled["False"] / 400], base=2)  # fmt: skip
    assert report["features"]["member"]["js_distance"] == pytest.approx(by_scipy, rel=1e-12)
    assert report["features"]["member"]["unseen_share"] == 0 and report["violations"] == []


@pytest.mark.parametrize("n", [0, 1, 10])
def test_a_small_batch_is_not_judged_and_fails_flags_or_scores_as_asked(drift, n: int) -> None:
    train = frame(seed=0)
    reference = drift.baseline(train, TYPES, ["NA"])
    batch = as_text(train.head(n))
    score = strict(drift.compare(reference, batch, ["NA"], small_batch="score"))
    assert score["violations"] == [] and score["gate_ratio"] == 0 and score["n_rows"] == n
    assert (score["small_batch"], score["judged"], score["flagged"], score["min_rows"]) == (True, False, False, 30)
    fail = strict(drift.compare(reference, batch, ["NA"]))  # "fail" is the default
    assert fail["violations"] == [{
        "feature_name": "(batch)", "constraint_check_type": "completeness_check",
        "description": f"the batch has {n} row(s), fewer than min_rows 30: too few to judge drift",
    }]  # fmt: skip
    assert (fail["worst_feature"], fail["worst_statistic"], fail["worst_value"]) == ("(batch)", "n_rows", n)
    assert fail["gate_ratio"] == fail["worst_ratio"] == 31 / (n + 1) and fail["gate_ratio"] > 1
    flag = strict(drift.compare(reference, batch, ["NA"], small_batch="flag"))
    assert fail["judged"] and not fail["flagged"] and fail["small_batch"]  # gate_ratio is the verdict
    assert flag["violations"] == fail["violations"] and flag["flagged"] and flag["gate_ratio"] == 0
    assert not flag["judged"] and flag["small_batch"]
    assert score["features"] == fail["features"] == flag["features"]  # computed where possible all the same
    if n:
        assert score["features"]["age"]["mean"] == pytest.approx(train["age"].head(n).mean())
    else:
        assert "psi" not in score["features"]["age"]


def test_min_rows_is_the_boundary_and_small_batch_is_checked(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    batch = as_text(frame(n=30, seed=1))
    assert drift.compare(reference, batch, ["NA"])["judged"]
    assert drift.compare(reference, batch, ["NA"], min_rows=31)["gate_ratio"] == 32 / 31
    assert drift.compare(reference, batch.head(0), ["NA"], min_rows=1)["gate_ratio"] == 2
    with pytest.raises(ValueError, match="small_batch"):
        drift.compare(reference, batch, ["NA"], small_batch="ignore")


def test_a_version_1_baseline_is_still_read(drift) -> None:
    """Version 1: inner edges (open outer bins), duplicates possible, no counts."""
    reference = {"version": 1, "n_rows": 1000, "na_values": [], "features": {"x": {
        "kind": "numeric", "missing_share": 0.0, "mean": 0.95, "std": 1.5, "min": 0.0, "max": 5.0,
        "bin_edges": [0.0, 0.0, 1.0], "bin_shares": [0.0, 0.0, 0.6, 0.4],
    }, "c": {"kind": "categorical", "missing_share": 0.0, "frequencies": {"a": 0.5, "b": 0.5}}}}  # fmt: skip
    batch = pd.DataFrame({"x": ["-1"] * 10 + ["0"] * 50 + ["3"] * 40, "c": ["a"] * 50 + ["b"] * 50})
    report = strict(drift.compare(reference, batch, []))
    # de-duplicated edges [0, 1]: bins (-inf, 0), [0, 1), [1, inf) with training shares 0, 0.6, 0.4
    assert report["features"]["x"]["psi"] == pytest.approx(psi_by_hand([0, 600, 400], [10, 50, 40]))
    assert report["features"]["c"]["js_distance"] == 0


def test_a_missing_column_and_statistics_at_their_edges(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    report = strict(drift.compare(reference, as_text(frame(n=100).drop(columns=["sex"])), ["NA"]))
    assert {"feature_name": "sex", "constraint_check_type": "missing_column_check",
            "description": "the batch has no column sex"} in report["violations"]  # fmt: skip
    assert report["worst_feature"] == "sex" and math.isfinite(report["worst_ratio"]) and report["gate_ratio"] > 1
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0 and drift.psi([1.0, 0.0], [0.0, 1.0]) > 10  # smoothed, finite
    assert drift.psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.0], 10, 10) == 0  # a bin empty on both sides adds nothing
    assert drift.js_distance({"a": 1.0}, {"a": 1.0}) == 0 and drift.js_distance({"a": 1.0}, {"b": 1.0}) == 1


def test_the_drift_job_writes_the_report_violations_and_picture_and_logs_a_run(
    drift,
    tmp_path,
    tracking_server,  # noqa: F811 - fixture
) -> None:
    """As a processing job runs it (entrypoint.sh), against a real MLflow server."""
    from mlflow import MlflowClient

    from tests.test_step_scripts import processing, script_env

    model = tmp_path / "model"
    (model / "baseline").mkdir(parents=True)
    (model / "baseline" / "baseline.json").write_text(json.dumps(drift.baseline(frame(seed=0), TYPES, ["NA"])))
    data = tmp_path / "data"
    data.mkdir()
    shifted = frame(n=500, seed=1)
    shifted["age"] = shifted["age"] + 20
    shifted.to_csv(data / "batch.csv", index=False)
    experiment = f"drift-{tmp_path.name}"[-60:]
    env = script_env(tracking_server.uri, experiment, MLOPS_PIPELINE_EXECUTION_ARN="arn:execution/x")
    spec = tmp_path / "dataset_spec.json"
    spec.write_text(json.dumps({"task": "regression", "target": "y"}))
    result = processing("drift_check.py", ["--model", str(model), "--data", str(data), "--output-dir",
                                           str(tmp_path / "out"), "--records-dir", str(tmp_path / "records"),
                                           "--spec", str(spec)], env, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "drift: worst age psi=" in result.stdout
    report = json.loads((tmp_path / "out" / "drift_report.json").read_text())
    assert report["worst_feature"] == "age" and report["worst_ratio"] > 1 and report["mlflow_run_id"]
    assert report["gate_ratio"] == report["worst_ratio"] and report["judged"]
    violations = json.loads((tmp_path / "out" / "constraint_violations.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations} == {"age"}
    assert (tmp_path / "out" / "drift_report.png").read_bytes().startswith(b"\x89PNG")
    client = MlflowClient(tracking_server.uri)
    run = client.get_run(report["mlflow_run_id"])
    assert run.data.tags["mlops.step"] == "drift" and run.data.metrics["drift_age_psi"] > 1
    (batch_input,) = run.inputs.dataset_inputs  # issue #23: the batch it checked, by source and digest
    assert batch_input.dataset.name == "batch" and json.loads(batch_input.dataset.source)["uri"] == f"file://{data}"
    assert [t.value for t in batch_input.tags] == ["input"] and json.loads(batch_input.dataset.profile)[
        "num_rows"
    ] == 500
    assert {a.path for a in client.list_artifacts(run.info.run_id, "drift")} >= {
        "drift/drift_report.json", "drift/constraint_violations.json", "drift/drift_report.png",
    }  # fmt: skip


def test_a_discrete_value_written_with_fewer_digits_is_the_same_value(drift) -> None:
    """A two-valued column (scikit-learn's scaled `sex`) whose batch was written with 10
    significant digits while training kept 16: the same two values, no drift; a value that
    differs beyond rounding is still another value."""
    values = np.array([0.0506801187398187, -0.044641636506989])
    train = pd.DataFrame({"sex": np.random.default_rng(0).choice(values, 400)})
    reference = drift.baseline(train, {"sex": "numeric"}, [])
    batch = pd.DataFrame({"sex": [f"{v:.10g}" for v in train["sex"][:200]]})
    report = drift.compare(reference, batch, [])
    assert report["features"]["sex"]["psi"] < 0.05 and report["violations"] == []
    moved = pd.DataFrame({"sex": ["0.0507"] * 200})  # 4e-4 relative: another value
    assert drift.compare(reference, moved, [])["features"]["sex"]["psi"] > 1


def test_a_spike_and_the_range_ends_written_with_fewer_digits_stay_in_their_bins(drift) -> None:
    """A continuous column with a spike (30 % at one value) and its min and max: the batch's
    copies of those values, rounded to 10 significant digits either way, fall in the
    spike's bin and inside the range, not beside them."""
    rng = np.random.default_rng(1)
    spike, low, high = 0.0506801187398187, -0.1070893587, 0.1853357456
    values = np.concatenate([[low, high], rng.uniform(low, high, 698), np.full(300, spike)])
    reference = drift.baseline(pd.DataFrame({"x": values}), {"x": "numeric"}, [])
    assert spike in reference["features"]["x"]["bin_edges"]  # quantile bins, the spike in one of its own
    rounded = [f"{v:.10g}" for v in values]
    rounded[:2] = [f"{low * (1 + 1e-9):.12g}", f"{high * (1 + 1e-9):.12g}"]  # just outside the range
    report = drift.compare(reference, pd.DataFrame({"x": rounded}), [])
    assert report["features"]["x"]["psi"] < 0.01 and report["violations"] == [], report["features"]["x"]
