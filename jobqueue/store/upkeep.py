"""The maintenance statements: rescue jobs whose lease ran out, prune finished
jobs past their retention (and the slots of dead drains), fold the rows the
counting triggers append. Each is bounded (a limit per call), so none holds a
long lock on a big table."""

from __future__ import annotations

from dataclasses import dataclass

from .. import states
from .connection import Database, Runner, run


def prune(db: Database | Runner, retention_seconds: float, *, limit: int = 5000) -> int:
    """Delete finished jobs older than the retention; returns how many went."""
    return run(db, "prune", retention_seconds=float(retention_seconds), limit=limit)[0][0]


@dataclass
class Rescued:
    """What one rescue did with the jobs of dead drains, by what their drain had written down."""

    unstarted: int = 0  # never started: back in line, attempt uncounted
    suspects: int = 0  # running beside others: to be run alone, uncounted
    crashed: int = 0  # died alone: every run counts, and it waits to run alone again
    failed: int = 0  # died alone, its runs at max_attempts: failed (ProcessCrashed)

    @property
    def total(self) -> int:
        return self.unstarted + self.suspects + self.crashed + self.failed


def rescue(db: Database | Runner, *, limit: int = 1000) -> Rescued:
    """Return the jobs of drains that died (their leases ran out), each as its drain's slots tell."""
    rescued = Rescued()
    for kind, state in run(db, "rescue", limit=limit):
        if state == states.FAILED:
            rescued.failed += 1
        elif kind == "alone":
            rescued.crashed += 1
        elif kind == "suspect":
            rescued.suspects += 1
        else:
            rescued.unstarted += 1
    return rescued


def forget_drains(db: Database | Runner, *, age_seconds: float = 3600.0) -> int:
    """Delete the slots of drains that died holding nothing left to rescue; returns how many."""
    return run(db, "forget_drains", age=float(age_seconds))[0][0]


def compact_counts(db: Database | Runner) -> None:
    """Fold job_counts' rows together (each changing statement appends one per queue and state)."""
    run(db, "compact_counts")
