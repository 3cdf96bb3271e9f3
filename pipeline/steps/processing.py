"""Processing steps (Preprocess, Evaluate) on the scikit-learn image.

Both run `entrypoint.sh SCRIPT ARGS` from the content-addressed scripts prefix: the
scripts arrive as a processing input, so no SDK upload happens at build time and the
step's cache key changes only when the scripts do.
"""

from __future__ import annotations

from typing import Any

from pipeline.code_bundle import ENTRYPOINT, SCRIPTS_INPUT_NAME
from pipeline.steps.context import BuildContext
from pipeline.steps.job_policies import cache_config, network_config, retry_policies

__all__ = ["SCRIPTS_MOUNT", "processing_input", "processing_output", "processing_step", "script_arguments"]

SCRIPTS_MOUNT = "/opt/ml/processing/input/scripts"
CODE_INPUT_NAME = "code"  # entrypoint.sh alone, where SDK v2's ScriptProcessor put its `code`
CODE_MOUNT = "/opt/ml/processing/input/code"


def processing_input(name: str, source: Any, destination: str) -> Any:
    """An S3 prefix copied in before the job starts (`source`: a URI or a pipeline variable)."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        app_managed=False,
        s3_input=ProcessingS3Input(
            s3_uri=source,
            local_path=destination,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def processing_output(name: str, source: str, destination: Any) -> Any:
    """A folder uploaded to `destination` when the job ends."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        app_managed=False,
        s3_output=ProcessingS3Output(s3_uri=destination, local_path=source, s3_upload_mode="EndOfJob"),
    )


def script_arguments(extra: dict[str, Any]) -> list[str]:
    """`--key value` pairs in key order; every value a string, as the API requires."""
    args: list[str] = []
    for key in sorted(extra):
        value = extra[key]
        args += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return args


def processing_step(
    ctx: BuildContext,
    *,
    name: str,
    settings_key: str,
    instance_type: Any,
    inputs: list[Any],
    outputs: list[Any],
    arguments: list[str],
    display_name: str,
    description: str,
    property_files: list[Any] | None = None,
    script: str | None = None,
    cached: bool = True,
    environment: dict[str, Any] | None = None,
) -> Any:
    """`script`: another bundled script than the step settings' own (whose `arguments`
    are then not passed: they are that script's). `cached=False`: no CacheConfig, for a
    step whose input may change under the same URI (SageMaker's cache keys on the URI).
    `environment`: added to the job's (values may be pipeline parameters)."""
    from sagemaker.core.processing import Processor
    from sagemaker.mlops.workflow.steps import ProcessingStep

    settings = ctx.step_settings(settings_key)
    processor = Processor(
        image_uri=ctx.image_uri,
        entrypoint=["bash", f"{CODE_MOUNT}/{ENTRYPOINT}"],
        role=ctx.cfg.aws.role_arn,
        instance_type=instance_type,
        instance_count=settings.instance_count,
        volume_size_in_gb=settings.volume_size_gb,
        max_runtime_in_seconds=settings.max_runtime_seconds,
        base_job_name=f"{ctx.cfg.pipeline.name}-{settings_key}",
        env={**ctx.job_environment(), "MLOPS_SCRIPTS_DIR": SCRIPTS_MOUNT, **(environment or {})},
        network_config=network_config(ctx.cfg),
        sagemaker_session=ctx.session,
    )
    scripts = processing_input(SCRIPTS_INPUT_NAME, ctx.code.scripts_uri, SCRIPTS_MOUNT)
    entrypoint = processing_input(CODE_INPUT_NAME, ctx.code.entrypoint_uri, CODE_MOUNT)
    step_args = processor.run(
        inputs=[*inputs, scripts, entrypoint],
        outputs=outputs,
        arguments=[script, *arguments]
        if script
        else [settings.script, *arguments, *script_arguments(settings.arguments)],
    )
    return ProcessingStep(
        name=name,
        step_args=step_args,
        display_name=display_name,
        description=description,
        property_files=property_files,
        cache_config=cache_config(ctx.cfg) if cached else None,
        retry_policies=retry_policies(ctx.cfg),
    )
