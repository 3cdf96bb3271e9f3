"""The MLflow server container's entrypoint, run on this host (no Docker) against MariaDB
and an S3 endpoint, as the container test and `bench/tracking_load.py` both start it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.child_process import path_with_venv
from pipeline.tracking_server import wait_healthy
from tests.tracking_fixtures import MARIADB

__all__ = [
    "ENTRYPOINT",
    "entrypoint_env",
    "mariadb_service_user",
    "running_entrypoint",
    "server_certificate",
    "server_uri",
]

ENTRYPOINT = Path(__file__).resolve().parents[1] / "infra" / "mlflow_server" / "entrypoint.sh"


@contextmanager
def mariadb_service_user(password: str, prefix: str = "mlflow") -> Iterator[tuple[str, str]]:
    """(user, tracking database): a non-root user allowed the database and its `_auth`
    twin, which the entrypoint creates as it does on RDS. Both and the user are dropped."""
    import pymysql

    user, database = f"{prefix}_{uuid.uuid4().hex[:6]}", f"{prefix}_srv_{uuid.uuid4().hex[:8]}"
    connection = pymysql.connect(**MARIADB, autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
            for name in (database, f"{database}_auth"):
                cursor.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'127.0.0.1'")
        yield user, database
    finally:
        with connection.cursor() as cursor:
            for name in (database, f"{database}_auth"):
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        connection.close()


def entrypoint_env(
    *,
    home: Path,
    port: int,
    workers: int,
    database: tuple[str, str, str],
    artifacts: str,
    s3_endpoint: str,
    admin_password: str,
    service_users: dict[str, str],
    model_managers: dict[str, list[str]] | None = None,
    tls: bool = False,
) -> dict[str, str]:
    """What ECS gives the container (`database` is user, password, name; the secrets as
    ECS secrets would inject them), over this shell's environment minus its MLflow settings.
    `tls`: the server speaks HTTPS with the certificate it makes at start (`server_uri`,
    `server_certificate`), as its tasks do behind the load balancer."""
    user, password, name = database
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "PATH": path_with_venv(os.environ["PATH"]),
        "HOME": str(home),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": str(workers),
        "DB_HOST": "127.0.0.1",
        "DB_PORT": "3306",
        "DB_NAME": name,
        "DB_USERNAME": user,
        "DB_PASSWORD": password,
        "ARTIFACTS_DESTINATION": artifacts,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex,
        **{
            f"MLFLOW_USER_SECRET_{username.upper()}": json.dumps({"username": username, "password": secret})
            for username, secret in service_users.items()
        },
        "MLFLOW_REGISTERED_MODEL_MANAGERS": json.dumps(model_managers or {}),
        "SERVER_TLS": "self_signed" if tls else "none",
        "SERVER_TLS_DIR": str(home / "tls"),
    }


def server_uri(env: dict[str, str]) -> str:
    scheme = "http" if env["SERVER_TLS"] == "none" else "https"
    return f"{scheme}://127.0.0.1:{env['PORT']}"


def server_certificate(env: dict[str, str]) -> str | None:
    """The PEM a client trusts for a TLS server (MLFLOW_TRACKING_SERVER_CERT_PATH)."""
    return None if env["SERVER_TLS"] == "none" else str(Path(env["SERVER_TLS_DIR"]) / "cert.pem")


@contextmanager
def running_entrypoint(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The entrypoint in its own session (the server forks workers), healthy, then stopped."""
    with log.open("wb") as handle:
        process = subprocess.Popen(
            ["bash", str(ENTRYPOINT)], env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_healthy(server_uri(env), timeout=180, process=process, cafile=server_certificate(env))
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
