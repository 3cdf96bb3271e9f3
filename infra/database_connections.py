"""How many MySQL connections each MLflow server process may keep open.

Every server worker holds two SQLAlchemy pools (tracking store and auth store). Too small
a pool makes bursts of requests reconnect (TLS and MySQL auth per request: +45% server CPU
under 16 concurrent trials, bench/tracking_load.py); too large, and the tasks the service
scales out to exhaust the database's `max_connections`. Pure, so it is unit-tested.
"""

from __future__ import annotations

__all__ = ["max_connections", "pool_size"]

# RDS MySQL's default parameter group: max_connections = {DBInstanceClassMemory/12582880}.
_BYTES_PER_CONNECTION = 12_582_880
# Memory by size for the burstable and general-purpose classes (t3, t4g, m5, m6g, m7g);
# memory-optimised classes (r*) have twice as much.
_GIB_BY_SIZE = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64}
_OS_SHARE = 0.9  # DBInstanceClassMemory excludes what the OS and RDS processes reserve
_HEADROOM = 0.8  # leave a fifth for migrations, admins and deployments (old and new tasks overlap)
_STORES_PER_WORKER = 2
POOL_CEILING = 16  # enough for every request a worker has in flight under 16 concurrent trials
POOL_FLOOR = 5  # SQLAlchemy's own default; used when the class is not in the table


def max_connections(instance_type: str) -> int | None:
    """RDS MySQL's default max_connections for an instance class such as `t4g.small`."""
    family, _, size = instance_type.removeprefix("db.").partition(".")
    gib = _GIB_BY_SIZE.get(size)
    if gib is None or not family:
        return None
    if family.startswith("r"):
        gib *= 2
    return int(gib * 2**30 * _OS_SHARE / _BYTES_PER_CONNECTION)


def pool_size(instance_type: str, max_tasks: int, workers: int) -> int:
    """Connections each pool keeps (and may add again as overflow) so that every pool of
    every worker of `max_tasks` tasks fits in the database's budget."""
    limit = max_connections(instance_type)
    if limit is None:
        return POOL_FLOOR
    per_pool = int(limit * _HEADROOM) // (max_tasks * workers * _STORES_PER_WORKER)
    return max(2, min(POOL_CEILING, per_pool))
