"""The schema of `config/pipeline.yaml`.

Pure pydantic: importing this module must not import boto3 or the SageMaker SDK, so that
`python -m pipeline.definition validate` answers in well under a second and so that other
packages (the local runner, the bridge, the infra app) can read the config cheaply.
Every model forbids unknown keys: a typo in the YAML is an error naming the key, never a
silently ignored setting.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from pipeline.tasks import (
    DEFAULT_OBJECTIVE,
    ESTIMATOR_SHORTCUTS,
    REPORT_METRICS,
    SCRIPT_HYPERPARAMETERS,
    TRAINING_METRICS,
    Task,
)
from pipeline.uri_credentials import refuse_credentials_in_uri

__all__ = [
    "AwsSettings",
    "CachingSettings",
    "CsvSettings",
    "DataSettings",
    "DeploymentSettings",
    "InfraSettings",
    "MlflowCredentials",
    "MlflowSettings",
    "NetworkSettings",
    "ObjectiveSettings",
    "ParameterRange",
    "PipelineConfig",
    "PipelineSettings",
    "PromotionStage",
    "QualityGateSettings",
    "RegistrationSettings",
    "RetrySettings",
    "RuntimeSettings",
    "SplitSettings",
    "StageEndpoint",
    "StageRollout",
    "StepSettings",
    "StepsSettings",
    "TlsSettings",
    "TrainingSettings",
    "TuningSettings",
]

# SageMaker's own name and ARN patterns, so bad values fail here and not at upsert time.
SageMakerName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
PipelineName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")]
InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]
_NoCredentials = BeforeValidator(refuse_credentials_in_uri)
S3Uri = Annotated[str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$"), _NoCredentials]
TrackingUri = Annotated[str, StringConstraints(pattern=r"^(https?|file)://.+$"), _NoCredentials]
BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")]
# Key segments of S3's "safe" characters without `*` (an IAM policy would read it as a
# wildcard: the prefix becomes part of resource ARNs) and without `.`/`..` segments (a
# path that climbs out of the prefix locally and on any file-like copy of the bucket).
S3Prefix = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9!_.'()\-]+(/[A-Za-z0-9!_.'()\-]+)*/?$"),
]
RoleArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@\-/]+$")]
SecretArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z\-]*:secretsmanager:[a-z0-9\-]+:\d{12}:secret:.+$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
# ACM certificate and ACM Private CA ARNs (botocore's acm / acm-pca Arn shapes).
CertificateArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z\-]*:acm:[a-z0-9\-]+:\d{12}:certificate/[\w\-]+$")
]
PrivateCaArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z\-]*:acm-pca:[a-z0-9\-]+:\d{12}:certificate-authority/[\w\-]+$")
]
DomainName = Annotated[
    str, StringConstraints(pattern=r"^([a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9\-]{0,61}[a-z0-9]$")
]
ScriptName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.py$")]
_ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
HyperparameterValue = int | float | bool | str

ComparisonOperator = Literal["LessThan", "LessThanOrEqualTo", "GreaterThan", "GreaterThanOrEqualTo", "Equals"]
ApprovalStatus = Literal["PendingManualApproval", "Approved", "Rejected"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineSettings(_Strict):
    name: PipelineName
    description: str = Field(default="", max_length=3072)
    tags: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], str] = Field(default_factory=dict)


class AwsSettings(_Strict):
    region: Region
    role_arn: RoleArn
    default_bucket: BucketName
    prefix: S3Prefix = Field(description="Key prefix under which code, data and artifacts live.")

    @field_validator("prefix")
    @classmethod
    def _no_dot_segments(cls, value: str) -> str:
        if any(part in {".", ".."} for part in value.strip("/").split("/")):
            raise ValueError(f"{value!r} has a '.' or '..' segment; name the prefix's folders plainly")
        return value

    @property
    def account(self) -> str:
        """The account the pipeline runs in: its execution role's."""
        return self.role_arn.split(":")[4]


class NetworkSettings(_Strict):
    """VPC placement of the jobs, so they reach a private MLflow server."""

    subnets: list[Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(default_factory=list)
    security_group_ids: list[Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")]] = Field(
        default_factory=list
    )
    encrypt_inter_container_traffic: bool = True

    @model_validator(mode="after")
    def _both_or_neither(self) -> NetworkSettings:
        if bool(self.subnets) != bool(self.security_group_ids):
            raise ValueError("subnets and security_group_ids must be given together (a VPC needs both)")
        return self


class SplitSettings(_Strict):
    train: float = Field(gt=0, lt=1)
    validation: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)
    seed: int = 42

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSettings:
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train + validation + test must sum to 1 (got {total:g})")
        return self


ColumnKind = Literal["numeric", "categorical", "boolean"]


class CsvSettings(_Strict):
    """How to read CSV input (pandas.read_csv's options of the same meaning)."""

    separator: Annotated[str, StringConstraints(min_length=1, max_length=4)] = ","
    header: bool = Field(default=True, description="false: the first row is data; give column_names")
    encoding: NonEmptyStr = "utf-8"
    column_names: list[NonEmptyStr] | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"{value!r} is not an encoding Python knows (e.g. utf-8, latin-1, cp1252)") from None
        return value

    @model_validator(mode="after")
    def _names_without_header(self) -> CsvSettings:
        if not self.header and not self.column_names:
            raise ValueError("header: false needs column_names (the columns in file order)")
        return self


class DataSettings(_Strict):
    input_uri: S3Uri
    format: Literal["csv", "parquet"] = "csv"
    csv: CsvSettings = Field(default_factory=CsvSettings)
    target: NonEmptyStr
    features: list[NonEmptyStr] | None = Field(
        default=None, min_length=1, description="Feature columns; omitted: every column but the target."
    )
    column_types: dict[NonEmptyStr, ColumnKind] = Field(
        default_factory=dict, description="Kinds the data cannot tell (e.g. numeric codes that are categories)."
    )
    missing_values: list[str] = Field(
        default_factory=list, description="Spellings of a missing value besides the usual ones (NA, null, ?, ...)."
    )
    max_categories: int = Field(
        default=50, ge=2, le=100000, description="Undeclared text columns with more distinct values are refused."
    )
    split: SplitSettings

    @model_validator(mode="after")
    def _columns_make_sense(self) -> DataSettings:
        features = self.features or []
        duplicates = sorted({f for f in features if features.count(f) > 1})
        if duplicates:
            raise ValueError(f"features lists {', '.join(duplicates)} more than once")
        if self.target in features:
            raise ValueError(f"target column {self.target!r} is also listed in features")
        if self.target in self.column_types:
            raise ValueError(f"column_types names the target {self.target!r}; the task decides its kind")
        unknown = sorted(set(self.column_types) - set(features)) if self.features else []
        if unknown:
            raise ValueError(f"column_types names column(s) not in features: {', '.join(unknown)}")
        names = self.csv.column_names
        if names and self.target not in names:
            raise ValueError(f"csv.column_names does not include the target {self.target!r}")
        return self


class RuntimeSettings(_Strict):
    """The container the jobs run in (AWS's scikit-learn framework image by default)."""

    framework_version: Literal["1.4-2", "1.2-1"] = "1.4-2"
    py_version: Literal["py3"] = "py3"
    image_uri: str | None = Field(
        default=None, description="A custom image with the requirements baked in, instead of the framework image."
    )
    install_requirements: bool = Field(
        default=True,
        description="pip-install the scripts' requirements.txt at job start (needs egress to a package index).",
    )


class StepSettings(_Strict):
    """One job. `source_dir` (a folder of the team's repository, relative to the directory
    the command runs in, as the SageMaker SDK's own `source_dir` is, or absolute) replaces
    the bundled script: its files are overlaid on the bundled ones in the code bundle and
    `script` names the entry point inside it."""

    instance_type: InstanceType = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=100)
    volume_size_gb: int = Field(default=30, ge=1, le=16384)
    max_runtime_seconds: int = Field(default=3600, ge=60, le=432000)
    script: ScriptName
    source_dir: NonEmptyStr | None = None
    arguments: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]*$")], HyperparameterValue] = Field(
        default_factory=dict, description="Extra --key value arguments passed to the script."
    )


class StepsSettings(_Strict):
    preprocess: StepSettings
    train: StepSettings
    evaluate: StepSettings

    @model_validator(mode="after")
    def _one_training_instance(self) -> StepsSettings:
        """Every instance of a training job runs the whole script: scikit-learn does not
        distribute, so N instances would train N copies and log N MLflow runs (SDK v2's
        SKLearn estimator refused it too)."""
        if self.train.instance_count != 1:
            raise ValueError("train.instance_count must be 1: a scikit-learn training job does not distribute")
        return self


class ObjectiveSettings(_Strict):
    """The metric the train script prints; tuning optimises it and training jobs record it.
    Omitted: the task's default (`DEFAULT_OBJECTIVE`); `regex` defaults to `<metric>=(number)`."""

    metric: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:.\-]{1,255}$")]
    type: Literal["Minimize", "Maximize"]
    regex: NonEmptyStr | None = None

    @field_validator("regex")
    @classmethod
    def _one_capture_group(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression: {exc}") from exc
        if compiled.groups != 1:
            raise ValueError("must have exactly one capture group (the metric value)")
        return value

    @property
    def metric_regex(self) -> str:
        return self.regex or f"{re.escape(self.metric)}=([-+0-9.eE]+|nan)"


_ESTIMATOR_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class TrainingSettings(_Strict):
    task: Task = "regression"
    estimator: NonEmptyStr = Field(
        default="random_forest",
        validation_alias=AliasChoices("estimator", "algorithm"),
        description="A shortcut (random_forest, gradient_boosting, hist_gradient_boosting, ridge, "
        "logistic_regression) or the import path of any scikit-learn-compatible estimator.",
    )
    hyperparameters: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], HyperparameterValue] = Field(
        default_factory=dict
    )
    categorical_encoding: Literal["auto", "onehot", "ordinal"] = Field(
        default="auto", description="auto: ordinal codes for tree ensembles, one-hot for other estimators."
    )
    positive_class: str | int | bool | None = Field(
        default=None, description="Binary classification: the class precision, recall and AUC are about."
    )
    requirements: list[NonEmptyStr] = Field(
        default_factory=list, description="Extra pip requirements of the jobs (the estimator's own is pinned)."
    )
    objective: ObjectiveSettings | None = None

    @field_validator("estimator")
    @classmethod
    def _shortcut_or_path(cls, value: str) -> str:
        if value not in ESTIMATOR_SHORTCUTS and not _ESTIMATOR_PATH.match(value):
            raise ValueError(
                f"{value!r} is neither a shortcut ({', '.join(ESTIMATOR_SHORTCUTS)}) nor an import path "
                "such as sklearn.ensemble.HistGradientBoostingClassifier"
            )
        return value

    @model_validator(mode="after")
    def _fits_task(self) -> TrainingSettings:
        shortcut = ESTIMATOR_SHORTCUTS.get(self.estimator)
        family = "regression" if self.task == "regression" else "classification"
        if shortcut is not None and family not in shortcut:
            raise ValueError(f"estimator {self.estimator!r} is not a {family} estimator")
        if self.positive_class is not None and self.task != "binary_classification":
            raise ValueError("positive_class applies to binary_classification only")
        return self

    @property
    def estimator_path(self) -> str:
        """The import path the job uses (a shortcut resolved for the task)."""
        shortcut = ESTIMATOR_SHORTCUTS.get(self.estimator)
        if shortcut is None:
            return self.estimator
        return shortcut["regression" if self.task == "regression" else "classification"]

    @property
    def resolved_objective(self) -> ObjectiveSettings:
        if self.objective is not None:
            return self.objective
        metric, kind = DEFAULT_OBJECTIVE[self.task]
        return ObjectiveSettings(metric=metric, type=kind)


class ParameterRange(_Strict):
    type: Literal["integer", "continuous", "categorical"]
    min: float | None = None
    max: float | None = None
    values: list[HyperparameterValue] | None = None
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"

    @model_validator(mode="after")
    def _bounds_fit_type(self) -> ParameterRange:
        if self.type == "categorical":
            if not self.values:
                raise ValueError("a categorical range needs a non-empty 'values' list")
            if self.min is not None or self.max is not None:
                raise ValueError("a categorical range takes 'values', not min/max")
            return self
        if self.values is not None:
            raise ValueError(f"an {self.type} range takes min/max, not 'values'")
        if self.min is None or self.max is None:
            raise ValueError(f"an {self.type} range needs both min and max")
        if self.type == "integer" and (self.min != int(self.min) or self.max != int(self.max)):
            raise ValueError("an integer range needs whole-number min and max")
        if self.min > self.max:
            raise ValueError(f"min must be <= max (min={self.min:g}, max={self.max:g})")
        if self.scaling in ("Logarithmic", "ReverseLogarithmic") and self.min <= 0:
            raise ValueError(f"{self.scaling} scaling needs min > 0")
        return self


class TuningSettings(_Strict):
    enabled: bool = False
    strategy: Literal["Bayesian", "Random", "Hyperband", "Grid"] = "Bayesian"
    max_jobs: int = Field(default=6, ge=1, le=500)
    max_parallel_jobs: int = Field(default=2, ge=1, le=100)
    early_stopping: Literal["Off", "Auto"] = "Off"
    ranges: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], ParameterRange] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _usable(self) -> TuningSettings:
        if self.enabled and not self.ranges:
            raise ValueError("tuning is enabled but no ranges are given")
        if self.max_parallel_jobs > self.max_jobs:
            raise ValueError(f"max_parallel_jobs ({self.max_parallel_jobs}) must be <= max_jobs ({self.max_jobs})")
        if self.strategy == "Grid" and any(r.type == "continuous" for r in self.ranges.values()):
            raise ValueError("Grid strategy supports integer and categorical ranges only")
        return self


class QualityGateSettings(_Strict):
    metric: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")] = Field(
        description="Dotted path into evaluation.json, e.g. binary_classification_metrics.auc.value"
    )
    operator: ComparisonOperator
    threshold: float

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class RegistrationSettings(_Strict):
    model_package_group: SageMakerName
    approval_status: ApprovalStatus = "PendingManualApproval"
    description: str = Field(default="", max_length=1024)
    inference_instance_types: list[InstanceType] = Field(min_length=1)
    transform_instance_types: list[InstanceType] = Field(min_length=1)
    content_types: list[NonEmptyStr] = Field(min_length=1)
    response_types: list[NonEmptyStr] = Field(min_length=1)


class MlflowCredentials(_Strict):
    """Where the jobs find MLflow credentials at run time. Never the credentials themselves."""

    source: Literal["none", "env", "secrets_manager"] = "none"
    secret_arn: SecretArn | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            inline = sorted(k for k in data if str(k).lower() in {"username", "password", "token", "secret"})
            if inline:
                raise ValueError(
                    f"{', '.join(inline)} must not be written in the config: use source: secrets_manager "
                    "with secret_arn, or source: env (MLFLOW_TRACKING_USERNAME/PASSWORD at run time)"
                )
        return data

    @model_validator(mode="after")
    def _arn_when_needed(self) -> MlflowCredentials:
        if self.source == "secrets_manager" and not self.secret_arn:
            raise ValueError("source secrets_manager needs secret_arn")
        if self.source != "secrets_manager" and self.secret_arn:
            raise ValueError(f"secret_arn is only used with source: secrets_manager (source is {self.source!r})")
        return self


class MlflowSettings(_Strict):
    tracking_uri: TrackingUri
    server_ca_arn: PrivateCaArn | None = Field(
        default=None,
        description="The ACM Private CA that signed the server's certificate (the stack's TrackingCaArn): "
        "jobs fetch its certificate and trust it (MLFLOW_TRACKING_SERVER_CERT_PATH).",
    )
    experiment: NonEmptyStr
    registered_model: NonEmptyStr
    credentials: MlflowCredentials = Field(default_factory=MlflowCredentials)
    on_unavailable: Literal["fail", "continue"] = Field(
        default="fail", description="What a job does when the tracking server stays unreachable."
    )

    @field_validator("server_ca_arn", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value  # `${MLFLOW_SERVER_CA_ARN:-}` when it is unset

    @model_validator(mode="after")
    def _ca_for_https(self) -> MlflowSettings:
        if self.server_ca_arn and not self.tracking_uri.startswith("https://"):
            raise ValueError("server_ca_arn is for an https:// tracking_uri")
        return self


class CachingSettings(_Strict):
    enabled: bool = True
    expire_after: str = Field(default="P30D", description="ISO 8601 duration, e.g. P30D or PT12H.")

    @field_validator("expire_after")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        if not _ISO_DURATION.match(value):
            raise ValueError(f"{value!r} is not an ISO 8601 duration such as P30D or PT12H")
        return value


class RetrySettings(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=20)
    interval_seconds: int = Field(default=10, ge=1, le=3600)
    backoff_rate: float = Field(default=2.0, ge=1.0, le=10.0)
    on: list[
        Literal[
            "Step.SERVICE_FAULT",
            "Step.THROTTLING",
            "SageMaker.JOB_INTERNAL_ERROR",
            "SageMaker.CAPACITY_ERROR",
            "SageMaker.RESOURCE_LIMIT",
        ]
    ] = Field(
        default_factory=lambda: ["Step.SERVICE_FAULT", "Step.THROTTLING", "SageMaker.CAPACITY_ERROR"],
    )


class TlsSettings(_Strict):
    """How the tracking server's load balancer speaks TLS (basic-auth passwords cross it).

    private_ca (default): the stack issues an ACM private certificate for `domain_name`
    from an ACM Private CA (`private_ca_arn`, or one the stack creates: AWS bills a
    general-purpose CA monthly) and a private DNS zone for the name; clients trust the CA
    through MLFLOW_TRACKING_SERVER_CERT_PATH. certificate: an ACM certificate you have
    (public, or imported) for `domain_name`, whose DNS you point at the load balancer.
    none: plain HTTP, an explicit opt-out. The server tasks also speak TLS to the load
    balancer, with a certificate each makes at start."""

    mode: Literal["private_ca", "certificate", "none"] = "private_ca"
    certificate_arn: CertificateArn | None = None
    private_ca_arn: PrivateCaArn | None = None
    domain_name: DomainName | None = Field(default=None, description="default: mlflow.<infra.name>.internal")

    @model_validator(mode="after")
    def _fits_mode(self) -> TlsSettings:
        if self.mode == "certificate" and not (self.certificate_arn and self.domain_name):
            raise ValueError("mode certificate needs certificate_arn and domain_name (the name it covers)")
        if self.mode != "certificate" and self.certificate_arn:
            raise ValueError(f"certificate_arn is used with mode: certificate (mode is {self.mode!r})")
        if self.mode != "private_ca" and self.private_ca_arn:
            raise ValueError(f"private_ca_arn is used with mode: private_ca (mode is {self.mode!r})")
        if self.mode == "none" and self.domain_name:
            raise ValueError("domain_name needs a certificate: mode none serves the load balancer's own DNS name")
        return self


class StageRollout(_Strict):
    """How an endpoint update shifts traffic (SageMaker blue/green, TrafficRoutingConfig):
    all at once, a canary of `percent` (1-50) then the rest after `wait_seconds`, or linear
    steps of `percent` (10-50) every `wait_seconds` (0-3600), rolled back by the stage's alarms."""

    strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    percent: int | None = Field(default=None, ge=1, le=50)
    wait_seconds: int | None = Field(default=None, ge=0, le=3600)

    @model_validator(mode="after")
    def _fits_strategy(self) -> StageRollout:
        if self.strategy == "all_at_once" and (self.percent is not None or self.wait_seconds is not None):
            raise ValueError("percent and wait_seconds are for canary and linear rollouts")
        if self.strategy == "linear" and self.percent is not None and self.percent < 10:
            raise ValueError(f"a linear step is 10-50 % of the fleet, not {self.percent}")
        return self


class StageEndpoint(_Strict):
    """The stage's SageMaker endpoint (default name: <model package group>-<stage name>).

    In another account: `deploy_role_arn` is a role there that the bridge assumes to
    deploy (its trust policy names the bridge's role), `execution_role_arn` the endpoint's
    execution role there, and `rollback_alarms` that account's alarms (the stack creates
    alarms in its own account only). The package group's resource policy must let that
    account use the packages (SageMaker Developer Guide, "Cross-account model registry")."""

    name: SageMakerName | None = None
    instance_type: InstanceType = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=100)
    serverless_memory_mb: int | None = Field(default=None, ge=1024, le=6144, multiple_of=1024)
    rollout: StageRollout = Field(default_factory=StageRollout)
    deploy_role_arn: RoleArn | None = None
    execution_role_arn: RoleArn | None = Field(default=None, description="with deploy_role_arn; else the stack's")
    rollback_alarms: list[Annotated[str, StringConstraints(pattern=r"^[^,]{1,255}$")]] | None = Field(
        default=None, description="default: the two alarms the stack creates for the endpoint"
    )

    @model_validator(mode="after")
    def _one_account(self) -> StageEndpoint:
        if self.deploy_role_arn is None:
            if self.execution_role_arn is not None:
                raise ValueError("execution_role_arn is for an endpoint in another account (with deploy_role_arn)")
            return self
        account = self.deploy_role_arn.split(":")[4]
        if self.execution_role_arn is None or self.execution_role_arn.split(":")[4] != account:
            raise ValueError(f"deploy_role_arn is in account {account}: execution_role_arn must be a role there too")
        if self.rollout.strategy != "all_at_once" and not self.rollback_alarms:
            raise ValueError(f"a {self.rollout.strategy} rollout in account {account} needs rollback_alarms there")
        return self

    @property
    def account(self) -> str | None:
        """The account the endpoint lives in, when it is not the stack's."""
        return self.deploy_role_arn.split(":")[4] if self.deploy_role_arn else None


# What a stage named `staging` or `production` means unless it says otherwise: the
# SageMaker lifecycle stage, alias and legacy stage it owns, and its endpoint's rollout.
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "staging": {"lifecycle_stage": "Staging", "alias": "staging", "legacy_stage": "Staging",
                "rollout": {"strategy": "all_at_once"}},
    "production": {"lifecycle_stage": "Production", "alias": "champion", "legacy_stage": "Production",
                   "rollout": {"strategy": "canary", "percent": 10}},
}  # fmt: skip


class PromotionStage(_Strict):
    """A stage a model is promoted through: the SageMaker lifecycle stage it follows
    (`ModelLifeCycle.Stage` of a model package), the MLflow alias it owns and the legacy
    MLflow stage it moves. The bridge points the alias at the highest approved package in
    that lifecycle stage with stage status Approved. `staging` and `production` default
    their fields (`STAGE_DEFAULTS`); another stage names its lifecycle stage and alias."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9\-]{0,30}$")]
    # botocore's EntityName (ModelLifeCycle.Stage)
    lifecycle_stage: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
    alias: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,255}$")]
    legacy_stage: Literal["Staging", "Production", "None"] = "None"
    endpoint: StageEndpoint | None = Field(default=None, description="omitted: the stage has no endpoint")

    @model_validator(mode="before")
    @classmethod
    def _defaults_of_its_name(cls, data: Any) -> Any:
        if isinstance(data, str):  # `- staging`: the stage with every default
            data = {"name": data}
        if not isinstance(data, dict) or data.get("name") not in STAGE_DEFAULTS:
            return data
        defaults = STAGE_DEFAULTS[data["name"]]
        filled = {**{k: v for k, v in defaults.items() if k != "rollout"}, **data}
        endpoint = filled.get("endpoint")
        if isinstance(endpoint, dict) and "rollout" not in endpoint:
            filled["endpoint"] = {**endpoint, "rollout": defaults["rollout"]}
        return filled

    def endpoint_name(self, group: str) -> str:
        """The SageMaker endpoint this stage deploys to: `endpoint.name`, else
        `<group>-<stage name>`, with the group cut so that the whole fits SageMaker's 63
        characters and the stage's name stays as the distinguishing suffix."""
        endpoint = self.endpoint or StageEndpoint()
        if endpoint.name:
            return endpoint.name
        room = 63 - len(self.name) - 1
        return f"{group[:room].rstrip('-')}-{self.name}"

    @field_validator("alias")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        # MLflow reserves `latest` and `v<number>` (mlflow.utils.validation)
        if value.lower() == "latest" or re.fullmatch(r"[vV]\d+", value):
            raise ValueError(f"{value!r} is an alias MLflow reserves (latest, v<number>)")
        return value


class DeploymentSettings(_Strict):
    """`deployment`: staged promotion. Without stages, one approval makes the champion
    (alias `champion`, stage Production) as before."""

    stages: list[PromotionStage] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> DeploymentSettings:
        for field_name in ("name", "lifecycle_stage", "alias", "legacy_stage"):
            values = [getattr(s, field_name) for s in self.stages if getattr(s, field_name) != "None"]
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"more than one stage has {field_name} {', '.join(repeated)}")
        return self

    def stage(self, name: str) -> PromotionStage | None:
        """By its name or its lifecycle stage (`production` or `Production`)."""
        return next((s for s in self.stages if name in {s.name, s.lifecycle_stage}), None)


class DriftSettings(_Strict):
    """`batch.drift`: the thresholds of `pipeline/steps/scripts/drift.py`'s statistics, and
    what drift does: `fail` the execution (nothing is scored), or `flag` it (the condition
    records the outcome and the batch is scored anyway)."""

    action: Literal["fail", "flag"] = "fail"
    psi: float = Field(default=0.2, gt=0, le=10)
    js_distance: float = Field(default=0.1, gt=0, le=1)
    unseen_share: float = Field(default=0.05, gt=0, le=1)
    missing_share_increase: float = Field(default=0.1, gt=0, le=1)
    mean_shift_std: float = Field(default=0.5, gt=0, le=100, description="|batch mean - training mean| / training std")
    min_rows: int = Field(default=30, ge=0, description="below it, drift is not judged: see small_batch")
    small_batch: Literal["fail", "flag", "score"] = Field(
        default="fail",
        description="a batch under min_rows: fail the gate, score it flagged (a violation, gate passes), "
        "or score it without judging drift",
    )
    missing_baseline: Literal["fail", "skip"] = Field(
        default="fail", description="a package trained before baselines existed: refuse it, or score without a check"
    )

    def thresholds(self) -> dict[str, float]:
        return {"psi": self.psi, "js_distance": self.js_distance, "unseen_share": self.unseen_share,
                "missing_share_increase": self.missing_share_increase,
                "mean_shift_std": self.mean_shift_std}  # fmt: skip


class BatchSettings(_Strict):
    """`batch`: the batch inference pipeline (`--pipeline batch`): score `input_uri` with a
    model package into `output_uri` through a batch transform job, after a drift check of
    the input against the model's training baseline. The package is the one the alias
    (default: the last stage's, else `champion`) holds when the execution starts, or
    `--param ModelPackageArn=...`."""

    pipeline_name: PipelineName | None = Field(default=None, description="default: <pipeline.name>-batch")
    input_uri: S3Uri | None = Field(default=None, description="default: <s3 base>/batch/input/")
    output_uri: S3Uri | None = Field(default=None, description="default: <s3 base>/batch/output/")
    alias: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,255}$")] | None = None
    instance_type: InstanceType = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=100)
    max_payload_mb: int = Field(default=6, ge=1, le=100)  # CreateTransformJob MaxPayloadInMB
    model_role_arn: RoleArn | None = Field(
        default=None,
        description="the scored model's execution role (the stack's BatchModelRoleArn): it reads the model and "
        "input and writes the scores, and the model's code runs with it; default: aws.role_arn, the pipeline's",
    )
    join_input: bool = Field(default=False, description="each output line: the input row, then its prediction")
    content_type: Literal["text/csv"] = "text/csv"
    accept: Literal["text/csv", "application/jsonlines", "application/json"] = Field(
        default="text/csv", description="application/jsonlines: one object per record, with class probabilities"
    )
    drift: DriftSettings = Field(default_factory=DriftSettings)

    @field_validator("accept")
    @classmethod
    def _one_answer_per_record(cls, value: str) -> str:
        if value == "application/json":
            raise ValueError(
                "application/json answers one object per request, not one per record, so a batch's answers "
                "cannot line up with its records; use application/jsonlines (one object a line, with the "
                "class probabilities)"
            )
        return value

    @model_validator(mode="after")
    def _join_is_csv(self) -> BatchSettings:
        if self.join_input and self.accept != "text/csv":
            raise ValueError(
                f"join_input joins each CSV record with a CSV answer; with accept {self.accept} SageMaker cannot "
                "join them (set accept: text/csv, or join_input: false)"
            )
        return self


class InfraSettings(_Strict):
    """The `infra` section: what the CDK app deploys (infra/app.py reads it)."""

    account: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
    region: Region | None = None  # default: aws.region
    name: SageMakerName = "mlops"
    nat_gateways: int = Field(default=0, ge=0, le=3, description="0: VPC endpoints only, no internet egress")
    max_azs: int = Field(default=2, ge=2, le=3)
    database_instance_type: str = "t4g.small"
    database_multi_az: bool = False
    database_allocated_storage_gb: int = Field(default=20, ge=20, le=1000)
    server_cpu: int = Field(default=1024, ge=256)
    server_memory_mb: int = Field(default=2048, ge=512)
    server_min_tasks: int = Field(default=1, ge=1, le=10)
    server_max_tasks: int = Field(default=3, ge=1, le=20)
    server_workers: int = Field(default=2, ge=1, le=16)
    public_load_balancer: bool = False
    tls: TlsSettings = Field(default_factory=TlsSettings)
    allowed_hosts: list[str] = Field(default_factory=list)
    endpoint_instance_type: InstanceType = "ml.m5.large"
    rollback_alarms: list[str] = Field(default_factory=list)
    promotion_roles: bool = Field(
        default=False,
        description="Example roles: data scientists may propose to the first stage, the release role to any.",
    )
    alarm_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = Field(
        default=None, description="Subscribed to the alarm topic (dead letters), after confirming the e-mail."
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "certificate_arn" in data:
            raise ValueError("certificate_arn moved to infra.tls.certificate_arn (with tls.mode: certificate)")
        return data

    @property
    def tracking_domain(self) -> str | None:
        """The name clients use for the tracking server; None with tls.mode none."""
        if self.tls.mode == "none":
            return None
        return self.tls.domain_name or f"mlflow.{self.name}.internal"

    @model_validator(mode="after")
    def _https_when_public(self) -> InfraSettings:
        if self.public_load_balancer and self.tls.mode != "certificate":
            raise ValueError(
                "a public load balancer needs tls.mode: certificate with a certificate_arn for a public name "
                "(HTTPS only)"
            )
        if self.server_min_tasks > self.server_max_tasks:
            raise ValueError("server_min_tasks must be <= server_max_tasks")
        return self


class PipelineConfig(_Strict):
    pipeline: PipelineSettings
    aws: AwsSettings
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    data: DataSettings
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    steps: StepsSettings
    training: TrainingSettings
    tuning: TuningSettings = Field(default_factory=TuningSettings)
    quality_gate: QualityGateSettings
    registration: RegistrationSettings
    mlflow: MlflowSettings
    caching: CachingSettings = Field(default_factory=CachingSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    infra: InfraSettings | None = None

    @model_validator(mode="after")
    def _tuned_parameters_are_not_also_fixed_elsewhere(self) -> PipelineConfig:
        clash = sorted(set(SCRIPT_HYPERPARAMETERS) & (set(self.training.hyperparameters) | set(self.tuning.ranges)))
        if clash:
            raise ValueError(f"hyperparameter name {clash[0]!r} is reserved (set training.{clash[0]} instead)")
        return self

    @model_validator(mode="after")
    def _one_endpoint_per_stage(self) -> PipelineConfig:
        """Two stages deploying to one endpoint (a repeated `endpoint.name`, or one equal to
        another stage's default) would each overwrite the other's model."""
        group = self.registration.model_package_group
        owners: dict[tuple[str, str], str] = {}
        for stage in self.deployment.stages:
            if stage.endpoint is None:
                continue
            where = (stage.endpoint.account or "", stage.endpoint_name(group))
            if where in owners:
                raise ValueError(
                    f"deployment.stages: {owners[where]} and {stage.name} both deploy to endpoint {where[1]!r}"
                    + (f" in account {where[0]}" if where[0] else "")
                    + " (each would replace the other's model): give one its own endpoint.name"
                )
            owners[where] = stage.name
        return self

    @model_validator(mode="after")
    def _metrics_exist(self) -> PipelineConfig:
        """The objective and the gate must name metrics the bundled scripts compute for the
        task (a team's own script may compute others: then it is trusted)."""
        task = self.training.task
        objective = self.training.resolved_objective.metric
        if self.steps.train.source_dir is None:
            name = objective.split(":", 1)[-1]
            if not objective.startswith("validation:") or name not in TRAINING_METRICS[task]:
                known = ", ".join(f"validation:{m}" for m in TRAINING_METRICS[task])
                raise ValueError(f"training.objective.metric {objective!r} is not computed for {task} (use {known})")
        if self.steps.evaluate.source_dir is None:
            section = f"{task}_metrics"
            parts = self.quality_gate.metric.split(".")
            known = ", ".join(f"{section}.{m}.value" for m in REPORT_METRICS[task][:6])
            if len(parts) != 3 or parts[0] != section or parts[1] not in REPORT_METRICS[task] or parts[2] != "value":
                raise ValueError(
                    f"quality_gate.metric {self.quality_gate.metric!r} is not in the {task} report (e.g. {known}, ...)"
                )
        return self

    @property
    def s3_base(self) -> str:
        return f"s3://{self.aws.default_bucket}/{self.aws.prefix.strip('/')}"

    @property
    def batch_input_uri(self) -> str:
        """Where batches are read from: `batch.input_uri`, else `<s3 base>/batch/input/`."""
        return self.batch.input_uri or f"{self.s3_base}/batch/input/"

    @property
    def batch_output_uri(self) -> str:
        """Where scores are written: `batch.output_uri`, else `<s3 base>/batch/output/`."""
        return self.batch.output_uri or f"{self.s3_base}/batch/output/"

    @property
    def batch_pipeline_name(self) -> str:
        return self.batch.pipeline_name or f"{self.pipeline.name}-batch"[:256]

    @property
    def batch_alias(self) -> str:
        """The alias whose package a batch scores by default: production's, as an endpoint would."""
        return self.batch.alias or (self.deployment.stages[-1].alias if self.deployment.stages else "champion")
