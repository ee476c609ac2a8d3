"""What drains share through PostgreSQL: the slots that bound how many run at
once (session advisory locks, freed the moment a drain's connection ends),
the one row that makes a burst of submits ask for one drain, the backlog that
sizes a fan-out, and a drain's own session settings.

The slots are right across containers and need no table: a drain holds the
lock (SLOT_CLASS, slot) for one of JOBQUEUE_MAX_DRAINS slots while it runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from .connection import Database, Runner, run

SLOT_CLASS = 0x6A71  # "jq": the first key of every slot lock


def take_slot(db: Database, max_drains: int) -> int | None:
    """Hold the first free slot for this session, or None when all are taken;
    a drain that has one covers every submit from then on."""
    rows = db.run("take_drain_slot", max_drains=max_drains, slot_class=SLOT_CLASS)
    if not rows:
        return None
    db.run("drain_started")
    return rows[0][0]


def give_slot(db: Database, slot: int) -> None:
    db.run("give_drain_slot", slot_class=SLOT_CLASS, slot=slot)


def running(db: Database) -> int:
    """How many drains hold a slot, in this database, across every container."""
    return db.run("running_drains", slot_class=SLOT_CLASS)[0][0]


def request_wake(db: Database | Runner, ttl: float) -> bool:
    """After a submit made work due: True when no drain runs and no other submit
    asked for one in the last ``ttl`` seconds, so this caller should start one."""
    return bool(run(db, "request_wake", slot_class=SLOT_CLASS, ttl=ttl))


def backlog(db: Database, queues: Sequence[str] | None, cap: int) -> int:
    """Due jobs in the queues a drain serves (paused ones left out), up to ``cap`` per queue."""
    return db.run("backlog", queues=None if queues is None else list(queues), cap=cap)[0][0]


def work_due(db: Database, queues: Sequence[str] | None) -> bool:
    """Whether anything is due, or about to be promoted, in the queues a drain serves."""
    return bool(db.run("work_due", queues=None if queues is None else list(queues))[0][0])


def commit_asynchronously(db: Database, on: bool) -> None:
    """During a drain, commits do not wait for the WAL flush: a completion lost in
    a database crash only means the job runs again after its lease
    (at-least-once), while enqueues, outside drains, stay durable."""
    db.execute("SET synchronous_commit TO off" if on else "SET synchronous_commit TO DEFAULT")
