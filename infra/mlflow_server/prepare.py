"""Runs before the MLflow server in its container (see entrypoint.sh).

Creates the auth database beside the tracking database (utf8mb4), writes the basic-auth
config, creates a non-admin user for every MLFLOW_USER_SECRET_* variable (each the JSON of
a Secrets Manager secret: {"username": ..., "password": ...}), and prints the backend
store URI on stdout for the entrypoint to export. Nothing secret is logged.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import quote_plus


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
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # PBKDF2 on every request costs more CPU than the request itself (p50 2.7 s under 16
        # concurrent trials without it). A password change or revocation reaches the other
        # workers within this TTL.
        f"auth_cache_ttl_seconds = {int(os.environ.get('AUTH_CACHE_TTL_SECONDS', '60'))}\n"
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


def migrate_and_create_users(
    auth_uri: str, users: dict[str, str], model_managers: dict[str, list[str]] | None = None
) -> None:
    """Migrate the auth database, create the missing users, and grant each model manager
    MANAGE on its registered models (an upsert, so every start converges on the grants).

    A grant names the model, not its creator's row, so it holds whoever creates the model
    and whenever (MLflow stores grants by name: mlflow.server.auth.sqlalchemy_store,
    grant_user_permission); without it, under `default_permission = READ`, a model someone
    else created first refuses the bridge's writes with 403 on every delivery."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    unique_foreign_key_names()
    store = SqlAlchemyStore()
    store.init_db(auth_uri)
    for name, password in users.items():
        if not store.has_user(name):
            store.create_user(name, password, is_admin=False)
            print(f"prepare: created MLflow user {name}", file=sys.stderr)
    for name, models in (model_managers or {}).items():
        for model in models:
            store.grant_user_permission(name, "registered_model", model, "MANAGE")
            print(f"prepare: MLflow user {name} manages registered model {model}", file=sys.stderr)


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
    users = {}
    for key, value in sorted(os.environ.items()):
        if key.startswith("MLFLOW_USER_SECRET_"):
            secret = json.loads(value)
            users[secret["username"]] = secret["password"]
    managers = model_managers(os.environ.get("MLFLOW_REGISTERED_MODEL_MANAGERS", ""))
    unknown = sorted(set(managers) - set(users))
    if unknown:
        raise SystemExit(f"prepare: MLFLOW_REGISTERED_MODEL_MANAGERS names users without a secret: {unknown}")
    migrate_and_create_users(auth_uri, users, managers)
    print(database_uri(tracking_db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
