"""Shared fixtures: no real AWS, ever; moto on loopback where AWS is needed."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "config" / "pipeline.yaml"


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host in {"localhost"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname: resolving it would already leave the machine


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: sockets may only connect to 127.0.0.0/8. A call to real AWS fails loudly."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise ConnectionRefusedError(f"test blocked a connection to {address!r} (only loopback is allowed)")
        return real_connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise socket.gaierror(f"test blocked name resolution of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server on loopback for the session (state reset per test by `aws`)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point boto3 at the moto server, with a clean state and the default bucket made."""
    import boto3
    import requests

    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text())
    bucket = cfg["aws"]["default_bucket"].split(":-")[1].rstrip("}")
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    yield moto_endpoint


def default_raw_config() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a (modified) config tree to a file and return its path."""

    def write(tree: dict[str, Any] | str, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        path.write_text(tree if isinstance(tree, str) else yaml.safe_dump(tree, sort_keys=False))
        return path

    return write


def graphviz_available() -> bool:
    """Whether Graphviz's `dot` is here to draw pictures. `make test` installs it where it can
    (root with apt); elsewhere the picture checks skip, saying so, unless
    MLOPS_REQUIRE_GRAPHVIZ is set (`.ci/run` sets it), which makes its absence a failure."""
    if shutil.which("dot"):
        return True
    if os.environ.get("MLOPS_REQUIRE_GRAPHVIZ"):
        pytest.fail("Graphviz's dot is not installed and MLOPS_REQUIRE_GRAPHVIZ requires it (apt-get install graphviz)")
    return False


def needs_graphviz() -> None:
    """Skip the rest of a test that draws a picture when `dot` is missing (see graphviz_available)."""
    if not graphviz_available():
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz): the picture is not checked")
