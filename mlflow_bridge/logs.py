"""The bridge's logger: Powertools for AWS Lambda's structured JSON (cold start, request
id and function name added by `inject_lambda_context`; the package ARN appended per
event), with every long value cut so one hostile event cannot write megabytes."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from typing import Any

from aws_lambda_powertools import Logger

from mlflow_bridge.contract import METRICS_SERVICE

__all__ = ["MAX_FIELD_CHARACTERS", "SERVICE", "bridge_logger", "shortened"]

SERVICE = METRICS_SERVICE  # the `service` of every log line and the Metrics dimension
MAX_FIELD_CHARACTERS = 2048  # a value longer than this (a 5 MB "ARN") is cut, saying so


def shortened(value: Any) -> Any:
    """A value as logged: text cut to MAX_FIELD_CHARACTERS with its full length noted, in
    nested dicts and lists too."""
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARACTERS:
        return f"{value[:MAX_FIELD_CHARACTERS]}... ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: shortened(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [shortened(item) for item in value]
    return value


def _bounded_json(line: dict[str, Any]) -> str:
    return json.dumps(shortened(line), default=str, separators=(",", ":"))


@functools.cache
def bridge_logger(*, file: str | None = None, level: int | str = logging.INFO) -> Logger:
    """JSON lines to stdout (Lambda sends them to CloudWatch), or to a file (local mode,
    where stdout belongs to the command's result). Powertools keys a logger by its name,
    so each file gets a logger of its own (named beside the Lambda's, not below it, so its
    lines do not also reach stdout). One Logger per file and level: Powertools configures
    a logger name once, so a second Logger on it would hold a handler it never attached."""
    common: dict[str, Any] = {"level": level, "json_serializer": _bounded_json, "utc": True, "use_rfc3339": True}
    if file is None:
        return Logger(service=SERVICE, **common)
    name = f"{SERVICE}-file-{hashlib.sha256(file.encode()).hexdigest()[:12]}"
    return Logger(service=name, logger_handler=logging.FileHandler(file), **common)
