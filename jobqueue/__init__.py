"""jobqueue: a background-job queue for AWS Lambda on PostgreSQL.

The public API for Python code: ``@task``, ``enqueue``, ``enqueue_many``,
``wake``, ``periodic``, ``Job`` (a durable task's handle), and the
exceptions a task may raise (``Permanent``, ``Snooze``, ``Cancelled``) or
meet (``JobTimeout``, ``WaitTimeout``). Everything else
is the house below (tasks, store, engine, actions, events), which never
imports this module: only applications do.
"""

from __future__ import annotations

from typing import Any

from .errors import Cancelled, JobTimeout, Permanent, Snooze, WaitTimeout
from .tasks.registry import task
from .tasks.spec import JobSpec
from .version import VERSION as __version__  # noqa: F401 - the release, as jobqueue.__version__

__all__ = [
    "Cancelled",
    "Job",
    "JobSpec",
    "JobTimeout",
    "Permanent",
    "Snooze",
    "WaitTimeout",
    "enqueue",
    "enqueue_many",
    "periodic",
    "task",
    "wake",
]


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
    from .store import connection, jobs

    database = conn or connection.default()
    if "depends_on" in options or "on_parent_failure" in options:  # a workflow's job: blocked until its parents end
        from .actions import workflows

        body, created = workflows.submit(database, {"task": task_name, "payload": payload or {}, **options})
        return body["job"]
    job, created = jobs.enqueue(database, JobSpec(task_name, payload or {}, **options))
    if wake and conn is None and created:
        from .engine.wake import after_submit

        after_submit(database, [job], settings=_settings())
    return job


def wake() -> bool:
    """Start a drain now if none is running (see ``enqueue(wake=True)``); True when one was started."""
    from .engine.wake import wake as start
    from .store import connection

    return start(connection.default(), settings=_settings())


def _settings() -> Any:
    from .config import Settings
    from .engine import invocation

    return invocation.settings() or Settings.from_env()


def __getattr__(name: str) -> Any:
    # jobqueue.periodic, imported on first use: cold starts of deployments
    # without schedules skip the cron code.
    if name == "periodic":
        from .tasks.periodic import periodic

        return periodic
    if name == "Job":  # for type hints in durable tasks; the drain makes the handles
        from .engine.job_handle import Job

        return Job
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def enqueue_many(specs: list[JobSpec], *, conn: Any = None) -> list[dict[str, Any]]:
    """Submit a batch in one statement, all or nothing."""
    from .store import connection, jobs

    return jobs.enqueue_many(conn or connection.default(), specs)
