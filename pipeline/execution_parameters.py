"""`--param Name=value` for `start`: checked against the definition's own parameters, so
a typo fails before an execution is started."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from pipeline.errors import UsageError

__all__ = ["parse_execution_parameters"]


def _check_value(name: str, kind: str, value: str) -> str:
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
    """Name, type and, where a parameter declares them, `EnumValues` (`start` and `run --local`)."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param expects Name=value, got {pair!r}")
        if name not in declared:
            raise UsageError(f"--param {name}: unknown parameter (the pipeline declares {', '.join(sorted(declared))})")
        allowed = declared[name].get("EnumValues")
        if allowed and value not in allowed:
            raise UsageError(f"--param {name}: {value!r} is not one of {', '.join(allowed)}")
        values[name] = _check_value(name, declared[name].get("Type", "String"), value)
    return values
