"""The claim side of a drain: when to claim, what (a batch, a suspect alone,
or what a lost answer had taken), and what an empty claim means.

A suspect (a job that was running when another drain's process died) must
run with nothing beside it: a drain that hears of one claims no more, lets
its own jobs end, writes their outcomes and claims the suspect alone, so
that if it dies again the death is the suspect's own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from .. import log
from ..config import Settings
from ..errors import ClaimLost, DatabaseUnavailable
from ..store import claims, connection
from ..store.queues import queue_settings
from . import pace
from .claimed import ClaimedJob, ClaimedJobs
from .invocation import RECORD_MARGIN
from .outcomes import Outcomes
from .report import DrainReport
from .slots import Slots

SETTINGS_INTERVAL = 5.0
# A job that cannot fit any drain's whole budget is set aside this long.
PARK_SECONDS = 600.0
# After a claim found nothing while jobs still run, claim again no sooner than this.
EMPTY_CLAIM_PAUSE = 0.1
# A drain waits for a rate window to open no longer than this (billed while it
# waits); a longer wait is left to a later drain.
RATE_WAIT_MAX = 30.0
# After a claim of a suspect found none it could take (another drain took it,
# or its queue is full), suspects are not waited for again for this long.
ALONE_PAUSE = 5.0


class Claiming:
    """The drain's claims (engine.drain.Drain holds the state named here)."""

    db: connection.Database
    settings: Settings
    queues: list[str] | None
    max_jobs: int | None
    ceiling: int
    slots: int
    grace: float
    deadline: float
    cap: float | None
    worker: str
    report: DrainReport
    outcomes: Outcomes
    waiting: ClaimedJobs
    running: dict[Any, ClaimedJob]
    held: Slots
    claimed: int
    stopped: str | None
    claim_at: float
    claim_failures: int
    reclaim_first: bool
    limited: set[str]
    limited_at: float
    suspects: bool
    alone_after: float
    on_claim: Callable[[int, int, float, bool], None] | None
    _flush: Callable[[], bool]  # writes the outcomes and slots as they stand (Drain._flush)

    def _claim(self) -> None:
        now = time.monotonic()
        fits = self.deadline - now - RECORD_MARGIN
        if fits <= 0:
            self.stopped = "budget"
            return
        limit = pace.batch_limit(self.ceiling, self.slots)
        if self.max_jobs is not None:
            limit = min(limit, self.max_jobs - self.claimed)
            if limit <= 0:
                self.stopped = "max_jobs"
                return
        self._refresh_limits(now)
        alone = self.suspects and now >= self.alone_after
        if alone and (self.running or self.held.abandoned):
            self.claim_at = now + EMPTY_CLAIM_PAUSE  # a suspect waits: let this drain's own jobs end first
            return
        if alone and not self._flush():
            return  # every outcome is written before a suspect runs: a death then is its own
        try:
            if self.reclaim_first:  # a claim's answer was lost: first take back what it took
                claim = claims.reclaim(self.db, worker=self.worker, cap=self.cap)
                self.reclaim_first = False
            elif alone:
                claim = claims.claim_alone(
                    self.db, worker=self.worker, grace=self.grace, fits=min(fits, 1e9), cap=self.cap,
                    queues=self.queues,
                )  # fmt: skip
            else:
                claim = claims.claim(
                    self.db,
                    worker=self.worker,
                    limit=limit,
                    grace=self.grace,
                    fits=min(fits, 1e9),
                    cap=self.cap,
                    park_seconds=PARK_SECONDS,
                    queues=self.queues,
                )
        except DatabaseUnavailable as exc:
            self.reclaim_first = self.reclaim_first or isinstance(exc, ClaimLost)
            self._database_down(exc)
            return
        self.claim_failures = 0
        if claim.reclaimed:
            # A claim whose answer was lost, read back whole: every job this
            # drain holds. Keep what it does not know already; then claim as usual.
            known = set(self.running) | self.outcomes.ids()
            self.waiting.add([row for row in claim.rows if row[0] not in known], now, alone=alone)
            self.claimed += len(self.waiting)
            self.claim_at = 0.0
            return
        if alone:
            self.waiting.add(claim.rows, now, alone=True)
            self.held.wrote([row[0] for row in claim.rows])  # the claim wrote its slots
            self.claimed += len(claim.rows)
            self.report.alone += len(claim.rows)
            if not claim.rows:  # taken by another drain, or its queue is full: not for a while
                self.suspects = False
                self.alone_after = now + ALONE_PAUSE
            return
        self.suspects = claim.suspects and now >= self.alone_after
        self.waiting.add(claim.rows, now)
        self.claimed += len(self.waiting)
        if self.on_claim is not None:
            try:
                self.on_claim(len(claim.rows), limit, self.deadline - now, bool(claim.deferred))
            except Exception as exc:  # noqa: BLE001 - starting more drains is best effort
                log.warning("fanout_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        if claim.parked:
            self.report.unfit += claim.parked
            log.warning(
                "jobs_exceed_budget",
                count=claim.parked,
                budget_seconds=round(self.cap or 0, 1),
                retry_in_seconds=PARK_SECONDS,
                message="jobs have a timeout longer than a drain's whole budget: raise the function's timeout or "
                "lower theirs; they are set aside and checked again later",
            )
        if self.waiting or self.suspects:
            self.claim_at = 0.0
            return
        self._nothing_claimed(claim, now)

    def _nothing_claimed(self, claim: claims.Claim, now: float) -> None:
        """Decide what an empty claim means: no work, work that needs a fresh
        budget, or work held back by a queue's limits."""
        if claim.deferred:
            self.stopped = "budget"
        elif claim.capped:
            wait = claim.wait
            if wait is not None and wait <= RATE_WAIT_MAX and now + wait < self.deadline - RECORD_MARGIN:
                self.claim_at = now + wait  # a rate window opens then
            elif any(job.queue in claim.capped for job in self.running.values()):
                self.claim_at = now + EMPTY_CLAIM_PAUSE  # our own jobs will free capacity
            else:
                self.stopped = "limited"
                self.report.reopens_in = wait  # a rate window that reopens later: a timer wakes a drain then
        elif self.running:
            self.claim_at = now + EMPTY_CLAIM_PAUSE
        else:
            self.claim_at = float("inf")

    def _database_down(self, exc: DatabaseUnavailable) -> None:
        """Keep going through a database restart: back off and claim again later."""
        self.claim_failures += 1
        if self.claim_failures == 1:
            log.warning("claim_deferred", error=str(exc)[:300])
        ceiling = min(2.0, 0.1 * 2 ** min(self.claim_failures - 1, 10))
        self.claim_at = time.monotonic() + ceiling / 2 + random.uniform(0, ceiling / 2)
        if self.claim_at >= self.deadline - RECORD_MARGIN:
            raise exc

    def _refresh_limits(self, now: float) -> None:
        """Which queues have a concurrency limit (their outcomes are written at once)."""
        if now < self.limited_at:
            return
        self.limited_at = now + SETTINGS_INTERVAL
        try:
            configured = queue_settings(self.db)
        except DatabaseUnavailable:
            return
        self.limited = {name for name, s in configured.items() if s.concurrency is not None}
