"""`python -m pipeline.definition VERB`: validate, render, upsert, start, describe, graph.

Exit codes: 0 success, 2 bad input (config, override or argument; the message names the
key), 1 AWS errors (AWS's own message) and anything unexpected. Never a bare traceback:
`--debug` shows one when asked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from mlflow_bridge.contract import ENDED_EXECUTION_STATUSES
from pipeline.atomic_file import write_atomically
from pipeline.config import PipelineConfig
from pipeline.config_loader import DEFAULT_CONFIG_PATH, load_config
from pipeline.errors import Interrupted, PipelineError, UsageError

if TYPE_CHECKING:
    from pipeline.graph_picture import ExecutionView
    from pipeline.local.job_environment import JobEnvironment
    from pipeline.promotion import StageHolder
from pipeline.example_data import EXAMPLES

__all__ = ["main"]


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _quiet_sdk_logs() -> None:
    """The SDK warns about every pipeline variable it meets; none of it is actionable here."""
    for name in ("sagemaker", "sagemaker.config", "botocore.credentials"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _render(cfg: PipelineConfig, which: str = "training") -> str:
    _quiet_sdk_logs()
    from pipeline.definition import render_definition

    return render_definition(cfg, which="batch" if which == "batch" else "training")


def _pipeline_name(cfg: PipelineConfig, args: argparse.Namespace) -> str:
    """The SageMaker pipeline a verb acts on: the training one, or `--pipeline batch`'s."""
    return cfg.batch_pipeline_name if getattr(args, "pipeline", "training") == "batch" else cfg.pipeline.name


def _clients(cfg: PipelineConfig) -> tuple[Any, Any]:
    import boto3

    session = boto3.Session(region_name=cfg.aws.region)
    return session.client("sagemaker"), session.client("s3")


def _service(cfg: PipelineConfig) -> Any:
    from pipeline.pipeline_service import PipelineService

    sagemaker_client, s3_client = _clients(cfg)
    return PipelineService(sagemaker_client, s3_client)


# ---- verbs ---------------------------------------------------------------------------


def cmd_validate(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    from rich.table import Table

    table = Table(title=f"{args.config}: valid", show_header=False)
    table.add_row("pipeline", cfg.pipeline.name)
    table.add_row(
        "steps", "Preprocess → " + ("Tune" if cfg.tuning.enabled else "Train") + " → Evaluate → QualityGate → Register"
    )
    features = f"{len(cfg.data.features)} features" if cfg.data.features else "all columns"
    table.add_row("data", f"{cfg.data.input_uri} ({features} → {cfg.data.target})")
    table.add_row("task", f"{cfg.training.task}: {cfg.training.estimator_path}")
    if cfg.tuning.enabled:
        table.add_row(
            "tuning", f"{cfg.tuning.strategy}, {cfg.tuning.max_jobs} jobs, {cfg.tuning.max_parallel_jobs} parallel"
        )
    gate = cfg.quality_gate
    table.add_row("quality gate", f"{gate.metric} {gate.operator} {gate.threshold:g}")
    table.add_row("model package group", cfg.registration.model_package_group)
    stages = cfg.deployment.stages
    table.add_row(
        "stages",
        " → ".join(f"{s.name} ({s.lifecycle_stage}, alias {s.alias})" for s in stages) or "none: approval → champion",
    )
    table.add_row("mlflow", f"{cfg.mlflow.tracking_uri} (experiment {cfg.mlflow.experiment})")
    _console().print(table)
    return 0


def cmd_render(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    text = _render(cfg, args.pipeline)
    if args.out:
        write_atomically(Path(args.out), text)
        _console(stderr=True).print(f"wrote {args.out} ({len(text)} bytes)")
    else:
        sys.stdout.write(text)
    return 0


def cmd_upsert(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.code_bundle import code_bundle, upload_bundle
    from pipeline.pipeline_service import PipelineService, aws_errors

    definition = _render(cfg, args.pipeline)
    name = _pipeline_name(cfg, args)
    sagemaker_client, s3_client = _clients(cfg)
    bundle = code_bundle(cfg)
    with aws_errors(f"Uploading code to {bundle.s3_prefix}"):
        written = upload_bundle(bundle, s3_client)
    service = PipelineService(sagemaker_client, s3_client)
    arn, created = service.upsert(
        name=name,
        definition=definition,
        role_arn=cfg.aws.role_arn,
        description=cfg.pipeline.description,
        tags=cfg.pipeline.tags,
    )
    err = _console(stderr=True)
    err.print(
        f"code bundle {bundle.digest}: {written} object(s) uploaded, {len(bundle.objects()) - written} already there"
    )
    err.print(f"{'created' if created else 'updated'} pipeline {name}")
    print(arn)
    return 0


def cmd_start(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.execution_parameters import parse_execution_parameters, refuse_local_inputs

    service = _service(cfg)
    name = _pipeline_name(cfg, args)
    definition = json.loads(service.definition(name))
    parameters = parse_execution_parameters(args.param, definition)
    refuse_local_inputs(parameters, definition)
    if args.pipeline == "batch":  # the package the alias holds now, unless given
        from pipeline.batch_output import refuse_overlapping_output

        refuse_overlapping_output(cfg, parameters, definition)
        parameters.update(_batch_model(cfg, parameters, service))
    else:
        parameters.update(_input_identity(parameters, definition, service))
    arn = service.start(name, parameters, display_name=args.display_name)
    print(arn)
    if not args.wait:
        return 0
    status = _watch(service, arn, definition, poll_seconds=args.poll_seconds, timeout=args.timeout)
    if status in ENDED_EXECUTION_STATUSES:  # the parent run ends with the execution (mlflow_bridge/execution_runs.py)
        _console(stderr=True).print(_log_watched(cfg, service, arn, definition))
    return 0 if status == "Succeeded" else 1


def _log_watched(cfg: PipelineConfig, service: Any, arn: str, definition: dict[str, Any]) -> str:
    """`start --wait`'s last line: the ended execution on its MLflow parent run, or why not.
    A tracking server that does not answer costs one attempt, not the client's retries."""
    from mlflow.exceptions import MlflowException

    execution = service.describe_execution(arn)
    parameters = execution.get("PipelineParameters") or service.execution_parameters(arn)
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {name: os.environ.get(name) for name in quick}
    os.environ.update({name: value for name, value in quick.items() if saved[name] is None})
    try:
        return _log_to_parent_run(cfg, definition, execution, service.execution_steps(arn), parameters)
    except (MlflowException, OSError) as exc:
        return f"not logged to MLflow ({cfg.mlflow.tracking_uri}): {str(exc).splitlines()[0]}"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)


def _input_identity(given: dict[str, str], definition: dict[str, Any], service: Any) -> dict[str, str]:
    """InputDataIdentity: what InputDataUri holds now, unless given (pipeline/input_identity.py).
    A definition upserted before the parameter existed gets none."""
    from pipeline.input_identity import IDENTITY_PARAMETER, content_identity
    from pipeline.pipeline_service import aws_errors

    defaults = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}
    if IDENTITY_PARAMETER in given or IDENTITY_PARAMETER not in defaults:
        return {}
    uri = given.get("InputDataUri") or str(defaults["InputDataUri"])
    with aws_errors(f"Reading what InputDataUri {uri} holds"):
        identity = content_identity(service.s3, uri)
    _console(stderr=True).print(f"{IDENTITY_PARAMETER}={identity} (what {uri} holds now)")
    return {IDENTITY_PARAMETER: identity}


def _batch_model(cfg: PipelineConfig, given: dict[str, str], service: Any) -> dict[str, str]:
    """ModelPackageArn and ModelDataUri for a batch: given, else from the MLflow alias's
    package (the tracking server is `mlflow.tracking_uri`, with the shell's credentials)."""
    from pipeline.batch_model import model_parameters
    from pipeline.pipeline_service import aws_errors

    def describe(arn: str) -> dict[str, Any]:
        with aws_errors(f"Describing model package {arn}"):
            return dict(service.sm.describe_model_package(ModelPackageName=arn))

    return model_parameters(cfg, given, describe, lambda: cfg.mlflow.tracking_uri)


def _watch(service: Any, arn: str, definition: dict[str, Any], *, poll_seconds: float, timeout: float) -> str:
    """Poll until the execution ends, with a live table of step statuses."""
    from rich.live import Live

    from pipeline.graph import step_graph, topological_order

    order = topological_order(step_graph(definition))
    deadline = time.monotonic() + timeout
    err = _console(stderr=True)
    with Live(console=err, refresh_per_second=4, transient=False) as live:
        while True:
            execution = service.describe_execution(arn)
            steps = service.execution_steps(arn)
            live.update(_status_table(execution, steps, order))
            status = execution["PipelineExecutionStatus"]
            if status in ENDED_EXECUTION_STATUSES:
                break
            if time.monotonic() > deadline:
                err.print(f"still {status} after {timeout:g}s; stopped watching (the execution goes on)")
                return status
            time.sleep(poll_seconds)
    if execution.get("FailureReason"):
        err.print(execution["FailureReason"], style="red", markup=False)
    err.print(f"execution {status}")
    return status


def _status_table(execution: dict[str, Any], steps: list[Any] | None, order: list[str]) -> Any:
    from rich.table import Table

    table = Table(title=f"{execution.get('PipelineExecutionDisplayName') or execution['PipelineExecutionArn']}")
    table.add_column("step")
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("reason")
    if steps is None:
        table.add_row(
            "(all)", execution["PipelineExecutionStatus"], "", "step listing not available from this endpoint"
        )
        return table
    by_name = {s.name: s for s in steps}
    for name in order:
        step = by_name.get(name)
        if step is None:
            table.add_row(name, "Pending", "", "")
            continue
        duration = f"{(step.ended - step.started).total_seconds():.0f}s" if step.started and step.ended else ""
        table.add_row(name, step.status, duration, step.failure_reason)
    return table


def _log_to_parent_run(
    cfg: PipelineConfig,
    definition: dict[str, Any],
    execution: dict[str, Any],
    steps: list[Any] | None,
    parameters: list[dict[str, str]],
) -> str:
    """`describe ID --log`: the execution's result and graph picture on its MLflow parent
    run (mlflow_bridge/execution_runs.py), as a local run records them. One line saying where."""
    import tempfile

    from mlflow import MlflowClient

    from mlflow_bridge.execution_runs import parent_run_id, record_on_parent_run, result_from_sagemaker
    from pipeline.graph import step_graph
    from pipeline.graph_picture import ExecutionView, picture

    arn, status = execution["PipelineExecutionArn"], execution["PipelineExecutionStatus"]
    steps = steps or []
    result = result_from_sagemaker(execution, {s.name: s.metadata for s in steps}, parameters)
    client = MlflowClient(cfg.mlflow.tracking_uri)
    run_id = parent_run_id(client, cfg.mlflow.experiment, arn)
    if not run_id:
        return f"no MLflow parent run of {arn} in experiment {cfg.mlflow.experiment} (no job of it has logged yet)"
    with tempfile.TemporaryDirectory() as scratch:
        drawn: Path | None = Path(scratch) / "pipeline_graph.png"
        note = ""
        try:
            view = ExecutionView(states={s.name: s.status for s in steps}, outcomes=result.outcomes)
            Path(scratch, "pipeline_graph.png").write_bytes(picture(step_graph(definition), "png", view))
        except UsageError as exc:  # no Graphviz: the result is logged without the picture
            drawn, note = None, f" (graph not drawn: {exc})"
        record_on_parent_run(client, run_id, result, drawn)
    return f"logged {status} to MLflow parent run {run_id}{note}"


def cmd_describe(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    from rich.table import Table

    from pipeline.graph import step_graph, topological_order

    if args.stages:
        return _describe_stages(cfg, args)
    service = _service(cfg)
    out = _console()
    if args.execution:
        arn = service.execution_arn(cfg.pipeline.name, args.execution)
        execution = service.describe_execution(arn)
        definition = json.loads(service.definition(cfg.pipeline.name))
        order = topological_order(step_graph(definition))
        steps = service.execution_steps(arn)
        out.print(_status_table(execution, steps, order))
        parameters = execution.get("PipelineParameters") or service.execution_parameters(arn)
        for p in parameters:
            out.print(f"  {p['Name']} = {p['Value']}")
        if args.log:
            out.print(_log_to_parent_run(cfg, definition, execution, steps, parameters))
        return 0
    executions = service.recent_executions(cfg.pipeline.name, limit=args.limit)
    if not executions:
        out.print(f"no executions of {cfg.pipeline.name} yet")
        return 0
    table = Table(title=f"recent executions of {cfg.pipeline.name} (describe ID for details)")
    for column in ("started", "status", "id", "display name"):
        table.add_column(column, no_wrap=True)
    for summary in executions:
        started = summary.get("StartTime")
        table.add_row(
            started.strftime("%Y-%m-%d %H:%M:%S") if started else "",
            summary.get("PipelineExecutionStatus", ""),
            summary["PipelineExecutionArn"].rsplit("/", 1)[-1],
            summary.get("PipelineExecutionDisplayName", ""),
        )
    out.print(table)
    return 0


def _local_view(workspace: Path, execution: str) -> ExecutionView:
    """Step states and condition outcomes of a local execution (`latest` = the most recent)."""
    from pipeline.local.runner import execution_view, load_execution

    return execution_view(load_execution(_local_execution(workspace, execution)))


def _local_execution(workspace: Path, execution: str) -> Path:
    """The record of a local execution: by id, or `latest` (the most recent one)."""
    root = workspace / "executions"
    if execution == "latest":
        candidates = sorted(root.glob("*/execution.json"), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise UsageError(f"no local executions under {root}")
        path = candidates[-1]
    else:
        path = root / execution.rsplit("/", 1)[-1] / "execution.json"
        if not path.exists():
            raise UsageError(f"--execution {execution}: no local execution record at {path}")
    return path


def cmd_graph(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    """Mermaid text, or a PNG/SVG picture drawn by Graphviz (`--format`, else the suffix
    of `--out`)."""
    from pipeline.graph import mermaid, step_graph
    from pipeline.graph_picture import FORMATS, picture

    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "mermaid")
    fmt = "mermaid" if fmt in {"mmd", "txt", ""} else fmt
    if fmt != "mermaid" and fmt not in FORMATS:
        raise UsageError(f"--out {args.out}: write .mmd, .png or .svg (or say --format)")
    nodes = step_graph(json.loads(_render(cfg, args.pipeline)))
    view = _local_view(Path(args.workspace), args.execution) if args.execution else None
    body = mermaid(nodes, view.states if view else None).encode() if fmt == "mermaid" else picture(nodes, fmt, view)
    if not args.out:
        if fmt != "mermaid" and sys.stdout.isatty():
            raise UsageError(f"a {fmt} picture is binary: give --out FILE, or redirect standard output")
        sys.stdout.buffer.write(body)
        return 0
    out = Path(args.out)
    write_atomically(out, body)
    _console(stderr=True).print(f"wrote {out}")
    return 0


def cmd_run(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    if not args.local:
        raise UsageError("run executes locally and needs --local; on SageMaker use upsert, then start")
    from pipeline.definition import render_definition_cached
    from pipeline.execution_parameters import parse_execution_parameters
    from pipeline.local.driver import LocalRunOptions, run_local
    from pipeline.machine_cache import machine_cache_dir

    _quiet_sdk_logs()
    workspace = Path(args.workspace)
    which = "batch" if args.pipeline == "batch" else "training"
    if which == "batch" and args.approve:
        raise UsageError("--approve is for the training pipeline: a batch registers no model package")
    parameters: dict[str, str] = {}

    def check(definition: dict[str, Any]) -> None:
        parameters.update(parse_execution_parameters(args.param, definition))
        if which == "batch":
            from pipeline.batch_output import refuse_overlapping_output

            refuse_overlapping_output(cfg, parameters, definition)

    options = LocalRunOptions(
        parameters=parameters,  # filled by `check` once the definition is rendered
        use_cache=not args.no_cache,
        keep_services=args.keep_services,
        example_data=args.example_data,
        approve=args.approve,
        workspace=workspace,
        pipeline=which,
        job_env=args.job_env,
    )
    with stop_on_sigterm():
        record = run_local(
            cfg,
            lambda: json.loads(render_definition_cached(cfg, machine_cache_dir() / "definitions", which)),
            options,
            _console(stderr=True),
            check=check,
        )
    print(record.arn)
    return 0 if record.status == "Succeeded" else 1


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (`kill`, a CI timeout, `docker stop`) raises `Interrupted` in the main thread,
    so a local run ends Stopped with its jobs stopped instead of dying "Executing"."""

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted("terminated (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_approve(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.local.approval import approve_locally
    from pipeline.local.driver import registry_for
    from pipeline.local.registry import JOURNAL_NAME, journal_has
    from pipeline.local.services import local_services
    from pipeline.local.workspace import Workspace
    from pipeline.promotion import package_arn

    workspace = Workspace(Path(args.workspace).resolve())
    arn = package_arn(cfg, args.package)
    journal = workspace.root / JOURNAL_NAME
    if not journal_has(journal, arn):  # before any service starts
        raise UsageError(f"no model package {arn} in the local registry ({journal})")
    err = _console(stderr=True)
    with local_services(workspace.root, keep=args.keep_services) as services:
        registry = registry_for(cfg, workspace, services)
        result = approve_locally(
            cfg, registry, arn, tracking_uri=services.tracking_uri, workspace=workspace,
            status="Rejected" if args.reject else "Approved", serve=not args.no_serve,
            environment=_serving_environment(cfg, args),
        )  # fmt: skip
        for change in result.bridge_result.get("changes", []) or [result.bridge_result.get("reason", "no change")]:
            err.print(f"bridge: {change}")
        for stage, server in result.servers.items():
            err.print(server.keep_or_stop(workspace.root, args.keep_services, stage))
    print(json.dumps(result.bridge_result))
    return 0


def _describe_stages(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    """`describe --stages [--local]`: which package each stage holds, from MLflow's aliases."""
    from rich.table import Table

    if not cfg.deployment.stages:
        raise UsageError("describe --stages needs deployment.stages in the config")
    if args.local:
        from pipeline.local.services import local_services

        with local_services(Path(args.workspace).resolve()) as services:
            holders = _holders(cfg, services.tracking_uri)
    else:
        holders = _holders(cfg, cfg.mlflow.tracking_uri)
    table = Table(title=f"stages of {cfg.mlflow.registered_model}")
    for column in ("stage", "alias", "MLflow version", "model package (group/version)"):
        table.add_column(column)
    for holder in holders:
        package = holder.package_arn.split(":model-package/")[-1] if holder.package_arn else "(none)"
        table.add_row(holder.stage, holder.alias, holder.version or "-", package)
    _console(stderr=True).print(table)
    print(json.dumps({h.stage: h.package_arn or None for h in holders}))  # for scripts: stage -> package
    return 0


def _holders(cfg: PipelineConfig, tracking_uri: str) -> list[StageHolder]:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from pipeline.promotion import stage_holders

    client = MlflowClient(tracking_uri)
    name = cfg.mlflow.registered_model
    try:
        aliases = dict(client.get_registered_model(name).aliases)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        aliases = {}
    tags = {version: dict(client.get_model_version(name, version).tags) for version in set(aliases.values())}
    return stage_holders(cfg.deployment.stages, aliases, tags)


def cmd_promote(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.promotion import lifecycle_request, package_arn, promotion_stage

    stage = promotion_stage(cfg, args.to)
    request = lifecycle_request(package_arn(cfg, args.package), stage, reject=args.reject, description=args.description)
    err = _console(stderr=True)
    if args.local:
        _promote_locally(cfg, args, request)
    else:
        from pipeline.pipeline_service import aws_errors

        sagemaker_client, _ = _clients(cfg)
        verb = "reject" if args.reject else "promote"
        with aws_errors(f"Trying to {verb} {request['ModelPackageArn']} in {stage.lifecycle_stage}"):
            sagemaker_client.update_model_package(**request)
        err.print(f"the bridge moves alias {stage.alias!r} when the state-change event reaches it")
    err.print(f"{request['ModelPackageArn']}: {stage.lifecycle_stage} {request['ModelLifeCycle']['StageStatus']}")
    print(request["ModelPackageArn"])
    return 0


def _promote_locally(cfg: PipelineConfig, args: argparse.Namespace, request: dict[str, Any]) -> None:
    """The local registry's lifecycle record, the event to the bridge, a scoring server per
    stage that holds a model, each asked once for a prediction of the sample rows."""
    from pipeline.local.approval import promote_locally
    from pipeline.local.driver import registry_for, show_predictions
    from pipeline.local.registry import JOURNAL_NAME, journal_has
    from pipeline.local.runner import load_execution
    from pipeline.local.services import local_services
    from pipeline.local.workspace import Workspace

    workspace = Workspace(Path(args.workspace).resolve())
    journal = workspace.root / JOURNAL_NAME
    if not journal_has(journal, request["ModelPackageArn"]):  # before any service starts
        raise UsageError(f"no model package {request['ModelPackageArn']} in the local registry ({journal})")
    err = _console(stderr=True)
    with local_services(workspace.root, keep=args.keep_services) as services:
        registry = registry_for(cfg, workspace, services)
        result = promote_locally(
            cfg, registry, request, tracking_uri=services.tracking_uri, workspace=workspace,
            serve=not args.no_serve, environment=_serving_environment(cfg, args),
        )  # fmt: skip
        for change in result.bridge_result.get("changes", []) or [result.bridge_result.get("reason", "no change")]:
            err.print(f"bridge: {change}")
        for stage, server in result.servers.items():
            err.print(f"{stage}: {server.served_arn} at {server.url}")
        record = load_execution(_local_execution(workspace.root, "latest"))  # its test split's rows
        show_predictions(cfg, record, workspace, result.servers, err, keep=args.keep_services)


def _serving_environment(cfg: PipelineConfig, args: argparse.Namespace) -> JobEnvironment:
    """The local model servers' Python: `--job-env`'s (none is built for `--no-serve`)."""
    from pipeline.local.job_environment import ProjectEnvironment, serving_environment

    if args.no_serve:
        return ProjectEnvironment().for_bundle({})
    return serving_environment(cfg, args.job_env)


def cmd_local_down(cfg: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.local.services import stop_services

    stopped = stop_services(Path(args.workspace))
    _console(stderr=True).print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


# ---- parsing -------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments already; route the message through our format."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _add_job_env(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--job-env",
        choices=["image", "project"],
        help="the Python local jobs and model servers run in: the SageMaker image's libraries (default, "
        "built once per machine) or this project's environment",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="pipeline YAML (default: %(default)s)")
    common.add_argument(
        "--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config key (repeatable)"
    )
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    parser = _Parser(prog="python -m pipeline.definition", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    def verb(name: str, handler: Callable[..., int], help_text: str, aliases: Sequence[str] = ()) -> Any:
        sub = verbs.add_parser(name, parents=[common], help=help_text, description=help_text, aliases=list(aliases))
        sub.set_defaults(handler=handler)
        return sub

    verb("validate", cmd_validate, "Check the config only (no SageMaker SDK import).")
    render = verb("render", cmd_render, "Print the pipeline definition JSON (canonical, deterministic).")
    render.add_argument("--out", help="write to this file instead of stdout")
    upsert = verb("upsert", cmd_upsert, "Upload the code bundle and create or update the pipeline; prints its ARN.")
    start = verb("start", cmd_start, "Start an execution; prints its ARN.")
    start.add_argument("--param", action="append", default=[], metavar="Name=value", help="pipeline parameter")
    start.add_argument("--display-name", help="execution display name")
    start.add_argument("--wait", action="store_true", help="watch step progress until the execution ends")
    start.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    start.add_argument("--timeout", type=float, default=6 * 3600, help="stop watching after this many seconds")
    describe = verb("describe", cmd_describe, "Recent executions, or one execution's steps.", aliases=["status"])
    describe.add_argument("execution", nargs="?", help="execution ARN or id (default: list recent executions)")
    describe.add_argument("--limit", type=int, default=10)
    describe.add_argument("--log", action="store_true",
                          help="with an execution: record its result and graph on its MLflow parent run")  # fmt: skip
    describe.add_argument("--stages", action="store_true", help="which model package each deployment stage holds")
    describe.add_argument("--local", action="store_true", help="with --stages: the local workspace's MLflow")
    describe.add_argument("--workspace", default=".local")
    run = verb("run", cmd_run, "Execute the definition locally (--local): no AWS account, no Docker.")
    run.add_argument("--local", action="store_true", help="run on this machine (the only mode of this verb)")
    run.add_argument("--param", action="append", default=[], metavar="Name=value", help="pipeline parameter")
    run.add_argument("--no-cache", action="store_true", help="rerun every step even if its inputs are unchanged")
    run.add_argument("--keep-services", action="store_true", help="leave MLflow and the registry running")
    _add_job_env(run)
    run.add_argument(
        "--example-data",
        nargs="?",
        const="auto",
        choices=["auto", *EXAMPLES],
        help="write an example dataset to InputDataUri if absent (default: the task's own)",
    )
    run.add_argument("--workspace", default=".local", help="local state: S3 objects, registry, MLflow (default .local)")
    run.add_argument(
        "--approve", action="store_true", help="then approve the package, sync MLflow and serve the model locally"
    )
    approve = verb("approve", cmd_approve, "Approve a locally registered package and deliver the event to the bridge.")
    approve.add_argument("package", help="model package ARN, or its version number in the configured group")
    approve.add_argument("--reject", action="store_true", help="reject (or revoke approval) instead")
    approve.add_argument("--no-serve", action="store_true", help="do not start a local model server")
    approve.add_argument("--keep-services", action="store_true", help="leave the services and model server running")
    _add_job_env(approve)
    approve.add_argument("--workspace", default=".local")
    promote = verb(
        "promote",
        cmd_promote,
        "Move a model package into a deployment stage (SageMaker's ModelLifeCycle), or reject it.",
    )
    promote.add_argument("package", help="model package ARN, or its version number in the configured group")
    promote.add_argument("--to", required=True, help="a stage of deployment.stages, by name or lifecycle stage")
    promote.add_argument("--reject", action="store_true", help="reject it in that stage instead")
    promote.add_argument("--description", default="", help="why (ModelLifeCycle.StageDescription)")
    promote.add_argument("--local", action="store_true", help="in the local registry, with local model servers")
    promote.add_argument("--no-serve", action="store_true", help="with --local: start no model server")
    promote.add_argument("--keep-services", action="store_true", help="with --local: leave the servers running")
    _add_job_env(promote)
    promote.add_argument("--workspace", default=".local")
    down = verb("local-down", cmd_local_down, "Stop the services a --keep-services run left running.")
    down.add_argument("--workspace", default=".local")
    graph = verb("graph", cmd_graph, "The step DAG as Mermaid text, or a PNG/SVG picture (Graphviz).")
    graph.add_argument("--out", help="write to FILE (.mmd, .png or .svg)")
    graph.add_argument("--format", choices=["mermaid", "png", "svg"], help="default: the suffix of --out, else mermaid")
    graph.add_argument("--execution", help="mark each step with its state in this local execution (id or 'latest')")
    graph.add_argument("--workspace", default=".local", help="local workspace holding executions")
    for sub in (render, upsert, start, run, graph):
        sub.add_argument("--pipeline", choices=["training", "batch"], default="training",
                         help="the training pipeline, or the batch inference one (the batch section)")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    from rich.markup import escape

    err = _console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        cfg = load_config(args.config, overrides=args.set)
        return args.handler(cfg, args)
    except PipelineError as exc:
        if debug:
            err.print_exception()
        for line in str(exc).splitlines():
            err.print(f"[red]error:[/red] {escape(line)}")
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Interrupted as exc:
        err.print(f"stopped: {exc}")
        return 143  # 128 + SIGTERM, as a shell reports it
    except Exception as exc:  # the last line of defence against a bare traceback
        if debug:
            err.print_exception()
        else:
            detail = f"unexpected {type(exc).__name__}: {escape(str(exc))}"
            err.print(f"[red]error:[/red] {detail} (rerun with --debug for details)")
        return 1


def exit_without_teardown(code: int) -> NoReturn:
    """End the command as `sys.exit` would, minus tearing down the interpreter's modules:
    after the SageMaker SDK is imported that alone costs 0.6-1 s and does nothing useful.
    First come the steps the interpreter takes at exit (CPython's Py_FinalizeEx calls the
    same two private functions): wake executors and join non-daemon threads, then run the
    exit handlers (log handlers, temporary files)."""
    import atexit
    import threading

    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away (`| head`)
            stream.flush()
    os._exit(code)
