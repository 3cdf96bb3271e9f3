"""`run --local`: render the definition, stage code (and optionally the example data) in
the workspace, bring up the local services, execute, summarise. The wiring lives here;
the behaviour lives in the modules it wires."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from pipeline.config import PipelineConfig
from pipeline.local.jobs import LocalJobRunner
from pipeline.local.registry import LocalRegistry
from pipeline.local.runner import ExecutionRecord, LocalExecution
from pipeline.local.services import LocalServices, local_services
from pipeline.local.workspace import Workspace

__all__ = ["LocalRunOptions", "run_local", "sagemaker_client"]

DEFAULT_WORKSPACE = Path(".local")


@dataclass(frozen=True)
class LocalRunOptions:
    parameters: dict[str, str]
    use_cache: bool = True
    keep_services: bool = False
    example_data: bool = False
    workspace: Path = DEFAULT_WORKSPACE


def sagemaker_client(endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client(
        "sagemaker", region_name=region, endpoint_url=endpoint, aws_access_key_id="local", aws_secret_access_key="local"
    )


def stage(cfg: PipelineConfig, definition: dict[str, Any], workspace: Workspace, options: LocalRunOptions) -> None:
    """What `upsert` puts in S3 (the code bundle), and the example data when asked."""
    from pipeline.definition import code_bundle

    for uri, body in code_bundle(cfg).objects().items():
        workspace.put(uri, body)
    if options.example_data:
        defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
        target = workspace.path(options.parameters.get("InputDataUri") or defaults["InputDataUri"])
        if not target.exists():
            from pipeline.example_data import write_diabetes_csv

            write_diabetes_csv(target)


def _evaluation_report(record: ExecutionRecord, workspace: Workspace) -> dict[str, Any] | None:
    for step in record.steps.values():
        outputs = step.properties.get("ProcessingOutputConfig", {}).get("Outputs", {})
        if "evaluation" in outputs:
            path = workspace.path(outputs["evaluation"]["S3Output"]["S3Uri"]) / "evaluation.json"
            if path.exists():
                return json.loads(path.read_text())
    return None


def run_local(
    cfg: PipelineConfig,
    render: Callable[[], dict[str, Any]],
    options: LocalRunOptions,
    console: Console,
    *,
    check: Callable[[dict[str, Any]], None] = lambda definition: None,
) -> ExecutionRecord:
    """`render` runs in a thread while the services start: they are the two fixed costs of
    a run and neither needs the other. `check` sees the definition before anything runs."""
    workspace = Workspace(options.workspace.resolve())
    with ThreadPoolExecutor(max_workers=1) as pool:
        rendering = pool.submit(render)
        with local_services(workspace.root, keep=options.keep_services) as services:
            definition = rendering.result()
            check(definition)
            stage(cfg, definition, workspace, options)
            return _execute(cfg, definition, options, console, workspace, services)


def _execute(
    cfg: PipelineConfig,
    definition: dict[str, Any],
    options: LocalRunOptions,
    console: Console,
    workspace: Workspace,
    services: LocalServices,
) -> ExecutionRecord:
    from pipeline.local.progress import LiveProgress, summary

    registry = LocalRegistry(sagemaker_client(services.moto_endpoint, cfg.aws.region), workspace.root / "registry.json")
    registry.restore()
    jobs = LocalJobRunner(
        workspace, workspace.root / "jobs", env_overrides={"MLFLOW_TRACKING_URI": services.tracking_uri}
    )
    with LiveProgress(console) as progress:
        execution = LocalExecution(
            definition,
            workspace=workspace,
            jobs=jobs,
            registry=registry,
            parameters=options.parameters,
            pipeline_name=cfg.pipeline.name,
            use_cache=options.use_cache,
            region=cfg.aws.region,
            account=cfg.aws.role_arn.split(":")[4],
            on_change=progress,
        )
        record = execution.run()
    console.print(summary(record, services.tracking_uri, _evaluation_report(record, workspace)))
    if options.keep_services:
        console.print(f"services left running: MLflow {services.tracking_uri}, registry {services.moto_endpoint}")
    return record
