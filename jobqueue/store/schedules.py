"""Where each periodic schedule stands: its last slot enqueued (or when it was
first seen), one row per schedule. The slots come from the caller's clock, never
the database's, so a tick decides the same slots wherever it runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from .connection import Database, run

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def state(db: Database, names: list[str]) -> dict[str, tuple[datetime | None, datetime]]:
    """{name: (last slot enqueued or None, first seen)} for the schedules the table knows."""
    if not names:
        return {}
    text = run(db, "schedules_state", names=json.dumps(names))[0][0]
    return {
        name: (None if last is None else _from_micros(last), _from_micros(first))
        for name, last, first in json.loads(text or "[]")
    }


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def add(db: Database, names: list[str], now: datetime) -> None:
    """Schedules seen for the first time start from ``now``: nothing of theirs is due before it."""
    run(db, "schedules_add", names=json.dumps(names), now=now)


@contextmanager
def locked(db: Database, name: str) -> Iterator[datetime | None]:
    """A transaction holding one schedule's row: yields its last slot enqueued (or
    when it was first seen), None when it has no row. A concurrent tick waits
    for this one, then sees the slot it recorded with ``advance``."""
    with db.transaction():
        rows = run(db, "schedule_lock", schedule=name)
        yield rows[0][0] if rows else None


def advance(db: Database, name: str, slot: datetime) -> None:
    """Record the last slot enqueued (inside ``locked``, with the enqueue); never backwards."""
    run(db, "schedule_advance", schedule=name, slot=slot)
