"""Bridge settings from the environment (the Lambda's configuration). Plain pydantic:
importing it pulls in neither boto3 nor MLflow (reading them checks the alias with
MLflow's own rules, imported then).

Every variable is checked when the settings are read, before any MLflow or SageMaker
write: a bad value is `InvalidSettings` naming the variable (exit 2 from the CLI, a
rejection without retry in Lambda), never a traceback half-way through a sync, and never
a value silently read as its default (`BRIDGE_DEPLOY=yes` is true, `=maybe` is refused)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from mlflow_bridge.decisions import Stage
from mlflow_bridge.errors import InvalidSettings

__all__ = ["BridgeSettings", "DeploymentSettings", "RecorderSettings", "Rollout"]


# SageMaker's limits on a blue/green step (API Reference, TrafficRoutingConfig): a canary
# is at most 50 % of the fleet, a linear step 10-50 %, the wait between steps 0-3600 s.
ROLLOUT_PERCENT_LIMITS = {"canary": (1, 50), "linear": (10, 50)}
ROLLOUT_DEFAULTS = {"canary": (10, 600), "linear": (20, 300)}  # (percent, wait seconds)
MAX_ROLLOUT_WAIT_SECONDS = 3600


class Rollout(BaseModel):
    """How an update moves traffic to the new fleet: all at once, a canary of `percent`
    then the rest after `wait_seconds`, or linear steps of `percent` every `wait_seconds`.
    Each waits on the rollback alarms (SageMaker rolls back if one fires)."""

    kind: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    percent: int = 0
    wait_seconds: int = 0


class DeploymentSettings(BaseModel):
    enabled: bool = True
    endpoint_name: str = ""  # default: "<group>"
    role_arn: str = ""  # the SageMaker endpoint execution role (the only role the bridge passes)
    deploy_role_arn: str = ""  # an endpoint in another account: the role there the bridge assumes
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    serverless_memory_mb: int = 0  # > 0: serverless endpoint instead of instances
    serverless_max_concurrency: int = 5
    rollback_alarms: list[str] = Field(default_factory=list)
    termination_wait_seconds: int = 300
    rollout: Rollout = Field(default_factory=Rollout)


class BridgeSettings(BaseModel):
    tracking_uri: str
    registered_model: str = ""  # default: the package's mlflow_registered_model metadata, else the group
    groups: list[str] = Field(default_factory=list)  # empty: every group
    alias: str = "champion"
    manage_stages: bool = True
    champion_order: Literal["highest_version", "latest_approval"] = "highest_version"
    credentials_secret_arn: str = ""
    # BRIDGE_STAGES; empty: one alias (`alias`) and Production for every approved champion
    stages: list[Stage] = Field(default_factory=list)
    server_ca_arn: str = ""  # an ACM Private CA the tracking server's certificate chains to
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    # lifecycle stage -> its own endpoint (BRIDGE_STAGES' "endpoint"); without any, the one
    # endpoint (`deployment`) follows the stage that owns `alias`
    stage_deployments: dict[str, DeploymentSettings] = Field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BridgeSettings:
        """The settings, every variable checked before anything is written to MLflow or
        SageMaker. Raises InvalidSettings naming each bad variable (all at once)."""
        env = os.environ if env is None else env
        reader = _EnvReader(env)
        groups = [reader.group(item) for item in reader.listed("BRIDGE_MODEL_PACKAGE_GROUPS")]
        settings: dict[str, Any] = {
            "tracking_uri": env.get("MLFLOW_TRACKING_URI", ""),
            "registered_model": env.get("BRIDGE_REGISTERED_MODEL", ""),
            "groups": [g for g in groups if g],
            "alias": reader.alias("BRIDGE_ALIAS", "champion"),
            "manage_stages": reader.boolean("BRIDGE_MANAGE_STAGES", True),
            "champion_order": reader.choice("BRIDGE_CHAMPION_ORDER", ("highest_version", "latest_approval")),
            "credentials_secret_arn": env.get("BRIDGE_MLFLOW_SECRET_ARN", ""),
            "stages": reader.stages("BRIDGE_STAGES"),
            "server_ca_arn": reader.matching("BRIDGE_MLFLOW_CA_ARN", "", _PRIVATE_CA_ARN)
            if env.get("BRIDGE_MLFLOW_CA_ARN")
            else "",
        }
        deployment = _deployment(reader)
        stage_deployments = {}
        for index, (stage, endpoint) in enumerate(zip(settings["stages"], reader.stage_endpoints, strict=True)):
            if endpoint is not None:
                stage_reader = _EnvReader({**env, **_endpoint_variables(endpoint)})
                stage_deployments[stage.lifecycle_stage] = _deployment(stage_reader)
                reader.problems += [(f"BRIDGE_STAGES[{index}].endpoint: {n}", m) for n, m in stage_reader.problems]
        settings["stage_deployments"] = stage_deployments
        if reader.problems:
            raise InvalidSettings(reader.problems)
        return cls(**settings, deployment=deployment)


class RecorderSettings(BaseModel):
    """The execution recorder's settings (mlflow_bridge/execution_runs.py): the tracking
    server, the experiment the pipelines' jobs log to (MLflow's own MLFLOW_EXPERIMENT_NAME),
    the pipelines whose executions it records (BRIDGE_PIPELINES, names), and the MLflow
    user's secret and the server's CA as the bridge reads its own."""

    tracking_uri: str
    experiment: str
    pipelines: list[str]
    credentials_secret_arn: str = ""
    server_ca_arn: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RecorderSettings:
        """Raises InvalidSettings naming each missing or bad variable (all at once)."""
        env = os.environ if env is None else env
        reader = _EnvReader(env)
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "BRIDGE_PIPELINES"):
            if not env.get(name, "").strip():
                reader.problems.append((name, "is not set"))
        pipelines = reader.listed("BRIDGE_PIPELINES")
        for name in pipelines:
            if not _PIPELINE_NAME.fullmatch(name):
                problem = f"{name!r} is not a pipeline name ({_PIPELINE_NAME.pattern})"
                reader.problems.append(("BRIDGE_PIPELINES", problem))
        server_ca_arn = (
            reader.matching("BRIDGE_MLFLOW_CA_ARN", "", _PRIVATE_CA_ARN) if env.get("BRIDGE_MLFLOW_CA_ARN") else ""
        )
        if reader.problems:
            raise InvalidSettings(reader.problems)
        return cls(
            tracking_uri=env["MLFLOW_TRACKING_URI"],
            experiment=env["MLFLOW_EXPERIMENT_NAME"],
            pipelines=pipelines,
            credentials_secret_arn=env.get("BRIDGE_MLFLOW_SECRET_ARN", ""),
            server_ca_arn=server_ca_arn,
        )


def _deployment(reader: _EnvReader) -> DeploymentSettings:
    env = reader.env
    alarms = reader.listed("BRIDGE_ROLLBACK_ALARMS")
    return DeploymentSettings(
        enabled=reader.boolean("BRIDGE_DEPLOY", True),
        endpoint_name=env.get("BRIDGE_ENDPOINT_NAME", ""),
        role_arn=env.get("BRIDGE_ENDPOINT_ROLE_ARN", ""),
        deploy_role_arn=reader.matching("BRIDGE_ENDPOINT_DEPLOY_ROLE_ARN", "", _ROLE_ARN)
        if env.get("BRIDGE_ENDPOINT_DEPLOY_ROLE_ARN")
        else "",
        instance_type=reader.matching("BRIDGE_ENDPOINT_INSTANCE_TYPE", "ml.m5.large", _INSTANCE_TYPE),
        instance_count=reader.integer("BRIDGE_ENDPOINT_INSTANCE_COUNT", 1, minimum=1),
        serverless_memory_mb=reader.integer("BRIDGE_SERVERLESS_MEMORY_MB", 0, minimum=0),
        rollback_alarms=alarms,
        rollout=reader.rollout(bool(alarms)),
    )


# A stage's "endpoint" in BRIDGE_STAGES, key -> the variable it stands for (same checks).
_ENDPOINT_KEYS = {
    "name": "BRIDGE_ENDPOINT_NAME", "role_arn": "BRIDGE_ENDPOINT_ROLE_ARN",
    "deploy_role_arn": "BRIDGE_ENDPOINT_DEPLOY_ROLE_ARN",
    "instance_type": "BRIDGE_ENDPOINT_INSTANCE_TYPE", "instance_count": "BRIDGE_ENDPOINT_INSTANCE_COUNT",
    "serverless_memory_mb": "BRIDGE_SERVERLESS_MEMORY_MB", "rollback_alarms": "BRIDGE_ROLLBACK_ALARMS",
    "rollout": "BRIDGE_ROLLOUT", "rollout_percent": "BRIDGE_ROLLOUT_PERCENT",
    "rollout_wait_seconds": "BRIDGE_ROLLOUT_WAIT_SECONDS",
}  # fmt: skip


def _endpoint_value(key: str, value: Any) -> bool:
    """Whether a stage endpoint's value has the type its variable reads: a list of alarm
    names, else text or a number (never null, an object or a boolean)."""
    if key == "rollback_alarms":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _endpoint_variables(endpoint: dict[str, Any]) -> dict[str, str]:
    """A stage's endpoint as the variables of one endpoint; what it leaves out is reset
    (a stage does not inherit the top-level endpoint's name, alarms or rollout)."""
    variables = {name: "" for key, name in _ENDPOINT_KEYS.items() if key != "role_arn"}  # the role is shared
    for key, value in endpoint.items():
        variables[_ENDPOINT_KEYS[key]] = ",".join(value) if isinstance(value, list) else str(value)
    return variables


# The spellings of a boolean setting; anything else is refused, never read as false.
_TRUE, _FALSE = {"true", "1", "yes", "on", "y", "t"}, {"false", "0", "no", "off", "n", "f"}
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@\-/]+$")
_PRIVATE_CA_ARN = re.compile(r"^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[\w-]+$")
# arn:aws:sagemaker:REGION:ACCOUNT:model-package-group/NAME (SageMaker's ModelPackageGroupArn).
_GROUP_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package-group/(?P<name>.+)$")
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# SageMaker's PipelineName pattern (botocore's service model)
_PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
# ModelLifeCycle.Stage (botocore's EntityName shape, SageMaker API Reference)
_STAGE_NAME = _GROUP_NAME


class _EnvReader:
    """Reads one variable at a time, noting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[tuple[str, str]] = []
        self.stage_endpoints: list[dict[str, Any] | None] = []  # read with the stages

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def listed(self, name: str) -> list[str]:
        return [item.strip() for item in self.env.get(name, "").split(",") if item.strip()]

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        self.problems.append((name, f"{value!r} is not a boolean (true/false, yes/no, on/off, 1/0)"))
        return default

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self._raw(name) or allowed[0]
        if value not in allowed:
            self.problems.append((name, f"{value!r} is not one of {', '.join(allowed)}"))
            return allowed[0]
        return value

    def stages(self, name: str) -> list[Stage]:
        """JSON: [{"lifecycle_stage": "Staging", "alias": "staging", "legacy_stage": "Staging",
        "endpoint": {...}}, ...]; each alias by MLflow's rules, lifecycle stages, aliases and
        legacy stages unique. A stage's optional "endpoint" (keys of `_ENDPOINT_KEYS`) is kept
        in `stage_endpoints`, checked as the top-level endpoint variables are."""
        raw = self._raw(name)
        if raw is None:
            return []
        shape = "must be a JSON list of {lifecycle_stage, alias, legacy_stage, endpoint}"
        try:
            items = json.loads(raw)
        except ValueError as exc:
            self.problems.append((name, f"{shape}: {exc}"))
            return []
        if not isinstance(items, list):
            self.problems.append((name, f"{shape}, not {type(items).__name__}"))
            return []
        stages, endpoints = [], []
        for index, item in enumerate(items):
            where = f"{name}[{index}]"
            if not isinstance(item, dict):
                self.problems.append((where, f"expected an object, not {json.dumps(item)}"))
                continue
            endpoint = item.get("endpoint")
            if endpoint is not None and not isinstance(endpoint, dict):
                self.problems.append((f"{where}.endpoint", f"expected an object, not {json.dumps(endpoint)}"))
                continue
            unknown = sorted(set(endpoint or {}) - set(_ENDPOINT_KEYS))
            if unknown:
                self.problems.append((f"{where}.endpoint", f"unknown key(s) {', '.join(unknown)}"))
                continue
            mistyped = [(key, value) for key, value in (endpoint or {}).items() if not _endpoint_value(key, value)]
            if mistyped:
                key, value = mistyped[0]
                expected = "a list of text" if key == "rollback_alarms" else "text or a number"
                self.problems.append((f"{where}.endpoint.{key}", f"expected {expected}, not {json.dumps(value)}"))
                continue
            fields = {k: v for k, v in item.items() if k != "endpoint"}
            wrong = sorted(k for k, v in fields.items() if not isinstance(v, str))
            if wrong:
                self.problems.append((f"{where}.{wrong[0]}", f"expected a string, not {json.dumps(fields[wrong[0]])}"))
                continue
            try:
                stage = Stage(**fields)
            except TypeError as exc:  # a missing or unknown field
                self.problems.append((where, f"{shape}: {exc}"))
                continue
            if not _STAGE_NAME.match(stage.lifecycle_stage):
                self.problems.append(
                    (f"{where}.lifecycle_stage", f"{stage.lifecycle_stage!r} is not a SageMaker lifecycle stage name "
                     f"({_STAGE_NAME.pattern}: letters, digits and hyphens, at most 63)")
                )  # fmt: skip
                continue
            stages.append(stage)
            endpoints.append(endpoint)
        if len(stages) != len(items):
            self.stage_endpoints = []
            return []
        self.stage_endpoints = endpoints
        for stage in stages:
            self.alias_value(name, stage.alias)
            if stage.legacy_stage not in {"Staging", "Production", ""}:
                self.problems.append((name, f"legacy_stage {stage.legacy_stage!r} is not Staging, Production or ''"))
        for field_name in ("lifecycle_stage", "alias", "legacy_stage"):
            values = [getattr(stage, field_name) for stage in stages if getattr(stage, field_name)]
            if len(values) != len(set(values)):
                self.problems.append((name, f"two stages share a {field_name}"))
        return stages

    def rollout(self, has_alarms: bool) -> Rollout:
        """BRIDGE_ROLLOUT (all_at_once, canary, linear), BRIDGE_ROLLOUT_PERCENT and
        BRIDGE_ROLLOUT_WAIT_SECONDS, within SageMaker's limits. A gradual rollout needs
        BRIDGE_ROLLBACK_ALARMS: without an alarm nothing could roll it back."""
        kind = self.choice("BRIDGE_ROLLOUT", ("all_at_once", "canary", "linear"))
        if kind == "all_at_once":
            return Rollout()
        percent, wait = ROLLOUT_DEFAULTS[kind]
        percent = self.integer("BRIDGE_ROLLOUT_PERCENT", percent, minimum=ROLLOUT_PERCENT_LIMITS[kind][0])
        if percent > ROLLOUT_PERCENT_LIMITS[kind][1]:
            self.problems.append(("BRIDGE_ROLLOUT_PERCENT", f"{percent} is above {ROLLOUT_PERCENT_LIMITS[kind][1]}"))
        wait = self.integer("BRIDGE_ROLLOUT_WAIT_SECONDS", wait, minimum=0)
        if wait > MAX_ROLLOUT_WAIT_SECONDS:
            self.problems.append(("BRIDGE_ROLLOUT_WAIT_SECONDS", f"{wait} is above {MAX_ROLLOUT_WAIT_SECONDS}"))
        if not has_alarms:
            self.problems.append(("BRIDGE_ROLLOUT", f"{kind} needs BRIDGE_ROLLBACK_ALARMS to roll back on"))
        return Rollout(kind="canary" if kind == "canary" else "linear", percent=percent, wait_seconds=wait)

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.problems.append((name, f"{value!r} is not a whole number"))
            return default
        if number < minimum:
            self.problems.append((name, f"{number} is below {minimum}"))
        return number

    def matching(self, name: str, default: str, pattern: re.Pattern[str]) -> str:
        value = self._raw(name) or default
        if not pattern.match(value):
            self.problems.append((name, f"{value!r} does not match {pattern.pattern}"))
        return value

    def alias(self, name: str, default: str) -> str:
        """MLflow's own alias rules (its validators; source: mlflow.utils.validation), so a
        reserved name (`latest`, `v<number>`) fails here, not after a version was created."""
        return self.alias_value(name, self._raw(name) or default)

    def alias_value(self, name: str, value: str) -> str:
        from mlflow.exceptions import MlflowException
        from mlflow.utils.validation import _validate_model_alias_name, _validate_model_alias_name_reserved

        try:
            _validate_model_alias_name(value)
            _validate_model_alias_name_reserved(value)
        except MlflowException as exc:
            self.problems.append((name, exc.message))
        return value

    def group(self, value: str) -> str:
        """A group name, or a group ARN (as cross-account registries are named) as its name."""
        match = _GROUP_ARN.match(value)
        name = match.group("name") if match else value
        if not _GROUP_NAME.match(name):
            self.problems.append(("BRIDGE_MODEL_PACKAGE_GROUPS", f"{value!r} is neither a group name nor a group ARN"))
            return ""
        return name
