"""The configured estimator, checked where the command runs, before any job is paid for.

`training.estimator` is a shortcut or an import path; its hyperparameters and tuning ranges
must be parameters the estimator takes (`get_params()`, scikit-learn's estimator API). The
check imports the estimator's module, so its library must be installed wherever `render`
or `run --local` runs, as it must be for the local run anyway. The jobs get the same
library pinned to the installed version, so what was checked is what runs.
"""

from __future__ import annotations

import importlib
import json
from importlib import metadata
from typing import Any

from pipeline.config import PipelineConfig

__all__ = ["estimator_problems", "estimator_requirements", "value_fault"]

# The SageMaker scikit-learn image ships these; pinning them again would fight the image.
_IN_FRAMEWORK_IMAGE = {"sklearn", "numpy", "pandas", "scipy"}


def estimator_problems(cfg: PipelineConfig) -> list[tuple[str, str]]:
    """(key path, message) for an estimator that cannot be imported or built, and for each
    hyperparameter or tuning range it does not take; [] when all is well."""
    training = cfg.training
    path = training.estimator_path
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        return [("training.estimator", f"cannot import {module_name!r} here ({exc}); install it, or fix the path")]
    except AttributeError:
        return [("training.estimator", f"module {module_name!r} has no {class_name!r}")]
    try:
        accepted = set(cls().get_params())
    except Exception as exc:  # any estimator's own constructor error
        return [("training.estimator", f"{path}() cannot be built with defaults: {exc}")]
    problems = []
    for key, names in (("training.hyperparameters", training.hyperparameters), ("tuning.ranges", cfg.tuning.ranges)):
        if key == "tuning.ranges" and not cfg.tuning.enabled:
            continue
        for name in sorted(set(names) - accepted):
            problems.append((f"{key}.{name}", f"{path} has no parameter {name!r}"))
    for name, value in sorted(training.hyperparameters.items()):
        if name in accepted and (fault := value_fault(cls, name, value)):
            problems.append((f"training.hyperparameters.{name}", fault))
    return problems


def _job_value(value: Any) -> Any:
    """The value as the training job reads it: SageMaker passes it as text (JSON for a
    number or boolean), which train.py parses with `parse_value`."""
    from pipeline.job_scripts import script_module

    parse_value = script_module("hyperparameter_values").parse_value  # train.py's own rule
    return parse_value(value if isinstance(value, str) else json.dumps(value))


def value_fault(cls: type, name: str, value: Any) -> str:
    """'' when the estimator takes `value` for `name` as the job will read it; else why not,
    in the estimator's own words: scikit-learn estimators declare `_parameter_constraints` and
    check them in `_validate_params` (scikit-learn >= 1.2), which `fit` would run in the
    job. An estimator without them (XGBoost, LightGBM) is checked by `set_params` only."""
    job_value = _job_value(value)
    try:
        estimator = cls()
        estimator.set_params(**{name: job_value})
        if hasattr(estimator, "_parameter_constraints"):  # XGBoost inherits _validate_params, not constraints
            estimator._validate_params()
    except Exception as exc:  # the estimator's own error types (InvalidParameterError is a ValueError)
        shown = f"{value!r}" + (f" (the job reads {job_value!r})" if job_value != value else "")
        return f"{shown} is refused by {cls.__name__}: {str(exc).splitlines()[0]}"
    return ""


def estimator_requirements(estimator_path: str) -> list[str]:
    """`dist==version` for the estimator's library when the framework image lacks it
    (xgboost, lightgbm, ...), at the version installed here; [] for scikit-learn's own."""
    top = estimator_path.split(".", 1)[0]
    if top in _IN_FRAMEWORK_IMAGE:
        return []
    distributions = metadata.packages_distributions().get(top, [])
    return [f"{name}=={metadata.version(name)}" for name in sorted(set(distributions))]
