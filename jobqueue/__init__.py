"""jobqueue: a background-job queue for AWS Lambda on PostgreSQL."""

from __future__ import annotations

from typing import Any

from .errors import JobTimeout, Permanent
from .spec import JobSpec
from .tasks import task

__all__ = ["JobSpec", "JobTimeout", "Permanent", "enqueue", "enqueue_many", "periodic", "task"]
__version__ = "0.1.0"


def enqueue(
    task_name: str, payload: dict[str, Any] | None = None, *, conn: Any = None, **options: Any
) -> dict[str, Any]:
    """Submit one job from Python code; pass ``conn`` (a pg8000 native connection)
    to make it part of your own transaction. Options are the POST /jobs fields."""
    from . import db, queue

    job, _ = queue.enqueue(conn or db.default(), JobSpec(task_name, payload or {}, **options))
    return job


def __getattr__(name: str) -> Any:
    # jobqueue.periodic, imported on first use: cold starts of deployments
    # without schedules skip the cron code.
    if name == "periodic":
        from .schedules import periodic

        return periodic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def enqueue_many(specs: list[JobSpec], *, conn: Any = None) -> list[dict[str, Any]]:
    """Submit a batch in one statement, all or nothing."""
    from . import db, queue

    return queue.enqueue_many(conn or db.default(), specs)
