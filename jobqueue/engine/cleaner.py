"""The cleaner: deletes finished jobs past their retention, and the slots of
drains that died, from idle drains.

At most every few minutes per container, so an idle drain stays cheap, but
it keeps going while whole batches come back and time is left, so pruning
keeps up with any rate of finished jobs.
"""

from __future__ import annotations

import time

from ..config import Settings
from ..store import upkeep
from ..store.connection import Database

PRUNE_INTERVAL = 300.0
PRUNE_BATCH = 5000
_last_prune = 0.0


def maybe_prune(db: Database, settings: Settings, deadline: float) -> int:
    """Prune if this container has not lately; returns how many jobs went."""
    global _last_prune
    now = time.monotonic()
    if now - _last_prune < PRUNE_INTERVAL:
        return 0
    _last_prune = now
    pruned = 0
    upkeep.forget_drains(db)
    while True:
        deleted = upkeep.prune(db, settings.retention_days * 86400, limit=PRUNE_BATCH)
        pruned += deleted
        if deleted < PRUNE_BATCH or time.monotonic() > deadline - 1.0:
            return pruned
