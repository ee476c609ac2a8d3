"""Periodic jobs declared in code: ``jobqueue.periodic(...)`` and ``@task(periodic=...)``.

Declarations run when task modules are imported (JOBQUEUE_TASK_MODULES, at
cold start), so a bad expression or time zone stops the cold start with a
ConfigError naming the schedule, and cold start (``loading``, after the
imports) finds schedules whose task no module registered. Which slots are due
is decided here, from the schedule and the last slot enqueued; the engine's
periodic enqueuer does the enqueueing, exactly once per slot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import cached_property
from typing import Any

from .. import rules
from ..errors import ConfigError, ValidationError
from . import cron

UTC = cron.UTC

CATCH_UP = ("latest", "all")
# With catch_up="all", at most this many missed slots are enqueued per schedule
# and tick; a longer backlog continues, oldest first, on the ticks after.
MAX_CATCH_UP = 1000
MAX_NAME_LENGTH = 200  # the idempotency key, periodic:<name>:<slot>, stays within 255


@dataclass(frozen=True)
class Schedule:
    name: str
    expression: str
    task: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    catch_up: str = "latest"

    @cached_property
    def parsed(self) -> cron.Cron:
        return cron.parse(self.expression)

    @cached_property
    def zone(self) -> tzinfo:
        return cron.zone(self.timezone)

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment``, in UTC."""
        return self.parsed.next_after(moment, self.zone).astimezone(UTC)

    def due(self, cursor: datetime, now: datetime) -> list[datetime]:
        """The slots to enqueue now, oldest first: of those after ``cursor`` (the
        last slot enqueued, or when the schedule was first seen) and not after
        ``now``, the latest one, or with catch_up="all" up to MAX_CATCH_UP."""
        first = self.next_after(cursor)
        if first > now:
            return []
        if self.catch_up == "all":
            slots = [first]
            while len(slots) < MAX_CATCH_UP:
                following = self.next_after(slots[-1])
                if following > now:
                    break
                slots.append(following)
            return slots
        return [self.latest(first, now)]

    def next_run(self, cursor: datetime, now: datetime) -> datetime:
        """The slot the next tick will enqueue if one is due already, else the first after ``now``."""
        first = self.next_after(cursor)
        if first > now or self.catch_up == "all":
            return first
        return self.latest(first, now)

    def latest(self, first: datetime, now: datetime) -> datetime:
        """The last slot not after ``now``, given one (``first``) that is not.

        A search growing back from ``now``, then bisection: a long outage of a
        frequent schedule costs a few dozen fire-time computations, not one
        per missed slot.
        """
        if self.next_after(first) > now:
            return first
        lo, span = first, timedelta(minutes=1)
        while now - span > lo:
            if self.next_after(now - span) <= now:
                lo = now - span
                break
            span *= 2
        hi = now  # a slot follows lo by ``now``; none follows hi by then
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if self.next_after(mid) <= now:
                lo = mid
            else:
                hi = mid
        slot = self.next_after(lo)
        while (following := self.next_after(slot)) <= now:
            slot = following
        return slot

    def idempotency_key(self, slot: datetime) -> str:
        return f"periodic:{self.name}:{slot.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"

    def describe(self) -> str:
        return f'schedule {self.name!r} ("{self.expression}")'


_registry: dict[str, Schedule] = {}


def periodic(
    expression: str,
    task: str,
    payload: Mapping[str, Any] | None = None,
    *,
    timezone: str = "UTC",
    name: str | None = None,
    queue: str | None = None,
    priority: int | None = None,
    max_attempts: int | None = None,
    timeout_seconds: float | None = None,
    catch_up: str = "latest",
) -> Schedule:
    """Enqueue ``task`` with ``payload`` at every fire time of ``expression``
    (five-field cron or a macro like @daily) in ``timezone``.

    Each scheduled tick enqueues the slots that came due since the last one,
    exactly once. ``catch_up`` says what happens after the ticks stopped for a
    while: "latest" enqueues only the most recent missed slot, "all" every one
    (at most MAX_CATCH_UP per tick). A schedule seen for the first time starts
    from that moment, without backfill. Options left None take the task's
    defaults. ``name`` (default: the task's name) identifies the schedule in
    the database: renaming it starts it afresh.
    """
    label = name if isinstance(name, str) else task
    where = f'schedule {str(label)[:MAX_NAME_LENGTH]!r} ("{expression}")'
    if not isinstance(task, str) or not task:
        raise ConfigError(f"{where}: task must be a task's name")
    if name is None:
        name = task
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH or "\x00" in name:
        raise ConfigError(f"{where}: name must be 1 to {MAX_NAME_LENGTH} characters")
    try:
        parsed = cron.parse(expression)
        cron.zone(timezone)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if catch_up not in CATCH_UP:
        raise ConfigError(f'{where}: catch_up must be "latest" or "all", not {catch_up!r}')
    payload = {} if payload is None else payload
    if not isinstance(payload, Mapping):
        raise ConfigError(f"{where}: payload must be a dict (the task's keyword arguments)")
    try:
        _check_options(payload, queue, priority, max_attempts, timeout_seconds)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    schedule = Schedule(
        name=name,
        expression=parsed.expression,
        task=task,
        payload=json.loads(rules.payload_text(dict(payload), "payload")),  # a copy, JSON-ready
        timezone=timezone,
        queue=queue,
        priority=priority,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        catch_up=catch_up,
    )
    existing = _registry.get(name)
    if existing is not None and existing != schedule:
        raise ConfigError(
            f"{schedule.describe()}: another schedule already has this name ({existing.expression!r}"
            f" for {existing.task!r}); give one of them its own name="
        )
    _registry[name] = schedule
    return schedule


def _check_options(payload: Mapping[str, Any], queue: Any, priority: Any, attempts: Any, timeout: Any) -> None:
    """The job options, by a submit's rules (the task may not be registered yet)."""
    rules.payload_text(dict(payload), "payload")
    if queue is not None:
        rules.queue_name(queue)
    if priority is not None:
        rules.priority(priority)
    if attempts is not None:
        rules.max_attempts(attempts)
    if timeout is not None:
        rules.timeout_seconds(timeout)


def declare_for_task(task_name: str, expressions: str | list[str] | tuple[str, ...]) -> None:
    """``@task(periodic=...)``: one expression, named as the task, or several,
    each named ``<task> <expression>``."""
    if isinstance(expressions, str):
        periodic(expressions, task_name)
        return
    if not isinstance(expressions, list | tuple) or not expressions:
        raise ConfigError(f"task {task_name}: periodic must be a cron expression or a list of them")
    for expression in expressions:
        if len(expressions) == 1:
            periodic(expression, task_name)
        else:
            periodic(expression, task_name, name=f"{task_name} {' '.join(str(expression).split())}")


def registered() -> dict[str, Schedule]:
    return dict(_registry)
