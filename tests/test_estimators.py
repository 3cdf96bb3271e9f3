"""The estimator is checked where the command runs, before any job is paid for: a wrong
import path, hyperparameter or tuning range fails `render` with exit 2 naming the key, and
the job image gets the estimator's library pinned to the version that was checked."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.code_bundle import code_bundle
from pipeline.config_loader import load_config
from tests.conftest import DEFAULT_CONFIG

NO_TUNING = ["--set", "tuning.enabled=false"]


def render(tmp_path: Path, *overrides: str) -> int:
    return main(["render", "--config", str(DEFAULT_CONFIG), "--out", str(tmp_path / "d.json"), *overrides])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["--set", "training.estimator=sklearn.ensemble.RandomForestRegresor"],
            "training.estimator: module 'sklearn.ensemble' has no 'RandomForestRegresor'",
        ),
        (
            ["--set", "training.estimator=catboost.CatBoostRegressor"],
            "training.estimator: cannot import 'catboost' here",
        ),
        (
            ["--set", "training.hyperparameters.n_trees=5"],
            "training.hyperparameters.n_trees: sklearn.ensemble.RandomForestRegressor has no parameter 'n_trees'",
        ),
        (
            ["--set", "training.estimator=ridge", "--set", "training.hyperparameters={alpha: 1.0}"],
            "tuning.ranges.max_depth: sklearn.linear_model.Ridge has no parameter 'max_depth'",
        ),
        (
            ["--set", "training.hyperparameters.n_estimators=1e3"],  # YAML 1.2's float, as the job reads it
            "training.hyperparameters.n_estimators: 1000.0 is refused by "
            "RandomForestRegressor: The 'n_estimators' parameter of RandomForestRegressor must be an int",
        ),
        (
            ["--set", "training.hyperparameters.max_features=most"],
            "training.hyperparameters.max_features: 'most' is refused by RandomForestRegressor: The "
            "'max_features' parameter",
        ),
    ],
    ids=[
        "typo in the class",
        "library not installed",
        "unknown hyperparameter",
        "range the estimator lacks",
        "1e3 for an integer",
        "a value outside the options",
    ],
)
def test_a_wrong_estimator_fails_render_naming_the_key(
    overrides: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(tmp_path, *overrides) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "d.json").exists()


def test_the_job_image_gets_the_estimators_library_pinned(tmp_path: Path) -> None:
    cfg = load_config(DEFAULT_CONFIG, overrides=["training.estimator=xgboost.XGBRegressor", "tuning.enabled=false",
                                                 "training.hyperparameters={max_depth: 3}"])  # fmt: skip
    requirements = code_bundle(cfg).files["requirements.txt"].decode().splitlines()
    assert f"xgboost-cpu=={version('xgboost-cpu')}" in requirements
    assert any(line.startswith("mlflow-skinny==") for line in requirements)  # the bundled ones stay
    assert render(tmp_path, "--set", "training.estimator=xgboost.XGBRegressor", *NO_TUNING,
                  "--set", "training.hyperparameters={max_depth: 3}") == 0  # fmt: skip
    default = code_bundle(load_config(DEFAULT_CONFIG)).files["requirements.txt"].decode()
    assert "xgboost" not in default  # scikit-learn's own estimators need nothing more


def test_a_library_the_image_lacks_needs_installing_or_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = render(tmp_path, "--set", "training.estimator=xgboost.XGBRegressor", *NO_TUNING,
                  "--set", "training.hyperparameters={}", "--set", "runtime.install_requirements=false")  # fmt: skip
    assert code == 2
    assert "runtime.install_requirements: the jobs need xgboost-cpu==" in capsys.readouterr().err


def test_hyperparameters_are_checked_as_the_job_reads_them() -> None:
    """The job's own parsing (hyperparameter_values.parse_value), then the estimator's own
    constraints; an estimator without scikit-learn's `_validate_params` by set_params."""
    from sklearn.ensemble import RandomForestRegressor
    from xgboost import XGBRegressor

    from pipeline.estimators import value_fault

    assert value_fault(RandomForestRegressor, "n_estimators", 200) == ""
    assert value_fault(RandomForestRegressor, "n_estimators", "200") == ""  # text the job reads as 200
    assert value_fault(RandomForestRegressor, "bootstrap", True) == ""
    assert "must be an int" in value_fault(RandomForestRegressor, "n_estimators", 2.5)
    assert value_fault(XGBRegressor, "max_depth", 3) == ""


def test_the_jobs_install_their_requirements_under_the_images_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """requirements.txt starts with `-c` of the image's constraints (pip reads a nested file
    relative to the requirements file, wherever the job unpacks it); a requirement that needs
    another version of a pinned package fails render naming both versions."""
    from pipeline.image_constraints import pinned_versions, requirement_conflicts

    bundle = code_bundle(load_config(DEFAULT_CONFIG))
    lines = bundle.files["requirements.txt"].decode().splitlines()
    assert lines[0] == "-c sklearn-1.4-2-constraints.txt" and "mlflow-skinny==3.17.2" in lines
    pins = pinned_versions(bundle.files["sklearn-1.4-2-constraints.txt"].decode())
    assert pins["protobuf"] == "3.20.2" and pins["scikit-learn"] == "1.4.2" and pins["pyyaml"] == "6.0.1"
    assert requirement_conflicts(["protobuf>=5", "xgboost-cpu==3.2.0", "Scikit_Learn>=1.4", "-c x.txt"], pins) == [
        "protobuf>=5 needs another protobuf than the image's 3.20.2"
    ]
    custom = code_bundle(load_config(DEFAULT_CONFIG, overrides=["runtime.image_uri=123.dkr.ecr/x:1"]))
    assert not custom.files.get("requirements.txt", b"").startswith(b"-c")  # the team's image, the team's pins

    assert render(tmp_path, "--set", "training.requirements=[numpy==2.3.0]") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "training.requirements: numpy==2.3.0 needs another numpy than the image's 2.1.0" in err, err
    assert "runtime.image_uri" in err and not (tmp_path / "d.json").exists()
