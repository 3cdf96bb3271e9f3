"""`--param Name=value` for `start` and `run --local`: checked against the definition's own
parameters, so a typo fails before an execution is started. A parameter that is a job's
input URI must name S3 for `start`: local paths are a `run --local` convenience."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from pipeline.errors import UsageError
from pipeline.uri_credentials import credentials_in_uri

__all__ = [
    "input_parameters",
    "input_sources",
    "parse_execution_parameters",
    "referenced_parameter",
    "refuse_local_inputs",
]


PARAMETER_VALUE_MAX = 1024  # StartPipelineExecution's Parameter.Value (botocore's SageMaker model)


def _check_value(name: str, kind: str, value: str) -> str:
    if not value:
        # The API's shape admits "", but every parameter these pipelines declare is a URI, an
        # instance type, an ARN or a number, none of which SageMaker takes empty: a job
        # would fail on it after the execution started.
        raise UsageError(f"--param {name}: empty; give a value or leave the parameter out for its default")
    if len(value) > PARAMETER_VALUE_MAX:
        raise UsageError(f"--param {name}: {len(value)} characters, SageMaker allows at most {PARAMETER_VALUE_MAX}")
    try:
        if kind == "Integer":
            int(value)
        elif kind == "Float":
            if not math.isfinite(float(value)):
                raise ValueError
        elif kind == "Boolean" and value.lower() not in {"true", "false"}:
            raise ValueError
    except ValueError:
        raise UsageError(f"--param {name}: {value!r} is not a valid {kind}") from None
    return value


def parse_execution_parameters(pairs: Iterable[str], definition: dict[str, Any]) -> dict[str, str]:
    """Name, type and, where a parameter declares them, `EnumValues` (`start` and `run --local`);
    a value carrying credentials (`pipeline.uri_credentials`) is refused without being echoed."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param expects Name=value, got {pair!r}")
        if name not in declared:
            raise UsageError(f"--param {name}: unknown parameter (the pipeline declares {', '.join(sorted(declared))})")
        found = credentials_in_uri(value)
        if found:
            raise UsageError(f"--param {name}: the value carries credentials ({found}); pass them at run time instead")
        allowed = declared[name].get("EnumValues")
        if allowed and value not in allowed:
            raise UsageError(f"--param {name}: {value!r} is not one of {', '.join(allowed)}")
        values[name] = _check_value(name, declared[name].get("Type", "String"), value)
    return values


def referenced_parameter(value: Any) -> str | None:
    """The parameter a definition value stands for when it is exactly `{"Get": "Parameters.X"}`
    (so a URI can be reported by the name the user sets it with)."""
    if isinstance(value, dict) and list(value) == ["Get"] and isinstance(value["Get"], str):
        kind, _, name = value["Get"].partition(".")
        if kind == "Parameters" and name:
            return name
    return None


def input_sources(node: Any) -> Iterator[dict[str, Any]]:
    """Every input source a job reads, wherever it sits in a step's arguments: processing
    inputs' `S3Input` and training channels' `S3DataSource`, each a dict with `S3Uri`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"S3Input", "S3DataSource"} and isinstance(value, dict) and "S3Uri" in value:
                yield value
            yield from input_sources(value)
    elif isinstance(node, list):
        for item in node:
            yield from input_sources(item)


def input_parameters(definition: dict[str, Any]) -> set[str]:
    """Parameters that are, whole, the URI of a job's input."""
    steps = definition.get("Steps", [])
    found = (referenced_parameter(source["S3Uri"]) for step in steps for source in input_sources(step))
    return {name for name in found if name}


_REMOTE = re.compile(r"^(s3|https)://", re.IGNORECASE)  # what SageMaker's S3Uri accepts


def refuse_local_inputs(values: dict[str, str], definition: dict[str, Any]) -> None:
    """For `start`: SageMaker reads inputs from S3, so a local path (which `run --local`
    accepts) would only fail the execution later, in a job."""
    for name in sorted(input_parameters(definition) & values.keys()):
        if not _REMOTE.match(values[name]):
            raise UsageError(
                f"--param {name}={values[name]}: not an S3 URI; local paths work with `run --local` only"
                " (on SageMaker, upload the data to S3 and pass its s3:// URI)"
            )
