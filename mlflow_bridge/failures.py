"""Which failures a retry can cure, decided from the error alone.

Lambda retries an EventBridge delivery that raises (then sends it to the dead-letter
queue); a failure no retry can cure must not raise, or it fills the queue with events
that fail the same way. Transient: throttling, 5xx, timeouts and connection errors, an
endpoint still updating. Permanent: refused credentials or permissions (401/403), a run
or model that does not exist (404), a request the service refuses as invalid, bad
settings, a malformed event; each is reported once with what to fix. Anything not
recognised is treated as transient: a retry is the safe default.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow_bridge.contract import EVENT_SOURCE, EXECUTION_STATUS_DETAIL_TYPE, STATE_CHANGE_DETAIL_TYPE
from mlflow_bridge.errors import InvalidSettings, MalformedEvent, MissingRun, PermissionRefused, StagesUnreachable

__all__ = ["MISSING_RUN_FIX", "Permanent", "permanent_failure", "refused_credentials"]


@dataclass(frozen=True)
class Permanent:
    """A failure a retry cannot cure: what went wrong and what to change."""

    reason: str
    fix: str


# botocore error codes a retry can cure (botocore's own retry handler lists these as
# throttling and transient errors: botocore/data/_retry.json).
_AWS_TRANSIENT_CODES = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
}  # fmt: skip

_MLFLOW_FIXES = {
    401: "the tracking server refused the function's MLflow credentials: check BRIDGE_MLFLOW_SECRET_ARN's secret "
    "against the server's users (the server sets each user's password from its secret at start)",
    # a 403 from a call `MlflowRegistry` makes arrives as PermissionRefused, naming what to grant
    403: "the bridge's MLflow user lacks a permission: grant it MANAGE on the registered model (the tracking "
    "server does so at start for the models in MLFLOW_REGISTERED_MODEL_MANAGERS)",
    404: "the tracking server has no such run or model: check the package's mlflow_run_id customer metadata "
    "and the tracking URI, or restore the run",
    400: "the tracking server refused the request as invalid",
}


MISSING_RUN_FIX = (
    "restore the tracking server's database and artifacts, or retrain so the package names a run the server "
    "holds (locally: run --local --no-cache, which reruns the cached jobs against this server)"
)


def permanent_failure(exc: BaseException) -> Permanent | None:
    """The failure as a Permanent one, or None when a retry may cure it."""
    if isinstance(exc, MalformedEvent):
        return Permanent(
            str(exc),
            f"send a {STATE_CHANGE_DETAIL_TYPE!r} or {EXECUTION_STATUS_DETAIL_TYPE!r} event from {EVENT_SOURCE}",
        )
    if isinstance(exc, InvalidSettings):
        return Permanent(str(exc), "correct the named variables in the function's configuration")
    if isinstance(exc, MissingRun):
        return Permanent(str(exc), MISSING_RUN_FIX)
    if isinstance(exc, StagesUnreachable | PermissionRefused):
        return Permanent(str(exc), exc.fix())
    module = type(exc).__module__.split(".", 1)[0]
    if module == "mlflow":
        return _mlflow(exc)
    if module == "botocore":
        return _aws(exc)
    return None


def refused_credentials(exc: BaseException) -> bool:
    """The tracking server answered 401: the credentials are wrong or were rotated since
    they were read (the handler re-reads its secret once before calling it permanent)."""
    return type(exc).__module__.split(".", 1)[0] == "mlflow" and _status(exc) == 401


def _status(exc: BaseException) -> int:
    return exc.get_http_status_code() if hasattr(exc, "get_http_status_code") else 500


def _mlflow(exc: BaseException) -> Permanent | None:
    status = _status(exc)
    if status in _MLFLOW_FIXES and getattr(exc, "error_code", "") not in {"REQUEST_LIMIT_EXCEEDED"}:
        return Permanent(f"MLflow {status} {getattr(exc, 'error_code', '')}: {exc}", _MLFLOW_FIXES[status])
    return None


def _aws(exc: BaseException) -> Permanent | None:
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError | NoRegionError):
        return Permanent(str(exc), "give the function AWS credentials and a region (AWS_REGION)")
    if not isinstance(exc, ClientError):
        return None  # connection errors and timeouts
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    if code in _AWS_TRANSIENT_CODES or status >= 500 or status == 429:
        return None
    fix = (
        "allow the action in the bridge's IAM role"
        if "AccessDenied" in code or code in {"UnauthorizedOperation", "UnrecognizedClientException"}
        else "correct the request or the resource it names"
    )
    return Permanent(f"AWS {code}: {error.get('Message', exc)}", fix)
