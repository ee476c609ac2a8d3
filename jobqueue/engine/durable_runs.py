"""The drain's side of durable jobs: handing a task its ``job``, and learning
of cancels that reach jobs while they run.

A task that takes a ``job`` argument gets a Job handle (job_handle.py). The
drain looks for cancels once a second, in one query for the jobs it has run
that long, never per job or per tick, and only while such jobs run: a drain
of quick jobs never asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..errors import DurableError
from ..store import durable
from ..store.connection import Database
from ..tasks import registry
from .claimed import ClaimedJob
from .job_handle import AsyncJob, Job, Link

CANCEL_CHECK_EVERY = 1.0  # seconds between looks for cancels, per drain


def bind(
    job: ClaimedJob, definition: registry.Task, worker: str, db: Database, settings: Settings
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The task's function and arguments with its Job handle added (kept on
    ``job.handle`` for the cancel watch); the last progress is written before
    the run ends, however it ends."""
    payload = job.payload
    if "job" in payload:
        raise DurableError("the payload has a field named 'job', which the task's job argument takes")
    kind = AsyncJob if definition.is_async else Job
    handle = kind(
        str(job.id), job.attempt, worker, task=job.name, queue=job.queue, link=Link.to(db),
        max_value_bytes=settings.max_body_bytes,
    )  # fmt: skip
    job.handle = handle
    func = definition.func
    if definition.is_async:

        async def run_async(**kwargs: Any) -> Any:
            try:
                return await func(**kwargs, job=handle)
            finally:
                await asyncio.to_thread(handle.flush_progress)

        return run_async, payload

    def run(**kwargs: Any) -> Any:
        try:
            return func(**kwargs, job=handle)
        finally:
            handle.flush_progress()

    return run, payload


class CancelWatch:
    """When the drain next looks for cancels, and which of its jobs to ask about."""

    def __init__(self) -> None:
        self.check_at = 0.0

    def due(self, now: float, running: dict[Any, ClaimedJob]) -> list[ClaimedJob]:
        """The running jobs to ask about now: those that have run a second or
        more (a quicker job ends before a look would help), once a second."""
        if now < self.check_at or not running:
            return []
        self.check_at = now + CANCEL_CHECK_EVERY
        return [job for job in running.values() if now - job.started >= CANCEL_CHECK_EVERY]

    @staticmethod
    def cancelled(db: Database, jobs: list[ClaimedJob]) -> list[ClaimedJob]:
        """Of ``jobs``, those a cancel has reached; each handle is told at once."""
        asked = durable.cancels_requested(db, [str(job.id) for job in jobs])
        hit = [job for job in jobs if str(job.id) in asked]
        for job in hit:
            if job.handle is not None:
                job.handle.request_cancel()
            if job.stop is not None:
                job.stop()  # an async task: CancelledError at its next await
        return hit
