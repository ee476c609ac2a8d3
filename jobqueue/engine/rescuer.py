"""The rescuer: at the start of every drain, the jobs of drains that died
(their leases ran out) go back, each as its drain's slots tell: a job that
never started is put back in line with its attempt uncounted; one that was
running beside others becomes a suspect, run alone next; one that died alone
is charged (ProcessCrashed), and fails once its runs reach max_attempts.
Bounded per drain, so a big crash is cleared over a few drains."""

from __future__ import annotations

from .. import log
from ..store import upkeep
from ..store.connection import Database


def rescue(db: Database) -> int:
    """Rescue what is lost; returns how many jobs it put back or failed."""
    rescued = upkeep.rescue(db)
    if rescued.suspects or rescued.crashed or rescued.failed:
        log.warning(
            "drain_died",
            unstarted=rescued.unstarted,
            suspects=rescued.suspects,
            crashed=rescued.crashed,
            failed=rescued.failed,
            message="a drain's process died with jobs running: jobs that ran beside others run alone next, "
            "and only a death while alone counts",
        )
    return rescued.total
