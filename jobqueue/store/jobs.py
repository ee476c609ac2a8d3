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
from operator import itemgetter
from typing import Any

from pg8000.exceptions import DatabaseError

from .. import rules, states
from ..errors import InvalidTransition, JobNotFound, ValidationError
from ..tasks.spec import JobSpec, Resolved
from .connection import Database, Runner, run, sqlstate
from .ids import uuid7
from .queries import JOB_COLUMNS

# The batch's JSON text: compact, and only what jsonb can hold (no NaN or
# infinity); one encoder for every batch.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode

# A job as the API shows it: the row's columns, times as ISO 8601 UTC text, and
# ``error``, the last attempt's.
JobRecord = dict[str, Any]


def _job(row: Sequence[Any]) -> JobRecord:
    job = dict(zip(JOB_COLUMNS, row, strict=False))
    job["id"] = str(job["id"])
    errors = job["errors"] or []
    job["error"] = errors[-1] if errors else None
    del job["has_children"], job["parents_left"]  # what get() reads the links by, not shown
    return job


_HAS_CHILDREN = JOB_COLUMNS.index("has_children")
_PARENTS_LEFT = JOB_COLUMNS.index("parents_left")
MAX_CHILDREN_SHOWN = 1000


def _parse_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _format_time(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%f}Z"


def _new_job(job_id: str, r: Resolved, created_at: str) -> JobRecord:
    """A just-inserted job, from what was sent plus the statement's now()
    (``created_at``, as ISO 8601 UTC text)."""
    task, payload, queue, priority, run_at, delay, max_attempts, timeout, key = r
    if run_at is not None:
        run_at = _format_time(run_at)
    elif delay:
        run_at = _format_time(_parse_time(created_at) + timedelta(microseconds=_micros(delay)))
    else:
        run_at = created_at
    return {
        "id": job_id,
        "queue": queue,
        "task": task,
        "payload": payload,
        "state": states.PENDING,
        "priority": priority,
        "run_at": run_at,
        "attempts": 0,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout,
        "result": None,
        "errors": [],
        "idempotency_key": key,
        "created_at": created_at,
        "started_at": None,
        "finished_at": None,
        "progress": None,
        "steps": None,
        "waiting_for": None,
        "cancel_requested": False,
        "error": None,
    }


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def enqueue(db: Database | Runner, spec: JobSpec) -> tuple[JobRecord, bool]:
    """Insert one job; return (job, created). A repeated idempotency key returns
    the existing job with created=False instead of a duplicate.

    A job inserted comes back as the batch's do: what was sent, plus the
    statement's now() (the only column the insert returns)."""
    r = spec.resolve()
    job_id = uuid7()
    rows = run(
        db,
        "enqueue",
        id=job_id,
        queue=r.queue,
        task=r.task,
        payload=rules.payload_text(r.payload, "payload") if r.payload else "{}",
        priority=r.priority,
        run_at=r.run_at,
        delay=_micros(r.delay_seconds) if r.delay_seconds else 0,
        max_attempts=r.max_attempts,
        timeout=r.timeout_seconds,
        idempotency_key=r.idempotency_key,
    )
    if rows:
        return _new_job(job_id, r, rows[0][0]), True
    # Nothing inserted: the key exists, or this statement was resent after a
    # lost answer and the first one had inserted the job (then it is ours).
    rows = run(db, "find_existing", id=job_id, idempotency_key=r.idempotency_key)
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
    resolved = _resolve_all(specs)
    ids, records = [], []
    keyed = False
    for r in resolved:
        job_id = uuid7()
        ids.append(job_id)
        records.append(job_record(job_id, r))
        keyed = keyed or r.idempotency_key is not None
    params = _shared(records, resolved)
    params["batch"] = _batch_json(records, resolved)
    try:
        ((now, inserted),) = run(db, "enqueue_many_keyed" if keyed else "enqueue_many", **params)
    except DatabaseError as exc:
        # Only a re-sent statement (the first one committed, then the connection
        # dropped before its answer) can repeat these fresh ids.
        if keyed or sqlstate(exc) != "23505":
            raise
        return _existing(db, ids, resolved)
    if inserted == len(ids):
        return [_new_job(job_id, r, now) for job_id, r in zip(ids, resolved, strict=True)]
    return _existing(db, ids, resolved)


def job_record(job_id: str, r: Resolved) -> dict[str, Any]:
    """A job of a batch as the batch statements read it: short keys, and
    defaults left out, since the server parses every byte (see enqueue_many
    in queries.sql for the names). The fields a batch may share (queue, task,
    attempts, timeout) are added by the caller."""
    record: dict[str, Any] = {"i": job_id}
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
    return record


# What the jobs of a batch mostly have in common (one task, its queue and
# defaults): (record key, statement parameter, field of Resolved).
_SHARED = (("q", "queue", 2), ("t", "task", 0), ("m", "max_attempts", 6), ("o", "timeout", 7))


def _shared(records: list[dict[str, Any]], resolved: list[Resolved]) -> dict[str, Any]:
    """The statement's parameters for the fields every job of the batch has
    alike, sent once; a field that differs goes into every job's record
    instead (left out where it is null), and its parameter is null."""
    params: dict[str, Any] = {}
    for key, name, field in _SHARED:
        values = set(map(itemgetter(field), resolved))
        if len(values) == 1:
            params[name] = values.pop()
            continue
        params[name] = None
        for record, r in zip(records, resolved, strict=True):
            if r[field] is not None:
                record[key] = r[field]
    return params


def _resolve_all(specs: Sequence[JobSpec]) -> list[Resolved]:
    """Every job of a batch checked; the first bad one is named (``jobs[3].task``)."""
    try:
        return [spec.resolve() for spec in specs]
    except ValidationError:
        # Checks are deterministic: run them again, naming each job, so
        # the same first fault is raised with its place in the batch. A
        # valid batch never pays for making those names.
        for i, spec in enumerate(specs):
            spec.resolve(f"jobs[{i}].")
        raise


def _batch_json(records: list[dict[str, Any]], resolved: list[Resolved]) -> str:
    """The batch as one JSON text, payloads checked once for the whole batch;
    only when that fails are they checked one by one, to name the bad one."""
    try:
        text = _encode(records)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is None or not rules.json_storable(text):
        for i, r in enumerate(resolved):
            rules.payload_text(r.payload, f"jobs[{i}].payload")
        raise ValidationError("the batch cannot be stored as JSON", field="jobs")  # unreachable in practice
    return text


def _existing(db: Database | Runner, ids: list[str], resolved: list[Resolved]) -> list[JobRecord]:
    """Read back a batch that was not (all) inserted by this call: repeated keys,
    or a statement re-sent after a lost connection that had in fact committed."""
    keys = [r.idempotency_key for r in resolved]
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
    job = _job(rows[0])
    if rows[0][_HAS_CHILDREN] or rows[0][_PARENTS_LEFT] is not None:  # a workflow's job: read its links
        parents, children, count = run(db, "job_links", id=job["id"], limit=MAX_CHILDREN_SHOWN)[0]
        job["depends_on"], job["children"], job["children_count"] = parents, children, count
    return job


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
    raise _why_not(db, job_id, "cancel", "only a job that has not finished can be cancelled")


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
