"""One workspace, many commands (issue #20): two commands that each start their own
registry emulator and register a model at the same time get two package versions, both
journaled, instead of two `.../group/1`. Each emulator is a moto server process of its own,
as two `run --local` commands start them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.local.driver import sagemaker_client
from pipeline.local.registry import LocalRegistry, journal_has


@pytest.fixture
def two_emulators(tmp_path: Path) -> Iterator[tuple[str, str]]:
    from pipeline.local.services import _kill, _start_moto

    started = [_start_moto(tmp_path / f"moto-{i}.log") for i in range(2)]
    try:
        yield started[0][0], started[1][0]
    finally:
        for _, pid in started:
            _kill(pid)


def request(model: str) -> dict:
    return {
        "ModelPackageGroupName": "churn", "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
                            "ModelDataUrl": f"s3://b/models/{model}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
    }  # fmt: skip


def test_two_commands_register_two_versions_in_one_journal(tmp_path: Path, two_emulators: tuple[str, str]) -> None:
    journal = tmp_path / "registry.json"
    registries = [LocalRegistry(lambda e=e: sagemaker_client(e, "us-east-1"), journal) for e in two_emulators]
    for registry in registries:
        registry.client.list_model_package_groups()  # both emulators up before either registers
    arns: dict[str, str] = {}
    threads = [threading.Thread(target=lambda r=r, m=m: arns.__setitem__(m, r.register(request(m))))
               for r, m in zip(registries, ("model-a", "model-b"), strict=True)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(arn.rsplit("/", 1)[1] for arn in arns.values()) == ["1", "2"], arns
    assert all(journal_has(journal, arn) for arn in arns.values())
    journaled = {e["arn"]: e["request"]["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
                 for e in json.loads(journal.read_text())}  # fmt: skip
    assert {arn: journaled[arn] for arn in arns.values()} == {
        arn: f"s3://b/models/{model}/model.tar.gz" for model, arn in arns.items()
    }  # each version is the model that registered it
    # the emulator that registered first takes in the other's version before its next one
    third = registries[0].register(request("model-c"))
    assert third.endswith("/3") and len(json.loads(journal.read_text())) == 3


def test_a_kept_model_server_replaced_by_a_later_command_is_stopped_and_local_down_stops_the_rest(
    tmp_path: Path,
) -> None:
    """Two `--keep-services` commands each leave a server for the production endpoint: the
    first is stopped when the second is recorded (it no longer is the endpoint), and
    `local-down` stops every server the record holds, so none is orphaned."""
    import subprocess
    import sys

    from pipeline.child_process import free_port, wait_until_answers
    from pipeline.local.services import remember_process, stop_services

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "ping").write_text("ok")  # answers GET /ping with 200, as a model server does

    def server() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        site = str(tmp_path / "site")
        process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", site],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until_answers(f"http://127.0.0.1:{port}/ping", 30, process)
        return process, f"http://127.0.0.1:{port}"

    (first, first_url), (second, second_url), (staging, staging_url) = server(), server(), server()
    try:
        remember_process(tmp_path, "serving-production", first.pid, first_url)
        remember_process(tmp_path, "serving-staging", staging.pid, staging_url)
        remember_process(tmp_path, "serving-production", second.pid, second_url)
        assert first.wait(timeout=10) != 0  # stopped by the second command's record
        assert second.poll() is None and staging.poll() is None
        record = json.loads((tmp_path / "services.json").read_text())
        assert record["serving-production_pid"] == second.pid and record["serving-production_url"] == second_url
        # a recorded server that no longer answers (a reboot: its pid may be anyone's) is not signalled
        remember_process(tmp_path, "serving-qa", 2**22 - 1, "http://127.0.0.1:1")
        remember_process(tmp_path, "serving-qa", staging.pid, staging_url)
        assert staging.poll() is None

        assert stop_services(tmp_path) == ["serving-production", "serving-qa", "serving-staging"]
        assert second.wait(timeout=10) != 0 and staging.wait(timeout=10) != 0
        assert not (tmp_path / "services.json").exists()
    finally:
        for process in (first, second, staging):
            process.kill()
            process.wait()
