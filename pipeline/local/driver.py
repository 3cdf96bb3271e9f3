"""`run --local`: render the definition, stage code (and optionally the example data) in
the workspace, bring up the local services, execute, summarise. The wiring lives here;
the behaviour lives in the modules it wires."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from mlflow_bridge.contract import UNTRACKED_RUN
from pipeline.batch_model import model_parameters
from pipeline.config import PipelineConfig
from pipeline.errors import UsageError
from pipeline.local.execution_graph import log_execution_graph
from pipeline.local.inputs import UnsupportedInput
from pipeline.local.job_environment import JobEnvironment, JobEnvironments, bundle_environment, job_environments
from pipeline.local.jobs import LocalJobRunner
from pipeline.local.registry import JOURNAL_NAME, LocalRegistry
from pipeline.local.runner import ExecutionRecord, LocalExecution, StepRecord
from pipeline.local.services import LocalServices, local_services
from pipeline.local.serving import LocalModelServer
from pipeline.local.workspace import Workspace

__all__ = ["LocalRunOptions", "run_local", "sagemaker_client", "show_predictions"]

DEFAULT_WORKSPACE = Path(".local")


@dataclass(frozen=True)
class LocalRunOptions:
    parameters: dict[str, str]
    use_cache: bool = True
    keep_services: bool = False
    example_data: str | None = None  # an EXAMPLES name, or "auto": the task's example
    approve: bool = False
    workspace: Path = DEFAULT_WORKSPACE
    pipeline: str = "training"  # or "batch": `--pipeline`
    job_env: str | None = None  # `--job-env`: "image", "project", None for the default


def sagemaker_client(endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client(
        "sagemaker", region_name=region, endpoint_url=endpoint, aws_access_key_id="local", aws_secret_access_key="local"
    )


def stage(cfg: PipelineConfig, definition: dict[str, Any], workspace: Workspace, options: LocalRunOptions) -> None:
    """What `upsert` puts in S3 (the code bundle), and the example data when asked (at
    InputDataUri, in the workspace or the local path it names)."""
    from pipeline.code_bundle import code_bundle

    for uri, body in code_bundle(cfg).objects().items():
        workspace.put(uri, body)
    if options.example_data:
        defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
        parameter = "BatchInputUri" if options.pipeline == "batch" else "InputDataUri"
        uri = options.parameters.get(parameter) or defaults[parameter]
        try:
            target = workspace.source(uri)
        except UnsupportedInput:
            return  # the step that reads it reports the URI
        if target.exists() and (target.is_file() or any(target.iterdir())):
            return
        from pipeline.example_data import TASK_EXAMPLE, write_example_csv

        name = TASK_EXAMPLE[cfg.training.task] if options.example_data == "auto" else options.example_data
        if options.pipeline == "batch":  # rows to score: the features, without the target
            target = target / f"{name}.csv" if uri.endswith("/") or target.is_dir() else target
            write_example_csv(target, name, drop=[cfg.data.target])
        else:
            write_example_csv(target, name)


def _output_folder(record: ExecutionRecord, workspace: Workspace, output_name: str) -> Path | None:
    """Where a processing output of this execution landed in the workspace."""
    for step in record.steps.values():
        outputs = step.properties.get("ProcessingOutputConfig", {}).get("Outputs", {})
        if output_name in outputs:
            return workspace.path(outputs[output_name]["S3Output"]["S3Uri"])
    return None


def _evaluation_report(record: ExecutionRecord, workspace: Workspace) -> dict[str, Any] | None:
    folder = _output_folder(record, workspace, "evaluation")
    report = folder / "evaluation.json" if folder else None
    return json.loads(report.read_text()) if report and report.exists() else None


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
    workspace = Workspace(options.workspace.resolve(), input_base=Path.cwd())  # relative inputs: from here
    environments, where = job_environments(cfg, options.job_env)
    console.print(where)
    with ThreadPoolExecutor(max_workers=2) as pool:
        rendering = pool.submit(render)
        # built now (once per machine), while the services start, rather than by the first job
        preparing = pool.submit(bundle_environment, cfg, environments)
        on_unavailable = cfg.mlflow.on_unavailable
        with local_services(workspace.root, keep=options.keep_services, on_unavailable=on_unavailable) as services:
            if services.tracking_unavailable:
                console.print(
                    f"[yellow]warning:[/yellow] MLflow at {services.tracking_address} does not answer; "
                    "mlflow.on_unavailable is continue, so the jobs run without tracking"
                )
            definition = rendering.result()
            check(definition)
            environment = preparing.result()
            stage(cfg, definition, workspace, options)
            registry = registry_for(cfg, workspace, services)  # one emulator connection and journal replay
            if options.pipeline == "batch":  # the package the alias holds now, unless given
                options.parameters.update(_batch_model(cfg, options.parameters, services, registry))
            record = _execute(cfg, definition, options, console, workspace, services, registry, environments)
            if options.approve and record.status == "Succeeded" and options.pipeline == "training":
                approve_and_serve(
                    cfg, record, workspace, services, registry, console, keep=options.keep_services,
                    environment=environment,
                )  # fmt: skip
            return record


def _batch_model(
    cfg: PipelineConfig, given: Mapping[str, str], services: LocalServices, registry: LocalRegistry
) -> dict[str, str]:
    def describe(arn: str) -> dict[str, Any]:
        if not registry.exists(arn):
            raise UsageError(f"model package {arn} is not in the local registry")
        return dict(registry.client.describe_model_package(ModelPackageName=arn))

    return model_parameters(cfg, given, describe, lambda: services.tracking_uri)


def _importing_mlflow_once_a_job_runs(
    on_change: Callable[[ExecutionRecord, StepRecord], None],
) -> Callable[[ExecutionRecord, StepRecord], None]:
    """`on_change`, which also starts importing the MLflow client in the background when
    the first job starts: a run in which a job ran logs its graph to MLflow at the end, and
    the import (~1.5 s) then overlaps the jobs, which mostly leave this process waiting. A
    fully cached run, which logs nothing, never pays for it."""
    started = threading.Event()

    def changed(record: ExecutionRecord, step: StepRecord) -> None:
        if step.status == "Executing" and step.job_name and not started.is_set():
            started.set()
            threading.Thread(target=importlib.import_module, args=("mlflow",), daemon=True).start()
        on_change(record, step)

    return changed


def _run_gone(tracking_uri: str, run_id: str) -> str:
    """'' unless the tracking server answers that it has no run `run_id` (a reset database,
    or a new server at the same URI), then a sentence saying so and how to rerun. Cached
    steps name the runs their jobs logged; SageMaker's cache, keyed on the URI, reuses them
    too, and the bridge rejects a package whose run is gone. Advisory: any other answer, or
    none, is '' (the SageMaker side is the bridge's MissingRun)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/runs/get?{urllib.parse.urlencode({'run_id': run_id})}"
    try:  # unauthenticated: a server that wants credentials answers 401, and this says nothing
        urllib.request.urlopen(url, timeout=5).close()
        return ""
    except urllib.error.HTTPError as exc:
        if exc.code != 404 or b"RESOURCE_DOES_NOT_EXIST" not in exc.read():
            return ""
    except (OSError, ValueError):
        return ""
    return (
        f"cached steps reused MLflow run {run_id}, which {tracking_uri} does not have (its database was reset, "
        "or another server answers at that URI): the model's run and metrics are gone from MLflow and the bridge "
        "will reject its package; rerun with --no-cache to train and log them again"
    )


def registry_for(cfg: PipelineConfig, workspace: Workspace, services: LocalServices) -> LocalRegistry:
    return LocalRegistry(
        lambda: sagemaker_client(services.moto_endpoint, cfg.aws.region), workspace.root / JOURNAL_NAME
    )


def sample_rows(record: ExecutionRecord, workspace: Workspace, n: int = 3) -> Any:
    """A few rows of this execution's test split, for a prediction."""
    import pandas as pd

    folder = _output_folder(record, workspace, "test")
    if folder is None:
        raise ValueError("no test split in this execution")
    return pd.concat(pd.read_csv(f) for f in sorted(folder.glob("*.csv"))).head(n)


def approve_and_serve(
    cfg: PipelineConfig,
    record: ExecutionRecord,
    workspace: Workspace,
    services: LocalServices,
    registry: LocalRegistry,
    console: Console,
    *,
    keep: bool,
    environment: JobEnvironment,
) -> None:
    """`run --local --approve`: approve the new package, let the bridge sync MLflow and
    "deploy" (serve the alias locally), then ask the served model for a prediction."""
    from pipeline.local.approval import approve_locally

    arn = next(
        (s.properties["ModelPackageArn"] for s in record.steps.values() if "ModelPackageArn" in s.properties), None
    )
    if arn is None:
        console.print("nothing was registered: nothing to approve")
        return
    result = approve_locally(
        cfg, registry, arn, tracking_uri=services.tracking_uri, workspace=workspace, environment=environment
    )
    for change in result.bridge_result.get("changes", []):
        console.print(f"bridge: {change}")
    show_predictions(cfg, record, workspace, result.servers, console, keep=keep)


def show_predictions(
    cfg: PipelineConfig,
    record: ExecutionRecord,
    workspace: Workspace,
    servers: Mapping[str, LocalModelServer],
    console: Console,
    *,
    keep: bool,
) -> None:
    """Ask each served model (one, or one per stage) for a few rows of this execution's test
    split, print its answers beside the actual values, then stop the servers unless kept."""
    if not servers:
        return
    rows = sample_rows(record, workspace)
    # Raw rows, as a JSON client sends them: numbers, text, null where a value is missing.
    records = json.loads(rows.drop(columns=[cfg.data.target]).to_json(orient="records"))
    for stage, server in servers.items():
        predictions = server.predict(records)
        for actual, predicted in zip(rows[cfg.data.target], predictions, strict=True):
            shown = f"{predicted:.1f}" if isinstance(predicted, float) else str(predicted)
            where = f"{stage} model" if stage else "served model"
            console.print(f"{where} {server.url}: predicted {shown}, actual {actual}")
        console.print(server.keep_or_stop(workspace.root, keep, stage))


def _execute(
    cfg: PipelineConfig,
    definition: dict[str, Any],
    options: LocalRunOptions,
    console: Console,
    workspace: Workspace,
    services: LocalServices,
    registry: LocalRegistry,
    environments: JobEnvironments,
) -> ExecutionRecord:
    from pipeline.local.progress import LiveProgress, summary

    def services_env() -> dict[str, str]:
        env = {"MLFLOW_TRACKING_URI": services.tracking_uri}
        if services.tracking_unavailable:  # known down: each job tries once, not for ~7 s
            env["MLOPS_TRACKING_CONNECT_ATTEMPTS"] = "1"
        return env

    jobs = LocalJobRunner(workspace, workspace.root / "jobs", environments=environments, services_env=services_env)
    with LiveProgress(console) as progress:
        execution = LocalExecution(
            definition,
            workspace=workspace,
            jobs=jobs,
            registry=registry,
            parameters=options.parameters,
            pipeline_name=cfg.batch_pipeline_name if options.pipeline == "batch" else cfg.pipeline.name,
            use_cache=options.use_cache,
            region=cfg.aws.region,
            account=cfg.aws.account,
            on_change=_importing_mlflow_once_a_job_runs(progress),
        )
        record = execution.run()
    report = _evaluation_report(record, workspace)
    console.print(summary(record, services.tracking_address, report))
    if not services.tracking_unavailable:
        evaluated_run = str((report or {}).get("mlflow", {}).get("run_id", ""))  # Evaluate's: the model's run
        evaluated_run = "" if evaluated_run == UNTRACKED_RUN else evaluated_run
        steps = record.steps.values()
        # a fully cached run asks a server this command boots nothing (it would wait ~6 s for it)
        answering = not services.tracking_started_here or any(s.status == "Succeeded" and s.job_name for s in steps)
        if evaluated_run and answering and any(step.status == "Cached" for step in steps):
            gone = _run_gone(services.tracking_address, evaluated_run)  # answering: no wait
            if gone:
                console.print(f"[yellow]warning:[/yellow] {gone}")
        executions = workspace.root / "executions"
        line = log_execution_graph(
            record, definition, executions, lambda: services.tracking_uri, cfg.mlflow.experiment, evaluated_run
        )
        console.print(line)
    if options.keep_services:
        console.print(f"services left running: MLflow {services.tracking_address}, registry {services.moto_endpoint}")
    return record
