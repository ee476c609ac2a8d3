"""Actions about the deployment as a whole: counts, health, the schema, the
periodic schedules, and pruning finished jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import cache

from ..config import Settings
from ..errors import DatabaseUnavailable, JobQueueError
from ..store import queues, upkeep
from ..store.connection import Database, Runner
from .jobs import Body


class SchemaNotReady(DatabaseUnavailable):
    """The database answers but its schema is missing or behind (run the migrate action)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public_message = message


def stats(db: Database | Runner) -> Body:
    return {"status": "ok", "stats": queues.stats(db)}


@cache
def _latest_version() -> int:
    from ..store.schema import latest_version

    return latest_version()


# How long a deep health check's answer, good or bad, stands for the container
# that made it: a flood of health checks costs one query per container per
# HEALTH_TTL_SECONDS, and a monitor polling every few seconds still sees news.
HEALTH_TTL_SECONDS = 5.0

_last_health: tuple[object, float, Body | JobQueueError] | None = None


def health(db: Database | Runner, *, clock: Callable[[], float] | None = None) -> Body:
    """The deep check (check_health), answered from this container's last one on
    the same database while it is under HEALTH_TTL_SECONDS old, a failure
    (database unreachable, schema not ready) as much as a success."""
    global _last_health
    now = (clock or time.monotonic)()
    last = _last_health
    if last is not None and last[0] is db and now < last[1]:
        outcome = last[2]
    else:
        try:
            outcome = check_health(db)
        except JobQueueError as exc:
            outcome = exc
        _last_health = (db, now + HEALTH_TTL_SECONDS, outcome)
    if isinstance(outcome, JobQueueError):
        raise outcome.with_traceback(None)  # not its first raise's frames again, and again
    return dict(outcome)


def check_health(db: Database | Runner) -> Body:
    """Ok only when the database answers and its schema is the one this code expects."""
    from ..store.schema import schema_version

    version = schema_version(db)
    if version is None:
        raise SchemaNotReady("the database has no jobqueue schema; run the migrate action")
    expected = _latest_version()
    if version < expected:
        raise SchemaNotReady(f"the database schema is at version {version}, this code needs {expected}; run migrate")
    return {"status": "ok", "database": "ok", "schema_version": version}


def migrate(db: Database | Runner) -> Body:
    """Apply pending migrations (how a database inside a VPC gets its schema)."""
    from ..store import schema

    applied = schema.migrate(db)
    return {"status": "ok", "applied": applied, "schema_version": schema.schema_version(db)}


def list_schedules(db: Database, *, now: datetime | None = None) -> Body:
    """Every periodic schedule this deployment declares, with its last and next run."""
    from ..engine import periodic_enqueuer

    return {"status": "ok", "schedules": periodic_enqueuer.listing(db, now)}


def prune(db: Database | Runner, older_than_days: float | None, settings: Settings) -> Body:
    """Delete finished jobs older than the retention, in bounded batches, so a
    large backlog never holds one long lock."""
    days = settings.retention_days if older_than_days is None else older_than_days
    total = 0
    while pruned := upkeep.prune(db, days * 86400):
        total += pruned
    return {"status": "ok", "pruned": total, "older_than_days": days}
