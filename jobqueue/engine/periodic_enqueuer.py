"""The periodic enqueuer, the scheduled tick's first step: enqueue the periodic
jobs that came due, and say when each schedule runs next.

Exactly once per slot however many ticks overlap: one transaction per due
schedule locks its row, reads the last slot enqueued, enqueues the slots after
it through ``jobs.enqueue_many`` and records the last one. A tick that waited
on the lock then finds nothing due. Each job also carries the idempotency key
``periodic:<name>:<slot>``, so even a statement resent after a lost answer
inserts nothing twice. An idle tick is one query for all schedules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .. import log
from ..errors import DatabaseUnavailable
from ..store import jobs, schedules
from ..store.connection import Database
from ..tasks import periodic as declared
from ..tasks.periodic import UTC, Schedule
from ..tasks.registry import DEFAULT_QUEUE
from ..tasks.registry import registered as registered_tasks
from ..tasks.spec import JobSpec

# Per container: a schedule's next slot after the cursor it was computed from,
# so that an idle tick does no cron arithmetic either.
_next_slots: dict[str, tuple[Schedule, datetime, datetime]] = {}


def tick(db: Database, now: datetime | None = None, registry: Mapping[str, Schedule] | None = None) -> dict[str, Any]:
    """Enqueue every registered schedule's due slots; returns what it enqueued.

    ``now`` is the tick's clock (the database's is not used for slots). A
    schedule that fails to enqueue is logged and the others go on; a database
    that is unavailable stops the tick (DatabaseUnavailable).
    """
    registry = declared.registered() if registry is None else registry
    report: dict[str, Any] = {"enqueued": 0, "schedules": {}}
    if not registry:
        return report
    now = _aware(now)
    names = sorted(registry)
    known = schedules.state(db, names)
    missing = [name for name in names if name not in known]
    if missing:
        schedules.add(db, missing, now)
    for name in sorted(known):
        last, first = known[name]
        schedule = registry[name]
        if _next_slot(schedule, last or first) > now:
            continue
        try:
            slots = _enqueue(db, schedule, now)
        except DatabaseUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad schedule must not stop the others
            log.error("periodic_failed", schedule=name, error=f"{type(exc).__name__}: {exc}"[:1000])
            report.setdefault("failed", []).append(name)
            continue
        if slots:
            report["enqueued"] += len(slots)
            report["schedules"][name] = [_iso(slot) for slot in slots]
            log.info("periodic", schedule=name, task=schedule.task, slots=len(slots), last_slot=_iso(slots[-1]))
    return report


def _enqueue(db: Database, schedule: Schedule, now: datetime) -> list[datetime]:
    with schedules.locked(db, schedule.name) as cursor:
        if cursor is None:
            return []
        slots = schedule.due(cursor, now)
        if slots:
            jobs.enqueue_many(db, [_spec(schedule, slot) for slot in slots])
            schedules.advance(db, schedule.name, slots[-1])
    return slots


def _spec(schedule: Schedule, slot: datetime) -> JobSpec:
    return JobSpec(
        schedule.task,
        dict(schedule.payload),
        queue=schedule.queue,
        priority=schedule.priority,
        run_at=slot,
        max_attempts=schedule.max_attempts,
        timeout_seconds=schedule.timeout_seconds,
        idempotency_key=schedule.idempotency_key(slot),
    )


def _next_slot(schedule: Schedule, cursor: datetime) -> datetime:
    cached = _next_slots.get(schedule.name)
    if cached is not None and cached[0] is schedule and cached[1] == cursor:
        return cached[2]
    following = schedule.next_after(cursor)
    _next_slots[schedule.name] = (schedule, cursor, following)
    return following


def listing(db: Database, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every registered schedule with its last slot enqueued and its next run:
    the slot the next tick will enqueue when one is already due, else the
    first one after now."""
    now = _aware(now)
    registry = declared.registered()
    known = schedules.state(db, sorted(registry))
    result = []
    for name in sorted(registry):
        schedule = registry[name]
        last, first = known.get(name, (None, now))
        result.append(
            {
                "name": name,
                "task": schedule.task,
                "expression": schedule.expression,
                "timezone": schedule.timezone,
                "queue": schedule.queue or _task_queue(schedule.task),
                "catch_up": schedule.catch_up,
                "payload": dict(schedule.payload),
                "last_run": None if last is None else _iso(last),
                "next_run": _iso(schedule.next_run(last or first, now)),
            }
        )
    return result


def _task_queue(task: str) -> str:
    definition = registered_tasks().get(task)
    return definition.queue if definition is not None else DEFAULT_QUEUE


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
