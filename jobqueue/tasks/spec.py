"""What a submitted job may say, checked before anything touches the database.

Both the HTTP API and Python callers build a JobSpec; a bad field raises
ValidationError naming it, so a rejected submit enqueues nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .. import rules
from ..errors import UnknownTask, ValidationError
from . import registry

RUN_AT_MIN = datetime(1970, 1, 1, tzinfo=timezone.utc)
RUN_AT_MAX = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)

FIELDS = (
    "task",
    "payload",
    "queue",
    "priority",
    "run_at",
    "delay_seconds",
    "max_attempts",
    "timeout_seconds",
    "idempotency_key",
)
_FIELD_SET = frozenset(FIELDS)


@dataclass(frozen=True)
class JobSpec:
    task: str
    payload: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    run_at: datetime | None = None
    delay_seconds: float | None = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    idempotency_key: str | None = None

    @classmethod
    def from_dict(cls, data: Any, *, prefix: str = "") -> JobSpec:
        """Build from untrusted JSON-decoded input, naming the first bad field."""
        if not isinstance(data, Mapping):
            raise ValidationError("a job must be a JSON object", field=prefix.rstrip(".") or None)
        rules.only(data, _FIELD_SET, prefix=prefix)
        if "task" not in data or data["task"] is None:
            raise ValidationError("task is required", field=prefix + "task")
        return cls(**{name: data[name] for name in FIELDS if data.get(name) is not None}).validated(prefix)

    def validated(self, prefix: str = "") -> JobSpec:
        """Check every field and fill the task's defaults; raises ValidationError.

        A spec this returned is marked, so the enqueue that follows a request's
        validation does not pay for it twice (the API's per-request cost).
        """
        if "_resolved" in self.__dict__:
            return self
        resolved = self.resolve(prefix)
        checked = JobSpec(*resolved)
        # Frozen: not a field, so eq and repr ignore it. The resolve of the
        # enqueue that follows returns this very tuple.
        object.__setattr__(checked, "_resolved", resolved)
        return checked

    def resolve(self, prefix: str = "") -> Resolved:
        """The checked fields with the task's defaults filled in, as a plain tuple.

        That the payload can be stored as JSON is checked where it is
        serialised for the insert (payload_text), so it is serialised once.
        A task's own defaults were checked when it was registered.
        """
        resolved = self.__dict__.get("_resolved")
        if resolved is not None:
            return resolved
        name = rules.text(self.task, prefix + "task", rules.MAX_TASK_LENGTH)
        try:
            definition = registry.get(name)
        except UnknownTask as exc:  # name the job within a batch, e.g. jobs[3].task
            raise UnknownTask(exc.message, field=prefix + "task") from None
        payload = {} if self.payload is None else self.payload
        if not isinstance(payload, dict):
            raise ValidationError("payload must be a JSON object", field=prefix + "payload")
        queue = definition.queue if self.queue is None else rules.queue_name(self.queue, prefix + "queue")
        priority = definition.priority if self.priority is None else rules.priority(self.priority, prefix + "priority")
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValidationError("give run_at or delay_seconds, not both", field=prefix + "delay_seconds")
        run_at = None if self.run_at is None else _datetime(self.run_at, prefix + "run_at")
        delay = (
            None
            if self.delay_seconds is None
            else rules.number(self.delay_seconds, prefix + "delay_seconds", 0, rules.MAX_DELAY_SECONDS)
        )
        max_attempts = (
            definition.max_attempts
            if self.max_attempts is None
            else rules.max_attempts(self.max_attempts, prefix + "max_attempts")
        )
        timeout = (
            definition.timeout
            if self.timeout_seconds is None
            else rules.timeout_seconds(self.timeout_seconds, prefix + "timeout_seconds")
        )
        key = (
            None
            if self.idempotency_key is None
            else rules.idempotency_key(self.idempotency_key, prefix + "idempotency_key")
        )
        return Resolved(name, payload, queue, priority, run_at, delay, max_attempts, timeout, key)


class Resolved(NamedTuple):
    task: str
    payload: dict[str, Any]
    queue: str
    priority: int
    run_at: datetime | None
    delay_seconds: float | None
    max_attempts: int
    timeout_seconds: float | None  # None: none named (rules.DEFAULT_TIMEOUT, or less on a short function)
    idempotency_key: str | None


def _datetime(value: Any, name: str) -> datetime:
    """A time in UTC from 1970 to 9999; a time without an offset is taken as UTC.

    The range is checked on the time converted to UTC, which is what is
    stored: 9999-12-31T23:00:00-01:00 is past the year 9999 and
    1970-01-01T00:00:00+01:00 is still in 1969.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError("run_at must be an ISO 8601 date-time", field=name) from None
    if not isinstance(value, datetime):
        raise ValidationError("run_at must be an ISO 8601 date-time", field=name)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        value = value.astimezone(timezone.utc)
    except OverflowError:  # the offset moved it past year 1 or 9999
        value = None
    if value is None or not RUN_AT_MIN <= value <= RUN_AT_MAX:
        raise ValidationError("run_at must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z", field=name)
    return value
