"""Outcomes waiting to be written, and writing them in batches that survive a
database restart, together with the drain's slots (the jobs it may be
running: what tells a dead drain's started jobs from its unstarted ones).

Every write is guarded by the attempt it belongs to (id, attempt, worker), so
writing an outcome twice, or late, changes nothing that is not its own. That
makes it safe to keep outcomes the database could not take and to send them
again, with backoff, for as long as the drain lasts: a restart of the server
costs a pause, not a re-run of every job that finished while it was down.

How late an outcome may be written is a trade: a drain killed before it
writes re-runs the job (a duplicate side effect), and a write costs a round
trip. The drain writes before a slot starts its next job unless the jobs
are so short that the write would cost more than 1/WRITE_FACTOR of their
run time (see rerun_seconds); the time writes take is measured here.
"""

from __future__ import annotations

import random
import time
from typing import Any

from .. import log
from ..errors import DatabaseUnavailable
from ..store import claims
from ..store.connection import Database

# Outcomes are written at least this often, and at once when a lease nears its end.
FLUSH_INTERVAL = 1.0
# Jobs may finish unwritten (and be re-run by a kill) for up to this many
# times what one write takes, within these bounds (seconds of their run time).
WRITE_FACTOR = 40
RERUN_MIN = 0.002
RERUN_MAX = 0.05
_write_seconds = 0.001  # how long a write takes here (learnt, carried across invocations)
LEASE_MARGIN = 2.0
MAX_PENDING = 500
RETRY_FIRST = 0.1
RETRY_MAX = 2.0


class Outcomes:
    """Successes and failures as the column arrays the outcome statements take."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.failures = 0  # consecutive failed writes
        self.retry_at = 0.0
        self._clear()

    def _clear(self) -> None:
        self.ok_ids: list[Any] = []
        self.ok_attempts: list[int] = []
        self.ok_results: list[str | None] = []
        self.bad_ids: list[Any] = []
        self.bad_attempts: list[int] = []
        self.bad_finals: list[bool] = []
        self.bad_delays: list[float] = []
        self.bad_errors: list[str] = []
        self.other_ids: list[Any] = []  # durable outcomes: cancelled, snoozed (rare; records made at once)
        self.other_records: list[str] = []
        self.since = 0.0
        self.seconds = 0.0  # the run time these outcomes stand for: what a kill now would re-run
        self.seconds_limit = rerun_seconds()  # written at once beyond this
        self.urgent_at = float("inf")  # when the earliest lease among these ends, less the margin

    def __len__(self) -> int:
        return len(self.ok_ids) + len(self.bad_ids) + len(self.other_ids)

    def ids(self) -> set[Any]:
        return {*self.ok_ids, *self.bad_ids, *self.other_ids}

    def _added(self, lease_end: float, urgent: bool, seconds: float) -> None:
        """Per job, so kept to a comparison or two (a clock read only when needed)."""
        self.seconds += seconds
        if urgent or self.seconds >= self.seconds_limit:
            self.urgent_at = time.monotonic()
        elif lease_end - LEASE_MARGIN < self.urgent_at:
            self.urgent_at = lease_end - LEASE_MARGIN

    def succeeded(
        self,
        job_id: Any,
        attempt: int,
        result: str | None,
        lease_end: float,
        urgent: bool = False,
        seconds: float = 0.0,
    ) -> None:
        if not self.ok_ids and not self.bad_ids:
            self.since = time.monotonic()
        self.ok_ids.append(job_id)
        self.ok_attempts.append(attempt)
        self.ok_results.append(result)
        self._added(lease_end, urgent, seconds)

    def failed(
        self,
        job_id: Any,
        attempt: int,
        final: bool,
        delay: float,
        error: str,
        lease_end: float,
        urgent: bool = False,
        seconds: float = 0.0,
    ) -> None:
        if not self.ok_ids and not self.bad_ids:
            self.since = time.monotonic()
        self.bad_ids.append(job_id)
        self.bad_attempts.append(attempt)
        self.bad_finals.append(final)
        self.bad_delays.append(delay)
        self.bad_errors.append(error)
        self._added(lease_end, urgent, seconds)

    def cancelled(self, job_id: Any, attempt: int, error: str, lease_end: float, seconds: float = 0.0) -> None:
        """The task raised Cancelled, or was stopped by a cancel: the job ends cancelled."""
        self._other(job_id, claims.attempt_records(self.worker, [job_id], [attempt], c=["true"], e=[error]))
        self._added(lease_end, True, seconds)

    def snoozed(self, job_id: Any, attempt: int, delay: float, lease_end: float, seconds: float = 0.0) -> None:
        """The task raised Snooze: pending again after ``delay``, the run not counted."""
        self._other(job_id, claims.attempt_records(self.worker, [job_id], [attempt], s=[repr(float(delay))]))
        self._added(lease_end, False, seconds)

    def _other(self, job_id: Any, record: str) -> None:
        if not self:
            self.since = time.monotonic()
        self.other_ids.append(job_id)
        self.other_records.append(record[1:-1])

    def next_due(self) -> float:
        """When these should be written (monotonic time); inf when there is nothing to write."""
        if not self:
            return float("inf")
        due = min(self.since + FLUSH_INTERVAL, self.urgent_at)
        if len(self) >= MAX_PENDING:
            due = self.since
        return max(due, self.retry_at)

    def _records(self) -> str | None:
        """Every outcome waiting, as one JSON array of records (None when there is none)."""
        parts = []
        if self.ok_ids:
            parts.append(claims.success_records(self.worker, self.ok_ids, self.ok_attempts, self.ok_results))
        if self.bad_ids:
            parts.append(
                claims.failure_records(
                    self.worker, self.bad_ids, self.bad_attempts, self.bad_finals, self.bad_delays, self.bad_errors
                )
            )
        if self.other_records:
            parts.append("[" + ",".join(self.other_records) + "]")
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else "[" + ",".join(part[1:-1] for part in parts) + "]"

    def flush(
        self, db: Database, slots: list[Any] | None = None, *, done: bool = False, every_held: bool = False
    ) -> bool:
        """Write what is waiting, and the drain's ``slots`` unless None
        (``every_held``: they are every job the drain holds; ``done``: the drain
        ends, its slots go); False, keeping it all for later, when the database
        is unavailable."""
        global _write_seconds
        if not self and slots is None and not done:
            return True
        if time.monotonic() < self.retry_at:
            return False
        try:
            t0 = time.perf_counter()
            claims.record(db, worker=self.worker, batch=self._records(), slots=slots, done=done, every_held=every_held)
            _write_seconds += 0.2 * (time.perf_counter() - t0 - _write_seconds)
        except DatabaseUnavailable as exc:
            self.failures += 1
            ceiling = min(RETRY_MAX, RETRY_FIRST * 2 ** min(self.failures - 1, 10))
            self.retry_at = time.monotonic() + ceiling / 2 + random.uniform(0, ceiling / 2)
            if self.failures == 1:
                log.warning("outcomes_deferred", outcomes=len(self), error=str(exc)[:300])
            return False
        if self.failures:
            log.info("outcomes_written_after_retry", attempts=self.failures + 1)
        self.failures = 0
        self.retry_at = 0.0
        self._clear()
        return True

    def drop(self) -> int:
        """Give up on what is left (the drain's time is up): those jobs run again after their lease."""
        lost = len(self)
        if lost:
            log.error("outcomes_lost", outcomes=lost, message="the database stayed unavailable; these jobs will re-run")
        self._clear()
        return lost


def rerun_seconds() -> float:
    """How much run time of finished jobs may wait unwritten: what a kill may
    re-run beyond the jobs running at that moment."""
    return min(RERUN_MAX, max(RERUN_MIN, WRITE_FACTOR * _write_seconds))
