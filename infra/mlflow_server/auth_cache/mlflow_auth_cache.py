"""MLflow's basic-auth app with a short, bounded cache in front of its permission lookups.

`mlflow server --app-name basic-auth` checks every request against the auth store: the
user (is it an admin?), the run's experiment (a full GetRun for a run-scoped call such as
log_batch) and the user's grants. Under a tuning load that is 3-4 database queries per
call, more than many calls cost themselves (bench/tracking_load.py). This app is that same
app (`mlflow.server.auth.create_app`) with each of those lookups cached per worker process
for at most MLFLOW_AUTH_PERMISSION_CACHE_SECONDS (default 30; 0 turns the cache off),
as API Gateway bounds its authorizer cache (its TTL, default 300 s):

- users (`store.get_user`: the admin flag, the id grants hang on);
- grants (`resolve_permissions`, by user, workspace and the resource keys asked about);
- a run's experiment (`_run_requirement`, by run id and action).

So a revoked permission, a user made or unmade admin, or a deleted run is honoured by
every worker within that bound; a new grant, likewise. Password checks keep MLflow's own
cache (`auth_cache_ttl_seconds`). Only MLflow's functions of these names are wrapped; a
future MLflow without them fails at start, not silently.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache

__all__ = ["CACHE_SECONDS_VARIABLE", "cached", "create_app"]

CACHE_SECONDS_VARIABLE = "MLFLOW_AUTH_PERMISSION_CACHE_SECONDS"
_MISSING = object()


def cached(function: Callable[..., Any], seconds: float, key: Callable[..., Hashable]) -> Callable[..., Any]:
    """`function` with its answers kept for `seconds` (per process, at most 10,000);
    exceptions are not cached. Thread-safe: uvicorn serves Flask from a thread pool."""
    cache: TTLCache[Hashable, Any] = TTLCache(maxsize=10_000, ttl=seconds)
    lock = threading.Lock()

    def wrapper(*args: Any) -> Any:
        entry = key(*args)
        with lock:
            value = cache.get(entry, _MISSING)
        if value is _MISSING:
            value = function(*args)
            with lock:
                cache[entry] = value
        return value

    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    return wrapper


def _install(seconds: float) -> None:
    from mlflow.server import auth

    auth.store.get_user = cached(auth.store.get_user, seconds, lambda username: username)
    auth.resolve_permissions = cached(
        auth.resolve_permissions, seconds, lambda username, workspace, keys: (username, workspace, tuple(keys))
    )
    auth._run_requirement = cached(auth._run_requirement, seconds, lambda run_id, action: (run_id, action))


def create_app(app: Any = None) -> Any:
    """The basic-auth app, its lookups cached (see the module's docstring)."""
    from mlflow.server import auth

    flask_app = auth.create_app() if app is None else auth.create_app(app)
    seconds = float(os.environ.get(CACHE_SECONDS_VARIABLE, "30"))
    if seconds < 0 or seconds > 300:
        raise ValueError(f"{CACHE_SECONDS_VARIABLE} must be between 0 and 300 seconds, not {seconds:g}")
    if seconds:
        _install(seconds)
    return flask_app
