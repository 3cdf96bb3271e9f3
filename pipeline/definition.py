"""Config to SageMaker Pipeline: `build_pipeline` (pure) and `render_definition`.

`python -m pipeline.definition VERB` is the command line (see `pipeline/cli.py`); this
module holds no AWS calls. The SageMaker SDK is imported inside the functions that need
it so that `validate` stays instant.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.api_limits import check_definition, enum_values
from pipeline.atomic_file import write_atomically
from pipeline.code_bundle import SCRIPTS_DIR, CodeBundle, build_bundle, files_digest, read_folder
from pipeline.config import PipelineConfig
from pipeline.dataset_spec import SPEC_FILE, dataset_spec_bytes
from pipeline.errors import ConfigError
from pipeline.estimators import estimator_problems, estimator_requirements
from pipeline.steps.context import BuildContext, Parameters, StepNames

__all__ = [
    "StepNames",
    "build_pipeline",
    "check_estimator",
    "code_bundle",
    "pipeline_session",
    "render_definition",
    "render_definition_cached",
]

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

# Telemetry off and no user/admin SDK config files: the definition depends on the YAML only.
_SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def _source_dir_overlay(cfg: PipelineConfig) -> tuple[dict[str, bytes], list[tuple[str, str]]]:
    """The files of every `steps.<step>.source_dir`, and problems: a missing folder, a
    missing entry script, or two steps' folders disagreeing about a file of the same name
    (they share one bundle)."""
    overlay: dict[str, bytes] = {}
    owner: dict[str, str] = {}
    problems = []
    for key in ("preprocess", "train", "evaluate"):
        settings = getattr(cfg.steps, key)
        if settings.source_dir is None:
            continue
        folder = Path(settings.source_dir).expanduser()
        if not folder.is_dir():
            problems.append((f"steps.{key}.source_dir", f"{settings.source_dir!r} is not a folder (from {Path.cwd()})"))
            continue
        files = read_folder(folder)
        if settings.script not in files:
            problems.append((f"steps.{key}.script", f"{settings.script!r} is not in {settings.source_dir}"))
        for name, body in files.items():
            if name in overlay and overlay[name] != body:
                problems.append((f"steps.{key}.source_dir", f"{name} differs from the one in steps.{owner[name]}"))
            overlay[name], owner[name] = body, key
    return overlay, problems


def code_bundle(cfg: PipelineConfig) -> CodeBundle:
    """The scripts bundle: the bundled scripts, each step's `source_dir` over them, the
    dataset spec and the estimator's pinned library. Every script the config names must be
    in it."""
    overlay, problems = _source_dir_overlay(cfg)
    overlay[SPEC_FILE] = dataset_spec_bytes(cfg)
    requirements = [*estimator_requirements(cfg.training.estimator_path), *cfg.training.requirements]
    if requirements and not cfg.runtime.install_requirements and not cfg.runtime.image_uri:
        problems.append(
            (
                "runtime.install_requirements",
                f"the jobs need {', '.join(requirements)}, which the scikit-learn framework image lacks: "
                "set runtime.install_requirements: true, or runtime.image_uri to an image that has them",
            )
        )
    bundle = build_bundle(
        cfg.s3_base,
        install_requirements=cfg.runtime.install_requirements,
        overlay=overlay,
        extra_requirements=requirements,
    )
    problems += [
        (f"steps.{key}.script", f"{script!r} is not in {SCRIPTS_DIR.relative_to(SCRIPTS_DIR.parents[2])}")
        for key, script in (
            ("preprocess", cfg.steps.preprocess.script),
            ("train", cfg.steps.train.script),
            ("evaluate", cfg.steps.evaluate.script),
        )
        if script not in bundle.files and getattr(cfg.steps, key).source_dir is None
    ]
    if problems:
        raise ConfigError(problems)
    return bundle


def check_estimator(cfg: PipelineConfig) -> None:
    """ConfigError when the bundled train script could not build the configured estimator."""
    if cfg.steps.train.source_dir is None:
        problems = estimator_problems(cfg)
        if problems:
            raise ConfigError(problems)


def _trust_our_sdk_config() -> None:
    """SDK 2.257 validates its config dict with jsonschema on every session and config
    lookup (~50 per build, 0.18 s each: most of a render). Ours is the constant
    `_SDK_CONFIG`, proven valid by a test against the SDK's own validator, so skip
    validating that one dict; any other config is still validated. A passing validation
    has no other effect, so the output is unchanged."""
    import sagemaker.session as sdk_session
    import sagemaker.utils as sdk_utils

    original = sdk_utils.validate_sagemaker_config
    if getattr(original, "trusts_project_config", False):
        return

    def validate(config: dict[str, Any] | None = None) -> None:
        if config != _SDK_CONFIG:
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
def _clients_on_first_use(region: str) -> Iterator[Any]:
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
        sagemaker_config=_SDK_CONFIG,
    )


def _parameters(cfg: PipelineConfig) -> Parameters:
    from sagemaker.workflow.parameters import ParameterFloat, ParameterString

    steps = cfg.steps
    return Parameters(
        input_data_uri=ParameterString("InputDataUri", default_value=cfg.data.input_uri),
        preprocess_instance_type=ParameterString(
            "PreprocessInstanceType", default_value=steps.preprocess.instance_type
        ),
        train_instance_type=ParameterString("TrainInstanceType", default_value=steps.train.instance_type),
        evaluate_instance_type=ParameterString("EvaluateInstanceType", default_value=steps.evaluate.instance_type),
        # EnumValues in the definition: `start --param ModelApprovalStatus=approved` is refused at
        # start, not when Register runs. The list is botocore's ModelApprovalStatus enum, in its order.
        approval_status=ParameterString(
            "ModelApprovalStatus",
            default_value=cfg.registration.approval_status,
            enum_values=enum_values("ModelApprovalStatus"),
        ),
        gate_threshold=ParameterFloat("QualityGateThreshold", default_value=cfg.quality_gate.threshold),
    )


def _image_uri(cfg: PipelineConfig) -> str:
    """The scikit-learn framework image (training scope; SDK 2.257 lists 1.4-2 only there,
    and the same image serves inference)."""
    if cfg.runtime.image_uri:
        return cfg.runtime.image_uri
    from sagemaker import image_uris

    return image_uris.retrieve(
        "sklearn",
        region=cfg.aws.region,
        version=cfg.runtime.framework_version,
        py_version=cfg.runtime.py_version,
        instance_type=cfg.steps.train.instance_type,
        image_scope="training",
    )


def build_pipeline(cfg: PipelineConfig, session: Any = None) -> Any:
    """The SageMaker Pipeline for a config. Makes no AWS call and uploads nothing:
    code is referenced by content address (see `code_bundle`)."""
    from sagemaker.workflow.pipeline import Pipeline

    from pipeline.steps.evaluation import evaluation_step
    from pipeline.steps.preprocess import preprocess_step
    from pipeline.steps.quality_gate import quality_gate_step
    from pipeline.steps.registration import register_step
    from pipeline.steps.training import training_step
    from pipeline.steps.tuning import best_model_uri, tuning_step

    check_estimator(cfg)
    ctx = BuildContext(
        cfg=cfg,
        session=session or pipeline_session(cfg),
        params=_parameters(cfg),
        code=code_bundle(cfg),
        image_uri=_image_uri(cfg),
    )
    preprocess = preprocess_step(ctx)
    if cfg.tuning.enabled:
        fit = tuning_step(ctx, preprocess)
        model_uri = best_model_uri(ctx, fit)
    else:
        fit = training_step(ctx, preprocess)
        model_uri = fit.properties.ModelArtifacts.S3ModelArtifacts
    evaluate, report = evaluation_step(ctx, preprocess, model_uri)
    register = register_step(ctx, evaluate, report, model_uri)
    gate = quality_gate_step(ctx, evaluate, report, if_steps=[register])
    return Pipeline(
        name=cfg.pipeline.name,
        parameters=ctx.params.all(),
        steps=[preprocess, fit, evaluate, gate],
        sagemaker_session=ctx.session,
    )


def _strip_build_noise(definition: dict[str, Any]) -> dict[str, Any]:
    """Remove what the SDK makes different on every build.

    The tuner stamps a timestamped `sagemaker_job_name` into the static hyperparameters
    (the SDK already drops it for TrainingStep; SageMaker names trial jobs itself).
    """
    for step in definition.get("Steps", []):
        if step.get("Type") == "Tuning":
            static = step["Arguments"].get("TrainingJobDefinition", {}).get("StaticHyperParameters", {})
            static.pop("sagemaker_job_name", None)
    return definition


def render_definition(cfg: PipelineConfig, session: Any = None) -> str:
    """The definition JSON, canonical: equal configs give byte-identical text.

    Every verb that renders (render, upsert, graph, run --local) comes through here, so a
    definition SageMaker's API would refuse once a step starts (a 300-character container
    argument, a bad approval status) is a ConfigError here instead (`pipeline/api_limits.py`).
    """
    import warnings

    with warnings.catch_warnings(), _clients_on_first_use(cfg.aws.region) as boto_session:
        warnings.filterwarnings("ignore", message="Running within a PipelineSession")
        pipeline = build_pipeline(cfg, session or pipeline_session(cfg, boto_session))
        definition = _strip_build_noise(json.loads(pipeline.definition()))
    check_definition(definition)
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"


def _builder_digest() -> str:
    """The source of the modules that turn a config into a definition and check it."""
    here = Path(__file__).parent
    builder = [Path(__file__), here / "api_limits.py", *(here / "steps").glob("*.py")]
    return files_digest({path.name: path.read_bytes() for path in builder})


def render_definition_cached(cfg: PipelineConfig, cache_dir: Path) -> str:
    """`render_definition`, memoised on disk by everything the output depends on: the
    validated config, the scripts' content address, this builder's own source and the SDK
    version, and botocore's version (its service model sets the limits checked, and the
    approval statuses). A hit skips importing the SDK (seconds), which is what makes a fully
    cached local rerun fast; only checked definitions are ever written."""
    from importlib.metadata import version

    material = json.dumps(
        {
            "config": cfg.model_dump(mode="json"),
            "code": code_bundle(cfg).digest,
            "builder": _builder_digest(),
            "sdk": version("sagemaker"),
            "botocore": version("botocore"),
        },
        sort_keys=True,
    )
    path = cache_dir / f"{hashlib.sha256(material.encode()).hexdigest()[:32]}.json"
    if path.exists():
        return path.read_text()
    text = render_definition(cfg)
    write_atomically(path, text)
    return text


if __name__ == "__main__":
    from pipeline.cli import exit_without_teardown, main

    exit_without_teardown(main())
