"""Run SageMaker jobs as local subprocesses under the container contract.

Processing: inputs downloaded to their LocalPath, `ContainerEntrypoint + ContainerArguments`
run with the job's Environment, outputs uploaded from their LocalPath. Training: the
training toolkit's contract (code from `sagemaker_submit_directory`, `sagemaker_program`,
hyperparameters JSON-decoded into `--name value` arguments, SM_* variables, the model dir
packed into `<S3OutputPath>/<job>/output/model.tar.gz`), metrics read with the job's
MetricDefinitions from its log, as SageMaker does.

Container paths (`/opt/ml/...`) are mapped below the job's folder; the scripts find that
root in MLOPS_OPT_ML.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.child_process import model_code_environment
from pipeline.code_bundle import SCRIPTS_INPUT_NAME
from pipeline.errors import LocalModeError
from pipeline.local.job_environment import JobEnvironment, JobEnvironments, ProjectEnvironment
from pipeline.local.workspace import Workspace

__all__ = [
    "ArchiveUnreadable",
    "JobFailed",
    "JobResult",
    "LocalJobRunner",
    "final_metrics",
    "log_tail",
    "map_container_paths",
]

OPT_ML = "/opt/ml"
TRANSFORM_JOB = Path(__file__).with_name("transform_job.py")
MEASURED_CHILD = Path(__file__).with_name("measured_child.py")


class JobFailed(LocalModeError):
    """A job's process ended non-zero: `returncode` is the job's (the CLI's is `exit_code`)."""

    def __init__(self, job_name: str, returncode: int, log_path: Path, tail: str) -> None:
        self.job_name, self.returncode, self.log_path, self.tail = job_name, returncode, log_path, tail
        errors = [line for line in tail.splitlines() if line.startswith("ERROR: ")]
        cause = f": {errors[-1][len('ERROR: ') :][:500]}" if errors else ""  # the scripts' own last word
        super().__init__(f"job {job_name} exited with code {returncode}{cause} (log: {log_path})")


class ArchiveUnreadable(LocalModeError):
    """A model.tar.gz or code bundle that cannot be unpacked (SageMaker fails the job too)."""


@dataclass
class JobResult:
    job_name: str
    log_path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    model_artifacts: str = ""  # a training job's model.tar.gz URI


def map_container_paths(value: Any, opt_ml: Path) -> Any:
    """Every string that is a container path under /opt/ml, moved below `opt_ml`."""
    if isinstance(value, str) and (value == OPT_ML or value.startswith(OPT_ML + "/")):
        return str(opt_ml) + value[len(OPT_ML) :]
    if isinstance(value, list):
        return [map_container_paths(v, opt_ml) for v in value]
    if isinstance(value, dict):
        return {k: map_container_paths(v, opt_ml) for k, v in value.items()}
    return value


def final_metrics(log_text: str, definitions: list[Mapping[str, str]]) -> dict[str, float]:
    """The last value each MetricDefinition regex captures in the log (SageMaker's rule)."""
    metrics: dict[str, float] = {}
    for definition in definitions:
        values = re.findall(definition["Regex"], log_text)
        if values:
            last = values[-1]
            try:
                metrics[definition["Name"]] = float(last[0] if isinstance(last, tuple) else last)
            except ValueError:
                continue
    return metrics


class TrialStopped(LocalModeError):
    """A trial stopped early by its tuning job's early stopping (SageMaker's `Stopped` trial)."""

    def __init__(self, job_name: str, reason: str) -> None:
        super().__init__(f"{job_name} stopped early: {reason}")
        self.reason = reason


class _LogWatcher(threading.Thread):
    """Follows a job's log as it is written, line by line, and stops the job when
    `keep_going` says so; `stopped` then says why."""

    def __init__(self, log_path: Path, process: subprocess.Popen[bytes], keep_going: Callable[[str], bool]) -> None:
        super().__init__(daemon=True)
        self.log_path, self.process, self.keep_going, self.stopped = log_path, process, keep_going, ""
        self.start()

    def run(self) -> None:
        with self.log_path.open(errors="replace") as log:
            pending = ""
            while True:
                chunk = log.readline()
                if chunk:
                    pending += chunk
                    if not pending.endswith("\n"):
                        continue
                    line, pending = pending, ""
                    if not self.stopped and not self.keep_going(line):
                        self.stopped = f"its objective was among the weakest at its rung ({line.strip()[:120]})"
                        with contextlib.suppress(ProcessLookupError):
                            self.process.terminate()
                elif self.process.poll() is not None:
                    return
                else:
                    time.sleep(0.05)


def _decode_hyperparameter(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a job's log ("" when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class LocalJobRunner:
    """Runs jobs for one execution. `env_overrides` and `services_env` (read when a job
    starts: the tracking URI, once its server answers) map service endpoints the way S3
    URIs are mapped to the workspace; `environments` picks the Python each job runs in
    from the code it runs."""

    workspace: Workspace
    jobs_root: Path
    environments: JobEnvironments = field(default_factory=ProjectEnvironment)
    env_overrides: dict[str, str] = field(default_factory=dict)
    services_env: Callable[[], Mapping[str, str]] = dict
    _running: set[subprocess.Popen[bytes]] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop every job still running (tuning trials run in worker threads), as
        StopPipelineExecution stops an execution's jobs; their threads then see them fail.
        No job starts after this, and it returns once the stopped ones have exited (killed
        after `grace_seconds`), so no job outlives the driver."""
        with self._lock:
            self._stopped = True
            running = list(self._running)
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in running:
            try:
                process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _base_env(
        self, opt_ml: Path, job_env: Mapping[str, str], python: JobEnvironment, *, model_code: bool = False
    ) -> dict[str, str]:
        # The jobs see what a container would: the definition's environment, not this shell's
        # MLflow/SageMaker settings, except the credentials `mlflow.credentials.source: env` reads.
        # A model's own code (`model_code`: a transform job) gets none of the shell's access.
        passthrough = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_SERVER_CERT_PATH"}
        env = (
            model_code_environment()
            if model_code
            else {
                k: v
                for k, v in os.environ.items()
                if k in passthrough or not k.startswith(("MLFLOW_", "MLOPS_", "SM_"))
            }
        )
        env.update({k: str(v) for k, v in map_container_paths(dict(job_env), opt_ml).items()})
        if not model_code:
            env.update(self.services_env())
            env.update(self.env_overrides)
        env["MLOPS_OPT_ML"] = str(opt_ml)
        env["MLOPS_SKIP_REQUIREMENTS"] = "1"  # the job's environment already has them
        env["PATH"] = python.path(env.get("PATH", ""))
        return env

    def _unpack(self, uri: str, into: Path) -> None:
        """A tar.gz in the workspace (code bundle, model.tar.gz) extracted as SageMaker would,
        refusing members that would land outside `into`. Raises ArchiveUnreadable naming the URI."""
        into.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(fileobj=io.BytesIO(self.workspace.path(uri).read_bytes())) as tar:
                tar.extractall(into, filter="data")
        except (OSError, EOFError, tarfile.TarError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ArchiveUnreadable(f"{uri} is not a readable tar.gz archive ({reason})") from None

    def log_path(self, job_name: str) -> Path:
        """Where a job's console output goes, known before it starts (the progress view shows it)."""
        return self.jobs_root / job_name / "job.log"

    def usage_path(self, job_name: str) -> Path:
        """`{"seconds", "peak_memory_mb"}` of the job's process, written when it ends (what
        SageMaker's CloudWatch metrics would tell about a real job; bench/scale.py reads it)."""
        return self.jobs_root / job_name / "usage.json"

    def _run(
        self,
        command: list[str],
        env: dict[str, str],
        cwd: Path,
        job_name: str,
        log_path: Path,
        keep_going: Callable[[str], bool] | None = None,
    ) -> None:
        """Run a job to its end. `keep_going`: told each line the job prints as it prints it;
        when it answers False the job is stopped and TrialStopped raised (early stopping)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        measured = [sys.executable, "-I", "-S", str(MEASURED_CHILD), str(self.usage_path(job_name)), *command]
        with log_path.open("w") as log:
            with self._lock:  # a job starting as `stop` runs either is stopped or never starts
                if self._stopped:
                    raise JobFailed(job_name, 128 + signal.SIGTERM, log_path, "stopped before it started")
                process = subprocess.Popen(measured, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
                self._running.add(process)
            watcher = _LogWatcher(log_path, process, keep_going) if keep_going else None
            try:
                code = process.wait()
                if watcher is not None:
                    watcher.join()
            except BaseException:  # interrupted: stop the job too (measured_child forwards SIGTERM)
                process.terminate()
                process.wait()
                raise
            finally:
                with self._lock:
                    self._running.discard(process)
        if watcher is not None and watcher.stopped:
            raise TrialStopped(job_name, watcher.stopped)
        if code != 0:
            raise JobFailed(job_name, code, log_path, log_tail(log_path))

    def processing(self, job_name: str, arguments: Mapping[str, Any]) -> JobResult:
        job_dir = self.jobs_root / job_name
        opt_ml = job_dir / "opt" / "ml"
        for item in arguments.get("ProcessingInputs", []):
            s3 = item["S3Input"]
            self.workspace.download(s3["S3Uri"], Path(map_container_paths(s3["LocalPath"], opt_ml)))
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            Path(map_container_paths(item["S3Output"]["LocalPath"], opt_ml)).mkdir(parents=True, exist_ok=True)
        (opt_ml / "config").mkdir(parents=True, exist_ok=True)
        # as SageMaker writes it: the CreateProcessingJob request and the job's name (scripts read
        # their inputs' and outputs' S3 URIs there, pipeline/steps/scripts/run_inputs.py)
        config = {**arguments, "ProcessingJobName": job_name}
        (opt_ml / "config" / "processingjobconfig.json").write_text(json.dumps(config, default=str))
        app = arguments["AppSpecification"]
        command = map_container_paths([*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])], opt_ml)
        scripts = [i for i in arguments.get("ProcessingInputs", []) if i.get("InputName") == SCRIPTS_INPUT_NAME]
        if not scripts:
            raise LocalModeError(f"processing job {job_name} has no '{SCRIPTS_INPUT_NAME}' input: its code is unknown")
        python = self.environments.for_code(Path(map_container_paths(scripts[0]["S3Input"]["LocalPath"], opt_ml)))
        env = self._base_env(opt_ml, arguments.get("Environment", {}), python)
        log_path = self.log_path(job_name)
        self._run(command, env, job_dir, job_name, log_path)
        for item in outputs:
            s3 = item["S3Output"]
            self.workspace.upload_dir(Path(map_container_paths(s3["LocalPath"], opt_ml)), s3["S3Uri"])
        return JobResult(job_name, log_path)

    def training(
        self,
        job_name: str,
        definition: Mapping[str, Any],
        hyperparameters: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
        keep_going: Callable[[str], bool] | None = None,
    ) -> JobResult:
        """`definition` is a CreateTrainingJob request or a tuning job's TrainingJobDefinition.
        `keep_going`: see `_run` (a tuning job's early stopping)."""
        job_dir = self.jobs_root / job_name
        opt_ml = job_dir / "opt" / "ml"
        decoded = {k: _decode_hyperparameter(v) for k, v in hyperparameters.items()}
        code_dir = opt_ml / "code"
        self._unpack(decoded["sagemaker_submit_directory"], code_dir)
        channels = {}
        for channel in definition.get("InputDataConfig", []):
            name = channel["ChannelName"]
            target = opt_ml / "input" / "data" / name
            self.workspace.download(channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            channels[name] = target
        model_dir, output_dir = opt_ml / "model", opt_ml / "output" / "data"
        model_dir.mkdir(parents=True, exist_ok=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        user_hps = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
        python = self.environments.for_code(code_dir)
        env = self._base_env(opt_ml, definition.get("Environment", {}), python)
        env.update(
            {
                "TRAINING_JOB_NAME": job_name,
                "SM_MODEL_DIR": str(model_dir),
                "SM_OUTPUT_DATA_DIR": str(output_dir),
                "SM_CHANNELS": json.dumps(sorted(channels)),
                "SM_HPS": json.dumps(user_hps),
                "SM_CURRENT_HOST": "algo-1",
                "SM_HOSTS": json.dumps(["algo-1"]),
                "SM_TRAINING_ENV": json.dumps({"job_name": job_name, "hyperparameters": user_hps}),
                **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()},
                **(extra_env or {}),
            }
        )
        command = [str(python.python), str(code_dir / decoded["sagemaker_program"])]
        for key, value in user_hps.items():
            command += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
        log_path = self.log_path(job_name)
        self._run(command, env, code_dir, job_name, log_path, keep_going)
        metrics = final_metrics(
            log_path.read_text(errors="replace"), definition["AlgorithmSpecification"].get("MetricDefinitions", [])
        )
        archive = io.BytesIO()
        # gzip's default level, as `tar czf` uses: tarfile's default (9) costs a trial ~1 s
        # on a 2 MB model for a 4% smaller archive.
        with tarfile.open(fileobj=archive, mode="w:gz", compresslevel=6) as tar:
            for item in sorted(model_dir.iterdir()):
                tar.add(item, arcname=item.name)
        output_path = definition["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        model_artifacts = f"{output_path}/{job_name}/output/model.tar.gz"
        self.workspace.put(model_artifacts, archive.getvalue())
        return JobResult(job_name, log_path, metrics, model_artifacts)

    def transform(self, job_name: str, arguments: Mapping[str, Any], container: Mapping[str, Any]) -> JobResult:
        """A CreateTransformJob request, served by the model's `container` (its ModelDataUrl
        and the Environment naming its inference program and code) in a job process
        (`transform_job.py`). The job writes into its own folder; only when it succeeded are
        its `.out` files put under `S3OutputPath`, beside whatever else is there."""
        job_dir = self.jobs_root / job_name
        opt_ml = job_dir / "opt" / "ml"
        model_dir, code_dir, input_dir, output_dir = (opt_ml / n for n in ("model", "code", "input", "output"))
        output_dir.mkdir(parents=True, exist_ok=True)
        environment = dict(container.get("Environment", {}))
        self._unpack(container["ModelDataUrl"], model_dir)
        self._unpack(environment["SAGEMAKER_SUBMIT_DIRECTORY"], code_dir)
        source = arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        self.workspace.download(source, input_dir)
        spec = {
            "model_dir": str(model_dir), "source_dir": str(code_dir), "program": environment["SAGEMAKER_PROGRAM"],
            "input": str(input_dir), "output": str(output_dir),
            "content_type": arguments["TransformInput"].get("ContentType", "text/csv"),
            "split": arguments["TransformInput"].get("SplitType", "None"),
            "strategy": arguments.get("BatchStrategy", "MultiRecord"),
            "max_payload_mb": int(arguments.get("MaxPayloadInMB", 6)),
            "accept": arguments["TransformOutput"].get("Accept", "text/csv"),
            "join_input": arguments.get("DataProcessing", {}).get("JoinSource") == "Input",
        }  # fmt: skip
        spec_path = job_dir / "transform.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        python = self.environments.for_code(code_dir)
        env = self._base_env(opt_ml, environment, python, model_code=True)
        log_path = self.log_path(job_name)
        self._run([str(python.python), str(TRANSFORM_JOB), str(spec_path)], env, job_dir, job_name, log_path)
        self.workspace.add_files(output_dir, arguments["TransformOutput"]["S3OutputPath"])
        return JobResult(job_name, log_path)
