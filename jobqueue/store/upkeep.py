"""The maintenance statements: rescue jobs whose lease ran out, prune finished
jobs past their retention, fold the rows the counting triggers append. Each is
bounded (a limit per call), so none holds a long lock on a big table."""

from __future__ import annotations

from .. import states
from .connection import Database, Runner, run


def prune(db: Database | Runner, retention_seconds: float, *, limit: int = 5000) -> int:
    """Delete finished jobs older than the retention; returns how many went."""
    return run(db, "prune", retention_seconds=float(retention_seconds), limit=limit)[0][0]


def rescue(db: Database | Runner, *, limit: int = 1000) -> dict[str, int]:
    """Return lost jobs (lease expired) to pending, or fail them when out of attempts."""
    counts = {states.PENDING: 0, states.FAILED: 0}
    for _, state in run(db, "rescue", limit=limit):
        counts[state] += 1
    return counts


def compact_counts(db: Database | Runner) -> None:
    """Fold job_counts' rows together (each changing statement appends one per queue and state)."""
    run(db, "compact_counts")
