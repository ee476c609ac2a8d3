"""Every read and write of a job's row, in plain functions over named SQL:
enqueue (one or a batch), get, list, cancel and retry.

Each function takes the process Database or a caller's own pg8000 native
connection (so an enqueue can join the caller's transaction). Nothing here
knows of HTTP or Lambda.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pg8000.exceptions import DatabaseError

from .. import rules, states
from ..errors import InvalidTransition, JobNotFound, ValidationError
from ..tasks.spec import JobSpec, Resolved
from .connection import Database, Runner, run, sqlstate
from .ids import uuid7
from .queries import JOB_COLUMNS

# A job as the API shows it: the row's columns, times as ISO 8601 UTC text, and
# ``error``, the last attempt's.
JobRecord = dict[str, Any]


def _job(row: Sequence[Any]) -> JobRecord:
    job = dict(zip(JOB_COLUMNS, row, strict=False))
    job["id"] = str(job["id"])
    errors = job["errors"] or []
    job["error"] = errors[-1] if errors else None
    return job


def _parse_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _format_time(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%f}Z"


def _new_job(job_id: str, r: Resolved, created: datetime, created_at: str) -> JobRecord:
    """A just-inserted job, from what was sent plus the statement's now()."""
    if r.run_at is not None:
        run_at = _format_time(r.run_at)
    elif r.delay_seconds:
        run_at = _format_time(created + timedelta(microseconds=_micros(r.delay_seconds)))
    else:
        run_at = created_at
    return {
        "id": job_id,
        "queue": r.queue,
        "task": r.task,
        "payload": r.payload,
        "state": states.PENDING,
        "priority": r.priority,
        "run_at": run_at,
        "attempts": 0,
        "max_attempts": r.max_attempts,
        "timeout_seconds": r.timeout_seconds,
        "result": None,
        "errors": [],
        "idempotency_key": r.idempotency_key,
        "created_at": created_at,
        "started_at": None,
        "finished_at": None,
        "error": None,
    }


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def enqueue(db: Database | Runner, spec: JobSpec) -> tuple[JobRecord, bool]:
    """Insert one job; return (job, created). A repeated idempotency key returns
    the existing job with created=False instead of a duplicate."""
    spec = spec.validated()
    job_id = uuid7()
    params = dict(
        id=job_id,
        queue=spec.queue,
        task=spec.task,
        payload=rules.payload_text(spec.payload, "payload"),
        priority=spec.priority,
        run_at=spec.run_at,
        delay=spec.delay_seconds or 0.0,
        max_attempts=spec.max_attempts,
        timeout=spec.timeout_seconds,
        idempotency_key=spec.idempotency_key,
    )
    rows = run(db, "enqueue", **params)
    if rows:
        return _job(rows[0]), True
    # Nothing inserted: the key exists, or this statement was resent after a
    # lost answer and the first one had inserted the job (then it is ours).
    rows = run(db, "find_existing", id=job_id, idempotency_key=spec.idempotency_key)
    if not rows:  # The conflicting row was deleted in between: rare, just try again.
        return enqueue(db, spec)
    job = _job(rows[0])
    return job, job["id"] == job_id


def enqueue_many(db: Database | Runner, specs: Sequence[JobSpec]) -> list[JobRecord]:
    """Insert a batch in one statement, all or nothing; jobs come back in input order.

    Jobs whose idempotency key already exists are returned as they are.
    """
    if not specs:
        return []
    if len(specs) > rules.MAX_BATCH:
        raise ValidationError(f"a batch holds at most {rules.MAX_BATCH} jobs", field="jobs")
    ids, resolved, records = [], [], []
    for i, spec in enumerate(specs):
        r = spec.resolve(f"jobs[{i}].")
        job_id = uuid7()
        # Short keys, and defaults left out: the server parses every byte of
        # this (see enqueue_many in queries.sql for the names).
        record: dict[str, Any] = {"i": job_id, "q": r.queue, "t": r.task, "m": r.max_attempts, "o": r.timeout_seconds}
        if r.payload:
            record["p"] = r.payload
        if r.priority:
            record["pr"] = r.priority
        if r.run_at is not None:
            record["r"] = r.run_at.isoformat()
        if r.delay_seconds:
            record["d"] = _micros(r.delay_seconds)
        if r.idempotency_key is not None:
            record["k"] = r.idempotency_key
        ids.append(job_id)
        resolved.append(r)
        records.append(record)
    text = _batch_json(records, resolved)
    keys = [r.idempotency_key for r in resolved]
    keyed = any(key is not None for key in keys)
    try:
        ((now, inserted),) = run(db, "enqueue_many_keyed" if keyed else "enqueue_many", batch=text)
    except DatabaseError as exc:
        # Only a re-sent statement (the first one committed, then the connection
        # dropped before its answer) can repeat these fresh ids.
        if keyed or sqlstate(exc) != "23505":
            raise
        return _existing(db, ids, keys)
    if inserted == len(ids):
        created = _parse_time(now)
        return [_new_job(job_id, r, created, now) for job_id, r in zip(ids, resolved, strict=True)]
    return _existing(db, ids, keys)


def _batch_json(records: list[dict[str, Any]], resolved: list[Resolved]) -> str:
    """The batch as one JSON text, payloads checked once for the whole batch;
    only when that fails are they checked one by one, to name the bad one."""
    try:
        text = json.dumps(records, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is None or not rules.json_storable(text):
        for i, r in enumerate(resolved):
            rules.payload_text(r.payload, f"jobs[{i}].payload")
        raise ValidationError("the batch cannot be stored as JSON", field="jobs")  # unreachable in practice
    return text


def _existing(db: Database | Runner, ids: list[str], keys: list[str | None]) -> list[JobRecord]:
    """Read back a batch that was not (all) inserted by this call: repeated keys,
    or a statement re-sent after a lost connection that had in fact committed."""
    wanted = [key for key in keys if key is not None]
    found = [_job(row) for row in run(db, "find_existing_many", ids=ids, idempotency_keys=wanted)]
    by_id = {job["id"]: job for job in found}
    by_key = {job["idempotency_key"]: job for job in found if job["idempotency_key"] is not None}
    jobs = []
    for job_id, key in zip(ids, keys, strict=True):
        job = by_id.get(job_id) or by_key.get(key)
        if job is None:  # its key's job was pruned in between: rare; the caller may retry
            raise InvalidTransition("a job of this batch vanished while it was submitted; retry", "unknown")
        jobs.append(job)
    return jobs


def get(db: Database | Runner, job_id: str) -> JobRecord:
    rows = run(db, "get", id=rules.uuid_text(job_id, "id"))
    if not rows:
        raise JobNotFound(f"no job with id {job_id}")
    return _job(rows[0])


@dataclass(frozen=True)
class Page:
    jobs: list[JobRecord]
    next_cursor: str | None


def list_jobs(
    db: Database | Runner,
    *,
    state: str | None = None,
    queue: str | None = None,
    task: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Newest first; ``next_cursor`` continues after the last job of this page."""
    if state is not None and state not in states.ALL:
        raise ValidationError(f"state must be one of {', '.join(states.ALL)}", field="state")
    if not 1 <= limit <= rules.MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {rules.MAX_PAGE}", field="limit")
    before = None if cursor is None else rules.uuid_text(cursor, "cursor")
    params: dict[str, Any] = {"task": task, "before": before, "limit": limit + 1}
    if state == states.RUNNING:
        rows = run(db, "list_running", queue=queue, **params)
    elif state is not None and queue is not None:
        rows = run(db, "list_queue_state", state=state, queue=queue, **params)
    elif state is not None:
        rows = run(db, "list_state", state=state, **params)
    elif queue is not None:
        rows = run(db, "list_queue", queue=queue, **params)
    else:
        rows = run(db, "list", **params)
    jobs = [_job(row) for row in rows[:limit]]
    next_cursor = jobs[-1]["id"] if len(rows) > limit else None
    return Page(jobs, next_cursor)


def cancel(db: Database | Runner, job_id: str) -> JobRecord:
    rows = run(db, "cancel", id=rules.uuid_text(job_id, "id"))
    if rows:
        return _job(rows[0])
    raise _why_not(db, job_id, "cancel", "only a pending job can be cancelled")


def retry(db: Database | Runner, job_id: str) -> JobRecord:
    rows = run(db, "retry", id=rules.uuid_text(job_id, "id"))
    if rows:
        return _job(rows[0])
    raise _why_not(db, job_id, "retry", "only a failed or cancelled job can be retried")


def _why_not(db: Database | Runner, job_id: str, verb: str, rule: str) -> Exception:
    rows = run(db, "state_of", id=rules.uuid_text(job_id, "id"))
    if not rows:
        return JobNotFound(f"no job with id {job_id}")
    state = rows[0][0]
    return InvalidTransition(f"cannot {verb} a {state} job: {rule}", state)
