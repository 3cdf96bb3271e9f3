"""Real MLflow servers for tests: sqlite and MariaDB backends (never a mock)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.tracking_server import TrackingServer

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def mariadb_database() -> tuple[str, callable]:
    """Create a fresh utf8mb4 database; returns its SQLAlchemy URI and a drop function."""
    import pymysql

    name = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    connection = pymysql.connect(**MARIADB)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    connection.close()

    def drop() -> None:
        connection = pymysql.connect(**MARIADB)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()

    return f"mysql+pymysql://root@127.0.0.1:3306/{name}", drop


def start_server(backend: str, root: Path) -> tuple[TrackingServer, callable]:
    if backend == "sqlite":
        uri, cleanup = f"sqlite:///{root / 'mlflow.db'}", (lambda: None)
    elif backend == "mariadb":
        uri, cleanup = mariadb_database()
    else:
        raise ValueError(backend)
    server = TrackingServer(backend_store_uri=uri, artifacts_dir=root / "artifacts", log_file=root / "server.log")
    try:
        server.start(timeout=180)
    except Exception:
        cleanup()
        raise
    return server, cleanup


@pytest.fixture(scope="session", params=["sqlite", "mariadb"])
def tracking_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrackingServer]:
    server, cleanup = start_server(request.param, tmp_path_factory.mktemp(f"mlflow-{request.param}"))
    try:
        yield server
    finally:
        server.stop()
        cleanup()


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real MLflow model (y = x1 + x2) to log as a run's artifacts."""
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LinearRegression

    x = np.arange(20, dtype=float).reshape(10, 2)
    path = tmp_path_factory.mktemp("model") / "model"
    mlflow.sklearn.save_model(LinearRegression().fit(x, x.sum(axis=1)), str(path), pip_requirements=["scikit-learn"])
    return path
