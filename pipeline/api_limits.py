"""What the SageMaker API would refuse, found before SageMaker sees it.

A pipeline step's `Arguments` are, apart from the job name SageMaker adds, the request of
one API call (CreateProcessingJob, CreateTrainingJob, CreateHyperParameterTuningJob,
CreateModelPackage, CreateModel, CreateTransformJob). botocore's `ParamValidator`, which boto3 runs before sending a
request, checks types, required members and `min` only. The service model
(botocore/data/sagemaker/2017-07-24/service-2.json) also declares `max`, `pattern` and
`enum` on its shapes; SageMaker enforces those when a job starts, hours into an
execution, while moto and local runs accept anything. This module checks all of them,
reading the constraints from botocore's model rather than copying them, so a botocore
upgrade brings SageMaker's current limits along.

Two entry points: `definition_violations` for a rendered definition (pipeline
expressions are resolved at run time, so they are skipped, except that a `Get` of a
parameter is checked with the parameter's default) and `request_violations` for a
request whose values are all concrete (local mode, just before a job starts).

Patterns are Java regular expressions (`\\p{L}`, `\\p{Alnum}`); the `regex` package
understands those and Python's `re` does not. A pattern is matched against the whole
value, as Java's `Pattern.matches` does; a pattern that does not compile is skipped
rather than guessed at. One known difference: Java's `.` also refuses `\\r`, `\\u0085`,
`\\u2028` and `\\u2029`, this one only `\\n`. No SageMaker SDK import here.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ConfigError

__all__ = [
    "JOB_OPERATIONS",
    "Violation",
    "check_definition",
    "definition_violations",
    "enum_values",
    "is_expression",
    "job_steps",
    "parameter_defaults",
    "request_violations",
    "sample_request",
    "service_model",
    "uncompilable_patterns",
]

# Step type -> (API operation, the job-name member SageMaker fills in itself).
JOB_OPERATIONS: dict[str, tuple[str, str | None]] = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "RegisterModel": ("CreateModelPackage", None),
    "Model": ("CreateModel", "ModelName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
}
_EXPRESSION_KEYS = frozenset({"Get", "Std:Join", "Std:JsonGet"})
_SAMPLE_JOB_NAME = "sample-job-name"  # satisfies every job-name pattern and length
_SAMPLE_STRING = "s3://sample-bucket/sample/key"  # a string that also passes S3Uri shapes
_NUMBERS = {"integer", "long", "float", "double"}
_SHOWN = 60  # characters of a refused value quoted in a message


@dataclass(frozen=True)
class Violation:
    step: str
    path: str  # inside the request, named as botocore names it: `A.B[3]`, `Map.key`, `Map (key: k)`
    message: str

    @property
    def where(self) -> str:
        return f"{self.step}: {self.path}" if self.path else self.step

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@functools.cache
def service_model() -> Any:
    """The SageMaker service model shipped with the installed botocore (about 0.2 s to load)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def enum_values(shape_name: str) -> list[str]:
    """The values the service model allows for an enum shape, in the model's order."""
    return list(service_model().shape_for(shape_name).enum)


def is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _EXPRESSION_KEYS


def job_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps that become API calls, including those inside a condition's branches."""
    steps: list[dict[str, Any]] = []
    for step in definition.get("Steps", []):
        steps.append(step)
        if step["Type"] == "Condition":
            steps += step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", [])
    return [s for s in steps if s["Type"] in JOB_OPERATIONS]


def parameter_defaults(definition: dict[str, Any]) -> dict[str, Any]:
    return {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}


def _sample(shape: Any, expression: dict[str, Any], parameters: dict[str, Any]) -> Any:
    """A value of the type the API wants here, standing in for what SageMaker resolves at
    run time. A parameter's default is used as is, so a Float parameter placed where the
    API wants a string is caught. An expression where the API wants a structure, list or
    map is left in place for the validator to report."""
    ((kind, body),) = expression.items()
    if kind == "Get" and isinstance(body, str) and body.startswith("Parameters."):
        return parameters.get(body.removeprefix("Parameters."), expression)
    if kind == "Std:Join":
        return _SAMPLE_STRING  # a join always yields a string
    type_name = shape.type_name
    if type_name == "string":
        return shape.enum[0] if shape.enum else _SAMPLE_STRING
    samples = {"integer": 1, "long": 1, "float": 1.0, "double": 1.0, "boolean": True}
    return samples.get(type_name, expression)


def _substitute(value: Any, shape: Any, parameters: dict[str, Any]) -> Any:
    if shape is None:
        return value
    if is_expression(value):
        return _sample(shape, value, parameters)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _substitute(v, shape.members.get(k), parameters) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_substitute(v, shape.member, parameters) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _substitute(v, shape.value, parameters) for k, v in value.items()}
    return value


def _with_job_name(request: dict[str, Any], step_type: str) -> dict[str, Any]:
    _, name_key = JOB_OPERATIONS[step_type]
    if name_key and name_key not in request:
        request = {**request, name_key: _SAMPLE_JOB_NAME}
    return request


def sample_request(step: dict[str, Any], definition: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """A job step's request with every pipeline expression replaced by a typed sample
    value (a parameter's default where it is a `Get` of a parameter), plus the operation's
    input shape: what botocore's validator can check."""
    operation, _ = JOB_OPERATIONS[step["Type"]]
    shape = service_model().operation_model(operation).input_shape
    request = _substitute(copy.deepcopy(step["Arguments"]), shape, parameter_defaults(definition))
    return _with_job_name(request, step["Type"]), shape


@functools.cache
def _compiled(pattern: str) -> Any:
    """The pattern compiled by `regex` (Java-style classes), or None if it does not compile."""
    import regex

    try:
        return regex.compile(pattern)
    except regex.error:
        return None


def uncompilable_patterns(operations: list[str]) -> dict[str, str]:
    """Shape name -> pattern, for every pattern reachable from these operations' inputs that
    is skipped because it does not compile (so a test can show what goes unchecked)."""
    found: dict[str, str] = {}

    def visit(shape: Any, seen: frozenset[str]) -> None:
        if shape.name in seen:
            return
        seen |= {shape.name}
        pattern = shape.metadata.get("pattern")
        if pattern is not None and _compiled(pattern) is None:
            found[shape.name] = pattern
        children = {"structure": lambda: shape.members.values(), "list": lambda: [shape.member],
                    "map": lambda: [shape.key, shape.value]}.get(shape.type_name, list)  # fmt: skip
        for child in children():
            visit(child, seen)

    for operation in operations:
        visit(service_model().operation_model(operation).input_shape, frozenset())
    return found


def _show(value: str) -> str:
    return repr(value) if len(value) <= _SHOWN else f"{value[:_SHOWN]!r}... ({len(value)} characters)"


class _LimitWalk:
    """Walks a request with its shape and collects what ParamValidator leaves unchecked:
    `max` of strings, lists, maps and numbers, `min` of maps, `pattern` and `enum`."""

    def __init__(self, step: str, parameters: dict[str, Any] | None) -> None:
        self.step, self.parameters = step, parameters
        self.found: list[Violation] = []

    def report(self, path: str, message: str) -> None:
        self.found.append(Violation(self.step, path, message))

    def value(self, value: Any, shape: Any, path: str) -> None:
        if shape is None:
            return  # an unknown member: ParamValidator reports it
        if is_expression(value):
            body = value.get("Get")
            if self.parameters is not None and isinstance(body, str) and body.startswith("Parameters."):
                name = body.removeprefix("Parameters.")
                if self.parameters.get(name) is not None:
                    self.value(self.parameters[name], shape, f"{path} (default of parameter {name})")
            return  # anything else is known at run time only
        kind = shape.type_name
        if kind == "structure" and isinstance(value, dict):
            for key, member in value.items():
                self.value(member, shape.members.get(key), f"{path}.{key}" if path else key)
        elif kind == "list" and isinstance(value, list):
            self.size(len(value), shape, path, "items")
            for index, item in enumerate(value):
                self.value(item, shape.member, f"{path}[{index}]")
        elif kind == "map" and isinstance(value, dict):
            self.size(len(value), shape, path, "entries", check_min=True)
            for key, item in value.items():
                self.value(key, shape.key, f"{path} (key: {key})")
                self.value(item, shape.value, f"{path}.{key}")
        elif kind == "string" and isinstance(value, str):
            self.string(value, shape, path)
        elif kind in _NUMBERS and isinstance(value, int | float) and not isinstance(value, bool):
            limit = shape.metadata.get("max")
            if limit is not None and value > limit:
                self.report(path, f"{value}, SageMaker allows at most {limit}")

    def size(self, count: int, shape: Any, path: str, unit: str, *, check_min: bool = False) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if high is not None and count > high:
            self.report(path, f"{count} {unit}, SageMaker allows at most {high}")
        if check_min and low is not None and count < low:  # ParamValidator checks lists, not maps
            self.report(path, f"{count} {unit}, SageMaker needs at least {low}")

    def string(self, value: str, shape: Any, path: str) -> None:
        if shape.enum and value not in shape.enum:
            self.report(path, f"{_show(value)} is not one of {', '.join(shape.enum)}")
            return
        high = shape.metadata.get("max")
        if high is not None and len(value) > high:
            self.report(path, f"{len(value)} characters, SageMaker allows at most {high}")
            return
        pattern = shape.metadata.get("pattern")
        compiled = _compiled(pattern) if pattern is not None else None
        if compiled is None:
            return
        try:
            matches = compiled.fullmatch(value, timeout=1.0) is not None
        except TimeoutError:
            return  # a pathological backtrack is not worth a guess
        if not matches:
            self.report(path, f"{_show(value)} does not match the pattern SageMaker requires: {pattern}")


def _violations(step: str, request: dict[str, Any], checked: Any, shape: Any, parameters: Any) -> list[Violation]:
    """ParamValidator's report on `checked` (types, required, min), then the limit walk of
    `request` (the same request, possibly with expressions still in it)."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(checked, shape)
    found = [Violation(step, "", line) for line in report.generate_report().splitlines()] if report.has_errors() else []
    walk = _LimitWalk(step, parameters)
    walk.value(request, shape, "")
    return found + walk.found


def request_violations(step_name: str, step_type: str, request: dict[str, Any]) -> list[Violation]:
    """A concrete request (every value resolved) against its operation's input shape."""
    operation, _ = JOB_OPERATIONS[step_type]
    shape = service_model().operation_model(operation).input_shape
    request = _with_job_name(request, step_type)
    return _violations(step_name, request, request, shape, None)


def definition_violations(definition: dict[str, Any]) -> list[Violation]:
    """Every job step of a rendered definition: expressions skipped, parameter defaults
    checked where a parameter is used directly."""
    found: list[Violation] = []
    for step in job_steps(definition):
        checked, shape = sample_request(step, definition)
        request = _with_job_name(step["Arguments"], step["Type"])
        found += _violations(step["Name"], request, checked, shape, parameter_defaults(definition))
    return found


def check_definition(definition: dict[str, Any]) -> None:
    """Raise a ConfigError (exit 2) listing every violation: the definition came from the
    config, and SageMaker would refuse it only once the step runs."""
    found = definition_violations(definition)
    if found:
        raise ConfigError([(v.where, v.message) for v in found])
