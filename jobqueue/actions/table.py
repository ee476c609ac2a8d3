"""The one table of actions, by name: what a direct invocation, a schedule's
input, an HTTP route and the command line may ask for.

Each action takes its input as one JSON value (an object of named fields for
all but a batch) and a Call (the database, the time a drain may take, the
settings), checks the input itself, and answers with the response body. The
typed functions behind them (jobs, drains, queues, admin) are what Python
callers use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .. import rules
from ..config import Settings
from ..errors import ValidationError
from ..store import connection
from . import admin, drains, jobs, queues, signals
from .jobs import Body

NO_FIELDS: frozenset[str] = frozenset()


class Call:
    """What a caller brings besides its input: the database (the process's own
    unless given), the time a drain may take, and the settings."""

    __slots__ = ("_db", "budget_seconds", "settings")

    def __init__(
        self,
        db: connection.Database | None = None,
        *,
        budget_seconds: float | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._db = db
        self.budget_seconds = budget_seconds
        self.settings = settings

    @property
    def db(self) -> connection.Database:
        if self._db is None:
            self._db = connection.default()
        return self._db


class Action(NamedTuple):
    name: str
    run: Callable[[Any, Call], Body]
    direct: bool  # may be asked for as {"action": name, ...} (a direct invocation or a schedule's input)


def _required(args: Any, field: str, why: str = "") -> Any:
    if field not in args:
        raise ValidationError(f"{field} is required{why}", field=field)
    return args[field]


def _by_id(act: Callable[[Any, Any], Body]) -> Callable[[Any, Call], Body]:
    def run(args: Any, call: Call) -> Body:
        rules.only(args, frozenset({"job_id"}))
        return act(call.db, _required(args, "job_id"))

    return run


def _plain(act: Callable[[Any], Body]) -> Callable[[Any, Call], Body]:
    def run(args: Any, call: Call) -> Body:
        rules.only(args, NO_FIELDS)
        return act(call.db)

    return run


def _submit(args: Any, call: Call) -> Body:
    return jobs.submit(call.db, args)[0]


def _process(args: Any, call: Call) -> Body:
    return drains.process(call.db, args, budget_seconds=call.budget_seconds, settings=call.settings)


def _configure_queue(args: Any, call: Call) -> Body:
    """``{"name": ..., <the PATCH /queues/{name} body's fields>}``."""
    name = _required(args, "name", ": the queue to configure")
    return queues.configure_queue(call.db, name, {k: v for k, v in args.items() if k != "name"})


def _list_jobs(args: Any, call: Call) -> Body:
    rules.only(args, jobs.LIST_FIELDS)
    return jobs.list_jobs(call.db, **args)


def _signal(args: Any, call: Call) -> Body:
    return signals.signal_fields(args, call.db, call.settings)


def _prune(args: Any, call: Call) -> Body:
    rules.only(args, frozenset({"older_than_days"}))
    return admin.prune(call.db, args.get("older_than_days"), call.settings or Settings.from_env())


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("submit", _submit, direct=True),
        Action("status", _by_id(jobs.status), direct=True),
        Action("process", _process, direct=True),
        Action("stats", _plain(admin.stats), direct=True),
        Action("queues", _plain(queues.queues), direct=True),
        Action("configure_queue", _configure_queue, direct=True),
        Action("migrate", _plain(admin.migrate), direct=True),
        Action("schedules", _plain(admin.list_schedules), direct=True),
        Action("signal", _signal, direct=True),
        Action("submit_batch", lambda args, call: jobs.submit_batch(call.db, args), direct=False),
        Action("list_jobs", _list_jobs, direct=False),
        Action("cancel", _by_id(jobs.cancel), direct=False),
        Action("retry", _by_id(jobs.retry), direct=False),
        Action("health", _plain(admin.health), direct=False),
        Action("prune", _prune, direct=False),
    )
}
DIRECT = tuple(name for name, action in ACTIONS.items() if action.direct)


def perform(name: str, args: Any, call: Call) -> Body:
    return ACTIONS[name].run(args, call)


def direct(event: Any, call: Call) -> Body:
    """``{"action": name, ...fields}``: the action's body for its fields."""
    name = event.get("action")
    if not isinstance(name, str) or name not in DIRECT:
        raise ValidationError(
            f"unknown action {str(name)[:100]!r}; expected one of {', '.join(DIRECT)}", field="action"
        )
    return ACTIONS[name].run({k: v for k, v in event.items() if k != "action"}, call)
