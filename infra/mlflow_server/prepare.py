"""Runs before the MLflow server in its container (see entrypoint.sh).

Creates the auth database beside the tracking database (utf8mb4), writes the basic-auth
config, converges the admin (MLFLOW_AUTH_ADMIN_PASSWORD) and a non-admin user for every
MLFLOW_USER_SECRET_* variable (each the JSON of a Secrets Manager secret: {"username": ...,
"password": ...}) on the secrets' current passwords, writes the task's own TLS certificate
(SERVER_TLS=self_signed, the default) and prints the backend store URI on stdout for the
entrypoint to export. Nothing secret is logged.

Rotation: MLflow's own start-up creates the admin only when missing and never changes a
password (mlflow.server.auth.create_admin_user), so without this a new password in a
secret never reached MLflow. Here every start sets each user's password to its secret's
current value (checked first, so an unchanged password is not rewritten); a new task
(ECS reads secrets at task start) therefore carries a rotation.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

if TYPE_CHECKING:
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

ADMIN_USERNAME = "admin"  # the config's admin_username; its password is MLFLOW_AUTH_ADMIN_PASSWORD


def database_uri(database: str) -> str:
    user = quote_plus(os.environ["DB_USERNAME"])
    password = quote_plus(os.environ["DB_PASSWORD"])
    host, port = os.environ["DB_HOST"], os.environ.get("DB_PORT", "3306")
    uri = f"mysql+pymysql://{user}:{password}@{host}:{port}/{database}?charset=utf8mb4"
    if os.environ.get("DB_SSL_CA"):  # RDS with require_secure_transport
        uri += f"&ssl_ca={quote_plus(os.environ['DB_SSL_CA'])}"
    return uri


def ensure_database(name: str) -> None:
    import pymysql

    connection = pymysql.connect(
        host=os.environ["DB_HOST"],
        port=int(os.environ.get("DB_PORT", "3306")),
        user=os.environ["DB_USERNAME"],
        password=os.environ["DB_PASSWORD"],
        ssl={"ca": os.environ["DB_SSL_CA"]} if os.environ.get("DB_SSL_CA") else None,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    finally:
        connection.close()


def write_auth_config(path: str, auth_uri: str) -> None:
    text = (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {auth_uri}\n"
        f"admin_username = {ADMIN_USERNAME}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # PBKDF2 on every request costs more CPU than the request itself (p50 2.7 s under 16
        # concurrent trials without it). A password change reaches the other workers within
        # this TTL, the same bound as the permission cache (auth_cache/mlflow_auth_cache.py).
        f"auth_cache_ttl_seconds = {int(os.environ.get('AUTH_CACHE_TTL_SECONDS', '30'))}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def unique_foreign_key_names() -> None:
    """mlflow/mlflow#9642 (open): the first auth migration names the foreign keys of two
    tables `fk_user_id`; MySQL and MariaDB need constraint names unique per database, so
    the migration fails on them. While this script runs the migrations, each such key is
    named after its table; the server then finds the schema at head and migrates nothing."""
    from alembic.operations import Operations
    from sqlalchemy import ForeignKeyConstraint

    original = Operations.create_table
    if getattr(original, "renames_fk_user_id", False):
        return

    def create_table(self: Operations, table_name: str, *columns: object, **kwargs: object) -> object:
        for item in columns:
            if isinstance(item, ForeignKeyConstraint) and item.name == "fk_user_id":
                item.name = f"fk_{table_name}_user_id"
        return original(self, table_name, *columns, **kwargs)

    create_table.renames_fk_user_id = True  # type: ignore[attr-defined]
    Operations.create_table = create_table  # type: ignore[method-assign]


@dataclass(frozen=True)
class Credentials:
    """One secret-backed MLflow user."""

    password: str
    is_admin: bool = False


def converge_user(store: SqlAlchemyStore, name: str, credentials: Credentials) -> str:
    """Create the user, or set its password and admin flag to the secret's; returns what
    changed ("created", "password updated", "unchanged", ...), never the password."""
    if not store.has_user(name, use_primary=True):
        store.create_user(name, credentials.password, is_admin=credentials.is_admin)
        return "created"
    changes = []
    if not store.authenticate_user(name, credentials.password, use_primary=True):
        store.update_user(name, password=credentials.password)
        changes.append("password updated")
    if store.get_user(name).is_admin != credentials.is_admin:
        store.update_user(name, is_admin=credentials.is_admin)
        changes.append("admin" if credentials.is_admin else "admin revoked")
    return ", ".join(changes) or "unchanged"


def migrate_and_create_users(
    auth_uri: str, users: dict[str, str | Credentials], model_managers: dict[str, list[str]] | None = None
) -> None:
    """Migrate the auth database, converge every user on its secret (a plain string is a
    non-admin's password), and grant each model manager MANAGE on its registered models
    (an upsert, so every start converges on the grants).

    A grant names the model, not its creator's row, so it holds whoever creates the model
    and whenever (MLflow stores grants by name: mlflow.server.auth.sqlalchemy_store,
    grant_user_permission); without it, under `default_permission = READ`, a model someone
    else created first refuses the bridge's writes with 403 on every delivery."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    unique_foreign_key_names()
    store = SqlAlchemyStore()
    store.init_db(auth_uri)
    for name, value in users.items():
        credentials = value if isinstance(value, Credentials) else Credentials(value)
        print(f"prepare: MLflow user {name}: {converge_user(store, name, credentials)}", file=sys.stderr)
    for name, models in (model_managers or {}).items():
        for model in models:
            store.grant_user_permission(name, "registered_model", model, "MANAGE")
            print(f"prepare: MLflow user {name} manages registered model {model}", file=sys.stderr)


def write_self_signed_certificate(folder: str, names: list[str], days: int = 397) -> tuple[str, str]:
    """A fresh key and self-signed certificate for the server's own TLS, made at each start
    (cert.pem, key.pem readable by this user only); returns their paths.

    The load balancer encrypts to its targets but does not verify their certificates
    (Elastic Load Balancing guide, "Target groups for your Application Load Balancers":
    "the load balancer ... does not validate the certificates"), so a certificate the task
    makes itself keeps basic-auth passwords encrypted on the hop behind the listener too.
    Clients that reach a task directly (the tests, the bench) trust cert.pem."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    alternative_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative_names.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    os.makedirs(folder, mode=0o700, exist_ok=True)
    cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    with open(cert_path, "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def model_managers(text: str) -> dict[str, list[str]]:
    """MLFLOW_REGISTERED_MODEL_MANAGERS: JSON {"user": ["registered model", ...]}."""
    value = json.loads(text or "{}")
    if not isinstance(value, dict) or not all(
        isinstance(models, list) and all(isinstance(m, str) and m for m in models) for models in value.values()
    ):
        raise SystemExit('prepare: MLFLOW_REGISTERED_MODEL_MANAGERS must be JSON {"user": ["model", ...]}')
    return value


def main() -> int:
    tracking_db = os.environ["DB_NAME"]
    auth_db = f"{tracking_db}_auth"
    ensure_database(tracking_db)
    ensure_database(auth_db)
    auth_uri = database_uri(auth_db)
    write_auth_config(os.environ["MLFLOW_AUTH_CONFIG_PATH"], auth_uri)
    users: dict[str, str | Credentials] = {
        ADMIN_USERNAME: Credentials(os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"], is_admin=True)
    }
    for key, value in sorted(os.environ.items()):
        if key.startswith("MLFLOW_USER_SECRET_"):
            secret = json.loads(value)
            if secret["username"] == ADMIN_USERNAME:
                raise SystemExit(f"prepare: {key} names the admin user; its password is MLFLOW_AUTH_ADMIN_PASSWORD")
            users[secret["username"]] = secret["password"]
    managers = model_managers(os.environ.get("MLFLOW_REGISTERED_MODEL_MANAGERS", ""))
    unknown = sorted(set(managers) - set(users))
    if unknown:
        raise SystemExit(f"prepare: MLFLOW_REGISTERED_MODEL_MANAGERS names users without a secret: {unknown}")
    migrate_and_create_users(auth_uri, users, managers)
    tls = os.environ.get("SERVER_TLS", "self_signed")
    if tls not in {"self_signed", "none"}:
        raise SystemExit(f"prepare: SERVER_TLS must be self_signed or none, not {tls!r}")
    if tls == "self_signed":
        names = [
            "localhost",
            "127.0.0.1",
            socket.gethostname(),
            *filter(None, os.environ.get("TLS_NAMES", "").split(",")),
        ]
        write_self_signed_certificate(os.environ["SERVER_TLS_DIR"], list(dict.fromkeys(names)))
        print("prepare: wrote a self-signed TLS certificate for this task", file=sys.stderr)
    print(database_uri(tracking_db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
