"""Execute a pipeline definition JSON locally, step by step in dependency order.

Each step's `Arguments` are resolved (parameters, step properties, Join, JsonGet) exactly
as SageMaker resolves them, then: Processing/Training/Tuning run as local jobs, Condition
chooses a branch, Fail ends the execution with its message, RegisterModel creates a model
package in the local registry. The execution's state is written to
`<workspace>/executions/<id>/execution.json` after every change.
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.api_limits import request_violations
from pipeline.atomic_file import write_atomically
from pipeline.errors import Interrupted, LocalModeError
from pipeline.graph import StepNode, step_graph, topological_order
from pipeline.graph_picture import ExecutionView
from pipeline.local.cache import CacheStore, cache_key, expiry_seconds, input_uris
from pipeline.local.expressions import Scope, evaluate_condition, resolve
from pipeline.local.inputs import UnsupportedInput, as_uploaded, missing_input_message, step_inputs
from pipeline.local.jobs import LocalJobRunner
from pipeline.local.registry import LocalRegistry
from pipeline.local.step_result import StepResult
from pipeline.local.tuning import (
    STOPPED_EARLY,
    Trial,
    TuningFailed,
    best_first,
    early_stopping,
    run_trials,
    sample_candidates,
    search_for,
    trial_job_name,
)
from pipeline.local.workspace import Workspace

__all__ = ["ExecutionRecord", "LocalExecution", "StepRecord", "execution_view", "load_execution"]

# The step types local mode runs beside Condition and Fail (each cached as `_cacheable` says).
JOB_STEP_TYPES = {"Processing", "Training", "Tuning", "RegisterModel", "Model", "Transform"}


@dataclass
class StepRecord:
    name: str
    type: str
    display_name: str = ""
    status: str = "Pending"  # Pending, Executing, Succeeded, Cached, Failed, Skipped, Stopped
    started: float | None = None
    ended: float | None = None
    job_name: str = ""
    log: str = ""
    detail: str = ""
    failure: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExecutionRecord:
    id: str
    arn: str
    pipeline: str
    parameters: dict[str, Any]
    steps: dict[str, StepRecord]
    status: str = "Executing"  # then Succeeded, Failed or Stopped (SageMaker's execution statuses)
    failure_reason: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(asdict(self), indent=2, default=str))


def execution_view(record: ExecutionRecord) -> ExecutionView:
    """Its steps' states and its decided conditions' outcomes, as the graph draws them."""
    outcomes = {n: str(s.properties["Outcome"]) for n, s in record.steps.items() if "Outcome" in s.properties}
    return ExecutionView(states={n: s.status for n, s in record.steps.items()}, outcomes=outcomes)


def load_execution(path: Path) -> ExecutionRecord:
    raw = json.loads(path.read_text())
    raw["steps"] = {name: StepRecord(**step) for name, step in raw["steps"].items()}
    return ExecutionRecord(**raw)


class StepFailed(LocalModeError):
    pass


def interruption(exc: BaseException) -> tuple[str, str]:
    """(execution status, reason) for what ended a run early."""
    if isinstance(exc, KeyboardInterrupt):
        return "Stopped", "stopped: interrupted (Ctrl-C)"
    if isinstance(exc, Interrupted):
        return "Stopped", f"stopped: {exc}"
    return "Failed", f"the local runner stopped: {type(exc).__name__}: {exc}"


def _typed_parameters(definition: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    casts: dict[str, Callable[[str], Any]] = {
        "Integer": int, "Float": float, "Boolean": lambda v: str(v).lower() == "true", "String": str,
    }  # fmt: skip
    values = {}
    for parameter in definition.get("Parameters", []):
        name, kind = parameter["Name"], parameter.get("Type", "String")
        raw = overrides.get(name, parameter.get("DefaultValue"))
        values[name] = casts[kind](raw) if raw is not None else None
    return values


def _new_execution_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=12))


class LocalExecution:
    """One execution of a definition. Collaborators are passed in (workspace, job runner,
    registry), so tests and the CLI wire them to real local services."""

    def __init__(
        self,
        definition: dict[str, Any],
        *,
        workspace: Workspace,
        jobs: LocalJobRunner,
        registry: LocalRegistry,
        parameters: dict[str, str] | None = None,
        pipeline_name: str = "local-pipeline",
        use_cache: bool = True,
        region: str = "us-east-1",
        account: str = "123456789012",
        on_change: Callable[[ExecutionRecord, StepRecord], None] | None = None,
    ) -> None:
        self.definition = definition
        self.workspace = workspace
        self.jobs = jobs
        self.registry = registry
        self.use_cache = use_cache
        self.on_change = on_change or (lambda record, step: None)
        self.nodes: dict[str, StepNode] = step_graph(definition)
        self.order = topological_order(self.nodes)
        self.cache = CacheStore(workspace.root / "cache")
        self.models: dict[str, dict[str, Any]] = {}  # ModelName -> its container, for Transform steps
        pipeline = pipeline_name
        execution_id = _new_execution_id()
        arn = f"arn:aws:sagemaker:{region}:{account}:pipeline/{pipeline}/execution/{execution_id}"
        self.record = ExecutionRecord(
            id=execution_id,
            arn=arn,
            pipeline=pipeline,
            parameters=_typed_parameters(definition, parameters or {}),
            steps={n: StepRecord(n, self.nodes[n].type, self.nodes[n].display_name) for n in self.order},
        )
        self.scope = Scope(
            parameters=self.record.parameters,
            execution={
                "PipelineExecutionId": execution_id,
                "PipelineExecutionArn": arn,
                "PipelineName": pipeline,
                "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "CurrentDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        self.path = workspace.root / "executions" / execution_id / "execution.json"
        self._lock = threading.Lock()
        self.jobs.env_overrides = {**self.jobs.env_overrides, "MLOPS_PIPELINE_EXECUTION_ARN": arn}

    # ---- bookkeeping ---------------------------------------------------------------

    def _update(self, step: StepRecord, **changes: Any) -> None:
        with self._lock:  # tuning trials report from worker threads
            for key, value in changes.items():
                setattr(step, key, value)
            self.record.save(self.path)
            self.on_change(self.record, step)

    def _branch_taken(self, node: StepNode) -> bool:
        """A step inside a condition's branch runs only if the condition chose that branch."""
        if not node.branch:
            return True
        parents = [p for p in node.depends_on if self.nodes.get(p) and self.nodes[p].type == "Condition"]
        for parent in parents:
            outcome = self.record.steps[parent].properties.get("Outcome")
            if outcome is None or (outcome == "True") != (node.branch == "if"):
                return False
        return True

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> ExecutionRecord:
        """Run every step in order. Ends Succeeded or Failed, or, when interrupted
        (Ctrl-C: KeyboardInterrupt; SIGTERM: `Interrupted`), Stopped as a stopped SageMaker
        execution does: its running jobs are stopped, the step and execution say why,
        and the interruption is re-raised. Anything else escaping a step ends Failed
        with the reason, so no execution.json is left "Executing"."""
        self.record.save(self.path)
        current: StepRecord | None = None
        try:
            for name in self.order:
                node, step = self.nodes[name], self.record.steps[name]
                if not self._branch_taken(node):
                    self._update(step, status="Skipped")
                    continue
                current = step
                self._update(step, status="Executing", started=time.time())
                try:
                    self._execute(node, step)
                except Exception as exc:  # a job, tuning, expression or registry error: the step failed
                    ours = isinstance(exc, LocalModeError)
                    failure = str(exc) if ours else f"{type(exc).__name__}: {exc}"
                    log = str(getattr(exc, "log_path", "") or step.log)
                    self._update(step, status="Failed", ended=time.time(), failure=failure, log=log)
                    self._finish("Failed", f"Step {name} failed: {failure}")
                    return self.record
                if step.type == "Fail":
                    self._finish("Failed", step.properties["ErrorMessage"])
                    return self.record
        except BaseException as exc:  # interrupted, or the runner itself broke
            self.jobs.stop()
            status, reason = interruption(exc)
            if current is not None and current.status == "Executing":
                self._update(current, status=status, ended=time.time(), failure=reason)
            self._finish(status, reason)
            raise
        self._finish("Succeeded", "")
        return self.record

    def _finish(self, status: str, reason: str) -> None:
        for name, step in self.record.steps.items():  # branches the condition decided against
            node = self.nodes[name]
            decided = any("Outcome" in self.record.steps[p].properties for p in node.depends_on if p in self.nodes)
            if step.status == "Pending" and node.branch and decided and not self._branch_taken(node):
                step.status = "Skipped"
        with self._lock:  # trials may still be reporting from their threads
            self.record.status, self.record.failure_reason, self.record.ended = status, reason, time.time()
            self.record.save(self.path)

    def _execute(self, node: StepNode, step: StepRecord) -> None:
        arguments = resolve(node.raw.get("Arguments", {}), self.scope)
        if node.type == "Condition":
            outcome = all(evaluate_condition(c, self.scope) for c in arguments["Conditions"])
            step.properties = {"Outcome": str(outcome)}
            self._update(step, status="Succeeded", ended=time.time(), detail=f"outcome: {outcome}")
            return
        if node.type == "Fail":
            step.properties = {"ErrorMessage": arguments.get("ErrorMessage", "")}
            self._update(step, status="Succeeded", ended=time.time(), detail=step.properties["ErrorMessage"])
            return
        if node.type not in JOB_STEP_TYPES:
            raise StepFailed(f"step type {node.type} is not supported in local mode")
        self._check_inputs(node, arguments)
        key = self._key(node, arguments) if self._cacheable(node) else None  # the inputs this run consumes
        cached = self._from_cache(node, key) if self.use_cache and key is not None else None
        if cached is not None:
            self._apply(node, step, cached)
            self._update(step, status="Cached", ended=time.time(), detail=step.detail or "reused")
            return
        # SageMaker would refuse the call; a local input is checked as the upload it stands for
        if refused := request_violations(node.name, node.type, as_uploaded(arguments)):
            raise StepFailed("; ".join(map(str, refused)))
        if node.type not in {"RegisterModel", "Model"}:
            self.registry.prepare_in_background()  # while the job runs
        result = {
            "Processing": self._processing,
            "Training": self._training,
            "Tuning": self._tuning,
            "RegisterModel": self._register,
            "Model": self._model,
            "Transform": self._transform,
        }[node.type](node, step, arguments)
        self._apply(node, step, result)
        if key is not None:
            self.cache.put(node.name, key, result)
        self._update(step, status="Succeeded", ended=time.time())

    def _cacheable(self, node: StepNode) -> bool:
        """Job steps with caching on, and RegisterModel always: an identical package is not
        registered twice (SageMaker would add a version; see the README)."""
        return node.type == "RegisterModel" or bool(node.raw.get("CacheConfig", {}).get("Enabled"))

    def _check_inputs(self, node: StepNode, arguments: dict[str, Any]) -> None:
        """Before the cache and the job: a job handed an empty input folder would fail on a
        container path the user never configured, so name their URI and where we looked."""
        for item in step_inputs(node.type, node.raw.get("Arguments", {}), arguments):
            try:
                location = self.workspace.source(item.uri)
            except UnsupportedInput as exc:
                raise StepFailed(f"{item.label} {exc}") from None
            if not self.workspace.objects(item.uri):
                raise StepFailed(missing_input_message(item, location, empty_folder=location.is_dir()))

    def _key(self, node: StepNode, arguments: dict[str, Any]) -> str:
        hashes = {uri: self.workspace.content_hash(uri) for uri in input_uris(node.type, arguments)}
        # which libraries the job ran with: on SageMaker the image URI in the arguments says it
        hashes["job-environment"] = self.jobs.environments.label
        return cache_key(node.type, arguments, hashes)

    def _from_cache(self, node: StepNode, key: str) -> StepResult | None:
        expire = node.raw.get("CacheConfig", {}).get("ExpireAfter")
        max_age = expiry_seconds(expire) if expire else float("inf")
        entry = self.cache.get(node.name, key, max_age)
        if entry is None or not self._outputs_exist(node.type, entry):
            return None
        return entry

    def _outputs_exist(self, step_type: str, entry: StepResult) -> bool:
        properties = entry.properties
        if step_type == "Processing":
            outputs = properties["ProcessingOutputConfig"]["Outputs"].values()
            return all(self.workspace.path(o["S3Output"]["S3Uri"]).exists() for o in outputs)
        if step_type == "Training":
            return self.workspace.path(properties["ModelArtifacts"]["S3ModelArtifacts"]).exists()
        if step_type == "RegisterModel":
            return self.registry.exists(properties["ModelPackageArn"])
        if step_type == "Transform":
            return self.workspace.path(properties["TransformOutput"]["S3OutputPath"]).exists()
        return True

    def _apply(self, node: StepNode, step: StepRecord, result: StepResult) -> None:
        step.properties = result.properties
        step.job_name, step.log, step.detail = result.job_name, result.log, result.detail
        self.scope.steps[node.name] = result.properties
        for name, content in result.property_files.items():
            self.scope.property_files[(node.name, name)] = content

    # ---- step kinds --------------------------------------------------------------------

    def _start_job(self, node: StepNode, step: StepRecord) -> str:
        """Name the step's job and show where its log goes before it runs."""
        job_name = f"pipelines-{self.record.id}-{node.name}".lower()[:63].rstrip("-")
        self._update(step, job_name=job_name, log=str(self.jobs.log_path(job_name)))
        return job_name

    def _processing(self, node: StepNode, step: StepRecord, arguments: dict[str, Any]) -> StepResult:
        job_name = self._start_job(node, step)
        result = self.jobs.processing(job_name, arguments)
        outputs = {o["OutputName"]: o for o in arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])}
        property_files = {}
        for spec in node.raw.get("PropertyFiles", []):
            location = self.workspace.path(outputs[spec["OutputName"]]["S3Output"]["S3Uri"]) / spec["FilePath"]
            try:
                property_files[spec["PropertyFileName"]] = json.loads(location.read_text())
            except (OSError, ValueError) as exc:
                raise StepFailed(f"property file {spec['PropertyFileName']} ({location}) is unreadable: {exc}") from exc
        return StepResult(
            job_name=job_name,
            log=str(result.log_path),
            properties={
                "ProcessingJobName": job_name,
                "ProcessingJobStatus": "Completed",
                "ProcessingOutputConfig": {"Outputs": outputs},
            },
            property_files=property_files,
        )

    def _training(self, node: StepNode, step: StepRecord, arguments: dict[str, Any]) -> StepResult:
        job_name = self._start_job(node, step)
        result = self.jobs.training(job_name, arguments, arguments.get("HyperParameters", {}))
        return StepResult(
            job_name=job_name,
            log=str(result.log_path),
            detail=", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()),
            properties={
                "TrainingJobName": job_name,
                "TrainingJobStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": result.model_artifacts},
                "FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in result.metrics.items()],
            },
        )

    def _tuning(self, node: StepNode, step: StepRecord, arguments: dict[str, Any]) -> StepResult:
        config = arguments["HyperParameterTuningJobConfig"]
        definition = arguments["TrainingJobDefinition"]
        objective = config["HyperParameterTuningJobObjective"]
        limits = config["ResourceLimits"]
        tuning_job = f"pipelines-{self.record.id}"[:32]
        planned = limits["MaxNumberOfTrainingJobs"]
        if config.get("Strategy") == "Grid":
            planned = min(planned, len(sample_candidates(config.get("ParameterRanges", {}), "Grid", planned)))
        search = search_for(
            config.get("ParameterRanges", {}), config.get("Strategy", "Bayesian"), objective["Type"], planned
        )
        done: list[Trial] = []
        self._update(step, job_name=tuning_job, detail=f"0/{planned} trials")

        halving = early_stopping(config, definition)

        def run_one(trial: Trial) -> float | None:
            hyperparameters = {**definition.get("StaticHyperParameters", {}), **trial.hyperparameters}
            result = self.jobs.training(
                trial.job_name, definition, hyperparameters, extra_env={"MLOPS_TUNING_JOB_NAME": tuning_job},
                keep_going=halving(trial.job_name) if halving else None,
            )  # fmt: skip
            return result.metrics.get(objective["MetricName"])

        def on_done(trial: Trial) -> None:
            done.append(trial)
            self._update(step, detail=f"{len(done)}/{planned} trials")

        def new_trial(index: int, hyperparameters: dict[str, str]) -> Trial:
            return Trial(trial_job_name(tuning_job, index, hyperparameters), hyperparameters)

        trials = run_trials(search, new_trial, run_one, limits.get("MaxParallelTrainingJobs", 1), on_done)
        ranked = best_first(trials, objective["Type"])
        if not ranked:
            reasons = "; ".join(f"{t.job_name}: {t.error}" for t in trials)
            raise TuningFailed(
                f"no trial produced the objective {objective['MetricName']} ({reasons})",
                log_path=str(self.jobs.log_path(trials[0].job_name)) if trials else "",
            )
        summaries = [
            {
                "TrainingJobName": t.job_name,
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": t.hyperparameters,
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "MetricName": objective["MetricName"],
                    "Value": t.objective,
                },
            }
            for t in ranked
        ]
        stopped = sum(1 for t in trials if t.error.startswith(STOPPED_EARLY))
        failed = len(trials) - len(ranked) - stopped
        best = ranked[0]
        return StepResult(
            job_name=tuning_job,
            log=str(self.jobs.log_path(best.job_name)),
            detail=f"{len(trials)} trials ({failed} failed, {stopped} stopped early), best "
            f"{objective['MetricName']}={best.objective:.4g}",
            properties={
                "HyperParameterTuningJobName": tuning_job,
                "HyperParameterTuningJobStatus": "Completed",
                "TrainingJobSummaries": summaries,
                "BestTrainingJob": summaries[0],
                "TrainingJobStatusCounters": {"Completed": len(ranked), "Failed": failed, "Stopped": stopped},
            },
        )

    def _register(self, node: StepNode, step: StepRecord, arguments: dict[str, Any]) -> StepResult:
        arn = self.registry.register(arguments)
        return StepResult(detail=arn, properties={"ModelPackageArn": arn})

    def _model(self, node: StepNode, step: StepRecord, arguments: dict[str, Any]) -> StepResult:
        """CreateModel: the container of the model package it names (DescribeModelPackage's
        InferenceSpecification), or the one it gives; later Transform steps serve it."""
        (container,) = arguments.get("Containers") or [arguments["PrimaryContainer"]]
        if "ModelPackageName" in container:
            arn = container["ModelPackageName"]
            if not self.registry.exists(arn):
                raise StepFailed(f"model package {arn} is not in the local registry")
            described = self.registry.client.describe_model_package(ModelPackageName=arn)
            status = described.get("ModelApprovalStatus", "")
            if status != "Approved":  # SageMaker's CreateModel refuses it (ValidationException)
                raise StepFailed(f"model package {arn} is {status or 'not approved'}: CreateModel takes only an "
                                 "Approved package (approve it, or score another)")  # fmt: skip
            container = {**described["InferenceSpecification"]["Containers"][0], "ModelPackageName": arn}
        name = f"pipelines-{self.record.id}-{node.name}".lower()[:63].rstrip("-")
        self.models[name] = container
        return StepResult(detail=container.get("ModelPackageName", container.get("ModelDataUrl", "")),
                          properties={"ModelName": name, "PrimaryContainer": container})  # fmt: skip

    def _transform(self, node: StepNode, step: StepRecord, arguments: dict[str, Any]) -> StepResult:
        model_name = arguments["ModelName"]
        if model_name not in self.models:
            raise StepFailed(f"model {model_name} was not created in this execution")
        job_name = self._start_job(node, step)
        result = self.jobs.transform(job_name, arguments, self.models[model_name])
        lines = result.log_path.read_text(errors="replace").strip().splitlines()
        return StepResult(
            job_name=job_name,
            log=str(result.log_path),
            detail=lines[-1] if lines else "",
            properties={
                "TransformJobName": job_name,
                "TransformJobStatus": "Completed",
                "ModelName": model_name,
                "TransformOutput": arguments["TransformOutput"],
            },
        )
