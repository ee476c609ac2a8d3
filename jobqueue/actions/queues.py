"""Actions on queues: list them with their settings and counts, and change a
queue's settings (paused, concurrency, rate), which every drain's claim obeys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import rules
from ..errors import ValidationError
from ..states import ALL as STATES
from ..store import queues as queue_rows
from ..store.connection import Database, Runner
from .jobs import Body, json_object

QUEUE_FIELDS = frozenset({"paused", "concurrency", "rate"})
RATE_FIELDS = frozenset({"limit", "per_seconds"})


def queues(db: Database | Runner) -> Body:
    """Every queue that has jobs or settings, with both, sorted by name.

    From the exact counts the triggers keep and the settings table: the cost
    grows with the number of queues, never with the number of jobs.
    """
    counts = queue_rows.stats(db)["queues"]
    settings = queue_rows.queue_settings(db)
    names = sorted(set(counts) | set(settings))
    return {"status": "ok", "queues": [_queue(name, settings.get(name), counts.get(name)) for name in names]}


def configure_queue(db: Database | Runner, name: Any, data: Any) -> Body:
    """Change a queue's settings (any of paused, concurrency, rate); the rest stay.

    A queue needs no job to be configured: settings made before its first job
    apply to that job. They take effect on the next claim.
    """
    rules.queue_name(name, "name")
    data = json_object({} if data is None else data)
    rules.only(data, QUEUE_FIELDS)
    if not data:
        raise ValidationError("the body must set at least one of paused, concurrency and rate", field="body")
    changes: dict[str, Any] = {}
    if "paused" in data:
        if not isinstance(data["paused"], bool):
            raise ValidationError("paused must be true or false", field="paused")
        changes["paused"] = data["paused"]
    if "concurrency" in data:
        concurrency = data["concurrency"]
        changes["concurrency"] = (
            None
            if concurrency is None
            else rules.whole_number(concurrency, "concurrency", 0, rules.MAX_QUEUE_CONCURRENCY)
        )
    if "rate" in data:
        changes["rate"] = _rate(data["rate"])
    settings = queue_rows.configure_queue(db, name, changes)
    return {"status": "ok", "queue": _queue(name, settings, queue_rows.stats(db)["queues"].get(name))}


def _rate(value: Any) -> tuple[int, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError('rate must be {"limit": N, "per_seconds": S} or null for no limit', field="rate")
    rules.only(value, RATE_FIELDS, prefix="rate.")
    for key in sorted(RATE_FIELDS):
        if key not in value:
            raise ValidationError(f"rate.{key} is required", field=f"rate.{key}")
    limit = rules.whole_number(value["limit"], "rate.limit", 1, rules.MAX_RATE_LIMIT)
    seconds = value["per_seconds"]
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not rules.MIN_RATE_SECONDS <= seconds <= rules.MAX_RATE_SECONDS  # NaN fails this too
    ):
        raise ValidationError(
            f"rate.per_seconds must be a number of seconds from {rules.MIN_RATE_SECONDS} to "
            f"{rules.MAX_RATE_SECONDS} (7 days)",
            field="rate.per_seconds",
        )
    return limit, float(seconds)


def _queue(name: str, settings: queue_rows.QueueSettings | None, stats: Mapping[str, Any] | None) -> Body:
    body: Body = {"name": name, **(settings or queue_rows.QueueSettings(name)).as_dict()}
    body["counts"] = dict(stats["counts"]) if stats else {state: 0 for state in STATES}
    body["oldest_pending_age_seconds"] = stats["oldest_pending_age_seconds"] if stats else None
    return body
