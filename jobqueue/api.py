"""The actions a client can ask for, in plain Python, returning the response bodies.

The HTTP routes, direct invocations, schedules and SQS all come through here,
so every way in validates the same way and answers with the same bodies. Input
is untrusted and already JSON-decoded; output is JSON-ready. Nothing here knows
of events or status codes, and nothing here writes SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from . import fanout, invocation, log, metrics, spec, states, tasks
from . import queue as store
from .config import Settings
from .db import Database, Runner
from .errors import DatabaseUnavailable, ValidationError
from .spec import JobSpec, whole_number
from .states import ALL as STATES

Body = dict[str, Any]
MAX_FILTER_LENGTH = 200
MAX_DRAIN_JOBS = 1_000_000


class SchemaNotReady(DatabaseUnavailable):
    """The database answers but its schema is missing or behind (run the migrate action)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public_message = message


def _object(data: Any, what: str = "the request body") -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{what} must be a JSON object", field="body")
    return data


def _only(data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0][:100]!r}", field=unknown[0][:100])


def submit(db: Database | Runner, data: Any, *, idempotency_key: str | None = None) -> tuple[Body, bool]:
    """Submit one job; returns (body, created). ``idempotency_key`` is the
    Idempotency-Key header: the job's key unless the body names its own.

    The body's key wins, as it does over an SQS message id: it says which
    submissions the producer considers the same job, while a header is often
    added per request by an HTTP client's retry layer.
    """
    data = _object(data)
    if idempotency_key is not None:
        spec.idempotency_key(idempotency_key, "Idempotency-Key")  # checked even when the body's wins
        if data.get("idempotency_key") is None:
            data = {**data, "idempotency_key": idempotency_key}
    job, created = store.enqueue(db, JobSpec.from_dict(data))
    if created and job["run_at"] <= job["created_at"]:
        fanout.wake(db)  # due now: make sure a drain is running
    return {"status": "ok", "job": job}, created


def submit_batch(db: Database | Runner, data: Any) -> Body:
    """Submit many jobs, all or nothing: one bad job rejects the batch, naming it."""
    data = _object(data)
    _only(data, frozenset({"jobs"}))
    jobs = data.get("jobs")
    if not isinstance(jobs, list):
        raise ValidationError("jobs must be a JSON array of jobs", field="jobs")
    if len(jobs) > store.MAX_BATCH:
        raise ValidationError(f"a batch holds at most {store.MAX_BATCH} jobs, got {len(jobs)}", field="jobs")
    specs = [JobSpec.from_dict(job, prefix=f"jobs[{i}].") for i, job in enumerate(jobs)]
    created = store.enqueue_many(db, specs)
    if any(job["run_at"] <= job["created_at"] for job in created):
        fanout.wake(db)
    return {"status": "ok", "jobs": created}


def status(db: Database | Runner, job_id: Any) -> Body:
    return {"status": "ok", "job": store.get(db, _job_id(job_id))}


def cancel(db: Database | Runner, job_id: Any) -> Body:
    return {"status": "ok", "job": store.cancel(db, _job_id(job_id))}


def retry(db: Database | Runner, job_id: Any) -> Body:
    return {"status": "ok", "job": store.retry(db, _job_id(job_id))}


def _job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise ValidationError("job_id must be a job's id (a UUID)", field="job_id")
    return _uuid(job_id, "id")


# A UUID as RFC 9562 writes it, the form the API document's "uuid" format names
# (uuid.UUID alone would also take braces, "urn:uuid:" and bare hex).
UUID_TEXT = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def _uuid(value: str, field: str) -> str:
    if not UUID_TEXT.fullmatch(value):
        raise ValidationError(f"{field} must be a UUID", field=field)
    return value


def list_jobs(
    db: Database | Runner,
    *,
    state: str | None = None,
    queue: str | None = None,
    task: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Body:
    """A page of jobs, newest first; pass ``next_cursor`` back as ``cursor`` for the next."""
    if queue is not None and not (isinstance(queue, str) and tasks.QUEUE_NAME.fullmatch(queue)):
        raise ValidationError("queue must be a queue name (letters, digits and _ . : -)", field="queue")
    if task is not None:
        _filter_text(task, "task")
    if state is not None and state not in states.ALL:
        raise ValidationError(f"state must be one of {', '.join(states.ALL)}", field="state")
    if cursor is not None:
        _filter_text(cursor, "cursor")
        _uuid(cursor, "cursor")
    page = store.list_jobs(db, state=state, queue=queue, task=task, cursor=cursor, limit=50 if limit is None else limit)
    return {"status": "ok", "jobs": page.jobs, "next_cursor": page.next_cursor}


def _filter_text(value: Any, name: str) -> None:
    """Filters reach the database as parameters, so they only need to be text it can take."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_FILTER_LENGTH or "\x00" in value:
        raise ValidationError(f"{name} must be text of 1 to {MAX_FILTER_LENGTH} characters", field=name)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"{name} must be valid Unicode text", field=name) from None


_PROCESS_FIELDS = frozenset({"queues", "max_jobs", "hop"})


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
    options = {} if options is None else _object(options, "the process options")
    _only(options, _PROCESS_FIELDS)
    queues = options.get("queues")
    if queues is not None:
        if not isinstance(queues, list) or not queues or len(queues) > 100:
            raise ValidationError("queues must be a list of 1 to 100 queue names", field="queues")
        for i, name in enumerate(queues):
            if not isinstance(name, str) or not tasks.QUEUE_NAME.fullmatch(name):
                raise ValidationError(
                    "queues must hold queue names (letters, digits and _ . : -)", field=f"queues[{i}]"
                )
    max_jobs = options.get("max_jobs")
    if max_jobs is not None:
        max_jobs = whole_number(max_jobs, "max_jobs", 1, MAX_DRAIN_JOBS)
    hop = whole_number(options.get("hop", 0), "hop", 0, fanout.MAX_HOPS)
    report = fanout.drain(
        db,
        settings or invocation.settings() or Settings.from_env(),
        function=invocation.function(),
        hop=hop,
        budget_seconds=budget_seconds,
        cap_seconds=invocation.budget_cap(),
        queues=queues,
        max_jobs=max_jobs,
    )
    metrics.drain(report, settings or invocation.settings())
    return {"status": "ok", "drain": report.as_dict()}


def stats(db: Database | Runner) -> Body:
    return {"status": "ok", "stats": store.stats(db)}


# Upper bounds of queue settings: far above any real need, low enough that a
# typo (a timestamp pasted as a limit) is refused rather than stored.
MAX_QUEUE_CONCURRENCY = 100_000
MAX_RATE_LIMIT = 1_000_000
MIN_RATE_SECONDS = 0.001
MAX_RATE_SECONDS = 7 * 86400
_QUEUE_FIELDS = frozenset({"paused", "concurrency", "rate"})
_RATE_FIELDS = frozenset({"limit", "per_seconds"})


def queues(db: Database | Runner) -> Body:
    """Every queue that has jobs or settings, with both, sorted by name.

    From the exact counts the triggers keep and the settings table: the cost
    grows with the number of queues, never with the number of jobs.
    """
    counts = store.stats(db)["queues"]
    settings = store.queue_settings(db)
    names = sorted(set(counts) | set(settings))
    return {"status": "ok", "queues": [_queue(name, settings.get(name), counts.get(name)) for name in names]}


def configure_queue(db: Database | Runner, name: Any, data: Any) -> Body:
    """Change a queue's settings (any of paused, concurrency, rate); the rest stay.

    A queue needs no job to be configured: settings made before its first job
    apply to that job. They take effect on the next claim.
    """
    if not isinstance(name, str) or not tasks.QUEUE_NAME.fullmatch(name):
        raise ValidationError("name must be a queue name: 1 to 100 letters, digits and _ . : -", field="name")
    if data is None:
        data = {}
    data = _object(data)
    _only(data, _QUEUE_FIELDS)
    if not data:
        raise ValidationError("the body must set at least one of paused, concurrency and rate", field="body")
    changes: dict[str, Any] = {}
    if "paused" in data:
        if not isinstance(data["paused"], bool):
            raise ValidationError("paused must be true or false", field="paused")
        changes["paused"] = data["paused"]
    if "concurrency" in data:
        changes["concurrency"] = _whole(data["concurrency"], "concurrency", 0, MAX_QUEUE_CONCURRENCY)
    if "rate" in data:
        changes["rate"] = _rate(data["rate"])
    settings = store.configure_queue(db, name, changes)
    return {"status": "ok", "queue": _queue(name, settings, store.stats(db)["queues"].get(name))}


def _whole(value: Any, field: str, low: int, high: int, *, nullable: bool = True) -> int | None:
    """A whole number in range (3 and 3.0 alike, as JSON Schema counts them), or null where allowed."""
    if value is None and nullable:
        return None
    return whole_number(value, field, low, high)


def _rate(value: Any) -> tuple[int, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError('rate must be {"limit": N, "per_seconds": S} or null for no limit', field="rate")
    unknown = sorted(str(key) for key in value if key not in _RATE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0][:100]!r} in rate", field=f"rate.{unknown[0][:100]}")
    for key in sorted(_RATE_FIELDS):
        if key not in value:
            raise ValidationError(f"rate.{key} is required", field=f"rate.{key}")
    limit = _whole(value["limit"], "rate.limit", 1, MAX_RATE_LIMIT, nullable=False)
    seconds = value["per_seconds"]
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not MIN_RATE_SECONDS <= seconds <= MAX_RATE_SECONDS  # NaN fails this too
    ):
        raise ValidationError(
            f"rate.per_seconds must be a number of seconds from {MIN_RATE_SECONDS} to {MAX_RATE_SECONDS} (7 days)",
            field="rate.per_seconds",
        )
    assert limit is not None
    return limit, float(seconds)


def _queue(name: str, settings: store.QueueSettings | None, stats: Mapping[str, Any] | None) -> Body:
    body: Body = {"name": name, **(settings or store.QueueSettings(name)).as_dict()}
    body["counts"] = dict(stats["counts"]) if stats else {state: 0 for state in STATES}
    body["oldest_pending_age_seconds"] = stats["oldest_pending_age_seconds"] if stats else None
    return body


def list_schedules(db: Database, *, now: datetime | None = None) -> Body:
    """Every periodic schedule this deployment declares, with its last and next run."""
    from . import scheduler

    return {"status": "ok", "schedules": scheduler.listing(db, now)}


def enqueue_periodic(db: Database, *, now: datetime | None = None) -> dict[str, Any]:
    """Enqueue the periodic jobs that came due (each slot once); the scheduled tick's first step."""
    from . import scheduler

    return scheduler.tick(db, now)


@cache
def _latest_version() -> int:
    from .migrate import latest_version

    return latest_version()


def health(db: Database | Runner) -> Body:
    """Ok only when the database answers and its schema is the one this code expects."""
    from pg8000.exceptions import DatabaseError

    try:
        version = store.schema_version(db)
    except DatabaseError:  # the migrations table does not exist yet
        raise SchemaNotReady("the database has no jobqueue schema; run the migrate action") from None
    expected = _latest_version()
    if version is None or version < expected:
        raise SchemaNotReady(f"the database schema is at version {version}, this code needs {expected}; run migrate")
    return {"status": "ok", "database": "ok", "schema_version": version}


def migrate(db: Database | Runner) -> Body:
    """Apply pending migrations (how a database inside a VPC gets its schema)."""
    from .migrate import migrate as apply

    applied = apply(db)
    return {"status": "ok", "applied": applied, "schema_version": store.schema_version(db)}


class Ingested:
    """What became of an SQS batch: how many jobs it holds now, and which messages failed."""

    __slots__ = ("due", "enqueued", "failed")

    def __init__(self) -> None:
        self.enqueued = 0
        self.failed: list[str] = []
        self.due = False  # some job it enqueued is due now


def ingest(db: Database | Runner, messages: Sequence[tuple[str, Any]]) -> Ingested:
    """Enqueue queued submissions (message id, decoded body), each at most once.

    A body's own idempotency_key wins: it says which submissions the producer
    considers the same job, even across messages. Without one the message id
    is the key, so a redelivered message finds its job instead of adding one.
    A bad message fails alone; the rest go in one statement per thousand.
    """
    result = Ingested()
    good: list[tuple[str, JobSpec]] = []
    for message_id, data in messages:
        try:
            data = _object(data, "a message body")
            if data.get("idempotency_key") is None:
                data = {**data, "idempotency_key": f"sqs:{message_id}"}
            good.append((message_id, JobSpec.from_dict(data)))
        except ValidationError as exc:
            _rejected(result, message_id, exc)
    for start in range(0, len(good), store.MAX_BATCH):
        chunk = good[start : start + store.MAX_BATCH]
        try:
            jobs = store.enqueue_many(db, [spec for _, spec in chunk])
            result.enqueued += len(chunk)
            result.due = result.due or any(job["run_at"] <= job["created_at"] for job in jobs)
        except DatabaseUnavailable as exc:  # the rest would fail the same way: leave them to SQS
            log.error("sqs_database_unavailable", error=str(exc), messages=len(good) - start)
            result.failed.extend(message_id for message_id, _ in good[start:])
            break
        except Exception:  # noqa: BLE001 - find the one message the batch statement choked on
            for message_id, spec in chunk:
                try:
                    job, _ = store.enqueue(db, spec)
                    result.enqueued += 1
                    result.due = result.due or job["run_at"] <= job["created_at"]
                except ValidationError as exc:
                    _rejected(result, message_id, exc)
                except Exception as exc:  # noqa: BLE001 - reported, so SQS redelivers it
                    log.error("sqs_enqueue_failed", message_id=message_id, error=f"{type(exc).__name__}: {exc}"[:500])
                    result.failed.append(message_id)
    if result.due:
        fanout.wake(db)
    return result


def _rejected(result: Ingested, message_id: str, exc: ValidationError) -> None:
    log.warning("sqs_rejected", message_id=message_id, error=exc.message[:500], field=exc.field)
    result.failed.append(message_id)
