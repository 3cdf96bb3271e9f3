"""Step caching as SageMaker does it: a step is reused when the attributes SageMaker keys
on are unchanged (outputs are not among them) within `ExpireAfter`. Locally the key also
covers the content of every input, since a workspace file can change under a fixed URI.

The key functions are pure; `CacheStore` is the thin edge that keeps entries as JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.atomic_file import write_atomically
from pipeline.local.step_result import StepResult

__all__ = ["CacheStore", "cache_key", "expiry_seconds", "input_uris"]

# From "Default cache key attributes by pipeline step type" (SageMaker developer guide).
_KEY_FIELDS = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification", "CheckpointConfig", "DebugHookConfig", "DebugRuleConfigurations",
        "Environment", "HyperParameters", "InputDataConfig",
    ),
    "Tuning": ("HyperParameterTuningJobConfig", "TrainingJobDefinition"),
    "Transform": ("DataProcessing", "Environment", "ModelName", "TransformInput"),
    "RegisterModel": None,  # not cached by SageMaker; locally: the whole request (see runner)
}  # fmt: skip
_TUNING_DEFINITION_FIELDS = (
    "AlgorithmSpecification", "HyperParameterRanges", "InputDataConfig", "StaticHyperParameters", "Environment",
)  # fmt: skip


def _key_material(step_type: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    fields = _KEY_FIELDS.get(step_type)
    if fields is None:
        return dict(arguments)
    material = {f: arguments[f] for f in fields if f in arguments}
    if step_type == "Tuning" and "TrainingJobDefinition" in material:
        definition = material["TrainingJobDefinition"]
        material["TrainingJobDefinition"] = {f: definition[f] for f in _TUNING_DEFINITION_FIELDS if f in definition}
    return material


def input_uris(step_type: str, arguments: Mapping[str, Any]) -> list[str]:
    """The S3 URIs a step reads (data and code), whose content belongs in the key."""
    uris: list[str] = []
    if step_type == "Processing":
        uris += [i["S3Input"]["S3Uri"] for i in arguments.get("ProcessingInputs", []) if "S3Input" in i]
    definition = arguments.get("TrainingJobDefinition", arguments) if step_type in {"Training", "Tuning"} else {}
    for channel in definition.get("InputDataConfig", []):
        uris.append(channel["DataSource"]["S3DataSource"]["S3Uri"])
    hyperparameters = definition.get("HyperParameters") or definition.get("StaticHyperParameters") or {}
    if "sagemaker_submit_directory" in hyperparameters:
        uris.append(json.loads(hyperparameters["sagemaker_submit_directory"]))
    if step_type == "Transform":
        uris.append(arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
    return sorted(set(uris))


def cache_key(step_type: str, arguments: Mapping[str, Any], content_hashes: Mapping[str, str]) -> str:
    material = {"type": step_type, "arguments": _key_material(step_type, arguments), "content": dict(content_hashes)}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def expiry_seconds(duration: str) -> float:
    """ISO 8601 duration to seconds (years as 365 days, months as 30)."""
    match = _DURATION.match(duration.upper())
    if not match:
        raise ValueError(f"not an ISO 8601 duration: {duration!r}")
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(((((years * 365 + months * 30 + weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60) + seconds)


@dataclass(frozen=True)
class CacheStore:
    root: Path

    def _path(self, step: str, key: str) -> Path:
        return self.root / step / f"{key}.json"

    def get(self, step: str, key: str, max_age: float) -> StepResult | None:
        """The step's result for this key, unless older than `max_age` seconds (or unreadable:
        a cache entry is only ever a shortcut)."""
        path = self._path(step, key)
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text())
            if time.time() - entry["created"] > max_age:
                return None
            return StepResult.from_json(entry)
        except (ValueError, KeyError, TypeError):
            return None

    def put(self, step: str, key: str, result: StepResult) -> None:
        entry = {**result.to_json(), "created": time.time()}
        write_atomically(self._path(step, key), json.dumps(entry, indent=2, default=str))
