"""What a local step produced: one type from the runner to the cache and back.

`properties` is what SageMaker's Describe call for the step's job would report (the part
later steps `Get`); `property_files` the step's JSON property files by name. A cached
result is the same object read back, so a cache hit and a fresh run feed later steps alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["StepResult"]


@dataclass(frozen=True)
class StepResult:
    properties: dict[str, Any]
    job_name: str = ""  # the job (or tuning job) the step ran, "" for RegisterModel
    log: str = ""  # the job's log file (the best trial's, for tuning)
    detail: str = ""  # one line for the progress view: metrics, trials, the package ARN
    property_files: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StepResult:
        """Raises KeyError when `properties` is missing (a cache entry of another layout)."""
        return cls(
            properties=raw["properties"],
            job_name=raw.get("job_name", ""),
            log=raw.get("log", ""),
            detail=raw.get("detail", ""),
            property_files=raw.get("property_files", {}),
        )
