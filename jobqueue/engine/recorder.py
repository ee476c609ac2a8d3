"""What a finished job becomes: its counts in the drain's report, its log line,
and its outcome waiting in Outcomes to be written with its batch.

A result that cannot be stored as JSON, or is over JOBQUEUE_MAX_RESULT_BYTES
of it, fails its own job for good, never the batch's write nor the job's
reading back; a failure is retried with backoff, or final when the job is out
of attempts or raised Permanent.
"""

from __future__ import annotations

import json
from typing import Any

from .. import log
from ..config import Settings
from ..errors import Cancelled, JobTimeout, LeaseLost, Permanent, ResultTooLarge, Snooze, Suspended
from ..rules import MAX_DELAY_SECONDS
from . import failures
from .claimed import ClaimedJob
from .outcomes import Outcomes
from .report import DrainReport

# How a run may end besides a result or a failure.
DURABLE_ENDS = (Suspended, LeaseLost, Snooze, Cancelled)


class Recorder:
    def __init__(self, report: DrainReport, outcomes: Outcomes, settings: Settings) -> None:
        self.report = report
        self.outcomes = outcomes
        self.settings = settings
        self.logging_jobs = log.enabled("INFO")

    def record(
        self, job: ClaimedJob, result: Any, error: BaseException | None, seconds: float, *, urgent: bool
    ) -> None:
        """``urgent``: write it at once (its queue has a concurrency limit that it holds)."""
        stats = self.report.of(job.queue)
        stats.processed += 1
        stats.durations.append(seconds)
        if job.waited is not None:
            stats.waits.append(job.waited)
        self.report.processed += 1
        if error is None:
            result_json = None if result is None else failures.result_json(result)
            # The JSON text is made anyway: measuring it is a length for a usual result.
            size = None if result_json is None else failures.oversized(result_json, self.settings.max_result_bytes)
            if size is None and (result is None or result_json is not None):
                self.outcomes.succeeded(job.id, job.attempt, result_json, job.lease_end, urgent, seconds)
                self.report.succeeded += 1
                stats.succeeded += 1
                if self.logging_jobs:
                    log.info(
                        "job",
                        job_id=str(job.id),
                        task=job.name,
                        attempt=job.attempt,
                        outcome="succeeded",
                        duration_ms=round(seconds * 1000, 3),
                    )
                return
            # The same code would return the same value: retrying cannot help, the
            # whole batch's write must not fail on one job's result, and no job may
            # hold a result too large to be read back.
            if size is None:
                error = TypeError(f"the task's result ({type(result).__name__}) is not storable JSON")
            else:
                error = ResultTooLarge(size, self.settings.max_result_bytes)
            final = True
        elif isinstance(error, DURABLE_ENDS):
            self._durable_end(job, error, seconds)
            return
        else:
            final = job.attempt >= job.max_attempts or isinstance(error, Permanent)
        self._failed(job, error, final, seconds, urgent or isinstance(error, JobTimeout))

    def _durable_end(self, job: ClaimedJob, error: BaseException, seconds: float) -> None:
        """A run that ended as no plain job's does: suspended (already written
        by the job's handle), its job lost to another drain (nothing to
        write), cancelled or snoozed (written with the batch)."""
        if isinstance(error, Suspended):
            self.report.suspended += 1
            outcome = "suspended"
        elif isinstance(error, LeaseLost):
            outcome = "lease_lost"
        elif isinstance(error, Snooze):
            delay = error.seconds if isinstance(error.seconds, int | float) else 0.0
            delay = min(max(0.0, float(delay)), MAX_DELAY_SECONDS)
            self.outcomes.snoozed(job.id, job.attempt, delay, job.lease_end, seconds)
            self.report.snoozed += 1
            outcome = "snoozed"
        else:
            entry = json.dumps(failures.error_entry(error, job.attempt), default=str)
            self.outcomes.cancelled(job.id, job.attempt, entry, job.lease_end, seconds)
            self.report.cancelled += 1
            outcome = "cancelled"
        if self.logging_jobs:
            log.info("job", job_id=str(job.id), task=job.name, attempt=job.attempt, outcome=outcome,
                     duration_ms=round(seconds * 1000, 3))  # fmt: skip

    def _failed(self, job: ClaimedJob, exc: BaseException, final: bool, seconds: float, urgent: bool) -> None:
        settings = self.settings
        delay = 0.0 if final else failures.backoff(job.attempt, settings.retry_base_seconds, settings.retry_max_seconds)
        details = failures.error_entry(exc, job.attempt)
        entry = json.dumps(details, default=str)
        self.outcomes.failed(job.id, job.attempt, final, delay, entry, job.lease_end, urgent, seconds)
        stats = self.report.of(job.queue)
        if final:
            self.report.failed += 1
            stats.failed += 1
        else:
            self.report.retried += 1
            stats.retried += 1
        log.emit(
            "ERROR" if final else "WARNING",
            "job",
            job_id=str(job.id),
            task=job.name,
            attempt=job.attempt,
            outcome="failed" if final else "retry",
            error=f"{details['type']}: {details['message']}"[:500],
            retry_in=None if final else round(delay, 3),
            duration_ms=round(seconds * 1000, 3),
        )
