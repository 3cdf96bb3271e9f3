#!/bin/bash
# Start the MLflow server with basic auth. Credentials arrive as environment variables
# (ECS secrets) and are assembled here into environment variables and a config file:
# never a command-line argument, so `ps` and the task definition show none of them.
#
# Required: DB_HOST, DB_NAME, DB_USERNAME, DB_PASSWORD, ARTIFACTS_DESTINATION,
#           MLFLOW_AUTH_ADMIN_PASSWORD, MLFLOW_FLASK_SERVER_SECRET_KEY
# Optional: DB_PORT (3306), PORT (5000), WORKERS (2), ALLOWED_HOSTS,
#           MLFLOW_USER_SECRET_<NAME> (non-admin users: {"username": ..., "password": ...}),
#           MLFLOW_REGISTERED_MODEL_MANAGERS ({"user": ["registered model", ...]}: MANAGE grants),
#           SERVER_TLS (self_signed: HTTPS with a certificate made at start, in $SERVER_TLS_DIR;
#           none: plain HTTP), TLS_NAMES (more names for that certificate, comma-separated)
set -euo pipefail

for name in DB_HOST DB_NAME DB_USERNAME DB_PASSWORD ARTIFACTS_DESTINATION \
            MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY; do
  if [ -z "${!name:-}" ]; then
    echo "entrypoint: $name is not set" >&2
    exit 2
  fi
done

here="$(cd "$(dirname "$0")" && pwd)"
export MLFLOW_AUTH_CONFIG_PATH="${MLFLOW_AUTH_CONFIG_PATH:-$HOME/basic_auth.ini}"
export SERVER_TLS="${SERVER_TLS:-self_signed}"
export SERVER_TLS_DIR="${SERVER_TLS_DIR:-$HOME/tls}"
# prepare.py creates the auth database, writes the auth config and the non-admin users,
# and prints the backend store URI (with the password) for this shell only.
MLFLOW_BACKEND_STORE_URI="$(python "$here/prepare.py")"
export MLFLOW_BACKEND_STORE_URI
export MLFLOW_ARTIFACTS_DESTINATION="$ARTIFACTS_DESTINATION"
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
# Keep a MySQL connection open for every request in flight (per worker and store: tracking
# and auth). With SQLAlchemy's default (5, plus 10 closed after each use) bursts of requests
# reconnect: under 16 concurrent trials the server spent 32 ms of CPU per call instead of 22
# (bench/tracking_load.py). The CDK app sizes both to the database and the number of tasks
# (infra/database_connections.py); 16 is for one server on its own database.
export MLFLOW_SQLALCHEMYSTORE_POOL_SIZE="${MLFLOW_SQLALCHEMYSTORE_POOL_SIZE:-16}"
export MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW="${MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW:-16}"
export MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE="${MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE:-3600}"
unset DB_PASSWORD
for name in $(compgen -v MLFLOW_USER_SECRET_ || true); do unset "$name"; done

allowed_hosts=()
if [ -n "${ALLOWED_HOSTS:-}" ]; then
  allowed_hosts=(--allowed-hosts "$ALLOWED_HOSTS")
fi
# A stopping task lets requests in flight finish, but not idle keep-alive clients hold it
# for ever (uvicorn waits for every connection by default; ECS kills after 30 s anyway).
uvicorn_opts="--timeout-graceful-shutdown 10"
if [ "$SERVER_TLS" = "self_signed" ]; then  # prepare.py wrote the key and certificate
  uvicorn_opts+=" --ssl-keyfile $SERVER_TLS_DIR/key.pem --ssl-certfile $SERVER_TLS_DIR/cert.pem"
fi
# basic-auth-cached: MLflow's basic auth with its user and permission lookups cached for at
# most MLFLOW_AUTH_PERMISSION_CACHE_SECONDS (auth_cache/mlflow_auth_cache.py).
exec mlflow server \
  --app-name basic-auth-cached \
  --host "${HOST:-0.0.0.0}" \
  --port "${PORT:-5000}" \
  --workers "${WORKERS:-2}" \
  --uvicorn-opts "$uvicorn_opts" \
  "${allowed_hosts[@]}"
