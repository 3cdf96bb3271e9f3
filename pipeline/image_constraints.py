"""The job image's own package pins, kept by pip when the jobs install their requirements.

SageMaker's framework images pin their libraries; `pip install -r requirements.txt` at job
start would otherwise upgrade them (mlflow-skinny pulls protobuf 7 over the image's 3.20.2,
and the training toolkit's `record_pb2` then fails to import). For an image whose pins this
project knows (`pipeline/steps/scripts/<image>-constraints.txt`), the code bundle's
requirements.txt starts with `-c <that file>` (pip resolves a nested file relative to the
requirements file, so processing jobs, the training toolkit and the serving container all
honour it), and a requirement that needs another version of a pinned package is refused at
render, naming both versions.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pipeline.config import PipelineConfig

__all__ = ["HARNESS_PACKAGES", "constraints_file", "normalised_name", "pinned_versions", "requirement_conflicts"]

# What the image runs the jobs with rather than what they import (the training and inference
# toolkits and their web server): its pins constrain what a job installs, but local mode,
# which stands in for the harness, does not install it (pipeline/local/job_environment.py).
HARNESS_PACKAGES = frozenset(
    {"sagemaker-training", "sagemaker-containers", "sagemaker-inference", "flask", "werkzeug", "gunicorn"}
)


def constraints_file(cfg: PipelineConfig) -> str | None:
    """The constraints file of the image the jobs run in, by name inside the scripts; None
    for a custom `runtime.image_uri` (its pins are the team's) or an image without one."""
    if cfg.runtime.image_uri:
        return None
    return {"1.4-2": "sklearn-1.4-2-constraints.txt"}.get(cfg.runtime.framework_version)


def normalised_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (`Scikit_Learn` -> `scikit-learn`)."""
    return canonicalize_name(name)


def pinned_versions(text: str) -> dict[str, str]:
    """`name==version` lines of a constraints file, by normalised name."""
    pins = {}
    for line in text.splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            pins[normalised_name(name)] = version.strip()
    return pins


def requirement_conflicts(requirements: Iterable[str], pins: dict[str, str]) -> list[str]:
    """A sentence for each requirement that no pinned version satisfies."""
    conflicts = []
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # pip's own options (-c, -r, --index-url) and what pip will refuse itself
        pinned = pins.get(normalised_name(requirement.name))
        if pinned and requirement.specifier and not requirement.specifier.contains(pinned, prereleases=True):
            conflicts.append(f"{line} needs another {requirement.name} than the image's {pinned}")
    return conflicts
