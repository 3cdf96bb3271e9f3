"""Config in, SageMaker Pipeline out: `build_pipeline` (pure) and `render_definition`.

This package holds no AWS calls; `python -m pipeline.definition VERB` is the command line
(`__main__.py`, then `pipeline/cli.py`). The SageMaker SDK is imported inside the
functions that need it so that `validate` stays instant; the session it builds with is
`pipeline.sdk_session`'s, the code it references `pipeline.code_bundle`'s.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pipeline.api_limits import check_definition, enum_values
from pipeline.atomic_file import write_atomically
from pipeline.code_bundle import code_bundle, files_digest
from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError
from pipeline.estimators import estimator_problems
from pipeline.input_identity import IDENTITY_PARAMETER, NOT_RESOLVED
from pipeline.sdk_session import SDK_DISTRIBUTIONS, finished_definition, offline_build, pipeline_session
from pipeline.steps.context import BuildContext, Parameters, StepNames

PipelineKind = Literal["training", "batch"]  # `--pipeline`: the two pipelines one config describes

__all__ = ["StepNames", "build_pipeline", "check_estimator", "render_definition", "render_definition_cached"]


def check_estimator(cfg: PipelineConfig) -> None:
    """ConfigError when the bundled train script could not build the configured estimator."""
    if cfg.steps.train.source_dir is None:
        problems = estimator_problems(cfg)
        if problems:
            raise ConfigError(problems)


def _parameters(cfg: PipelineConfig) -> Parameters:
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString

    steps = cfg.steps
    return Parameters(
        input_data_uri=ParameterString("InputDataUri", default_value=cfg.data.input_uri),
        input_data_identity=ParameterString(IDENTITY_PARAMETER, default_value=NOT_RESOLVED),
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
    """The scikit-learn framework image (training scope: the SDK lists 1.4-2 only there, and
    the same image serves inference)."""
    if cfg.runtime.image_uri:
        return cfg.runtime.image_uri
    from sagemaker.core import image_uris

    return image_uris.retrieve(
        "sklearn",
        region=cfg.aws.region,
        version=cfg.runtime.framework_version,
        py_version=cfg.runtime.py_version,
        instance_type=cfg.steps.train.instance_type,
        image_scope="training",
    )


def _context(cfg: PipelineConfig, session: Any) -> BuildContext:
    check_estimator(cfg)
    return BuildContext(
        cfg=cfg,
        session=session,
        params=_parameters(cfg),
        code=code_bundle(cfg),
        image_uri=_image_uri(cfg),
    )


def build_pipeline(cfg: PipelineConfig, session: Any, which: PipelineKind = "training") -> Any:
    """The SageMaker Pipeline for a config: the training one, or the batch inference one
    (`pipeline/definition/batch.py`). Makes no AWS call and uploads nothing: code is
    referenced by content address (see `code_bundle`). Call it inside
    `pipeline.sdk_session.offline_build`, with its `pipeline_session`."""
    if which == "batch":
        from pipeline.definition.batch import build_batch_pipeline

        return build_batch_pipeline(cfg, _context(cfg, session))
    from sagemaker.mlops.workflow.pipeline import Pipeline

    from pipeline.steps.evaluation import evaluation_step
    from pipeline.steps.preprocess import preprocess_step
    from pipeline.steps.quality_gate import quality_gate_step
    from pipeline.steps.registration import register_step
    from pipeline.steps.training import training_step
    from pipeline.steps.tuning import best_model_uri, tuning_step

    ctx = _context(cfg, session)
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


def render_definition(cfg: PipelineConfig, session: Any = None, which: PipelineKind = "training") -> str:
    """The definition JSON, canonical: equal configs give byte-identical text.

    Every verb that renders (render, upsert, graph, run --local) comes through here, so a
    definition SageMaker's API would refuse once a step starts (a 300-character container
    argument, a bad approval status) is a ConfigError here instead (`pipeline/api_limits.py`).
    """
    import warnings

    with warnings.catch_warnings(), offline_build(cfg.aws.region) as boto_session:
        warnings.filterwarnings("ignore", message="Running within a PipelineSession")
        pipeline = build_pipeline(cfg, session or pipeline_session(cfg, boto_session), which)
        definition = finished_definition(json.loads(pipeline.definition()), cfg)
    check_definition(definition)
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"


def _builder_digest() -> str:
    """The source of every module of this package but local mode's: a list of the modules
    that build and check a definition would go stale as soon as one of them imports another."""
    package = Path(__file__).parents[1]
    builder = [path for path in sorted(package.rglob("*.py")) if "local" not in path.relative_to(package).parts]
    return files_digest({str(path.relative_to(package)): path.read_bytes() for path in builder})


def render_definition_cached(cfg: PipelineConfig, cache_dir: Path, which: PipelineKind = "training") -> str:
    """`render_definition`, memoised on disk by everything the output depends on: the
    validated config, the scripts' content address, this builder's own source and the SDK's
    versions, and botocore's version (its service model sets the limits checked, and the
    approval statuses). A hit skips importing the SDK (seconds), which is what makes a local
    run fast; `run --local` keeps it in the machine's cache (pipeline/machine_cache.py), so
    a new workspace hits it too. Only checked definitions are ever written."""
    from importlib.metadata import version

    material = json.dumps(
        {
            "config": cfg.model_dump(mode="json"),
            "pipeline": which,
            "code": code_bundle(cfg).digest,
            "builder": _builder_digest(),
            "sdk": {name: version(name) for name in SDK_DISTRIBUTIONS},
            "botocore": version("botocore"),
        },
        sort_keys=True,
    )
    path = cache_dir / f"{hashlib.sha256(material.encode()).hexdigest()[:32]}.json"
    if path.exists():
        return path.read_text()
    text = render_definition(cfg, which=which)
    write_atomically(path, text)
    return text
