"""What a submitted job may say, checked before anything touches the database.

Both the HTTP API and Python callers build a JobSpec; a bad field raises
ValidationError naming it, so a rejected submit enqueues nothing.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from . import tasks
from .errors import UnknownTask, ValidationError

MAX_PRIORITY = 32767
MAX_ATTEMPTS = 100
MAX_TIMEOUT_SECONDS = 900.0  # Lambda's own ceiling
MIN_TIMEOUT_SECONDS = 0.001
MAX_DELAY_SECONDS = 366 * 86400.0
MAX_KEY_LENGTH = 255
MAX_TASK_LENGTH = 200
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


_last_ms = 0
_sequence = 0
# Ids need to be unique, not secret (every read of a job is authenticated), and
# a system call per id is a fifth of a batch enqueue's Python time. The random
# module reseeds itself in a forked child, so processes never share a stream.
_random_bits = random.getrandbits

_FIELD_SET = frozenset(FIELDS)


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 v7): new rows land at the right edge of the
    primary-key index, and ids sort by creation time for keyset pagination.

    Within one millisecond a 12-bit counter (RFC 9562's "method 1") keeps the
    ids of one process strictly increasing, so "newest first" is exact.
    """
    global _last_ms, _sequence
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _sequence = ms, _random_bits(10)
    else:
        _sequence += 1
        if _sequence > 0xFFF:  # counter spent: borrow the next millisecond
            _last_ms, _sequence = _last_ms + 1, 0
    value = (_last_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= _sequence << 64
    value |= 0b10 << 62
    value |= _random_bits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
        unknown = sorted(set(data) - _FIELD_SET)
        if unknown:
            raise ValidationError(f"unknown field {unknown[0]!r}", field=prefix + str(unknown[0]))
        if "task" not in data or data["task"] is None:
            raise ValidationError("task is required", field=prefix + "task")
        return cls(**{name: data[name] for name in FIELDS if data.get(name) is not None}).validated(prefix)

    def validated(self, prefix: str = "") -> JobSpec:
        """Check every field and fill the task's defaults; raises ValidationError.

        A spec this returned is marked, so the enqueue that follows a request's
        validation does not pay for it twice (the API's per-request cost).
        """
        if self.__dict__.get("_valid"):
            return self
        checked = JobSpec(*self.resolve(prefix))
        object.__setattr__(checked, "_valid", True)  # frozen: not a field, so eq and repr ignore it
        return checked

    def resolve(self, prefix: str = "") -> Resolved:
        """The checked fields with the task's defaults filled in, as a plain tuple.

        That the payload can be stored as JSON is checked where it is
        serialised for the insert (payload_text), so it is serialised once.
        A task's own defaults were checked when it was registered.
        """
        if self.__dict__.get("_valid"):
            return Resolved(*(getattr(self, f) for f in Resolved._fields))
        name = _text(self.task, prefix + "task", MAX_TASK_LENGTH)
        try:
            definition = tasks.get(name)
        except UnknownTask as exc:  # name the job within a batch, e.g. jobs[3].task
            raise UnknownTask(exc.message, field=prefix + "task") from None
        payload = {} if self.payload is None else self.payload
        if not isinstance(payload, dict):
            raise ValidationError("payload must be a JSON object", field=prefix + "payload")
        if self.queue is None:
            queue = definition.queue
        else:
            queue = _text(self.queue, prefix + "queue", 100)
            if not tasks.QUEUE_NAME.fullmatch(queue):
                raise ValidationError(
                    "queue may hold only letters, digits and _ . : - (1 to 100 characters)", field=prefix + "queue"
                )
        priority = (
            definition.priority
            if self.priority is None
            else whole_number(self.priority, prefix + "priority", -MAX_PRIORITY, MAX_PRIORITY)
        )
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValidationError("give run_at or delay_seconds, not both", field=prefix + "delay_seconds")
        run_at = None if self.run_at is None else _datetime(self.run_at, prefix + "run_at")
        delay = (
            None
            if self.delay_seconds is None
            else _number(self.delay_seconds, prefix + "delay_seconds", 0, MAX_DELAY_SECONDS)
        )
        max_attempts = (
            definition.max_attempts
            if self.max_attempts is None
            else whole_number(self.max_attempts, prefix + "max_attempts", 1, MAX_ATTEMPTS)
        )
        timeout = (
            definition.timeout
            if self.timeout_seconds is None
            else _number(self.timeout_seconds, prefix + "timeout_seconds", MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)
        )
        key = (
            None
            if self.idempotency_key is None
            else _text(self.idempotency_key, prefix + "idempotency_key", MAX_KEY_LENGTH)
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
    timeout_seconds: float
    idempotency_key: str | None


def _text(value: Any, name: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name.rsplit('.', 1)[-1]} must be a string", field=name)
    if not 1 <= len(value) <= max_length:
        raise ValidationError(f"{name.rsplit('.', 1)[-1]} must be 1 to {max_length} characters", field=name)
    if "\x00" in value or not _utf8(value):
        raise ValidationError(
            f"{name.rsplit('.', 1)[-1]} must not contain NUL characters or unpaired surrogates", field=name
        )
    return value


def idempotency_key(value: Any, name: str = "idempotency_key") -> str:
    """A valid idempotency key (1 to 255 characters PostgreSQL can store), or ValidationError."""
    return _text(value, name, MAX_KEY_LENGTH)


# A JSON-escaped NUL (\u0000 preceded by an even number of backslashes).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def payload_text(payload: Any, field: str) -> str:
    """The payload as JSON text; ValidationError naming ``field`` unless jsonb can store it."""
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"payload is not JSON-serialisable: {exc}", field=field) from None
    if not json_storable(text):
        raise ValidationError(
            "payload must not contain NUL characters or unpaired surrogates (PostgreSQL cannot store them)",
            field=field,
        )
    return text


def json_storable(text: str) -> bool:
    """Whether jsonb can store this JSON text: it rejects an escaped NUL."""
    return not ("\\u0000" in text and _NUL_ESCAPE.search(text)) and _utf8(text)


def _utf8(text: str) -> bool:
    """A lone surrogate cannot be encoded as UTF-8; pg8000 would fail mid-message
    and leave the connection unusable, so it must never reach the driver."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def whole_number(value: Any, name: str, lo: int, hi: int) -> int:
    """An integer as JSON Schema counts them: 8923 and 8923.0 alike (JSON has one
    number type), not 8923.5, not true."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name.rsplit('.', 1)[-1]} must be an integer", field=name)
    if not lo <= value <= hi:
        raise ValidationError(f"{name.rsplit('.', 1)[-1]} must be between {lo} and {hi}", field=name)
    return value


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{name.rsplit('.', 1)[-1]} must be a number", field=name)
    if not lo <= value <= hi:
        raise ValidationError(f"{name.rsplit('.', 1)[-1]} must be between {lo:g} and {hi:g}", field=name)
    return float(value)


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
