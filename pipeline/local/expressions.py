"""Pipeline expressions as SageMaker evaluates them: `Get`, `Std:Join`, `Std:JsonGet`,
and conditions. Pure functions over a `Scope`; no I/O."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import LocalModeError

__all__ = ["ExpressionError", "Scope", "evaluate_condition", "resolve"]

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_:\-]*)|\['([^']*)'\]|\[(\d+)\]")


class ExpressionError(LocalModeError):
    """A reference that cannot be resolved (unknown parameter, step or property)."""


@dataclass
class Scope:
    parameters: dict[str, Any]
    execution: dict[str, str]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # step name -> its properties
    property_files: dict[tuple[str, str], Any] = field(default_factory=dict)  # (step, file name) -> JSON


def _walk(value: Any, path: str, where: str) -> Any:
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match or match.end() == position:
            raise ExpressionError(f"cannot parse property path {path!r} at {path[position:]!r} ({where})")
        name, key, index = match.groups()
        try:
            if index is not None:
                # Outputs['name'] and Outputs[0] both address a named list (kept as a dict)
                value = list(value.values())[int(index)] if isinstance(value, dict) else value[int(index)]
            else:
                value = value[name if name is not None else key]
        except (KeyError, IndexError, TypeError):
            raise ExpressionError(f"{where}: no {path[: match.end()]!r}") from None
        position = match.end()
    return value


def _get(reference: str, scope: Scope) -> Any:
    kind, _, rest = reference.partition(".")
    if kind == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"unknown parameter {rest!r}")
        return scope.parameters[rest]
    if kind == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(f"unknown execution variable {rest!r}")
        return scope.execution[rest]
    if kind == "Steps":
        step, _, path = rest.partition(".")
        if step not in scope.steps:
            raise ExpressionError(f"step {step!r} has no properties yet (did it run?)")
        return _walk(scope.steps[step], path, f"Steps.{step}")
    raise ExpressionError(f"unsupported reference {reference!r}")


def _json_get(spec: dict[str, Any], scope: Scope) -> Any:
    reference = spec["PropertyFile"]["Get"] if isinstance(spec["PropertyFile"], dict) else spec["PropertyFile"]
    match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.([^.]+)", reference)
    if not match:
        raise ExpressionError(f"Std:JsonGet needs a property file reference, got {reference!r}")
    key = (match.group(1), match.group(2))
    if key not in scope.property_files:
        raise ExpressionError(f"property file {key[1]!r} of step {key[0]!r} is not available")
    document = scope.property_files[key]
    if found := non_finite_paths(document):  # Python's json reads them; JSON has no such numbers
        raise ExpressionError(
            f"property file {key[1]!r} of step {key[0]!r} is not strict JSON: {', '.join(found[:5])} "
            "(Infinity and NaN are not JSON numbers, RFC 8259 section 6; SageMaker's JsonGet cannot read them)"
        )
    return _walk(document, spec["Path"], f"{key[1]} of {key[0]}")


def non_finite_paths(value: Any, path: str = "$") -> list[str]:
    """`$.a.b = inf`, `$.items[2] = nan`: every non-finite number in a parsed JSON document."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path} = {value}"]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in non_finite_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in non_finite_paths(item, f"{path}[{index}]")]
    return []


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def resolve(value: Any, scope: Scope) -> Any:
    """Replace every expression in a JSON value by its value."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, body),) = value.items()
            if key == "Get":
                return _get(body, scope)
            if key == "Std:Join":
                return body["On"].join(_as_text(resolve(v, scope)) for v in body["Values"])
            if key == "Std:JsonGet":
                return _json_get(body, scope)
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    return value


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, (int, float)) or isinstance(right, (int, float)):
        try:
            return float(left), float(right)
        except (TypeError, ValueError):
            raise ExpressionError(f"cannot compare {left!r} with {right!r}") from None
    return left, right


_BINARY = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a != b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def evaluate_condition(condition: dict[str, Any], scope: Scope) -> bool:
    kind = condition["Type"]
    if kind in _BINARY:
        left, right = _comparable(resolve(condition["LeftValue"], scope), resolve(condition["RightValue"], scope))
        return bool(_BINARY[kind](left, right))
    if kind == "In":
        query = resolve(condition["QueryValue"], scope)
        return any(_BINARY["Equals"](*_comparable(query, resolve(v, scope))) for v in condition["Values"])
    if kind == "Not":
        return not evaluate_condition(condition["Condition"], scope)
    if kind == "Or":
        return any(evaluate_condition(c, scope) for c in condition["Conditions"])
    raise ExpressionError(f"unsupported condition type {kind!r}")
