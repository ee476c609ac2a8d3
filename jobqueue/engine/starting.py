"""Starting the jobs a drain has claimed, each in its slot, and what follows
them: a result handed back, a thread past its deadline abandoned, a cancel
that reaches a running job (engine.drain.Drain holds the state named here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import log
from ..config import Settings
from ..errors import Cancelled, DatabaseUnavailable, DurableError, JobTimeout, UnknownTask
from ..store import connection
from ..tasks import registry
from . import durable_runs, pace
from .claimed import ClaimedJob, ClaimedJobs
from .execution import CANCEL_GRACE, Executor, Finished, call_async_here
from .invocation import RECORD_MARGIN
from .report import DrainReport
from .slots import Slots


class Starting:
    """The drain's starts (engine.drain.Drain holds the state named here)."""

    db: connection.Database
    settings: Settings
    worker: str
    slots: int
    deadline: float
    report: DrainReport
    executor: Executor
    waiting: ClaimedJobs
    running: dict[Any, ClaimedJob]
    held: Slots
    cancels: durable_runs.CancelWatch
    stopped: str | None
    call: Any
    _release_waiting: Callable[[], None]
    _renew: Callable[[float], None]
    _flush: Callable[[], bool]
    _record: Callable[[ClaimedJob, Any, BaseException | None, float], None]

    def _start_waiting(self) -> None:
        # Runs once per job: the waiting deque and the lease check are read
        # directly, without ClaimedJobs' wrappers (a no-op job costs a few µs).
        waiting, running = self.waiting, self.running
        jobs, lost = waiting.jobs, waiting.lost
        last_start = self.deadline - RECORD_MARGIN
        while jobs and len(running) < self.slots:
            job = jobs[0]
            now = time.monotonic()
            if now + job.timeout > last_start:
                self._release_waiting()
                self.stopped = "budget"
                return
            if job.lease_end < now + job.timeout + waiting.margin or now >= waiting.check_at:
                self._renew(now)
            if lost and job.id in lost:
                jobs.popleft()  # its lease ran out and another drain owns it now
                continue
            try:
                definition = registry.get(job.name)
            except UnknownTask as exc:
                jobs.popleft()
                self._record(job, None, exc, 0.0)
                continue
            if definition.alone and running:
                return  # it waits until it can run by itself
            if job.id not in self.held.written and not self._flush():
                return  # no job starts before the database knows it may be running
            jobs.popleft()
            self._start(job, definition, now)

    def _start(self, job: ClaimedJob, definition: registry.Task, now: float) -> None:
        func, payload, timeout = definition.func, job.payload, job.timeout
        job.started = now
        if definition.wants_job:
            try:
                func, payload = durable_runs.bind(job, definition, self.worker, self.db, self.settings)
            except DurableError as exc:
                self._record(job, None, exc, 0.0)
                return
        if job.waited is not None:  # from due to started: the claim's wait plus the time it waited for a slot
            job.waited = float(job.waited) + (now - job.claimed_at)
        inline = self.slots == 1 or definition.alone or job.alone
        if not inline and not definition.is_async:
            inline = pace.runs_inline(job.name)
        if inline:
            t0 = time.perf_counter()
            try:
                if definition.is_async:
                    result, error = call_async_here(func, payload, timeout), None
                else:
                    result, error = self.call(func, payload, timeout), None
            except KeyboardInterrupt:
                raise  # the operator stopping a local drain; the rest is given back, this job's lease runs out
            except BaseException as exc:  # noqa: BLE001 - SystemExit too: the job failed, not the drain
                result, error = None, exc
            self._record(job, result, error, time.perf_counter() - t0)
            return
        job.deadline = now + timeout + (CANCEL_GRACE if definition.is_async else 0.0)
        self.running[job.id] = job
        if definition.is_async:
            self.executor.start_async(job, func, payload, timeout)
        else:
            self.executor.start_thread(job, func, payload)

    def _finished(self, finished: Finished) -> None:
        job = finished.job
        if self.running.pop(job.id, None) is None:
            self.held.abandoned.discard(job.id)  # its thread has ended at last
            return  # abandoned at its deadline; this late result is not ours to write
        self._record(job, finished.result, finished.error, finished.seconds)

    def _expire(self, now: float) -> None:
        """Jobs on threads past their deadline: record the timeout now and let the thread be."""
        overdue = [job for job in self.running.values() if job.deadline <= now]
        for job in overdue:
            del self.running[job.id]
            self.held.abandoned.add(job.id)  # it may still crash the process: it stays in the slots
            self.report.abandoned += 1
            log.warning("job_abandoned", job_id=str(job.id), task=job.name, timeout_seconds=job.timeout)
            self._record(job, None, JobTimeout("job exceeded its timeout"), job.timeout)

    def _check_cancels(self, now: float) -> None:
        """Jobs a cancel reached while they run: told (a durable job's handle,
        an async task's CancelledError), recorded cancelled now, and left to
        end on their own; whatever they return later is dropped."""
        asked = self.cancels.due(now, self.running)
        if not asked:
            return
        try:
            hit = self.cancels.cancelled(self.db, asked)
        except DatabaseUnavailable:
            return  # looked for again in a second
        for job in hit:
            del self.running[job.id]
            self.held.abandoned.add(job.id)
            log.info("job_cancelled", job_id=str(job.id), task=job.name, attempt=job.attempt)
            self._record(job, None, Cancelled("cancelled while it ran (POST /jobs/{id}/cancel)"), now - job.started)
