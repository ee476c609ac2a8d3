"""The task registry and the ``@task`` decorator.

A task is a plain function; its job's payload (a JSON object) becomes its
keyword arguments and its return value (JSON-serialisable) the job's result.
Modules named in JOBQUEUE_TASK_MODULES are imported at cold start (``loading``)
so their ``@task`` decorators run before the first job is claimed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from .. import rules
from ..errors import UnknownTask, ValidationError

DEFAULT_QUEUE = "default"
DEFAULT_MAX_ATTEMPTS = 3

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Task:
    name: str
    func: Callable[..., Any]
    queue: str = DEFAULT_QUEUE
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float | None = None  # none named: rules.DEFAULT_TIMEOUT, or less on a short function
    priority: int = 0
    alone: bool = False  # run with no other job of the same drain beside it
    is_async: bool = False  # an ``async def``: runs on the event loop
    wants_job: bool = False  # takes a ``job`` argument: a durable task, given its Job handle


_registry: dict[str, Task] = {}


@overload
def task(func: F) -> F: ...
@overload
def task(
    func: None = None,
    *,
    name: str | None = None,
    queue: str = DEFAULT_QUEUE,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    timeout: float | None = None,
    priority: int = 0,
    alone: bool = False,
    periodic: str | list[str] | None = None,
) -> Callable[[F], F]: ...
def task(
    func: F | None = None,
    *,
    name: str | None = None,
    queue: str = DEFAULT_QUEUE,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    timeout: float | None = None,
    priority: int = 0,
    alone: bool = False,
    periodic: str | list[str] | None = None,
) -> F | Callable[[F], F]:
    """Register a function as a task; usable bare (``@task``) or with options.

    ``alone=True`` runs the task with no other job of its drain beside it
    (for CPU-heavy or thread-unsafe work), in the drain's own thread, where
    its timeout interrupts it even in a blocking call. ``periodic`` (a cron
    expression, or a list of them) also enqueues it on that schedule, in UTC
    with an empty payload; ``jobqueue.periodic`` says more.
    """

    def register(f: F) -> F:
        task_name = name or f"{f.__module__}.{f.__qualname__}"
        # Checked here, once, by a submit's own rules, so a job that takes its
        # task's defaults needs no further checks.
        try:
            checked = (
                rules.queue_name(queue),
                rules.max_attempts(max_attempts),
                None if timeout is None else rules.timeout_seconds(timeout, "timeout"),
                rules.priority(priority),
            )
        except ValidationError as exc:
            raise ValueError(f"task {task_name}: {exc.message}") from None
        existing = _registry.get(task_name)
        if existing is not None and existing.func is not f and _qualified(existing.func) != _qualified(f):
            raise ValueError(f"task name {task_name!r} is already registered by {_qualified(existing.func)}")
        if periodic is not None:  # first, so that a bad schedule registers nothing
            from .periodic import declare_for_task

            declare_for_task(task_name, periodic)
        is_async = inspect.iscoroutinefunction(f)
        try:
            wants_job = "job" in inspect.signature(f).parameters
        except (TypeError, ValueError):  # a callable without a signature (a builtin) takes no job
            wants_job = False
        _registry[task_name] = Task(task_name, f, *checked, alone, is_async, wants_job)
        return f

    return register(func) if func is not None else register


def _qualified(f: Callable[..., Any]) -> str:
    return f"{f.__module__}.{f.__qualname__}"


def get(name: str) -> Task:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownTask(f"unknown task {name!r}", field="task") from None


def registered() -> dict[str, Task]:
    return dict(_registry)
