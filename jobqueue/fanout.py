"""Drains that follow the backlog: as many at once as the work needs, up to
JOBQUEUE_MAX_DRAINS across every container, started by the drains themselves
and by submits.

- **Slots.** A drain holds one of JOBQUEUE_MAX_DRAINS slots, a session
  advisory lock in PostgreSQL, for as long as it runs. The count is right
  across containers, and a drain that dies frees its slot the moment its
  connection ends. A drain that finds every slot taken returns at once.
- **Fan-out.** A drain whose claims come back full estimates how long the
  due backlog would take it alone; when that is longer than a few seconds
  (or than its budget) it invokes more drains (asynchronous Invoke of its
  own function). A drain whose budget ends with due work left hands over to
  a fresh invocation.
- **Wake on submit.** A submit that makes work due now starts a drain when
  none is running; a row in jobqueue_wake makes a burst of submits ask once.
  A drain that gives up its slot looks once more for due work before it
  returns, so a job submitted while it was stopping is never stranded.
- **Bounded chains.** Every invocation carries its hop count; a schedule
  tick or a submit starts a new chain, and no chain grows past MAX_HOPS,
  well inside Lambda's recursive-loop limit of 16.

Everything here is best effort: a failed invoke is logged and never fails a
submit or a drain; the schedule still drains what is due.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any

from . import db as dbmod
from . import invocation, log
from .config import Settings
from .errors import DatabaseUnavailable
from .report import DrainReport

SLOT_CLASS = 0x6A71  # "jq": the first key of every slot lock
MAX_HOPS = 10
FANOUT_EVERY = 1.0  # seconds between a drain's fan-out decisions
# A backlog is spread over enough drains to clear it in about this long (or
# in the budget left, when that is shorter), as an event source mapping
# scales out while messages wait.
CLEAR_WITHIN = 5.0
WAKE_TTL = 10.0  # a wake nobody answered within this long may be asked again
BACKLOG_CAP = 2000  # per queue, when sizing a fan-out
INVOKE_COOLDOWN = 300.0  # after the function was refused permission to invoke itself

_client: Any = None
_client_for: str | None = None
_refused_until = 0.0


def enabled(settings: Settings | None, function: str | None) -> bool:
    return bool(settings is not None and settings.fanout and function)


def invoke(function: str, event: dict[str, Any]) -> bool:
    """Start an invocation of ``function`` with ``event``, asynchronously
    (InvocationType=Event: queued by Lambda, answered with 202). Never raises."""
    global _client, _client_for, _refused_until
    if time.monotonic() < _refused_until:
        return False
    try:
        if _client is None or _client_for != function:
            import boto3  # present in the Lambda runtime; only a drain or a wake needs it
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
            _client, _client_for = boto3.client("lambda", config=config), function
        _client.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode())
    except Exception as exc:  # noqa: BLE001 - never fail a submit or a drain over this
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        if code in ("AccessDeniedException", "AccessDenied"):
            _refused_until = time.monotonic() + INVOKE_COOLDOWN
            log.warning(
                "fanout_not_permitted",
                message="this function may not invoke itself (lambda:InvokeFunction); drains run only on schedule "
                "until it may",
                retry_in_seconds=INVOKE_COOLDOWN,
            )
        else:
            log.warning("invoke_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return False
    return True


# --- wake on submit ----------------------------------------------------------------------


def wake(db: dbmod.Database | Any, *, function: str | None = None, settings: Settings | None = None) -> bool:
    """After a submit made work due now: start a drain if none runs. Never raises."""
    function = function or invocation.function()
    settings = settings or invocation.settings()
    if not enabled(settings, function):
        return False
    try:
        asked = dbmod.run(db, "request_wake", slot_class=SLOT_CLASS, ttl=WAKE_TTL)
    except Exception as exc:  # noqa: BLE001 - the submit succeeded; the schedule will drain it
        log.warning("wake_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return False
    if not asked:
        return False
    assert function is not None
    started = invoke(function, {"action": "process", "hop": 1})
    if started:
        log.info("wake", function=function)
    return started


# --- a drain in a slot -------------------------------------------------------------------


class Spread:
    """One drain's part in the fan-out: its slot, its hop, and the drains it starts."""

    def __init__(
        self, db: dbmod.Database, settings: Settings, function: str, hop: int, queues: list[str] | None
    ) -> None:
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
        rows = self.db.run("take_drain_slot", max_drains=self.settings.max_drains, slot_class=SLOT_CLASS)
        if not rows:
            return False
        self.slot = rows[0][0]
        self.db.run("drain_started")
        return True

    def give_slot(self) -> None:
        if self.slot is None:
            return
        slot, self.slot = self.slot, None
        try:
            self.db.run("give_drain_slot", slot_class=SLOT_CLASS, slot=slot)
        except DatabaseUnavailable:
            pass  # the connection is gone, and its locks with it

    def work_due(self) -> bool:
        return bool(self.db.run("work_due", queues=self.queues)[0][0])

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
        from . import worker

        mean = worker._mean_job_seconds
        if mean is None:
            return  # how long jobs take is not known yet: the next full claim decides
        self.next_check = now + FANOUT_EVERY
        try:
            backlog = self.db.run("backlog", queues=self.queues, cap=BACKLOG_CAP)[0][0]
            running = self.db.run("running_drains", slot_class=SLOT_CLASS)[0][0]
        except DatabaseUnavailable:
            return
        seconds = backlog * mean / self.settings.concurrency
        wanted = min(self.settings.max_drains, math.ceil(seconds / max(min(remaining, CLEAR_WITHIN), 1.0)))
        self.started = [t for t in self.started if now - t < 5.0]
        more = wanted - running - len(self.started)
        for _ in range(max(0, more)):
            if invoke(self.function, self._event("backlog")):
                self.started.append(now)

    def hand_over(self) -> None:
        """The budget ended with work left: a fresh invocation carries on (after this slot is free)."""
        if self.hop + 1 <= MAX_HOPS:
            invoke(self.function, self._event("budget"))


def drain(
    db: dbmod.Database,
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
    from . import worker

    queues = None if queues is None else list(queues)
    if not enabled(settings, function):
        return worker.drain(
            db,
            budget_seconds=budget_seconds,
            cap_seconds=cap_seconds,
            queues=queues,
            max_jobs=max_jobs,
            settings=settings,
        )
    assert function is not None
    spread = Spread(db, settings, function, hop, queues)
    if not spread.take_slot():
        return DrainReport(stopped="max_drains")
    started = time.monotonic()
    total = DrainReport()
    try:
        while True:
            left = None if budget_seconds is None else budget_seconds - (time.monotonic() - started)
            report = worker.drain(
                db,
                budget_seconds=left,
                cap_seconds=cap_seconds,
                queues=queues,
                max_jobs=max_jobs,
                settings=settings,
                on_claim=spread.on_claim,
            )
            _add(total, report)
            if report.stopped != "idle" or max_jobs is not None:
                break
            # Stopping: give up the slot first, then look once more, so that a
            # submit that saw this drain running is not left waiting.
            spread.give_slot()
            if not spread.work_due() or not spread.take_slot():
                break
    finally:
        spread.give_slot()
    total.stopped = report.stopped
    if report.stopped == "budget" and (spread.more or report.released):
        spread.hand_over()
    total.seconds = round(time.monotonic() - started, 3)
    return total


def _add(total: DrainReport, report: DrainReport) -> None:
    for name in ("processed", "succeeded", "retried", "failed", "rescued", "released", "pruned", "unfit", "abandoned"):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    for queue_name, part in report.queues.items():
        mine = total.of(queue_name)
        for name in ("processed", "succeeded", "retried", "failed"):
            setattr(mine, name, getattr(mine, name) + getattr(part, name))
        mine.durations.extend(part.durations)
        mine.waits.extend(part.waits)
