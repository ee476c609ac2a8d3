"""Drains that follow the backlog: as many at once as the work needs, up to
JOBQUEUE_MAX_DRAINS across every container, started by the drains themselves
(and by submits: ``wake``).

- **Slots.** A drain holds one of JOBQUEUE_MAX_DRAINS slots (``store.drains``)
  for as long as it runs. A drain that finds every slot taken returns at once.
- **Fan-out.** A drain whose claims come back full estimates how long the
  due backlog would take it alone; when that is longer than a few seconds
  (or than its budget) it invokes more drains (``invoker``). A drain whose
  budget ends with due work left hands over to a fresh invocation.
- **Bounded chains.** Every invocation carries its hop count; a schedule
  tick or a submit starts a new chain, and no chain grows past MAX_HOPS,
  well inside Lambda's recursive-loop limit of 16.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from .. import log
from ..config import Settings
from ..errors import DatabaseUnavailable
from ..rules import MAX_HOPS
from ..store import drains
from ..store.connection import Database
from . import invoker, pace
from .report import DrainReport

FANOUT_EVERY = 1.0  # seconds between a drain's fan-out decisions
# A backlog is spread over enough drains to clear it in about this long (or
# in the budget left, when that is shorter), as an event source mapping
# scales out while messages wait.
CLEAR_WITHIN = 5.0
BACKLOG_CAP = 2000  # per queue, when sizing a fan-out


class FanOut:
    """One drain's part in the fan-out: its slot, its hop, and the drains it starts."""

    def __init__(self, db: Database, settings: Settings, function: str, hop: int, queues: list[str] | None) -> None:
        self.db = db
        self.settings = settings
        self.function = function
        self.hop = hop
        self.queues = queues
        self.slot: int | None = None
        self.next_check = 0.0
        self.started: list[float] = []  # when this drain invoked others (they take a moment to appear)
        self.more = False  # the last claim came back full, or found jobs too long for what was left

    def take_slot(self) -> bool:
        self.slot = drains.take_slot(self.db, self.settings.max_drains)
        return self.slot is not None

    def give_slot(self) -> None:
        if self.slot is None:
            return
        slot, self.slot = self.slot, None
        try:
            drains.give_slot(self.db, slot)
        except DatabaseUnavailable:
            pass  # the connection is gone, and its locks with it

    def work_due(self) -> bool:
        return drains.work_due(self.db, self.queues)

    def _event(self, reason: str) -> dict[str, Any]:
        event: dict[str, Any] = {"action": "process", "hop": self.hop + 1}
        if self.queues is not None:
            event["queues"] = self.queues
        log.info("fanout", reason=reason, hop=self.hop + 1, function=self.function)
        return event

    def on_claim(self, claimed: int, limit: int, remaining: float, deferred: bool) -> None:
        """After each claim: when the backlog would outlast this drain's budget, start more drains."""
        self.more = claimed >= limit or deferred
        now = time.monotonic()
        if claimed < limit or now < self.next_check or self.hop + 1 > MAX_HOPS:
            return
        mean = pace.mean_job_seconds()
        if mean is None:
            return  # how long jobs take is not known yet: the next full claim decides
        self.next_check = now + FANOUT_EVERY
        try:
            backlog = drains.backlog(self.db, self.queues, BACKLOG_CAP)
            running = drains.running(self.db)
        except DatabaseUnavailable:
            return
        seconds = backlog * mean / self.settings.concurrency
        wanted = min(self.settings.max_drains, math.ceil(seconds / max(min(remaining, CLEAR_WITHIN), 1.0)))
        self.started = [t for t in self.started if now - t < 5.0]
        more = wanted - running - len(self.started)
        for _ in range(max(0, more)):
            if invoker.invoke(self.function, self._event("backlog")):
                self.started.append(now)

    def hand_over(self) -> None:
        """The budget ended with work left: a fresh invocation carries on (after this slot is free)."""
        if self.hop + 1 <= MAX_HOPS:
            invoker.invoke(self.function, self._event("budget"))


def drain_in_slot(
    db: Database,
    settings: Settings,
    *,
    function: str | None,
    hop: int = 0,
    budget_seconds: float | None,
    cap_seconds: float | None = None,
    queues: Iterable[str] | None = None,
    max_jobs: int | None = None,
) -> DrainReport:
    """A drain as the handler runs one: in a slot, starting others as the backlog needs.

    Without fan-out (JOBQUEUE_FANOUT=off, or no function to invoke) it is a
    plain drain, as many at once as schedules and requests start.
    """
    from . import drain  # the drain's machinery loads with the first drain, not at cold start

    queues = None if queues is None else list(queues)
    if not invoker.enabled(settings, function):
        return drain.run(
            db,
            budget_seconds=budget_seconds,
            cap_seconds=cap_seconds,
            queues=queues,
            max_jobs=max_jobs,
            settings=settings,
        )
    assert function is not None
    fanout = FanOut(db, settings, function, hop, queues)
    if not fanout.take_slot():
        return DrainReport(stopped="max_drains")
    started = time.monotonic()
    total = DrainReport()
    try:
        while True:
            left = None if budget_seconds is None else budget_seconds - (time.monotonic() - started)
            report = drain.run(
                db,
                budget_seconds=left,
                cap_seconds=cap_seconds,
                queues=queues,
                max_jobs=max_jobs,
                settings=settings,
                on_claim=fanout.on_claim,
            )
            _add(total, report)
            if report.stopped != "idle" or max_jobs is not None:
                break
            # Stopping: give up the slot first, then look once more, so that a
            # submit that saw this drain running is not left waiting.
            fanout.give_slot()
            if not fanout.work_due() or not fanout.take_slot():
                break
    finally:
        fanout.give_slot()
    total.stopped = report.stopped
    total.reopens_in = report.reopens_in
    if report.stopped == "budget" and (fanout.more or report.released):
        fanout.hand_over()
    total.seconds = round(time.monotonic() - started, 3)
    return total


def _add(total: DrainReport, report: DrainReport) -> None:
    for name in DrainReport.COUNTS:
        setattr(total, name, getattr(total, name) + getattr(report, name))
    for queue_name, part in report.queues.items():
        mine = total.of(queue_name)
        for name in ("processed", "succeeded", "retried", "failed"):
            setattr(mine, name, getattr(mine, name) + getattr(part, name))
        mine.durations.extend(part.durations)
        mine.waits.extend(part.waits)
