"""The two independent checks of a rendered definition (issue #2's acceptance):

1. `api_request_errors`: each job step's Arguments, with every pipeline expression
   replaced by a sample value of the type the API expects at that spot, validated by
   botocore's own ParamValidator against the SageMaker service model.
2. `schema_errors`: the pipeline-level structure against the public definition schema,
   extended by exactly the fields listed in `SCHEMA_EXTENSIONS`, each with its reason.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

# The public schema, kept in the repository with its source noted (tests/spec/README.md).
SCHEMA_PATH = Path(__file__).resolve().parent / "spec" / "pipeline-definition.schema.json"

API_OPERATION = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "RegisterModel": ("CreateModelPackage", None),
}

_EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}


def _service_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _EXPRESSION_KEYS


def _sample(shape: Any, expression: dict[str, Any], parameters: dict[str, Any]) -> Any:
    """A value of the type the API wants here, standing in for what SageMaker resolves at
    run time. A parameter's default is used as is, so a Float parameter placed where the
    API wants a string is caught."""
    ((kind, body),) = expression.items()
    if kind == "Get" and body.startswith("Parameters."):
        return parameters[body.removeprefix("Parameters.")]
    if kind == "Std:Join":
        return "s3://sample-bucket/sample/key"  # a join always yields a string
    type_name = shape.type_name
    if type_name == "string":
        if shape.enum:
            return shape.enum[0]
        return "s3://sample-bucket/sample/key"
    if type_name in {"integer", "long"}:
        return 1
    if type_name in {"float", "double"}:
        return 1.0
    if type_name == "boolean":
        return True
    raise AssertionError(f"an expression stands where the API expects a {type_name}: {expression}")


def substitute(value: Any, shape: Any, parameters: dict[str, Any]) -> Any:
    if _is_expression(value):
        return _sample(shape, value, parameters)
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: substitute(v, shape.members.get(k), parameters) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [substitute(v, shape.member, parameters) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: substitute(v, shape.value, parameters) for k, v in value.items()}
    return value


def job_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for step in definition["Steps"]:
        steps.append(step)
        if step["Type"] == "Condition":
            steps += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
    return [s for s in steps if s["Type"] in API_OPERATION]


def api_request(step: dict[str, Any], definition: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    operation, name_key = API_OPERATION[step["Type"]]
    shape = _service_model().operation_model(operation).input_shape
    request = substitute(copy.deepcopy(step["Arguments"]), shape, parameters)
    if name_key:
        request[name_key] = "sample-job-name"
    return request, shape


def api_request_errors(definition: dict[str, Any]) -> dict[str, str]:
    """Step name -> botocore's validation report, for every job step that fails."""
    errors = {}
    for step in job_steps(definition):
        request, shape = api_request(step, definition)
        report = ParamValidator().validate(request, shape)
        if report.has_errors():
            errors[step["Name"]] = report.generate_report()
    return errors


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

    schema["properties"]["PipelineExperimentConfig"] = {"type": "object"}
    add("top-level PipelineExperimentConfig: the SDK's default experiment/trial naming")
    return reasons


def extended_schema() -> tuple[dict[str, Any], list[str]]:
    schema = json.loads(SCHEMA_PATH.read_text())
    reasons = _extend(schema)
    return schema, reasons


STEP_DEFINITIONS = {
    "Processing": "ProcessingStep", "Training": "TrainingStep", "Tuning": "TuningStep", "Condition": "ConditionStep",
    "RegisterModel": "RegisterModelStep", "Fail": "FailStep",
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
