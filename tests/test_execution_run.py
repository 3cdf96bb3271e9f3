"""Issue #23: one MLflow parent run per pipeline execution (pipeline/steps/scripts/execution_run.py).

The race that matters, parallel trials creating the parent at once, runs against real MLflow
servers (sqlite and MariaDB); how a job finds its execution on SageMaker is checked against
botocore's Stubber (moto keeps no tags on jobs it never ran)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.job_scripts import script_module
from pipeline.tracking_server import TrackingServer
from tests.tracking_fixtures import tracking_server  # noqa: F401 - fixture

execution_run = script_module("execution_run")
ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn/execution/abc123def456"
JOB_ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/pipelines-abc123def456-train-x"


def test_parallel_jobs_starting_at_once_make_one_parent(tracking_server: TrackingServer) -> None:  # noqa: F811
    """Eight jobs search, find nothing, and create at the same moment: each ends with the
    same parent, and only that one is left live."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_server.uri)
    experiment = client.create_experiment(f"parents-{threading.get_ident()}-{id(client)}")
    barrier, found, errors = threading.Barrier(8), [], []

    def job() -> None:
        try:
            barrier.wait()
            found.append(
                execution_run.find_or_create(
                    MlflowClient(tracking_server.uri), experiment, key=execution_run.PARENT_TAG, value=ARN,
                    run_name=execution_run.parent_run_name(ARN), tags={execution_run.EXECUTION_TAG: ARN},
                )
            )  # fmt: skip
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    live = client.search_runs([experiment], filter_string=f"tags.`{execution_run.PARENT_TAG}` = '{ARN}'")
    assert len(set(found)) == 1 and [run.info.run_id for run in live] == found[:1]
    assert live[0].info.run_name == "churn-abc123def456"
    # a later job finds it with one search and creates nothing
    assert execution_run.find_or_create(client, experiment, key=execution_run.PARENT_TAG, value=ARN,
                                        run_name="x", tags={}) == found[0]  # fmt: skip
    assert len(client.search_runs([experiment])) == 1


def test_a_local_job_reads_its_execution_from_the_environment() -> None:
    assert execution_run.execution_arn({"MLOPS_PIPELINE_EXECUTION_ARN": ARN}) == ARN
    assert execution_run.execution_arn({}) is None  # not a SageMaker job, not local mode: a job run by hand


def _stubbed(pages: list[dict[str, Any]]) -> Any:
    client = boto3.client("sagemaker", region_name="us-east-1")
    stubber = Stubber(client)
    token = None
    for page in pages:
        stubber.add_response("list_tags", page, {"ResourceArn": JOB_ARN, **({"NextToken": token} if token else {})})
        token = page.get("NextToken")
    stubber.activate()
    return client


def test_a_sagemaker_job_reads_the_tag_sagemaker_put_on_it() -> None:
    """SageMaker tags each job a pipeline launches with sagemaker:pipeline-execution-arn; the
    job reads it with ListTags on its own ARN, through every page."""
    client = _stubbed([
        {"Tags": [{"Key": "team", "Value": "ml"}], "NextToken": "t1"},
        {"Tags": [{"Key": "sagemaker:pipeline-execution-arn", "Value": ARN}]},
    ])  # fmt: skip
    assert execution_run.execution_arn({"TRAINING_JOB_ARN": JOB_ARN}, client) == ARN
    untagged = _stubbed([{"Tags": []}])  # a training job started by hand
    assert execution_run.execution_arn({"TRAINING_JOB_ARN": JOB_ARN}, untagged) is None


def test_a_processing_job_finds_its_arn_in_its_job_config(tmp_path: Path) -> None:
    config = tmp_path / "processingjobconfig.json"
    config.write_text(json.dumps({"ProcessingJobArn": JOB_ARN, "ProcessingJobName": "x"}))
    assert execution_run.own_job_arn({}, config) == JOB_ARN
    assert execution_run.own_job_arn({}, tmp_path / "absent.json") is None


def test_the_parent_links_to_where_the_execution_is_drawn() -> None:
    assert (
        execution_run.execution_link(ARN, local=True) == "python -m pipeline.definition graph --execution abc123def456"
    )
    assert execution_run.execution_link(ARN, local=False) == (
        "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
        "#/pipelines/churn/executions/abc123def456"
    )


def test_the_cached_steps_hold_nothing_that_changes_per_execution() -> None:
    """SageMaker's cache key holds a job's Environment and HyperParameters ("Default cache
    key attributes by pipeline step type"): an execution id there would make every step
    miss. The jobs find their execution themselves, so two renders are equal and no cached
    step's arguments name the execution."""
    from pipeline.config_loader import load_config
    from pipeline.definition import render_definition
    from tests.conftest import DEFAULT_CONFIG

    for overrides in ([], ["tuning.enabled=false"]):
        cfg = load_config(DEFAULT_CONFIG, overrides=overrides)
        text = render_definition(cfg)
        assert text == render_definition(cfg)
        for step in json.loads(text)["Steps"]:
            if not step.get("CacheConfig", {}).get("Enabled"):
                continue
            arguments = step["Arguments"]
            keyed = [arguments.get("Environment"), arguments.get("HyperParameters"),
                     arguments.get("AppSpecification", {}).get("ContainerArguments"),
                     arguments.get("TrainingJobDefinition", {}).get("StaticHyperParameters"),
                     arguments.get("TrainingJobDefinition", {}).get("Environment")]  # fmt: skip
            assert "Execution." not in json.dumps(keyed), step["Name"]


def _a_parent_and_a_stopped_trial(client: Any, arn: str) -> tuple[str, str, str]:
    """(experiment id, parent run id, the id of a run left RUNNING) of a new experiment
    `diabetes-regression` in which the execution `arn` made its parent as the jobs do."""
    experiment = client.create_experiment("diabetes-regression")
    parent = execution_run.find_or_create(client, experiment, key=execution_run.PARENT_TAG, value=arn,
                                          run_name="p", tags={execution_run.EXECUTION_TAG: arn})  # fmt: skip
    return experiment, parent, client.create_run(experiment, tags={execution_run.EXECUTION_TAG: arn}).info.run_id


def test_describe_log_records_a_sagemaker_execution_on_its_parent_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`describe ID --log`: an execution on SageMaker gets on its parent run what a local run
    records (status, duration, outcomes, parameters, package, picture), its parent ends with
    it, and a run left running (a trial stopped early) ends KILLED. SageMaker's answers come
    from botocore's Stubber (moto has no ListPipelineExecutionSteps); MLflow is a real server."""
    import datetime

    from mlflow import MlflowClient

    from pipeline import cli
    from pipeline.config_loader import load_config
    from pipeline.definition import render_definition
    from pipeline.pipeline_service import PipelineService
    from tests.conftest import DEFAULT_CONFIG, graphviz_available

    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/diabetes-regression/execution/k2x9q7w1e5r3"
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/diabetes-regression/7"
    started = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
    with TrackingServer(
        f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", log_file=tmp_path / "log"
    ) as server:
        client = MlflowClient(server.uri)
        _, parent, stopped_trial = _a_parent_and_a_stopped_trial(client, arn)

        sm = boto3.client("sagemaker", region_name="us-east-1")
        stubber = Stubber(sm)
        stubber.add_response("describe_pipeline_execution", {
            "PipelineExecutionArn": arn, "PipelineExecutionStatus": "Succeeded", "CreationTime": started,
            "LastModifiedTime": started + datetime.timedelta(minutes=12)})  # fmt: skip
        definition = render_definition(load_config(DEFAULT_CONFIG))
        stubber.add_response("describe_pipeline", {"PipelineDefinition": definition})
        stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
            {"StepName": "Preprocess", "StepStatus": "Succeeded"},
            {"StepName": "QualityGate", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}},
            {"StepName": "Register-RegisterModel", "StepStatus": "Succeeded",
             "Metadata": {"RegisterModel": {"Arn": package}}},
        ]})  # fmt: skip
        stubber.add_response("list_pipeline_parameters_for_execution",
                             {"PipelineParameters": [{"Name": "QualityGateThreshold", "Value": "60"}]})  # fmt: skip
        stubber.activate()
        monkeypatch.setattr(cli, "_service", lambda cfg: PipelineService(sm))
        code = cli.main(["describe", arn, "--log", "--config", str(DEFAULT_CONFIG),
                         "--set", f"mlflow.tracking_uri={server.uri}"])  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, err
        assert f"logged Succeeded to MLflow parent run {parent}" in out
        run = client.get_run(parent)
        assert run.info.status == "FINISHED" and run.data.metrics["execution_seconds"] == 720
        assert {k: run.data.tags[k] for k in ("mlops.execution_status", "mlops.outcome.QualityGate",
                "mlops.parameter.QualityGateThreshold", "mlops.model_package_arn")} == {
            "mlops.execution_status": "Succeeded", "mlops.outcome.QualityGate": "True",
            "mlops.parameter.QualityGateThreshold": "60", "mlops.model_package_arn": package,
        }  # fmt: skip
        assert client.get_run(stopped_trial).info.status == "KILLED"  # it never finished
        if graphviz_available():
            assert [a.path for a in client.list_artifacts(parent, "pipeline")] == ["pipeline/pipeline_graph.png"]


class _Run:
    def __init__(self, run_id: str, start: int, tags: dict[str, str] | None = None) -> None:
        self.info = type("Info", (), {"run_id": run_id, "start_time": start, "artifact_uri": f"file:///{run_id}"})()
        self.data = type("Data", (), {"tags": tags or {}})()


def test_a_job_that_loses_the_lock_waits_for_the_winners_run_and_says_when_it_never_comes() -> None:
    class Held(Exception):
        error_code = "RESOURCE_ALREADY_EXISTS"

    class Waiting:
        def __init__(self, appears_after: int) -> None:
            self.searches, self.appears_after = 0, appears_after

        def search_runs(self, *args: Any, **kwargs: Any) -> list[_Run]:
            self.searches += 1
            return [_Run("winners", 1)] if self.searches > self.appears_after else []

        def create_experiment(self, name: str) -> str:
            raise Held(name)

    client = Waiting(appears_after=3)
    assert execution_run.find_or_create(client, "1", key=execution_run.PARENT_TAG, value=ARN, run_name="p",
                                        tags={}) == "winners"  # fmt: skip
    with pytest.raises(TimeoutError, match="its creator stopped"):
        execution_run.create_once(Waiting(appears_after=10**6), "1", key="k", value="v", run_name="p", tags={},
                                  wait_seconds=0.6)  # fmt: skip


def test_a_resumed_trial_still_names_its_tuning_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job run again resumes its run; a trial's record of its tuning run (which Evaluate
    ends) comes from the resumed run's own parent tag."""
    import importlib

    from mlflow.store.entities.paged_list import PagedList

    from pipeline.job_scripts import SCRIPTS_DIR

    monkeypatch.syspath_prepend(str(SCRIPTS_DIR))  # the jobs import their siblings by bare name
    tracking_module = importlib.import_module("tracking")

    class Resuming:
        tracking_uri = "http://127.0.0.1:1"

        def search_runs(self, *args: Any, **kwargs: Any) -> PagedList[_Run]:
            """The tuning job's runs: the trial's earlier run (and the tuning step's own)."""
            tags = {execution_run.PARENT_RUN_TAG: "tuning-run", "sagemaker.job_name": "j",
                    "sagemaker.tuning_job_name": "tj"}  # fmt: skip
            tuning = {execution_run.TUNING_RUN_TAG: "tj", "sagemaker.tuning_job_name": "tj"}
            return PagedList([_Run("trial-run", 2, tags), _Run("tuning-run", 1, tuning)], None)

        def set_terminated(self, *args: Any) -> None:
            pass

    tracking = tracking_module.Tracking(Resuming(), "fail", experiment_id="1")
    with tracking.run(run_name="t", tags={"sagemaker.job_name": "j", "sagemaker.tuning_job_name": "tj"},
                      resume_key="sagemaker.job_name") as run_id:  # fmt: skip
        assert run_id == "trial-run"
    assert tracking.parent_of == {"trial-run": "tuning-run"}


EXECUTION_EVENT = json.loads((Path(__file__).parent / "events" / "pipeline_execution_succeeded.json").read_text())


def _sagemaker_answers(stubber: Stubber, arn: str, status: str, package: str, *, listed: bool = True) -> None:
    """What SageMaker answers the recorder about one execution (12 minutes long); `listed`:
    its steps and parameters too."""
    import datetime

    started = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
    stubber.add_response("describe_pipeline_execution", {
        "PipelineExecutionArn": arn, "PipelineExecutionStatus": status, "CreationTime": started,
        "LastModifiedTime": started + datetime.timedelta(minutes=12)})  # fmt: skip
    if not listed:
        return
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
        {"StepName": "QualityGate", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}},
    ], "NextToken": "page-2"})  # fmt: skip
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
        {"StepName": "Register-RegisterModel", "StepStatus": "Succeeded",
         "Metadata": {"RegisterModel": {"Arn": package}}},
    ]})  # fmt: skip
    stubber.add_response("list_pipeline_parameters_for_execution",
                         {"PipelineParameters": [{"Name": "QualityGateThreshold", "Value": "60"}]})  # fmt: skip


def test_an_execution_nobody_watched_ends_its_parent_run_from_sagemakers_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An execution started from the console, Studio or a schedule: no CLI watches it, and
    SageMaker's execution status change event reaches the execution recorder (the bridge's
    Lambda code), which records on the parent what `describe ID --log` would (the picture
    aside) and ends it, and a run left running (a trial stopped early) KILLED. A second
    delivery of the same event (EventBridge may send several) changes nothing further.
    SageMaker's answers come from botocore's Stubber (moto has no ListPipelineExecutionSteps,
    and its steps come in two pages here); MLflow is a real server."""
    import datetime

    from mlflow import MlflowClient

    from mlflow_bridge import handler
    from mlflow_bridge.execution_runs import ExecutionRecorder
    from tests.lambda_context import LambdaContext

    arn = EXECUTION_EVENT["detail"]["pipelineExecutionArn"]
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/diabetes-regression/7"
    with TrackingServer(
        f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", log_file=tmp_path / "log"
    ) as server:
        client = MlflowClient(server.uri)
        experiment, parent, stopped_trial = _a_parent_and_a_stopped_trial(client, arn)
        other = client.create_run(experiment, tags={execution_run.EXECUTION_TAG: arn + "x"}).info.run_id

        sm = boto3.client("sagemaker", region_name="us-east-1")
        stubber = Stubber(sm)
        for _ in range(2):
            _sagemaker_answers(stubber, arn, "Succeeded", package)
        stubber.activate()
        recorder = ExecutionRecorder(sm, client, "diabetes-regression", ["diabetes-regression"])
        monkeypatch.setattr(handler, "_recorder", recorder)
        answers = [handler.lambda_handler(EXECUTION_EVENT, LambdaContext()) for _ in range(2)]
        stubber.assert_no_pending_responses()

        assert answers == [{"status": "synced", "run_id": parent, "execution_status": "Succeeded"}] * 2
        run = client.get_run(parent)
        ended = datetime.datetime.fromisoformat(EXECUTION_EVENT["detail"]["executionEndTime"])
        assert run.info.status == "FINISHED" and run.info.end_time == ended.timestamp() * 1000
        assert {k: run.data.tags[k] for k in ("mlops.execution_status", "mlops.outcome.QualityGate",
                "mlops.parameter.QualityGateThreshold", "mlops.model_package_arn")} == {
            "mlops.execution_status": "Succeeded", "mlops.outcome.QualityGate": "True",
            "mlops.parameter.QualityGateThreshold": "60", "mlops.model_package_arn": package,
        }  # fmt: skip
        assert [m.value for m in client.get_metric_history(parent, "execution_seconds")] == [720]
        assert client.get_run(stopped_trial).info.status == "KILLED"  # it never finished
        assert client.get_run(other).info.status == "RUNNING"  # another execution's run is not touched


def test_the_recorder_ignores_other_pipelines_running_executions_and_executions_without_a_parent(
    tmp_path: Path,
) -> None:
    """Each answer says why; none writes to MLflow. Another pipeline's event makes no AWS call."""
    from mlflow import MlflowClient

    from mlflow_bridge.execution_runs import ExecutionRecorder

    arn = EXECUTION_EVENT["detail"]["pipelineExecutionArn"]
    with TrackingServer(
        f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", log_file=tmp_path / "log"
    ) as server:
        client = MlflowClient(server.uri)
        client.create_experiment("diabetes-regression")
        sm = boto3.client("sagemaker", region_name="us-east-1")
        stubber = Stubber(sm)
        # nothing is listed for a running execution, nor for one without a parent run
        _sagemaker_answers(stubber, arn, "Executing", "", listed=False)
        _sagemaker_answers(stubber, arn, "Failed", "", listed=False)
        stubber.activate()
        recorder = ExecutionRecorder(sm, client, "diabetes-regression", ["diabetes-regression"])
        other = arn.replace("pipeline/diabetes-regression/", "pipeline/churn/")
        assert recorder.record(other) == {
            "status": "ignored", "reason": "pipeline 'churn' is not one of diabetes-regression"}  # fmt: skip
        assert recorder.record(arn) == {"status": "ignored", "reason": "the execution is Executing, not ended"}
        answer = recorder.record(arn)
        assert answer["status"] == "ignored" and "no MLflow parent run of" in answer["reason"]
        assert "every step cached" in answer["reason"]
        stubber.assert_no_pending_responses()
        assert client.search_runs([client.get_experiment_by_name("diabetes-regression").experiment_id]) == []


def test_the_scripts_tag_runs_with_the_contracts_keys() -> None:
    """execution_run.py runs in the job image and cannot import the bridge's contract: kept equal here."""
    from mlflow_bridge.contract import ExecutionRunTags

    assert (execution_run.EXECUTION_TAG, execution_run.PARENT_TAG) == (ExecutionRunTags.EXECUTION,
                                                                       ExecutionRunTags.PARENT)  # fmt: skip


def test_a_trial_finds_its_tuning_run_in_one_search_and_in_two_when_the_page_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new trial searches the tuning job's runs once for both its own earlier run (none
    here) and the tuning step's run; when the page may not hold them all (a next-page token)
    it searches for each instead. Either way its run is nested under the tuning run."""
    import importlib

    from mlflow.store.entities.paged_list import PagedList

    from pipeline.job_scripts import SCRIPTS_DIR

    monkeypatch.syspath_prepend(str(SCRIPTS_DIR))
    tracking_module = importlib.import_module("tracking")
    tuning = _Run("tuning-run", 1, {execution_run.TUNING_RUN_TAG: "tj", "sagemaker.tuning_job_name": "tj"})

    class Server:
        tracking_uri = "http://127.0.0.1:1"

        def __init__(self, token: str | None) -> None:
            self.token, self.filters, self.created = token, [], {}

        def search_runs(self, experiments: list[str], filter_string: str, max_results: int) -> PagedList[_Run]:
            self.filters.append(filter_string)
            if "sagemaker.job_name" in filter_string:
                return PagedList([], None)
            return PagedList([tuning], self.token if "tuning_job_name" in filter_string else None)

        def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> Any:
            self.created = tags
            return _Run("trial-run", 2)

        def set_terminated(self, *args: Any) -> None:
            pass

    for token, searches in ((None, 1), ("page-2", 3)):
        server = Server(token)
        tracking = tracking_module.Tracking(server, "fail", experiment_id="1")
        with tracking.run(run_name="t", tags={"sagemaker.job_name": "j", "sagemaker.tuning_job_name": "tj"},
                          resume_key="sagemaker.job_name") as run_id:  # fmt: skip
            assert run_id == "trial-run"
        assert len(server.filters) == searches, server.filters
        assert server.created[execution_run.PARENT_RUN_TAG] == "tuning-run"
