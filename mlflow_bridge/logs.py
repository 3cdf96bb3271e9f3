"""Structured JSON log lines, each carrying the package ARN it is about."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

__all__ = ["PackageLogger", "configure"]


MAX_FIELD_CHARACTERS = 2048  # a field longer than this (a 5 MB "ARN") is cut, saying so


def _shortened(value: Any) -> Any:
    """A field as logged: long text cut to MAX_FIELD_CHARACTERS with its full length noted,
    so one hostile event cannot write megabytes to CloudWatch."""
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARACTERS:
        return f"{value[:MAX_FIELD_CHARACTERS]}... ({len(value)} characters)"
    return value


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"level": record.levelname, "message": record.getMessage(), "logger": record.name}
        line.update({key: _shortened(value) for key, value in getattr(record, "fields", {}).items()})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: int = logging.INFO, *, file: str | None = None) -> logging.Logger:
    """JSON lines to stdout (Lambda sends them to CloudWatch), or to a file (local mode,
    where stdout belongs to the command's result)."""
    logger = logging.getLogger("mlflow_bridge" if file is None else f"mlflow_bridge.file.{file}")
    if not any(isinstance(h.formatter, _JsonFormatter) for h in logger.handlers):
        handler: logging.Handler = logging.StreamHandler(sys.stdout) if file is None else logging.FileHandler(file)
        handler.setFormatter(_JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


class PackageLogger(logging.LoggerAdapter):
    """`log.info("...", key=value)` with the package ARN added to every line."""

    def __init__(self, logger: logging.Logger, package_arn: str, **fields: Any) -> None:
        super().__init__(logger, {"package_arn": package_arn, **fields})

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        fields = {**self.extra, **kwargs.pop("fields", {})}
        kwargs["extra"] = {"fields": fields}
        return msg, kwargs
