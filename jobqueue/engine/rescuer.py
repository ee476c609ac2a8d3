"""The rescuer: at the start of every drain, jobs whose lease ran out (their
drain died, or lost its connection for longer than the lease) go back to
pending, or to failed when they are out of attempts, with LeaseExpired in their
error history. Bounded per drain, so a big crash is cleared over a few drains."""

from __future__ import annotations

from ..store import upkeep
from ..store.connection import Database


def rescue(db: Database) -> int:
    """Rescue what is lost; returns how many jobs it put back or failed."""
    rescued = upkeep.rescue(db)
    return rescued["pending"] + rescued["failed"]
