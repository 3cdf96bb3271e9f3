"""`run --local` end to end: the rendered definition executed on this machine against a
real MLflow server and a moto registry."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.local.execution_graph import PIPELINE_EXECUTION_TAG
from pipeline.local.runner import ExecutionRecord, load_execution
from pipeline.tracking_server import TrackingServer
from tests.conftest import DEFAULT_CONFIG, REPO, graphviz_available

FAST = ["--set", "tuning.max_jobs=2", "--set", "tuning.max_parallel_jobs=2"]


@pytest.fixture(scope="module")
def shared_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("local-mlflow")
    with TrackingServer(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", log_file=root / "log") as server:
        yield server.uri


@pytest.fixture
def tracking_env(shared_tracking: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs use the module's MLflow server instead of starting their own."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared_tracking)
    return shared_tracking


def run_local(capsys: pytest.CaptureFixture[str], workspace: Path, *extra: str) -> tuple[int, ExecutionRecord, str]:
    code = main(["run", "--local", "--example-data", "--config", str(DEFAULT_CONFIG),
                 "--workspace", str(workspace), *FAST, *extra])  # fmt: skip
    out, err = capsys.readouterr()
    execution_id = out.strip().rsplit("/", 1)[-1]
    return code, load_execution(workspace / "executions" / execution_id / "execution.json"), err


def statuses(record: ExecutionRecord) -> dict[str, str]:
    return {name: step.status for name, step in record.steps.items()}


def registered(workspace: Path) -> list[dict]:
    journal = workspace / "registry.json"
    return json.loads(journal.read_text()) if journal.exists() else []


def dataset_inputs(run: Any) -> set[tuple[str, str, str, str]]:
    """(name, context, source URI, digest) of each dataset input of an MLflow run."""
    return {
        (i.dataset.name, next(t.value for t in i.tags), json.loads(i.dataset.source)["uri"], i.dataset.digest)
        for i in run.inputs.dataset_inputs
    }


def test_end_to_end_registers_a_package_linked_to_the_mlflow_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from pipeline.local.driver import sagemaker_client
    from pipeline.local.services import stop_services

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the run starts its own server
    workspace = tmp_path / ".local"
    code, record, err = run_local(capsys, workspace, "--keep-services")
    try:
        assert code == 0, err
        assert record.status == "Succeeded"
        assert statuses(record) == {
            "Preprocess": "Succeeded", "Tune": "Succeeded", "Evaluate": "Succeeded", "QualityGate": "Succeeded",
            "QualityGateFailed": "Skipped", "Register-RegisterModel": "Succeeded",
        }  # fmt: skip
        services = json.loads((workspace / "services.json").read_text())
        arn = record.steps["Register-RegisterModel"].properties["ModelPackageArn"]
        package = sagemaker_client(services["moto_endpoint"], "us-east-1").describe_model_package(ModelPackageName=arn)
        assert package["ModelApprovalStatus"] == "PendingManualApproval"
        run_id = package["CustomerMetadataProperties"]["mlflow_run_id"]
        model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        best = record.steps["Tune"].properties["BestTrainingJob"]["TrainingJobName"]
        assert model_url.endswith(f"/models/{best}/output/model.tar.gz")

        client = MlflowClient(services["tracking_uri"])
        run = client.get_run(run_id)
        assert run.data.tags["sagemaker.job_name"] == best
        assert run.data.tags["sagemaker.pipeline_execution_arn"] == record.arn
        assert {a.path for a in client.list_artifacts(run_id, "model")} >= {"model/MLmodel", "model/model.pkl"}
        assert "test_rmse" in run.data.metrics
        experiment = client.get_experiment_by_name("diabetes-regression")
        runs = client.search_runs([experiment.experiment_id])
        assert sorted(str(r.data.tags.get("mlops.step")) for r in runs) == [
            "None",
            "preprocess",
            "train",
            "train",
            "tune",
        ]
        assert "quality gate" in err and "passed" in err and arn in err
        # issue #23: one tree per execution, trials under the tuning step's run, the result on the parent
        by_step = {r.data.tags.get("mlops.step"): r for r in runs}
        parent = by_step[None]
        assert parent.data.tags["mlops.execution_parent"] == record.arn == parent.data.tags[PIPELINE_EXECUTION_TAG]
        assert parent.info.run_name == f"diabetes-regression-{record.id}" and parent.info.status == "FINISHED"
        assert parent.data.tags["mlops.execution_link"].endswith(f"graph --execution {record.id}")
        tune = by_step["tune"]
        assert (
            by_step["preprocess"].data.tags["mlflow.parentRunId"]
            == tune.data.tags["mlflow.parentRunId"]
            == (parent.info.run_id)
        )
        trials = [r for r in runs if r.data.tags.get("mlops.step") == "train"]
        assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {tune.info.run_id}
        assert tune.info.status == "FINISHED" and tune.data.tags["mlops.best_trial_run_id"] == run_id
        assert {k: parent.data.tags[k] for k in ("mlops.execution_status", "mlops.outcome.QualityGate",
                "mlops.parameter.QualityGateThreshold", "mlops.model_package_arn")} == {
            "mlops.execution_status": "Succeeded", "mlops.outcome.QualityGate": "True",
            "mlops.parameter.QualityGateThreshold": "65.0", "mlops.model_package_arn": arn,
        }  # fmt: skip
        assert parent.data.metrics["execution_seconds"] > 0
        # the data each run read, as MLflow dataset inputs: source URI and digest, not the rows
        inputs = {r.data.tags.get("mlops.step"): dataset_inputs(r) for r in runs if r.inputs.dataset_inputs}
        data = "s3://mlops-artifacts-123456789012/diabetes-regression/data/diabetes.csv"
        assert {(name, context, uri) for name, context, uri, _ in inputs["preprocess"]} == {("input", "input", data)}
        splits = f"s3://mlops-artifacts-123456789012/diabetes-regression/executions/{record.id}/Preprocess"
        model_inputs = {(name, context, uri) for name, context, uri, digest in dataset_inputs(client.get_run(run_id))}
        assert model_inputs == {(split, context, f"{splits}/{split}") for split, context in
                                (("train", "training"), ("validation", "validation"), ("test", "test"))}  # fmt: skip
        assert all(len(digest) >= 8 for *_, digest in dataset_inputs(client.get_run(run_id)))
        # the execution's picture, beside its record and on the execution's parent run
        picture = workspace / "executions" / record.id / "pipeline_graph.png"
        if graphviz_available():
            assert picture.read_bytes().startswith(b"\x89PNG") and f"logged to MLflow run {parent.info.run_id}" in err
            paths = [a.path for a in client.list_artifacts(parent.info.run_id, "pipeline")]
            assert paths == ["pipeline/pipeline_graph.png"]
        else:  # said, not a failure of the run
            assert "graph not drawn" in err and "apt-get install graphviz" in err and not picture.exists()
    finally:
        stop_services(workspace)


def test_gate_that_cannot_be_met_ends_in_the_fail_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tracking_env: str
) -> None:
    workspace = tmp_path / ".local"
    code, record, err = run_local(capsys, workspace, "--param", "QualityGateThreshold=1")
    assert code == 1
    assert record.status == "Failed"
    assert record.steps["QualityGate"].properties == {"Outcome": "False"}
    assert record.steps["Register-RegisterModel"].status == "Skipped"
    assert record.failure_reason.startswith("Quality gate failed: regression_metrics.rmse.value = ")
    assert record.failure_reason.endswith("but the gate requires <= 1.0")
    assert "Quality gate failed" in err
    assert registered(workspace) == []


def test_rerun_is_cached_and_a_hyperparameter_change_reruns_what_depends_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tracking_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.local.services import LocalServices

    workspace = tmp_path / ".local"
    code, _, err = run_local(capsys, workspace)
    assert code == 0, err
    with monkeypatch.context() as patch:  # a fully cached run needs neither MLflow nor the registry emulator
        unavailable = property(lambda self: pytest.fail("a fully cached run waited for a service"))
        patch.setattr(LocalServices, "tracking_uri", unavailable)
        patch.setattr(LocalServices, "moto_endpoint", unavailable)
        code, second, err = run_local(capsys, workspace)
    assert code == 0, err
    assert any(line.startswith("execution ") for line in err.splitlines()), err  # the summary below the table
    jobs = ["Preprocess", "Tune", "Evaluate", "Register-RegisterModel"]
    assert {name: second.steps[name].status for name in jobs} == dict.fromkeys(jobs, "Cached")
    assert len(registered(workspace)) == 1  # the identical package is not registered twice

    from mlflow import MlflowClient

    client = MlflowClient(tracking_env)
    experiment = client.get_experiment_by_name("diabetes-regression").experiment_id
    parents = client.search_runs([experiment], filter_string=f"tags.`mlops.execution_parent` = '{second.arn}'")
    assert parents == []  # no job ran: the cached execution adds no parent run

    code, third, err = run_local(capsys, workspace, "--set", "training.hyperparameters.max_features=0.8")
    assert code == 0, err
    parents = client.search_runs([experiment], filter_string=f"tags.`mlops.execution_parent` = '{third.arn}'")
    assert len(parents) == 1 and parents[0].data.tags["mlops.execution_status"] == "Succeeded"
    assert {name: third.steps[name].status for name in jobs} == {
        "Preprocess": "Cached", "Tune": "Succeeded", "Evaluate": "Succeeded", "Register-RegisterModel": "Succeeded",
    }  # fmt: skip
    assert len(registered(workspace)) == 2

    code, forced, err = run_local(capsys, workspace, "--no-cache")
    assert code == 0, err
    assert forced.steps["Preprocess"].status == "Succeeded"


def test_crashing_step_stops_the_run_and_the_fix_reuses_upstream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tracking_env: str
) -> None:
    workspace = tmp_path / ".local"
    # A tuning range the estimator has (so render accepts it) whose every value its fit refuses
    # (a static hyperparameter's value render now checks against the estimator's constraints).
    code, broken, err = run_local(
        capsys, workspace, "--set", "tuning.ranges.min_weight_fraction_leaf={type: continuous, min: 2.0, max: 3.0}"
    )
    assert code == 1
    assert broken.status == "Failed" and broken.steps["Tune"].status == "Failed"
    assert "'min_weight_fraction_leaf' parameter of RandomForestRegressor" in err  # the end of the trial's log
    assert "job.log" in err  # where the full log is
    assert broken.steps["Register-RegisterModel"].status == "Pending"
    assert registered(workspace) == []

    code, fixed, err = run_local(capsys, workspace)
    assert code == 0, err
    assert fixed.steps["Preprocess"].status == "Cached"
    assert fixed.steps["Tune"].status == "Succeeded"
    assert len(registered(workspace)) == 1


def test_run_without_local_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert "needs --local" in capsys.readouterr().err


def test_run_approve_serves_the_model_and_a_later_reject_reaches_mlflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tracking_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without stages (`deployment.stages: []`), as before them: one approval makes the
    champion, served on the one local endpoint, whose process (the model's own code) has
    none of the shell's AWS keys or MLflow credentials."""
    from mlflow import MlflowClient

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shell-secret-key")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "shell-mlflow-password")
    workspace = tmp_path / ".local"
    model = f"local-approve-{tmp_path.name}"[-60:]
    own = ["--set", f"mlflow.registered_model={model}", "--set", "deployment.stages=[]"]
    code, record, err = run_local(capsys, workspace, "--approve", "--keep-services", *own)
    assert code == 0, err
    assert "point alias 'champion' at version 1" in err
    predictions = [line for line in err.splitlines() if line.startswith("served model http://127.0.0.1:")]
    assert len(predictions) == 3 and all("predicted" in line and "actual" in line for line in predictions)
    server_pid = json.loads((workspace / "services.json").read_text())["serving_pid"]
    environ = Path(f"/proc/{server_pid}/environ").read_bytes().split(b"\0")
    names = {item.split(b"=", 1)[0].decode() for item in environ if item}
    assert "PATH" in names and not names & {"AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"}
    assert main(["local-down", "--workspace", str(workspace)]) == 0
    assert "serving" in capsys.readouterr().err
    client = MlflowClient(tracking_env)
    version = client.get_model_version(model, "1")
    arn = record.steps["Register-RegisterModel"].properties["ModelPackageArn"]
    assert version.tags["sagemaker_model_package_arn"] == arn
    assert version.tags["sagemaker_endpoint"].startswith("http://127.0.0.1:")
    assert json.loads((workspace / "registry.json").read_text())[0]["approval_status"] == "Approved"

    # a separate command, as on another day: the registry comes back from the journal
    code = main(["approve", "1", "--reject", "--no-serve", "--config", str(DEFAULT_CONFIG),
                 "--workspace", str(workspace), *own])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["status"] == "synced"
    assert client.get_model_version(model, "1").tags["sagemaker_approval_status"] == "Rejected"
    assert "champion" not in client.get_registered_model(model).aliases
    assert main(["approve", "7", "--config", str(DEFAULT_CONFIG), "--workspace", str(workspace)]) == 2
    assert "no model package" in capsys.readouterr().err


NO_TUNING = ["--set", "tuning.enabled=false"]


def rows_read(record: ExecutionRecord) -> int:
    """The row count Preprocess prints in its JSON summary line."""
    lines = Path(record.steps["Preprocess"].log).read_text().splitlines()
    return next(json.loads(line)["rows"] for line in lines if line.startswith('{"rows"'))


def test_a_local_csv_is_read_where_it_is_and_cached_by_its_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tracking_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from pipeline.example_data import write_diabetes_csv

    csv = write_diabetes_csv(tmp_path / "data" / "diabetes.csv")
    pd.read_csv(csv).head(300).to_csv(csv, index=False)  # not the 442 rows the example data has
    monkeypatch.chdir(tmp_path)  # where the user types the command
    workspace = tmp_path / ".local"

    def run(*extra: str) -> tuple[int, ExecutionRecord, str]:
        code = main(["run", "--local", "--config", str(DEFAULT_CONFIG), "--workspace", str(workspace),
                     "--param", "InputDataUri=./data/diabetes.csv", *NO_TUNING, *extra])  # fmt: skip
        out, err = capsys.readouterr()
        return code, load_execution(workspace / "executions" / out.strip().rsplit("/", 1)[-1] / "execution.json"), err

    code, first, err = run()
    assert code == 0, err
    assert first.parameters["InputDataUri"] == "./data/diabetes.csv"
    assert rows_read(first) == 300
    outputs = first.steps["Preprocess"].properties["ProcessingOutputConfig"]["Outputs"]
    folders = {name: workspace / "s3" / o["S3Output"]["S3Uri"].removeprefix("s3://") for name, o in outputs.items()}
    assert sum(len(pd.read_csv(folders[n] / f"{n}.csv")) for n in ("train", "validation", "test")) == 300

    code, second, err = run()  # the same file: every step comes from the cache
    assert code == 0, err
    assert second.steps["Preprocess"].status == "Cached"

    pd.read_csv(csv).head(250).to_csv(csv, index=False)  # edited under the same path
    code, third, err = run()
    assert code == 0, err
    assert third.steps["Preprocess"].status == "Succeeded"
    assert rows_read(third) == 250


def test_a_missing_input_fails_its_step_before_the_job_naming_the_uri_and_where_local_mode_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tracking_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workspace = tmp_path / ".local"
    for param, uri, looked_at in [
        ([], "s3://mlops-artifacts-123456789012/diabetes-regression/data/diabetes.csv",
         workspace / "s3/mlops-artifacts-123456789012/diabetes-regression/data/diabetes.csv"),
        (["--param", "InputDataUri=./data/churn.csv"], "./data/churn.csv", tmp_path / "data/churn.csv"),
    ]:  # fmt: skip
        code = main(["run", "--local", "--config", str(DEFAULT_CONFIG), "--workspace", str(workspace),
                     *NO_TUNING, *param])  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 1
        record = load_execution(workspace / "executions" / out.strip().rsplit("/", 1)[-1] / "execution.json")
        message = f"InputDataUri {uri}: not found; local mode looks for it at {looked_at}"
        assert record.steps["Preprocess"].status == "Failed"
        assert record.steps["Preprocess"].failure.startswith(message)
        assert any(line.startswith(f"Step Preprocess failed: {message}") for line in err.splitlines()), err
        assert "Traceback" not in err
    assert not (workspace / "jobs").exists()  # no job was started


@pytest.mark.parametrize(
    ("uri", "code", "message"),
    [
        ("file:///tmp/mlruns", 1, "MLFLOW_TRACKING_URI=file:///tmp/mlruns is not a tracking server"),
        ("sqlite:///tmp/mlflow.db", 2, "mlflow.tracking_uri: 'sqlite:///tmp/mlflow.db' does not match"),
    ],
)
def test_a_tracking_uri_that_is_no_server_is_refused_as_such(
    uri: str, code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Not "does not answer /health": the jobs log over HTTP, as on SageMaker."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["run", "--local", "--example-data", "--config", str(DEFAULT_CONFIG),
                 "--workspace", str(tmp_path / ".local"), *FAST]) == code  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "/health" not in err, err
    assert not (tmp_path / ".local" / "executions").exists()


def test_on_unavailable_continue_runs_without_a_reachable_tracking_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlflow.on_unavailable: continue` once never took effect locally: the run exited 1
    ("unexpected TrackingServerError") before any job when an external server was down."""
    from pipeline.child_process import free_port

    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    code = main(["run", "--local", "--example-data", "--config", str(DEFAULT_CONFIG),
                 "--workspace", str(tmp_path / "fail"), *FAST])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: MLFLOW_TRACKING_URI={down} does not answer /health" in err
    assert "mlflow.on_unavailable: continue" in err and "unexpected" not in err
    assert not (tmp_path / "fail" / "executions").exists()  # refused before any job

    code, record, err = run_local(capsys, tmp_path / "continue", "--set", "mlflow.on_unavailable=continue")
    assert code == 0, err
    assert f"MLflow at {down} does not answer" in err
    assert record.status == "Succeeded"
    assert statuses(record)["Register-RegisterModel"] == "Succeeded"
    from mlflow_bridge.contract import UNTRACKED_RUN, CustomerMetadata

    package = registered(tmp_path / "continue")[0]
    assert package["request"]["CustomerMetadataProperties"][CustomerMetadata.RUN_ID] == UNTRACKED_RUN


@pytest.mark.parametrize(
    ("signum", "exit_code", "reason"),
    [(signal.SIGINT, 130, "stopped: interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "stopped: terminated (SIGTERM)")],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupted_run_ends_stopped_with_its_jobs_and_the_next_run_is_clean(
    signum: int, exit_code: int, reason: str, tmp_path: Path, tracking_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once, an interrupted run stayed "Executing" for good in execution.json (and in
    `graph --execution latest`), and tuning trials kept running after Ctrl-C."""
    import psutil

    workspace = tmp_path / ".local"
    command = [sys.executable, "-m", "pipeline.definition", "run", "--local", "--example-data",
               "--config", str(DEFAULT_CONFIG), "--workspace", str(workspace),
               "--set", "tuning.max_jobs=6", "--set", "tuning.max_parallel_jobs=2"]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    record = None
    while time.monotonic() < deadline and process.poll() is None:
        found = sorted((workspace / "executions").glob("*/execution.json"))
        record = load_execution(found[0]) if found else None
        if record and record.steps["Tune"].status == "Executing" and list((workspace / "jobs").glob("pipelines-*")):
            break
        time.sleep(0.2)
    assert record is not None and process.poll() is None, process.communicate()
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == exit_code, err

    stopped = load_execution(found[0])
    assert (stopped.status, stopped.failure_reason) == ("Stopped", reason)
    assert stopped.steps["Tune"].status == "Stopped" and stopped.steps["Tune"].failure == reason
    assert stopped.steps["Preprocess"].status == "Succeeded"
    assert stopped.steps["Register-RegisterModel"].status == "Pending"
    trials = [d.name for d in (workspace / "jobs").iterdir() if d.name.startswith("pipelines-")]
    assert len(trials) < 6  # the trials not yet started never started
    jobs_root = str(workspace / "jobs")
    alive = [p for p in psutil.process_iter(["cmdline"]) if any(jobs_root in part for part in p.info["cmdline"] or [])]
    assert alive == []
    assert main(["graph", "--config", str(DEFAULT_CONFIG), "--execution", "latest", "--workspace", str(workspace)]) == 0
    assert "class Tune stopped" in capsys.readouterr().out

    code, rerun, err = run_local(capsys, workspace)
    assert code == 0, err
    assert rerun.status == "Succeeded"
    assert rerun.steps["Preprocess"].status == "Cached" and rerun.steps["Tune"].status == "Succeeded"


def test_staged_promotion_locally_serves_each_stage_its_own_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tracking_env: str
) -> None:
    """The default config's stages, as the issue walks them: `run --local --approve` puts
    package 1 in staging; `promote 1 --to production` serves production, and staging keeps
    serving its last model (an endpoint is never torn down): a prediction from each. A
    second run's package 2 then holds staging."""
    from mlflow import MlflowClient

    workspace = tmp_path / ".local"
    own = ["--set", "mlflow.registered_model=diabetes-staged"]  # apart from other tests' model
    code, _, err = run_local(capsys, workspace, "--approve", *own)
    assert code == 0, err
    assert "bridge: diabetes-staged: point alias 'staging' at version" in err
    assert "staging model http://127.0.0.1:" in err and "production model" not in err

    group = "arn:aws:sagemaker:us-east-1:123456789012:model-package/diabetes-regression"
    arguments = ["--config", str(DEFAULT_CONFIG), *own, *FAST, "--workspace", str(workspace), "--local"]
    assert main(["promote", "1", "--to", "production", *arguments]) == 0
    err = capsys.readouterr().err
    assert f"staging: {group}/1 at http" in err and f"production: {group}/1 at http" in err, err
    for stage in ("staging", "production"):  # a prediction from each stage's own server
        assert f"{stage} model http://127.0.0.1:" in err and f"{stage} model server stopped" in err
    model = MlflowClient(tracking_env).get_registered_model("diabetes-staged")
    assert set(model.aliases) == {"champion"}  # staging holds no package now, though it serves one

    code, _, err = run_local(capsys, workspace, "--approve", *own)  # cached: package 1 again, left in production
    assert code == 0 and "point alias 'staging'" not in err and "production model http://127.0.0.1:" in err, err
    changed = ["--set", "training.hyperparameters.max_features=0.8"]
    code, _, err = run_local(capsys, workspace, "--approve", *own, *changed)  # package 2, into staging
    assert code == 0, err
    assert "point alias 'staging' at version" in err and "staging model http://127.0.0.1:" in err, err
    assert main(["describe", "--stages", *arguments]) == 0
    assert json.loads(capsys.readouterr().out) == {"staging": f"{group}/2", "production": f"{group}/1"}
    model = MlflowClient(tracking_env).get_registered_model("diabetes-staged")
    by_package = {v.tags["sagemaker_model_package_version"]: v.version for v in
                  MlflowClient(tracking_env).search_model_versions("name = 'diabetes-staged'")}  # fmt: skip
    assert model.aliases == {"staging": by_package["2"], "champion": by_package["1"]}

    assert main(["promote", "1", "--to", "production", "--reject", "--no-serve", *arguments]) == 0
    model = MlflowClient(tracking_env).get_registered_model("diabetes-staged")
    assert model.aliases == {"staging": by_package["2"]}  # no previous production model: the alias goes


def test_an_approval_against_a_reset_tracking_server_says_what_happened_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same tracking URI served by a fresh, empty server: every step is a cache hit (the
    URI is part of the steps' arguments, as on SageMaker), and the approval names the run the
    server lost and how to rerun, instead of "unexpected RestException"."""
    from pipeline.tracking_server import TrackingServer

    first = TrackingServer(f"sqlite:///{tmp_path / 'first.db'}", tmp_path / "first-artifacts")
    workspace = tmp_path / ".local"
    with first:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", first.uri)
        code, _, err = run_local(capsys, workspace, "--set", "tuning.enabled=false")
        assert code == 0, err
    reset = TrackingServer(f"sqlite:///{tmp_path / 'reset.db'}", tmp_path / "reset-artifacts", port=first.port)
    with reset:
        code = main(["run", "--local", "--example-data", "--config", str(DEFAULT_CONFIG), "--workspace",
                     str(workspace), *FAST, "--set", "tuning.enabled=false", "--approve"])  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "steps 6 (4 cached)" in err, err  # every job step cached: nothing reran
    assert f"the tracking server {first.uri} has no run" in err and "run --local --no-cache" in err, err
    assert "unexpected" not in err
    # said once the cached steps are reused, before the approval
    assert f"which {first.uri} does not have" in err and "rerun with --no-cache" in err, err
    assert err.index("does not have") < err.index("has no run")
