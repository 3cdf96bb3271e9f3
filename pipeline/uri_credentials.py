"""Credentials must never ride inside a URI.

A URI is copied into definitions, job arguments, MLflow params, logs and the console, so a
password in one (`http://user:password@host`, `?token=...`) leaks everywhere it goes.
Credentials travel by environment variables or Secrets Manager instead (see
`MlflowCredentials`). The check is pure and never echoes the value it refuses.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

__all__ = ["credentials_in_uri", "refuse_credentials_in_uri"]

# Query keys that carry a secret: passwords and tokens, and what a presigned S3 URL
# signs with (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token: AWS SigV4 docs,
# "Authenticating Requests: Using Query Parameters").
_SECRET_KEY = re.compile(
    r"(?i)^(x-amz-(signature|credential|security-token)|.*(password|passwd|pwd|secret|token|api[_-]?key"
    r"|access[_-]?key|signature|auth))$"
)


def credentials_in_uri(uri: str) -> str | None:
    """What in `uri` looks like a credential ("user info", "query parameter 'token'"),
    or None. Never the credential itself."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None  # not a URI at all; the field's own format check reports it
    if "@" in parts.netloc:
        return "user info (user:password@) before the host"
    for key, _ in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_KEY.match(key):
            return f"query parameter {key!r}"
    return None


def refuse_credentials_in_uri(uri: object) -> object:
    """A pydantic before-validator: raises ValueError (without the value) for a URI that
    carries credentials; anything else passes through to the field's own checks."""
    if isinstance(uri, str):
        found = credentials_in_uri(uri)
        if found:
            raise ValueError(
                f"the URI carries credentials ({found}); remove them and pass them at run time "
                "(environment variables or Secrets Manager; for MLflow, mlflow.credentials)"
            )
    return uri
