"""The two independent checks of a rendered definition (issue #2's acceptance):

1. `api_request_errors`: each job step's Arguments, with every pipeline expression
   replaced by a sample value of the type the API expects at that spot, validated by
   botocore's own ParamValidator against the SageMaker service model, plus the model's
   max/pattern/enum constraints. The substitution and the checks are the product's own
   (`pipeline/api_limits.py`, which `render` runs too); this module only groups them.
2. `schema_errors`: the pipeline-level structure against the public definition schema,
   extended by exactly the fields listed in `SCHEMA_EXTENSIONS`, each with its reason.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipeline.api_limits import definition_violations, job_steps, sample_request

# The public schema, kept in the repository with its source noted (tests/spec/README.md).
SCHEMA_PATH = Path(__file__).resolve().parent / "spec" / "pipeline-definition.schema.json"

__all__ = ["api_request", "api_request_errors", "extended_schema", "job_steps", "schema_errors"]


def api_request(step: dict[str, Any], definition: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The step's request with expressions replaced by typed samples (pipeline/api_limits.py)."""
    return sample_request(step, definition)


def api_request_errors(definition: dict[str, Any]) -> dict[str, str]:
    """Step name -> what the product's checker reports (botocore's ParamValidator plus the
    service model's max/pattern/enum), for every job step that fails."""
    errors: dict[str, list[str]] = defaultdict(list)
    for violation in definition_violations(definition):
        errors[violation.step].append(str(violation))
    return {step: "\n".join(lines) for step, lines in errors.items()}


# ---- the schema, extended ------------------------------------------------------------

_JSON_GET = {
    "type": "object",
    "properties": {
        "Std:JsonGet": {
            "type": "object",
            "properties": {"PropertyFile": {"$ref": "#/definitions/GetFunction"}, "Path": {"type": "string"}},
            "required": ["PropertyFile", "Path"],
            "additionalProperties": False,
        }
    },
    "required": ["Std:JsonGet"],
    "additionalProperties": False,
}
_JOIN = {
    "type": "object",
    "properties": {
        "Std:Join": {
            "type": "object",
            "properties": {
                "On": {"type": "string"},
                "Values": {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"type": ["string", "number", "boolean"]},
                            {"$ref": "#/definitions/GetFunction"},
                            {"$ref": "#/definitions/JsonGetFunction"},
                        ]
                    },
                },
            },
            "required": ["On", "Values"],
            "additionalProperties": False,
        }
    },
    "required": ["Std:Join"],
    "additionalProperties": False,
}
_RETRY_TYPES = ["Step.SERVICE_FAULT", "Step.THROTTLING", "SageMaker.JOB_INTERNAL_ERROR",
                "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT", "Emr.RESOURCE_LIMIT"]  # fmt: skip


def _extend(schema: dict[str, Any]) -> list[str]:
    """Apply each extension; return the reasons (asserted non-empty and listed in the test)."""
    d = schema["definitions"]
    reasons = []

    def add(reason: str) -> None:
        reasons.append(reason)

    d["JsonGetFunction"] = _JSON_GET
    d["JoinFunction"] = _JOIN
    add(
        "JoinFunction: the published definition nests Values outside 'properties', so it checks nothing; "
        "replaced by the shape SageMaker evaluates (On + Values of strings, Get and JsonGet)"
    )
    for name in ("StringArgumentValue",):
        d[name] = {
            "oneOf": [
                *d[name]["oneOf"],
                {"$ref": "#/definitions/JoinFunction"},
                {"$ref": "#/definitions/JsonGetFunction"},
            ]
        }
    add(
        "Std:Join / Std:JsonGet wherever a string argument is accepted: the SDK joins S3 URIs "
        "(outputs, ModelDataUrl, metrics source), the FailStep message and JsonGet customer metadata"
    )
    for name in ("FloatArgumentValue", "IntegerArgumentValue", "BooleanArgumentValue"):
        d[name] = {"oneOf": [*d[name]["oneOf"], {"$ref": "#/definitions/JsonGetFunction"}]}
    add("Std:JsonGet as a condition operand: the quality gate reads evaluation.json")

    d["RetryPolicy"]["properties"]["ExceptionType"] = {
        "anyOf": [
            {"type": "string", "enum": _RETRY_TYPES},
            {"type": "array", "minItems": 1, "items": {"type": "string", "enum": _RETRY_TYPES}},
        ]
    }
    add("RetryPolicy.ExceptionType as a list: SDK v2 emits a list of exception types per policy")

    io_items = [
        d["ProcessingArgs"]["properties"]["ProcessingInputs"]["items"],
        d["ProcessingArgs"]["properties"]["ProcessingOutputConfig"]["properties"]["Outputs"]["items"],
    ]
    for items in io_items:
        items["properties"]["AppManaged"] = {"type": "boolean"}
    add("AppManaged on processing inputs/outputs: a CreateProcessingJob field the SDK always emits")

    d["ProcessingStep"]["properties"]["PropertyFiles"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "PropertyFileName": {"type": "string"},
                "OutputName": {"type": "string"},
                "FilePath": {"type": "string"},
            },
            "required": ["PropertyFileName", "OutputName", "FilePath"],
            "additionalProperties": False,
        },
    }
    add("PropertyFiles on a processing step: how evaluation.json becomes readable by JsonGet")

    train = d["TrainingStep"]["properties"]["Arguments"]["properties"]
    train["ProfilerConfig"] = {"type": "object"}
    train["Environment"] = {"type": "object", "additionalProperties": {"$ref": "#/definitions/StringArgumentValue"}}
    add(
        "ProfilerConfig and Environment on training: CreateTrainingJob fields the SDK emits (the profiler is "
        "disabled; Environment carries the MLflow tracking settings)"
    )

    hpt = d["HyperParameterTrainingJobDefinition"]
    tuning_args = d["TuningStep"]["properties"]["Arguments"]["properties"]
    tuning_def = tuning_args.get("TrainingJobDefinition")
    targets = [hpt] + ([tuning_def] if isinstance(tuning_def, dict) and "properties" in tuning_def else [])
    for target in targets:
        target["properties"]["HyperParameterTuningResourceConfig"] = {"type": "object"}
        target["properties"]["Environment"] = {"type": "object", "additionalProperties": {"type": "string"}}
        target["required"] = [r for r in target.get("required", []) if r != "ResourceConfig"]
    add(
        "HyperParameterTuningResourceConfig (instead of ResourceConfig) and Environment in a tuning job's "
        "training definition: both CreateHyperParameterTuningJob fields the SDK emits"
    )

    reg = d["RegisterModelStep"]["properties"]["Arguments"]["properties"]
    reg["ModelApprovalStatus"] = {"$ref": "#/definitions/StringArgumentValue"}
    reg["SkipModelValidation"] = {"type": "string", "enum": ["All", "None"]}
    reg["CustomerMetadataProperties"] = {
        "type": "object",
        "additionalProperties": {"$ref": "#/definitions/StringArgumentValue"},
    }
    reg["Domain"] = {"type": "string"}
    reg["Task"] = {"type": "string"}
    container = reg["InferenceSpecification"]["properties"]["Containers"]["items"]["properties"]
    container["Environment"] = {"type": "object", "additionalProperties": {"$ref": "#/definitions/StringArgumentValue"}}
    container["Framework"] = {"type": "string"}
    add(
        "ModelApprovalStatus, SkipModelValidation, CustomerMetadataProperties (the MLflow run id), Domain, Task "
        "and container Environment/Framework on RegisterModel: CreateModelPackage fields"
    )

    d["StringParameter"]["properties"]["EnumValues"] = {"type": "array", "minItems": 1, "items": {"type": "string"}}
    add(
        "EnumValues on a String parameter: SDK v2's ParameterString(enum_values=...) emits it "
        "(sagemaker/workflow/parameters.py); ModelApprovalStatus declares the approval statuses"
    )

    schema["properties"]["PipelineExperimentConfig"] = {"type": "object"}
    add("top-level PipelineExperimentConfig: the SDK's default experiment/trial naming")
    return reasons


def extended_schema() -> tuple[dict[str, Any], list[str]]:
    schema = json.loads(SCHEMA_PATH.read_text())
    reasons = _extend(schema)
    return schema, reasons


STEP_DEFINITIONS = {
    "Processing": "ProcessingStep", "Training": "TrainingStep", "Tuning": "TuningStep", "Condition": "ConditionStep",
    "RegisterModel": "RegisterModelStep", "Fail": "FailStep", "Model": "CreateModelStep",
    "Transform": "TransformStep",
}  # fmt: skip


def schema_errors(definition: dict[str, Any]) -> list[str]:
    """Errors of the whole definition; a step that fails the `oneOf` over step kinds is
    re-checked against the definition of its own Type, so the message says what is wrong."""
    import jsonschema

    schema, _ = extended_schema()
    errors = []
    for error in jsonschema.Draft7Validator(schema).iter_errors(definition):
        instance = error.instance
        kind = STEP_DEFINITIONS.get(instance.get("Type", "")) if isinstance(instance, dict) else None
        if error.validator != "oneOf" or kind is None:
            errors.append(f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}")
            continue
        step_schema = {"definitions": schema["definitions"], **schema["definitions"][kind]}
        for sub in jsonschema.Draft7Validator(step_schema).iter_errors(instance):
            path = [*error.absolute_path, *sub.absolute_path]
            errors.append(f"{'/'.join(map(str, path))}: {sub.message[:300]}")
    return errors
