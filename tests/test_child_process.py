"""Waiting for a child server to answer, and stopping it with what it forked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.child_process import NotAnswering, free_port, stop_group, wait_until_answers


def test_a_server_that_answers_is_waited_for_and_stopped_with_its_group() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/", 30, server)
    finally:
        stop_group(server)
    assert server.poll() is not None


def test_a_server_that_exits_is_reported_at_once_and_one_that_never_answers_in_time() -> None:
    crashed = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], start_new_session=True)
    crashed.wait(timeout=30)
    with pytest.raises(NotAnswering, match="exited with code 3"):
        wait_until_answers(f"http://127.0.0.1:{free_port()}/", 30, crashed)
    with pytest.raises(NotAnswering, match=r"did not answer within 0\.5 s"):
        wait_until_answers(f"http://127.0.0.1:{free_port()}/", 0.5)
