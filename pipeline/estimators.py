"""The configured estimator, checked where the command runs, before any job is paid for.

`training.estimator` is a shortcut or an import path; its hyperparameters and tuning ranges
must be parameters the estimator takes (`get_params()`, scikit-learn's estimator API). The
check imports the estimator's module, so its library must be installed wherever `render`
or `run --local` runs, as it must be for the local run anyway. The jobs get the same
library pinned to the installed version, so what was checked is what runs.
"""

from __future__ import annotations

import importlib
from importlib import metadata

from pipeline.config import PipelineConfig

__all__ = ["estimator_problems", "estimator_requirements"]

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
    return problems


def estimator_requirements(estimator_path: str) -> list[str]:
    """`dist==version` for the estimator's library when the framework image lacks it
    (xgboost, lightgbm, ...), at the version installed here; [] for scikit-learn's own."""
    top = estimator_path.split(".", 1)[0]
    if top in _IN_FRAMEWORK_IMAGE:
        return []
    distributions = metadata.packages_distributions().get(top, [])
    return [f"{name}=={metadata.version(name)}" for name in sorted(set(distributions))]
