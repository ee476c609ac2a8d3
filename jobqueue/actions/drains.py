"""Actions that run the engine: a drain within the caller's time, and the
scheduled tick's enqueue of periodic jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import rules
from ..config import Settings
from ..engine import fanout, invocation, metrics, timers
from ..errors import ValidationError
from ..store.connection import Database
from .jobs import Body, json_object

PROCESS_FIELDS = frozenset({"queues", "max_jobs", "hop"})


def process(
    db: Database,
    options: Any = None,
    *,
    budget_seconds: float | None,
    settings: Settings | None = None,
) -> Body:
    """Drain due jobs within the budget; ``options`` may narrow it to queues or a count.

    Inside Lambda (the handler has recorded the invocation) the drain takes a
    slot, starts more drains as its backlog needs, and sets aside jobs longer
    than any drain's whole budget; ``hop`` is how many invocations led to this
    one, so that no chain of drains starting drains grows without end.
    """
    options = {} if options is None else json_object(options, "the process options")
    rules.only(options, PROCESS_FIELDS)
    queues = options.get("queues")
    if queues is not None:
        if not isinstance(queues, list) or not queues or len(queues) > rules.MAX_DRAIN_QUEUES:
            raise ValidationError(f"queues must be a list of 1 to {rules.MAX_DRAIN_QUEUES} queue names", field="queues")
        for i, name in enumerate(queues):
            rules.queue_name(name, f"queues[{i}]")
    max_jobs = options.get("max_jobs")
    if max_jobs is not None:
        max_jobs = rules.whole_number(max_jobs, "max_jobs", 1, rules.MAX_DRAIN_JOBS)
    hop = rules.whole_number(options.get("hop", 0), "hop", 0, rules.MAX_HOPS)
    settings = settings or invocation.settings() or Settings.from_env()
    report = fanout.drain_in_slot(
        db,
        settings,
        function=invocation.function(),
        hop=hop,
        budget_seconds=budget_seconds,
        cap_seconds=invocation.budget_cap(),
        queues=queues,
        max_jobs=max_jobs,
    )
    metrics.drain(report, settings)
    timers.after_drain(db, settings, report.reopens_in)  # the earliest start it leaves behind wakes on time
    return {"status": "ok", "drain": report.as_dict()}


def enqueue_periodic(db: Database, *, now: datetime | None = None) -> dict[str, Any]:
    """Enqueue the periodic jobs that came due (each slot once); the scheduled tick's first step."""
    from ..engine import periodic_enqueuer  # cron and the schedules load only with the first tick

    return periodic_enqueuer.tick(db, now)
