"""The drain: claim due jobs in batches, run up to JOBQUEUE_CONCURRENCY of
them at once, and record their outcomes in batches.

Throughput comes from doing per batch what naive queues do per job: one
statement claims a batch, one records its successes, one its failures. A
claim takes about a quarter second of work for this drain's slots, so fast
jobs go hundreds at a time and slow ones a few at a time, leaving the rest to
other drains. How long jobs take is measured on the jobs alone, never on the
claims, so a slow database cannot shrink the batches.

Correctness comes from the lease: a claimed job belongs to this drain until
its lease expires, and every write is guarded by the attempt it belongs to,
so a drain that lost a job cannot overwrite the attempt that replaced it.
Leases of claimed jobs still waiting for a slot are extended while they wait,
and the session commits asynchronously while it drains (store.drains says why).

A crash costs one job, not a batch: no job starts before the drain has
written it into its slots (engine.slots), so when the process dies the
rescue puts back the jobs that never started, uncounted, and makes the ones
that were running suspects. A drain that hears of a suspect lets its own
jobs finish, writes their outcomes, and runs the suspect alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ..config import Settings
from ..errors import DatabaseUnavailable
from ..store import claims, connection, drains
from . import cleaner, compactor, durable_runs, pace, rescuer
from .claimed import ClaimedJob, ClaimedJobs
from .claiming import Claiming
from .execution import Executor
from .invocation import RECORD_MARGIN
from .outcomes import Outcomes, rerun_seconds
from .recorder import Recorder
from .report import DrainReport
from .slots import Slots
from .starting import Starting

# Without a budget (a command-line drain), writes are retried this long at the end.
MAX_END_RETRY = 60.0


def run(
    db: connection.Database | None = None,
    *,
    budget_seconds: float | None = None,
    cap_seconds: float | None = None,
    queues: Iterable[str] | None = None,
    max_jobs: int | None = None,
    settings: Settings | None = None,
    batch_size: int | None = None,
    on_claim: Callable[[int, int, float, bool], None] | None = None,
) -> DrainReport:
    """Run due jobs until none is due, the budget is spent, or max_jobs ran.

    ``budget_seconds`` is the time this call may take (a Lambda's remaining
    time); it never starts a job whose timeout does not fit in what is left.
    ``cap_seconds`` is the most any drain of this deployment gets (a Lambda's
    whole timeout): a job whose timeout exceeds it can never run, so it is set
    aside for a while (and reported) rather than left blocking its queue.
    ``on_claim(claimed, limit, seconds_left, deferred)`` hears of every claim
    (the fan-out sizes itself by it).
    """
    drain = Drain(
        db or connection.default(),
        settings or Settings.from_env(),
        budget_seconds,
        cap_seconds,
        None if queues is None else list(queues),
        max_jobs,
        batch_size,
    )
    drain.on_claim = on_claim
    return drain.run()


class Drain(Claiming, Starting):
    """One drain's state, from its first claim to its last outcome written."""

    def __init__(
        self,
        db: connection.Database,
        settings: Settings,
        budget_seconds: float | None,
        cap_seconds: float | None,
        queues: list[str] | None,
        max_jobs: int | None,
        batch_size: int | None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.queues = queues
        self.max_jobs = max_jobs
        self.ceiling = batch_size or settings.drain_batch_size
        self.slots = settings.concurrency
        self.grace = settings.lease_grace_seconds
        safety = settings.drain_safety_ms / 1000
        self.started = time.monotonic()
        self.deadline = float("inf") if budget_seconds is None else self.started + budget_seconds - safety
        self.cap = None if cap_seconds is None else max(0.0, cap_seconds - safety - RECORD_MARGIN)
        self.worker = claims.new_worker_id()
        self.report = DrainReport()
        self.outcomes = Outcomes(self.worker)
        self.executor = Executor()
        self.recorder = Recorder(self.report, self.outcomes, settings)
        self.waiting = ClaimedJobs(db, self.worker, self.grace)
        self.running: dict[Any, ClaimedJob] = {}
        self.held = Slots(self.slots)
        self.cancels = durable_runs.CancelWatch()
        self.suspects = False  # a suspect waits: empty this drain, then run it alone
        self.alone_after = 0.0  # no wait for suspects before this
        self.claimed = 0
        self.stopped: str | None = None
        self.claim_at = 0.0  # no claim before this (after an empty one, or until a rate window opens)
        self.claim_failures = 0
        self.reclaim_first = False
        self.limited: set[str] = set()  # queues with a concurrency limit: free their capacity promptly
        self.limited_at = 0.0
        self.call: Any = None
        self.interrupted = False
        self.on_claim: Callable[[int, int, float, bool], None] | None = None

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> DrainReport:
        self.report.rescued = rescuer.rescue(self.db)
        drains.commit_asynchronously(self.db, True)
        try:
            from .timeouts import alarms

            with alarms() as call:
                self.call = call
                try:
                    self._loop()
                except KeyboardInterrupt:
                    self.interrupted = True  # the operator stopping a local drain: do not wait for running jobs
                    raise
                finally:
                    self._finish()
        finally:
            try:
                drains.commit_asynchronously(self.db, False)
            except DatabaseUnavailable:
                pass  # a new connection starts with the default anyway
        self.report.stopped = self.stopped or "idle"
        if self.report.stopped == "idle":
            self.report.pruned = cleaner.maybe_prune(self.db, self.settings, self.deadline)
        compactor.maybe_compact(self.db)
        self.report.seconds = round(time.monotonic() - self.started, 3)
        return self.report

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            self._expire(now)
            if self.running and now >= self.cancels.check_at:
                self._check_cancels(now)
            if self.outcomes.urgent_at <= now:
                self._flush()  # a limited queue's capacity, or jobs a kill would re-run: before claiming
            if self.stopped is None and not self.waiting and len(self.running) < self.slots and now >= self.claim_at:
                self._claim()  # before other writes: the write that follows names the jobs it took
            if self.outcomes.next_due() <= now or (self.outcomes and not self.running and not self.waiting):
                self._flush()  # when nothing else is going on, at once
            self._start_waiting()
            self._trim_waiting()
            if compactor.due():
                compactor.maybe_compact(self.db)  # a busy system never idles: fold the count rows as it goes
            if not self.running and not self.waiting:
                if self.stopped is not None:
                    return
                if self.claim_at == float("inf"):
                    self.stopped = "idle"
                    return
            self._wait()

    def _wait(self) -> None:
        """Sleep until something needs doing: a job finishes or times out, outcomes
        are due, a lease needs renewing, or a claim may be made."""
        now = time.monotonic()
        wake = self.outcomes.next_due()
        for job in self.running.values():
            wake = min(wake, job.deadline)
        if self.waiting:
            wake = min(wake, self.waiting.check_at)
            if len(self.running) < self.slots:
                wake = min(wake, self.outcomes.retry_at)  # its slots could not be written yet
        if self.stopped is None and len(self.running) < self.slots:
            wake = min(wake, self.claim_at)
        wake = min(wake, self.deadline)
        for finished in self.executor.wait(min(max(0.0, wake - now), 1.0)):
            self._finished(finished)

    # --- leases -----------------------------------------------------------------------

    def _renew(self, now: float) -> None:
        busy = max((job.deadline - now for job in self.running.values()), default=0.0)
        self.waiting.renew(now, busy if busy != float("inf") else 0.0, slot_free=len(self.running) < self.slots)

    def _release_waiting(self) -> None:
        """Give back claimed jobs that never started; their attempt does not count."""
        self.report.released += self.waiting.release(self._give_up_at())

    def _trim_waiting(self) -> None:
        """A batch claimed while jobs seemed fast, when they turn out slow: keep
        what this drain's slots will start soon and give the rest back (their
        attempt uncounted), for other drains, and for the fan-out to see."""
        if pace.mean_job_seconds() is None or len(self.waiting) <= self.slots:
            return
        self.claimed -= self.waiting.trim(max(self.slots, 2 * pace.batch_limit(self.ceiling, self.slots)))

    def _give_up_at(self) -> float:
        """How long writes may be retried through a database outage at the end."""
        return min(self.deadline, time.monotonic() + MAX_END_RETRY)

    # --- outcomes ---------------------------------------------------------------------

    def _flush(self, *, done: bool = False) -> bool:
        """Write the outcomes waiting and the slots, as they stand now; False
        when the database is unavailable (retried later, with backoff)."""
        if done and not self.held.ever and not self.outcomes:
            return True  # nothing was ever written: nothing to end
        window: list[Any] = []
        every_held = False
        if not done:
            window, every_held = self.held.window(self.running, self.waiting, self.waiting.lost, rerun_seconds())
        if not self.outcomes.flush(self.db, window, done=done, every_held=every_held):
            return False
        self.held.wrote(window)
        return True

    def _record(self, job: ClaimedJob, result: Any, error: BaseException | None, seconds: float) -> None:
        pace.observe(job.name, seconds)
        self.recorder.record(job, result, error, seconds, urgent=job.queue in self.limited)

    # --- the end ----------------------------------------------------------------------

    def _finish(self) -> None:
        """Give back what never started, let running jobs end (each fits the
        budget, or is abandoned at its deadline), and write every outcome,
        retrying through a database restart for as long as the budget lasts."""
        self._release_waiting()
        while self.running and not self.interrupted:
            self._expire(time.monotonic())
            for finished in self.executor.wait(0.2):
                self._finished(finished)
        give_up = self._give_up_at()
        while not self._flush(done=not self.running and not self.held.abandoned):
            if time.monotonic() >= give_up:
                self.outcomes.drop()
                break
            time.sleep(max(0.0, min(self.outcomes.retry_at, give_up) - time.monotonic()))
