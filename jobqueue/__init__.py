"""jobqueue: a background-job queue for AWS Lambda on PostgreSQL."""

from __future__ import annotations

from typing import Any

from .errors import JobTimeout, Permanent
from .spec import JobSpec
from .tasks import task

__all__ = ["JobSpec", "JobTimeout", "Permanent", "enqueue", "enqueue_many", "periodic", "task", "wake"]
__version__ = "0.1.0"


def enqueue(
    task_name: str, payload: dict[str, Any] | None = None, *, conn: Any = None, wake: bool = False, **options: Any
) -> dict[str, Any]:
    """Submit one job from Python code; pass ``conn`` (a pg8000 native connection)
    to make it part of your own transaction. Options are the POST /jobs fields.

    ``wake=True`` starts a drain at once when the job is due and none is
    running: the function invoked is the one running this code (inside a
    task or handler) or JOBQUEUE_FUNCTION (a name or ARN) elsewhere; it needs
    permission to invoke it. Inside your own transaction (``conn``) there is
    nothing to wake until you commit: call ``jobqueue.wake()`` after COMMIT.
    """
    from . import db, queue

    database = conn or db.default()
    job, created = queue.enqueue(database, JobSpec(task_name, payload or {}, **options))
    if wake and conn is None and created and job["run_at"] <= job["created_at"]:
        _wake(database)
    return job


def wake() -> bool:
    """Start a drain now if none is running (see ``enqueue(wake=True)``); True when one was started."""
    from . import db

    return _wake(db.default())


def _wake(database: Any) -> bool:
    from . import config, fanout, invocation

    return fanout.wake(database, settings=invocation.settings() or config.Settings.from_env())


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
