"""Wake on submit: a submit that makes work due now starts a drain when none is
running, so a job does not wait for the next scheduled tick. One row in
jobqueue_wake makes a burst of submits ask once; a drain that gives up its slot
looks once more for due work before it returns, so a job submitted while it
was stopping is never stranded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import log, rules
from ..config import Settings
from ..store import drains
from ..store.connection import Database, Runner
from . import invocation, invoker, timers

WAKE_TTL = 10.0  # a wake nobody answered within this long may be asked again


def after_submit(db: Database | Runner, jobs: Sequence[Mapping[str, Any]], settings: Settings | None = None) -> bool:
    """Wake a drain when any of the jobs just submitted is due now, and arm a
    timer for the earliest that starts later (when timers are on). Never raises."""
    settings = settings or invocation.settings()
    if settings is None or settings.timer_queue_url is None:
        due = any(rules.due_now(job) for job in jobs)
    else:
        later = [job["run_at"] for job in jobs if not rules.due_now(job)]
        timers.after_submit(db, settings, later)
        due = len(later) < len(jobs)
    return wake(db, settings=settings) if due else False


def wake(db: Database | Runner, *, function: str | None = None, settings: Settings | None = None) -> bool:
    """After a submit made work due now: start a drain if none runs. Never raises."""
    function = function or invocation.function()
    settings = settings or invocation.settings()
    if not invoker.enabled(settings, function):
        return False
    try:
        asked = drains.request_wake(db, WAKE_TTL)
    except Exception as exc:  # noqa: BLE001 - the submit succeeded; the schedule will drain it
        log.warning("wake_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return False
    if not asked:
        return False
    assert function is not None
    started = invoker.invoke(function, {"action": "process", "hop": 1})
    if started:
        log.info("wake", function=function)
    return started
