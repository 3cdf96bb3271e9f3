"""The SageMaker Python SDK v3 session a render uses, and every workaround the builder needs
to build offline, fast and the same every time: a build calls no AWS API, reads no user or
admin SDK config file (the definition depends on the YAML only), and makes no upload.

Each workaround says what it answers and what would let it go. Nothing else in the project
reaches into the SDK's internals; the step builders (`pipeline/steps/`) use its public
classes only, importing them inside `offline_build`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from pipeline.config import PipelineConfig

__all__ = [
    "SDK_CONFIG",
    "SDK_DISTRIBUTIONS",
    "finished_definition",
    "image_registry_table",
    "model_builder",
    "offline_build",
    "package_model_step_args",
    "pipeline_session",
]

# The distributions the builder imports (pyproject.toml pins them): the render cache keys on
# their versions, and the README's figures measure them.
SDK_DISTRIBUTIONS = ("sagemaker-core", "sagemaker-train", "sagemaker-serve", "sagemaker-mlops")

# Telemetry off and no user/admin SDK config files: the definition depends on the YAML only.
# v3 reads TelemetryOptOut from the same path as v2 (sagemaker/core/config/config_schema.py,
# TELEMETRY_OPT_OUT_PATH); without it every decorated call (ModelTrainer.train, Processor.run,
# ModelBuilder.register, ...) sends an STS call and an HTTPS request
# (sagemaker/core/telemetry/telemetry_logging.py, `_telemetry_emitter`).
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


class _BuiltOnFirstUse:
    """Stands in for a boto3 client or resource until something uses it."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.__dict__.update(_build=build, _built=None)

    def __getattr__(self, name: str) -> Any:
        if self._built is None:
            self.__dict__["_built"] = self._build()
        return getattr(self._built, name)


def _session_with_clients_on_first_use(region: str) -> Any:
    """A boto3 Session whose clients are built when first used. The SDK's Session builds
    six (0.4 s of service-model parsing) and an offline build uses none. Speed, not a defect:
    kept while the SDK builds clients it may not use."""
    import boto3

    class Session(boto3.Session):
        def client(self, *args: Any, **kwargs: Any) -> Any:
            return _BuiltOnFirstUse(lambda: super(Session, self).client(*args, **kwargs))

        def resource(self, *args: Any, **kwargs: Any) -> Any:
            return _BuiltOnFirstUse(lambda: super(Session, self).resource(*args, **kwargs))

    return Session(region_name=region)


@contextmanager
def offline_build(region: str) -> Iterator[Any]:
    """Where the SDK is imported and a definition built: yields a boto3 session whose
    clients are built on first use (none is, offline). Restores all it changes (but the two clients of
    `AIRHub` below, which keep this session: built only if used, and no render uses them);
    one build at a time in a process (`run --local` renders in a worker thread). Five
    workarounds:

    - importing `sagemaker.mlops` (through `sagemaker.serve.model_builder`) runs
      `boto3.client("sagemaker")` in a class body (`AIRHub._sagemaker_client`,
      sagemaker/ai_registry/air_hub.py): NoRegionError on a machine with no region
      configured, a service model parsed otherwise. With this session as boto3's default the
      region is the config's, not the user's shell's, and nothing is built. Goes when the SDK
      builds that client lazily. Code paths that build a client of the default session
      (Studio app lookups) are served the same way;
    - `ProcessingStep` and `TransformStep` construct a `LocalSagemakerClient()` only to read
      a method's name (`LocalSagemakerClient().create_processing_job.__name__`,
      sagemaker/mlops/workflow/steps.py): each builds a LocalSession, which needs a region
      from the shell, loads the user's SDK config files (from S3 if they point there) and
      builds S3 clients. While building, that name stands for a class that only has method
      names. Goes when the steps compare with the constant names;
    - ModelTrainer checks its role with IAM (SimulatePrincipalPolicy and trust inspection) on
      every build unless `SAGEMAKER_VALIDATE_ROLE=false` (`resolve_and_validate_role`,
      sagemaker/core/helper/iam_role_resolver.py; `TrainDefaults.get_role` passes no switch).
      The role is the config's ARN; SageMaker checks it when a job starts. Goes when the
      SDK skips the check under a PipelineSession.

    - the SDK validates its config dict with jsonschema on every session and every config
      lookup (`SageMakerConfig.validate_sagemaker_config` from `get_sagemaker_config_value`,
      sagemaker/core/common_utils.py; `validate_sagemaker_config` in the Session's
      `_initialize`): ~36 times a build at 0.18 s each, most of a render. Ours is the constant
      `SDK_CONFIG`, proven valid by a test against the SDK's own validator, so that one dict
      is not validated again; any other still is, and a passing validation has no other
      effect. Goes when the SDK validates a config once.

    - importing the SDK configures the root logger (`logging.basicConfig` at import time in
      sagemaker/core/experiments/_metrics.py and sagemaker/train/aws_batch/training_queued_job.py),
      which would print every library's INFO records in this command's output: the root
      logger's handlers and level are put back. Goes when the SDK leaves logging to the
      application.

    `region`: the config's `aws.region`."""
    import boto3

    with _ONE_BUILD_AT_A_TIME:
        root = logging.getLogger()
        root_handlers, root_level = root.handlers[:], root.level
        session, previous = _session_with_clients_on_first_use(region), boto3.DEFAULT_SESSION
        previous_validate = os.environ.get(_VALIDATE_ROLE)
        boto3.DEFAULT_SESSION, os.environ[_VALIDATE_ROLE] = session, "false"
        try:
            import sagemaker.core.config.config_manager as config_manager
            import sagemaker.core.helper.session_helper as session_helper
            import sagemaker.mlops.workflow.steps as steps_module

            root.handlers[:], root.level = root_handlers, root_level  # the build logs nothing either
            with ExitStack() as patches:
                patches.enter_context(_replaced(steps_module, "LocalSagemakerClient", _MethodNames))
                validate = session_helper.validate_sagemaker_config
                patches.enter_context(_replaced(session_helper, "validate_sagemaker_config", _trusting(validate)))
                validate = config_manager.SageMakerConfig.validate_sagemaker_config
                trusting = staticmethod(_trusting(validate))
                patches.enter_context(_replaced(config_manager.SageMakerConfig, "validate_sagemaker_config", trusting))
                yield session
        finally:
            root.handlers[:], root.level = root_handlers, root_level
            boto3.DEFAULT_SESSION = previous
            if previous_validate is None:
                os.environ.pop(_VALIDATE_ROLE, None)
            else:
                os.environ[_VALIDATE_ROLE] = previous_validate


_ONE_BUILD_AT_A_TIME = threading.RLock()  # the patches are process-wide


@contextmanager
def _replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _trusting(validate: Callable[[Any], None]) -> Callable[..., None]:
    def validate_unless_ours(sagemaker_config: Any = None) -> None:
        if sagemaker_config != SDK_CONFIG:
            validate(sagemaker_config)

    return validate_unless_ours


class _MethodNames:
    """An object whose every attribute is a function of that name, and nothing more."""

    def __getattr__(self, name: str) -> Callable[[], None]:
        def method() -> None:
            raise NotImplementedError(name)

        method.__name__ = name
        return method


_VALIDATE_ROLE = "SAGEMAKER_VALIDATE_ROLE"


def pipeline_session(cfg: PipelineConfig, boto_session: Any = None) -> Any:
    """A PipelineSession that builds without calling AWS (the default bucket is given, so the
    SDK never looks up the account to name one)."""
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    boto_session = boto_session or _session_with_clients_on_first_use(cfg.aws.region)
    return PipelineSession(
        boto_session=boto_session,
        default_bucket=cfg.aws.default_bucket,
        default_bucket_prefix=None,
        sagemaker_config=SDK_CONFIG,
    )


def package_model_step_args(session: Any, *, package_arn: Any, role: str) -> Any:
    """The step arguments of a ModelStep that creates a model from a model package:
    CreateModel with `Containers: [{"ModelPackageName": package_arn}]`, where `package_arn`
    may be a pipeline parameter.

    v3's public routes both need the package at build time: `ModelBuilder.build()` with a
    `ModelPackage` resource describes it (an AWS call), and `ModelStep` refuses a plain
    request dict (it checks `isinstance(step_args, _StepArguments)` before its own dict
    branch, sagemaker/mlops/workflow/model_step.py). So this records the CreateModel request
    the way `ModelBuilder.build()` does under a PipelineSession
    (`init_model_step_arguments`, then `Session.create_model`, which the session intercepts).
    Goes when ModelStep takes a request dict, or ModelBuilder a package ARN as a parameter."""
    from types import SimpleNamespace

    holder = SimpleNamespace(sagemaker_session=session)  # _ModelStepArguments reads `.model.sagemaker_session`
    session.init_model_step_arguments(holder)
    session.create_model(name=None, role=role, container_defs=[{"ModelPackageName": package_arn}])
    step_args, session.context = session.context, None
    return step_args


def model_builder(session: Any, *, image_uri: str, model_data_uri: Any, role: str, environment: dict[str, str]) -> Any:
    """A ModelBuilder of an image, a model.tar.gz (a URI or a pipeline variable) and an
    environment, whose `register()` records a CreateModelPackage request.

    `dependencies={}`: the default, `{"auto": True}`, makes `_prepare_container_def_base`
    upload code (`_upload_code`: S3 HeadBucket, then CreateBucket when the bucket is not
    found) even with no source code (sagemaker/serve/model_builder.py). The serving code is
    named by SAGEMAKER_SUBMIT_DIRECTORY instead. Goes when ModelBuilder uploads only code it
    was given.

    `log_level=None`: the default, DEBUG, is set on the SDK's shared logger
    (`logger.setLevel(self.log_level)` in `ModelBuilder.__post_init__`; the logger is
    sagemaker/core/utils/utils.py's) for the rest of the process. Goes when the default
    leaves the level alone."""
    from sagemaker.serve.model_builder import ModelBuilder

    return ModelBuilder(
        image_uri=image_uri,
        s3_model_data_url=model_data_uri,
        role_arn=role,
        env_vars=environment,
        dependencies={},
        log_level=None,
        sagemaker_session=session,
    )


def finished_definition(definition: dict[str, Any], cfg: PipelineConfig) -> dict[str, Any]:
    """The SDK's definition (`json.loads(pipeline.definition())`) with what the SDK gets wrong
    set right, in place:

    - a Tuning step's `TrainingJobDefinition` gets `EnableInterContainerTrafficEncryption`
      from `network.encrypt_inter_container_traffic`: the tuner builds the trials'
      definition from the ModelTrainer's compute, VPC, environment and checkpoints but drops
      its `Networking.enable_inter_container_traffic_encryption`
      (`HyperparameterTuner._build_training_job_definition`, sagemaker/train/tuner.py), so
      trials would run unencrypted where the Train step does not. Goes when the tuner copies it;
    - a Training step gets `ProfilerConfig: {"DisableProfiler": true}`: ModelTrainer has no
      profiler setting and sends none (sagemaker/train/model_trainer.py,
      `_create_training_job_args`), while this project has always turned SageMaker Debugger's
      monitoring off for its jobs (SDK v2's `disable_profiler=True`): nothing reads its
      output, and the job's arguments stay what they were. Goes when ModelTrainer takes it;
    - a top-level `"MlflowConfig": null` (v3's Pipeline writes the key when no MLflow app is
      attached, sagemaker/mlops/workflow/pipeline.py) is dropped: null is not a value the
      definition language lists for it, and this project tracks to its own server. Goes
      when the Pipeline leaves the key out unless it is set.
    """
    if definition.get("MlflowConfig", ...) is None:
        del definition["MlflowConfig"]
    for step in definition.get("Steps", []):
        if step.get("Type") == "Training":
            step["Arguments"].setdefault("ProfilerConfig", {"DisableProfiler": True})
        if step.get("Type") == "Tuning":
            job = step["Arguments"]["TrainingJobDefinition"]
            if cfg.network.encrypt_inter_container_traffic:  # else left out, SageMaker's default (off)
                job["EnableInterContainerTrafficEncryption"] = True
    return definition


def image_registry_table(framework: str) -> dict[str, Any]:
    """The SDK's table of a framework's image accounts per region and version
    (`sagemaker/core/image_uri_config/<framework>.json`, what `image_uris.retrieve` reads),
    read without importing the SDK (seconds) for the CDK app's ECR grants. The file's place
    is the SDK's layout (v2 kept it at `sagemaker/image_uri_config/`). Raises ValueError when
    the SDK is not installed."""
    import importlib.util
    import json
    from pathlib import Path

    location = importlib.util.find_spec("sagemaker")
    if location is None or not location.submodule_search_locations:
        raise ValueError("the SageMaker SDK is not installed: it lists the image accounts")
    table = Path(location.submodule_search_locations[0]) / "core" / "image_uri_config" / f"{framework}.json"
    return dict(json.loads(table.read_text()))
