"""Jobs a drain has claimed and not yet started: what it knows of their
leases, keeping those leases ahead of the wait, and giving jobs back.

A claimed job is leased to its drain from the claim, though it may wait for a
free slot; its lease must outlast that wait and then its own run, or another
drain would rescue it and run it twice. Jobs never started go back to pending
with their attempt uncounted: at the end of a budget, after an interruption,
or when a batch turns out bigger than this drain's slots can start soon.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from .. import log
from ..errors import DatabaseUnavailable
from ..store import claims
from ..store.connection import Database

RENEW_CHECK_EVERY = 1.0


class ClaimedJob:
    """A claimed job, and what this drain knows of its lease (monotonic times)."""

    __slots__ = (
        "alone",
        "attempt",
        "claimed_at",
        "deadline",
        "handle",
        "id",
        "lease_end",
        "max_attempts",
        "name",
        "payload",
        "queue",
        "started",
        "stop",
        "timeout",
        "waited",
    )

    def __init__(self, row: list[Any], claimed_at: float, grace: float) -> None:
        self.id, self.name, self.payload, self.attempt, self.max_attempts, self.timeout, self.queue = row[:7]
        self.waited = row[7] if len(row) > 7 else None  # seconds from due to claimed
        self.claimed_at = claimed_at
        self.lease_end = claimed_at + self.timeout + grace  # it ends no sooner than this
        self.deadline = float("inf")
        self.alone = False  # a suspect: it runs with nothing beside it
        self.started = 0.0
        self.handle: Any = None  # a durable task's Job
        self.stop: Any = None  # an async task's cancel, callable from any thread


class ClaimedJobs:
    """The claimed jobs waiting for a slot, in claim order."""

    def __init__(self, db: Database, worker: str, grace: float) -> None:
        self.db = db
        self.worker = worker
        self.grace = grace
        # A job's lease must outlast its own run by this much when it starts.
        self.margin = min(1.0, grace / 2)
        self.jobs: deque[ClaimedJob] = deque()
        self.lost: set[Any] = set()  # rescued while waiting: another drain's now
        self.check_at = 0.0  # when to look at the leases again

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[ClaimedJob]:
        return iter(self.jobs)

    def __getitem__(self, index: int) -> ClaimedJob:
        return self.jobs[index]

    def popleft(self) -> ClaimedJob:
        return self.jobs.popleft()

    def add(self, rows: list[list[Any]], claimed_at: float, *, alone: bool = False) -> None:
        added = [ClaimedJob(row, claimed_at, self.grace) for row in rows]
        if alone:
            for job in added:
                job.alone = True
        self.jobs.extend(added)
        self.check_at = claimed_at + RENEW_CHECK_EVERY

    def renew(self, now: float, busy: float, *, slot_free: bool) -> None:
        """Extend the leases so that each outlasts the jobs running now (``busy``
        seconds at most, which it may have to wait for) and then its own run."""
        self.check_at = now + RENEW_CHECK_EVERY
        jobs = self.jobs
        if not jobs or all(job.lease_end >= now + busy + job.timeout + self.margin for job in jobs):
            return
        first = jobs[0]
        waits = [0.0 if job is first and slot_free else busy for job in jobs]
        try:
            held = claims.renew_leases(
                self.db,
                worker=self.worker,
                ids=[job.id for job in jobs],
                attempts=[job.attempt for job in jobs],
                grace=self.grace,
                waits=waits,
                timeouts=[job.timeout for job in jobs],
            )
        except DatabaseUnavailable:
            self.check_at = now + RENEW_CHECK_EVERY / 2
            return
        for job, wait in zip(jobs, waits, strict=True):
            if str(job.id) in held:
                job.lease_end = now + job.timeout + self.grace + wait
            else:
                self.lost.add(job.id)

    def release(self, give_up: float) -> int:
        """Give every waiting job back, retrying through a database outage until
        ``give_up``; returns how many went back (the others' leases run out)."""
        rest = [job for job in self.jobs if job.id not in self.lost]
        self.jobs.clear()
        while rest:
            try:
                claims.release(
                    self.db, worker=self.worker, ids=[j.id for j in rest], attempts=[j.attempt for j in rest]
                )
                return len(rest)
            except DatabaseUnavailable:
                if time.monotonic() + 0.2 > give_up:
                    return 0  # their leases run out and they are rescued
                time.sleep(0.2)
        return 0

    def trim(self, keep: int) -> int:
        """Give back all but the first ``keep``; returns how many left this drain."""
        if len(self.jobs) <= keep:
            return 0
        excess = [self.jobs.pop() for _ in range(len(self.jobs) - keep)]
        given = [job for job in excess if job.id not in self.lost]
        try:
            claims.release(self.db, worker=self.worker, ids=[j.id for j in given], attempts=[j.attempt for j in given])
        except DatabaseUnavailable:
            self.jobs.extend(reversed(excess))  # keep them; they are leased to this drain
            return 0
        log.debug("batch_trimmed", returned=len(given), kept=len(self.jobs))
        return len(excess)
