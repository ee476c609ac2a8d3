"""The one row that remembers the earliest wake armed (migrations/0009_timers.sql),
and the earliest start that may need one."""

from __future__ import annotations

from .connection import Database, Runner, run


def arm(db: Database | Runner, at: str) -> float | None:
    """Arm a wake at ``at`` (ISO 8601) unless one as early is armed and pending;
    the seconds from now until ``at`` when the caller must send the message."""
    rows = run(db, "arm_timer", at=at)
    return rows[0][0] if rows else None


def disarm(db: Database | Runner, at: str) -> None:
    run(db, "disarm_timer", at=at)


def fired(db: Database | Runner, due: str) -> None:
    """The wake armed for ``due`` came: nothing is armed until a drain arms the next."""
    run(db, "timer_fired", due=due)


def next_start(db: Database | Runner) -> tuple[str, float] | None:
    """The earliest time a job not yet due becomes due, and the seconds until then."""
    rows = run(db, "next_start")
    return (rows[0][0], rows[0][1]) if rows else None
