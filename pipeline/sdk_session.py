"""The SageMaker SDK session a render uses, and the SDK workarounds that make it fast and
offline: a build calls no AWS API, reads no user or admin SDK config file (the definition
depends on the YAML only), and skips work whose result is known.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.config import PipelineConfig

__all__ = ["SDK_CONFIG", "clients_on_first_use", "pipeline_session"]

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

# Telemetry off and no user/admin SDK config files: the definition depends on the YAML only.
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def _trust_our_sdk_config() -> None:
    """SDK 2.257 validates its config dict with jsonschema on every session and config
    lookup (~50 per build, 0.18 s each: most of a render). Ours is the constant
    `SDK_CONFIG`, proven valid by a test against the SDK's own validator, so skip
    validating that one dict; any other config is still validated. A passing validation
    has no other effect, so the output is unchanged."""
    import sagemaker.session as sdk_session
    import sagemaker.utils as sdk_utils

    original = sdk_utils.validate_sagemaker_config
    if getattr(original, "trusts_project_config", False):
        return

    def validate(config: dict[str, Any] | None = None) -> None:
        if config != SDK_CONFIG:
            original(config)

    validate.trusts_project_config = True  # type: ignore[attr-defined]
    sdk_utils.validate_sagemaker_config = validate
    sdk_session.validate_sagemaker_config = validate


class _BuiltOnFirstUse:
    """Stands in for a boto3 client or resource until something uses it."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.__dict__.update(_build=build, _built=None)

    def __getattr__(self, name: str) -> Any:
        if self._built is None:
            self.__dict__["_built"] = self._build()
        return getattr(self._built, name)


def _session_with_clients_on_first_use(region: str) -> Any:
    """A boto3 Session whose clients are built when first used. A Session builds six
    (0.4 s of service-model parsing, a quarter of a render) and an offline build uses none."""
    import boto3

    class Session(boto3.Session):
        def client(self, *args: Any, **kwargs: Any) -> Any:
            return _BuiltOnFirstUse(lambda: super(Session, self).client(*args, **kwargs))

        def resource(self, *args: Any, **kwargs: Any) -> Any:
            return _BuiltOnFirstUse(lambda: super(Session, self).resource(*args, **kwargs))

    return Session(region_name=region)


@contextmanager
def clients_on_first_use(region: str) -> Iterator[Any]:
    """That session, also as boto3's default while a render runs: the SDK's Estimator builds
    a client of the default session (for Studio apps) that an offline build never uses."""
    import boto3

    session, previous = _session_with_clients_on_first_use(region), boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = session
    try:
        yield session
    finally:
        boto3.DEFAULT_SESSION = previous


def pipeline_session(cfg: PipelineConfig, boto_session: Any = None) -> Any:
    """A PipelineSession that builds without calling AWS (the default bucket is given)."""
    from sagemaker.workflow.pipeline_context import PipelineSession

    _trust_our_sdk_config()

    boto_session = boto_session or _session_with_clients_on_first_use(cfg.aws.region)
    return PipelineSession(
        boto_session=boto_session,
        default_bucket=cfg.aws.default_bucket,
        default_bucket_prefix=None,
        sagemaker_config=SDK_CONFIG,
    )
