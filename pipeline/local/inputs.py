"""Where local mode reads a job's inputs from, and what it says when one is missing.

An S3 URI maps to the workspace's S3 folder. Like SageMaker's own local mode (`file://`),
a job may also read a file or folder on this machine, so a CSV on disk is passed as
`--param InputDataUri=./data.csv` instead of being copied below `.local/s3/` first.
Relative paths are resolved against a base the driver fixes once (the directory the
command was typed in): jobs run in their own folders, so their cwd would name another file.

Everything here decides from its arguments alone; `Workspace` does the reading.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from pipeline.execution_parameters import input_sources, referenced_parameter

__all__ = [
    "StepInput",
    "UnsupportedInput",
    "as_uploaded",
    "input_location",
    "missing_input_message",
    "s3_location",
    "step_inputs",
]

UPLOAD_STAND_IN = "s3://local-mode-upload"

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,62}$")  # S3's legacy rule, the widest
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/")  # `data:2024.csv` stays a relative path


class UnsupportedInput(ValueError):
    """A URI local mode cannot read: another scheme (`http://`), a malformed S3 URI, or a
    folder that would copy the workspace into itself."""


def s3_location(uri: str, s3_root: Path) -> Path:
    """`s3://bucket/key` → `<s3_root>/bucket/key`, always inside `s3_root`.

    The bucket must be a bucket name (at most 63 letters, digits, `.`, `_`, `-`, starting
    with a letter or digit), so `s3:///abs` (empty bucket) cannot become `/abs`; `.` and
    `..` key segments are refused so a key cannot climb out. Raises UnsupportedInput
    naming the URI."""
    if not uri.startswith("s3://"):
        raise UnsupportedInput(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not _BUCKET.match(bucket):
        raise UnsupportedInput(f"{uri!r}: {bucket!r} is not an S3 bucket name")
    segments = key.rstrip("/").split("/")
    if any(part in {".", ".."} for part in segments):
        raise UnsupportedInput(f"{uri!r}: a key with '.' or '..' segments would leave the workspace")
    return s3_root.joinpath(bucket, *filter(None, segments))


def input_location(uri: str, workspace_root: Path, base: Path) -> Path:
    """The local file or folder an input URI names.

    `s3://b/k` lives in the workspace (`<root>/s3/b/k`). `file:///abs`, `file:/abs` and
    `/abs` are that path; `file://rel` (SageMaker's local mode reads it as `rel`, not as a
    host) and `rel` are below `base`. `file:` URIs are percent-decoded, as RFC 8089 says.
    Anything else is refused rather than guessed at."""
    if not isinstance(uri, str):  # a parameter without a default, say
        raise UnsupportedInput(f"{uri!r} is not a URI")
    match = _SCHEME.match(uri)
    scheme = match.group(1).lower() if match else ""
    if scheme == "s3":
        return s3_location(uri, workspace_root / "s3")
    if scheme == "file":
        path = unquote(uri[len("file:") :].removeprefix("//"))
    elif scheme:
        raise UnsupportedInput(f"{uri}: local mode reads s3:// and file:// URIs and local paths, not {scheme}://")
    else:
        path = uri
    if not path:
        raise UnsupportedInput(f"{uri!r} names no file or folder")
    location = Path(os.path.normpath(base / path))  # `base / "/abs"` is `/abs`
    if workspace_root == location or workspace_root.is_relative_to(location):
        raise UnsupportedInput(
            f"{uri}: that folder holds the local workspace {workspace_root}; name the data's own file or folder"
        )
    return location


@dataclass(frozen=True)
class StepInput:
    """One input of a job, with the name a person knows it by."""

    uri: str  # as resolved from the definition: exactly what the user configured or passed
    name: str  # the processing input's or training channel's name
    parameter: str = ""  # the pipeline parameter the URI is, if it is one

    @property
    def label(self) -> str:
        return self.parameter or f"input {self.name}"


def _channels(raw: Mapping[str, Any], resolved: Mapping[str, Any]) -> list[StepInput]:
    pairs = zip(raw.get("InputDataConfig", []), resolved.get("InputDataConfig", []), strict=True)
    return [
        StepInput(
            channel["DataSource"]["S3DataSource"]["S3Uri"],
            channel["ChannelName"],
            referenced_parameter(written["DataSource"]["S3DataSource"]["S3Uri"]) or "",
        )
        for written, channel in pairs
    ]


def step_inputs(step_type: str, raw: Mapping[str, Any], resolved: Mapping[str, Any]) -> list[StepInput]:
    """The data a Processing, Training, Tuning or Transform step reads. `raw` is the step's Arguments
    as written in the definition (to see which parameter a URI is), `resolved` the same
    with every expression evaluated."""
    if step_type == "Processing":
        pairs = zip(raw.get("ProcessingInputs", []), resolved.get("ProcessingInputs", []), strict=True)
        return [
            StepInput(
                item["S3Input"]["S3Uri"],
                item.get("InputName", ""),
                referenced_parameter(written["S3Input"]["S3Uri"]) or "",
            )
            for written, item in pairs
            if "S3Input" in item
        ]
    if step_type == "Training":
        return _channels(raw, resolved)
    if step_type == "Tuning":
        return _channels(raw.get("TrainingJobDefinition", {}), resolved.get("TrainingJobDefinition", {}))
    if step_type == "Transform":
        written = raw.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
        uri = resolved["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        return [StepInput(uri, "data", referenced_parameter(written) or "")]
    return []


def missing_input_message(item: StepInput, looked_at: Path, *, empty_folder: bool = False) -> str:
    """One line naming the URI as given and where local mode looked; for an S3 URI, how
    to put the data there or point the parameter at a local file instead."""
    if empty_folder:
        message = f"{item.label} {item.uri}: no files in the folder {looked_at}"
    else:
        message = f"{item.label} {item.uri}: not found; local mode looks for it at {looked_at}"
    if item.uri.startswith("s3://"):
        local_name = PurePosixPath(item.uri.rstrip("/")).name
        hint = f", or pass --param {item.parameter}=./{local_name}" if item.parameter else ""
        message += f" (copy the file there{hint})"
    return message


def as_uploaded(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The request with every local input (a path or `file://` URI, local mode's extension)
    replaced by an S3 URI standing in for its upload, so SageMaker's limits are checked on
    the request as SageMaker would receive it, not on a path it never sees."""
    import copy

    request = copy.deepcopy(dict(resolved))
    for source in input_sources(request):
        uri = source["S3Uri"]
        if isinstance(uri, str) and not uri.startswith("s3://"):
            source["S3Uri"] = f"{UPLOAD_STAND_IN}/{PurePosixPath(uri.rstrip('/')).name or 'input'}"
    return request
