"""What the store knows of each queue: its exact counts (with the age of its
oldest due job) and its settings (paused, concurrency and rate limits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import states
from . import upkeep
from .connection import Database, Runner, run


def stats(db: Database | Runner) -> dict[str, Any]:
    """Counts per queue and state, and per queue the age of its oldest due job.

    Exact, and cheap at any table size: the counts come from job_counts, which
    triggers keep, folded together first so that reading them stays cheap.
    """
    upkeep.compact_counts(db)
    run(db, "promote", limit=5000)  # ages count jobs that came due while no drain ran
    queues: dict[str, dict[str, Any]] = {}
    totals = {state: 0 for state in states.ALL}
    for queue, state, count in run(db, "stats_counts"):
        entry = queues.setdefault(queue, {"counts": {s: 0 for s in states.ALL}, "oldest_pending_age_seconds": None})
        entry["counts"][state] = count
        totals[state] += count
    oldest_overall = None
    for queue, age in run(db, "stats_oldest"):
        age = max(0.0, float(age))
        queues.setdefault(queue, {"counts": {s: 0 for s in states.ALL}, "oldest_pending_age_seconds": None})
        queues[queue]["oldest_pending_age_seconds"] = round(age, 3)
        oldest_overall = age if oldest_overall is None else max(oldest_overall, age)
    return {
        "queues": queues,
        "totals": totals,
        "oldest_pending_age_seconds": None if oldest_overall is None else round(oldest_overall, 3),
    }


def queue_settings(db: Database | Runner) -> dict[str, QueueSettings]:
    """Every configured queue's settings, by name; a queue without a row has the defaults."""
    return {row[0]: QueueSettings(*row) for row in run(db, "queue_settings")}


def configure_queue(db: Database | Runner, name: str, changes: dict[str, Any]) -> QueueSettings:
    """Create or change a queue's settings. ``changes`` holds any of paused,
    concurrency and rate ((limit, per_seconds) or None); the rest stay as they are."""
    rate = changes.get("rate")
    row = run(
        db,
        "configure_queue",
        queue=name,
        set_paused="paused" in changes,
        paused=changes.get("paused"),
        set_concurrency="concurrency" in changes,
        concurrency=changes.get("concurrency"),
        set_rate="rate" in changes,
        rate_limit=None if rate is None else rate[0],
        rate_seconds=None if rate is None else float(rate[1]),
    )[0]
    return QueueSettings(*row)


@dataclass(frozen=True)
class QueueSettings:
    name: str
    paused: bool = False
    concurrency: int | None = None
    rate_limit: int | None = None
    rate_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        rate = None if self.rate_limit is None else {"limit": self.rate_limit, "per_seconds": self.rate_seconds}
        return {"paused": self.paused, "concurrency": self.concurrency, "rate": rate}
