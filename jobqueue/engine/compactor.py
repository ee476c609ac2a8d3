"""The compactor: folds together the rows the counting triggers append (every
claim, outcome and submit adds some), so that stats stay cheap to read. A
drain calls it as it goes, at most every few seconds per container."""

from __future__ import annotations

import time

from ..errors import DatabaseUnavailable
from ..store import upkeep
from ..store.connection import Database

COUNTS_INTERVAL = 10.0
_last_compaction = 0.0


def due() -> bool:
    return time.monotonic() - _last_compaction >= COUNTS_INTERVAL


def maybe_compact(db: Database) -> None:
    global _last_compaction
    now = time.monotonic()
    if now - _last_compaction >= COUNTS_INTERVAL:
        _last_compaction = now
        try:
            upkeep.compact_counts(db)
        except DatabaseUnavailable:
            pass  # the next drain folds them
