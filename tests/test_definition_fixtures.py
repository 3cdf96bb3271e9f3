"""Today's build equals the frozen definitions (`tests/definition_fixtures.py`): the training
and batch pipelines of the default config and the example, tuning on and off, each task,
an XGBoost estimator, VPC and secrets, encryption off, the batch options. The fixtures were
written with SDK v2.257.7; the builder is on SDK v3 (issue #22). The batch pipelines are
byte-identical; the training pipelines differ only as `V3_DIFFERENCES` lists, each with its
reason, and stay what SageMaker accepts (botocore's validator and the extended schema)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.definition_checks import api_request_errors, schema_errors
from tests.definition_fixtures import CASES, Case, fixture_path, render_case

Definition = dict[str, Any]


def _steps(definition: Definition, kind: str) -> list[Definition]:
    return [step for step in definition["Steps"] if step["Type"] == kind]


def _drop_empty_continuous_ranges(definition: Definition) -> None:
    for step in _steps(definition, "Tuning"):
        ranges = step["Arguments"]["HyperParameterTuningJobConfig"]["ParameterRanges"]
        if ranges.get("ContinuousParameterRanges") == []:
            del ranges["ContinuousParameterRanges"]


def _resource_config_for_trials(definition: Definition) -> None:
    for step in _steps(definition, "Tuning"):
        job = step["Arguments"]["TrainingJobDefinition"]
        job["ResourceConfig"] = job.pop("HyperParameterTuningResourceConfig")


def _no_estimator_class_hyperparameters(definition: Definition) -> None:
    for step in _steps(definition, "Tuning"):
        static = step["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
        del static["sagemaker_estimator_class_name"], static["sagemaker_estimator_module"]


def _no_debug_hook(definition: Definition) -> None:
    for step in _steps(definition, "Training"):
        del step["Arguments"]["DebugHookConfig"]


# What SDK v3 sends otherwise than v2 did, applied to the v2 fixture to give the v3 build:
# (change, the step type it is about, why SageMaker does the same with it)
V3_DIFFERENCES: list[tuple[Callable[[Definition], None], str, str]] = [
    (
        _drop_empty_continuous_ranges,
        "Tuning",
        "Tune: v2 listed every range type, empty ones as []; v3 leaves an empty type out. An absent "
        "list of ranges and an empty one both mean no range of that type (botocore: optional list).",
    ),
    (
        _resource_config_for_trials,
        "Tuning",
        "Tune: the trials' instance type, count and volume are in TrainingJobDefinition.ResourceConfig, "
        "not HyperParameterTuningResourceConfig (v2 moved them there for instance_configs, which this "
        "project does not use). CreateHyperParameterTuningJob takes either; the values are the same.",
    ),
    (
        _no_estimator_class_hyperparameters,
        "Tuning",
        "Tune: v2's tuner added sagemaker_estimator_class_name and sagemaker_estimator_module to the "
        "static hyperparameters so that its HyperparameterTuner.attach could rebuild the estimator; "
        "v3 has no estimator classes. The scikit-learn container ignores both.",
    ),
    (
        _no_debug_hook,
        "Training",
        "Train: v2 added a DebugHookConfig with no collections to every framework estimator's job by "
        "default; v3's ModelTrainer sends none. The scikit-learn image runs no Debugger hook, and "
        "SageMaker treats the field as optional.",
    ),
]


def without_code_digest(text: str) -> str:
    """The scripts' content address (`code/<digest>/`, pipeline/code_bundle.py) changes with
    every change to a script, and is tested where it is made; here what the SDK builds around
    it is compared."""
    return re.sub(r"/code/[0-9a-f]{16}/", "/code/<digest>/", text)


def as_built_by_v3(frozen: str) -> str:
    definition = json.loads(frozen)
    for change, _, _ in V3_DIFFERENCES:
        change(definition)
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"


PAIRS = [(case, pipeline) for case in CASES for pipeline in case.pipelines]
IDS = [f"{case.name}.{pipeline}" for case, pipeline in PAIRS]


@pytest.mark.parametrize(("case", "pipeline"), PAIRS, ids=IDS)
def test_the_build_equals_the_frozen_definition(case: Case, pipeline: str) -> None:
    frozen = fixture_path(case, pipeline).read_text()
    if pipeline == "training":
        frozen = as_built_by_v3(frozen)
    frozen, built = without_code_digest(frozen), without_code_digest(render_case(case, pipeline))
    if built != frozen:
        diff = "".join(difflib.unified_diff(frozen.splitlines(True), built.splitlines(True), "frozen", "built", n=2))
        pytest.fail(f"{case.name}.{pipeline} differs from its fixture:\n{diff[:6000]}")


@pytest.mark.parametrize(("case", "pipeline"), PAIRS, ids=IDS)
def test_each_frozen_definition_and_its_v3_form_is_what_sagemaker_accepts(case: Case, pipeline: str) -> None:
    frozen = fixture_path(case, pipeline).read_text()
    for text in (frozen, as_built_by_v3(frozen)) if pipeline == "training" else (frozen,):
        definition = json.loads(text)
        assert api_request_errors(definition) == {}
        assert schema_errors(definition) == []


def test_each_listed_difference_changes_every_training_fixture_with_its_step() -> None:
    """A listed difference that no longer happens would be stale: each change alters exactly
    the training fixtures holding a step of its type, and no other."""
    for change, step_type, reason in V3_DIFFERENCES:
        for case, pipeline in PAIRS:
            if pipeline != "training":
                continue
            definition = json.loads(fixture_path(case, pipeline).read_text())
            before = json.dumps(definition, sort_keys=True)
            change(definition)
            changed = json.dumps(definition, sort_keys=True) != before
            assert changed == bool(_steps(json.loads(before), step_type)), (case.name, reason)
