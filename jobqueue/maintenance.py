"""Duties a drain does besides running jobs, each at most so often per
container: pruning finished jobs past their retention, and folding the rows
the counting triggers append."""

from __future__ import annotations

import time

from . import queue
from .config import Settings
from .db import Database
from .errors import DatabaseUnavailable

PRUNE_INTERVAL = 300.0
PRUNE_BATCH = 5000
COUNTS_INTERVAL = 10.0
_last_prune = 0.0
_last_compaction = 0.0


def compaction_due() -> bool:
    return time.monotonic() - _last_compaction >= COUNTS_INTERVAL


def maybe_prune(db: Database, settings: Settings, deadline: float) -> int:
    """Prune at most every few minutes per container, so an idle drain stays
    cheap, but keep going while whole batches come back and time is left, so
    pruning keeps up with any rate of finished jobs."""
    global _last_prune
    now = time.monotonic()
    if now - _last_prune < PRUNE_INTERVAL:
        return 0
    _last_prune = now
    pruned = 0
    while True:
        deleted = queue.prune(db, settings.retention_days * 86400, limit=PRUNE_BATCH)
        pruned += deleted
        if deleted < PRUNE_BATCH or time.monotonic() > deadline - 1.0:
            return pruned


def maybe_compact(db: Database) -> None:
    """Fold the count rows together now and then (every claim, outcome and
    submit appends some), so that stats stay cheap to read."""
    global _last_compaction
    now = time.monotonic()
    if now - _last_compaction >= COUNTS_INTERVAL:
        _last_compaction = now
        try:
            queue.compact_counts(db)
        except DatabaseUnavailable:
            pass  # the next drain folds them
