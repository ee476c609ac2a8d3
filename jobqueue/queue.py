"""Every read and write of jobs, in plain functions over named SQL.

Each function takes the process Database or a caller's own pg8000 native
connection (so an enqueue can join the caller's transaction). Nothing here
knows of HTTP or Lambda.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pg8000.exceptions import DatabaseError

from . import sql, states
from .db import Database, Runner, run, sqlstate
from .errors import ClaimLost, ConnectionLost, DatabaseUnavailable, InvalidTransition, JobNotFound, ValidationError
from .spec import JobSpec, Resolved, json_storable, payload_text, uuid7
from .sql import JOB_COLUMNS

Job = dict[str, Any]
MAX_BATCH = 1000


def _job(row: Sequence[Any]) -> Job:
    job = dict(zip(JOB_COLUMNS, row, strict=False))
    job["id"] = str(job["id"])
    errors = job["errors"] or []
    job["error"] = errors[-1] if errors else None
    return job


def _parse_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _format_time(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%f}Z"


def _new_job(job_id: str, r: Resolved, created: datetime, created_at: str) -> Job:
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


def enqueue(db: Database | Runner, spec: JobSpec) -> tuple[Job, bool]:
    """Insert one job; return (job, created). A repeated idempotency key returns
    the existing job with created=False instead of a duplicate."""
    spec = spec.validated()
    job_id = uuid7()
    params = dict(
        id=job_id,
        queue=spec.queue,
        task=spec.task,
        payload=payload_text(spec.payload, "payload"),
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


def enqueue_many(db: Database | Runner, specs: Sequence[JobSpec]) -> list[Job]:
    """Insert a batch in one statement, all or nothing; jobs come back in input order.

    Jobs whose idempotency key already exists are returned as they are.
    """
    if not specs:
        return []
    if len(specs) > MAX_BATCH:
        raise ValidationError(f"a batch holds at most {MAX_BATCH} jobs", field="jobs")
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
    if text is None or not json_storable(text):
        for i, r in enumerate(resolved):
            payload_text(r.payload, f"jobs[{i}].payload")
        raise ValidationError("the batch cannot be stored as JSON", field="jobs")  # unreachable in practice
    return text


def _existing(db: Database | Runner, ids: list[str], keys: list[str | None]) -> list[Job]:
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


def get(db: Database | Runner, job_id: str) -> Job:
    rows = run(db, "get", id=_uuid(job_id))
    if not rows:
        raise JobNotFound(f"no job with id {job_id}")
    return _job(rows[0])


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
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
    if not 1 <= limit <= 500:
        raise ValidationError("limit must be between 1 and 500", field="limit")
    before = None if cursor is None else _uuid(cursor, field="cursor")
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


def cancel(db: Database | Runner, job_id: str) -> Job:
    rows = run(db, "cancel", id=_uuid(job_id))
    if rows:
        return _job(rows[0])
    raise _why_not(db, job_id, "cancel", "only a pending job can be cancelled")


def retry(db: Database | Runner, job_id: str) -> Job:
    rows = run(db, "retry", id=_uuid(job_id))
    if rows:
        return _job(rows[0])
    raise _why_not(db, job_id, "retry", "only a failed or cancelled job can be retried")


def _why_not(db: Database | Runner, job_id: str, verb: str, rule: str) -> Exception:
    rows = run(db, "state_of", id=_uuid(job_id))
    if not rows:
        return JobNotFound(f"no job with id {job_id}")
    state = rows[0][0]
    return InvalidTransition(f"cannot {verb} a {state} job: {rule}", state)


def stats(db: Database | Runner) -> dict[str, Any]:
    """Counts per queue and state, and per queue the age of its oldest due job.

    Exact, and cheap at any table size: the counts come from job_counts, which
    triggers keep, folded together first so that reading them stays cheap.
    """
    compact_counts(db)
    run(db, "promote", limit=5000)  # ages count jobs that came due while no drain ran
    queues: dict[str, dict[str, Any]] = {}
    totals = {state: 0 for state in states.ALL}
    for queue, state, count in run(db, "stats_counts"):
        entry = queues.setdefault(queue, {"counts": {s: 0 for s in states.ALL}, "oldest_pending_age_seconds": None})
        entry["counts"][state] = count
        totals[state] += count
    oldest_overall = None
    for queue, age in _planned_afresh(db, "stats_oldest"):
        age = max(0.0, float(age))
        queues.setdefault(queue, {"counts": {s: 0 for s in states.ALL}, "oldest_pending_age_seconds": None})
        queues[queue]["oldest_pending_age_seconds"] = round(age, 3)
        oldest_overall = age if oldest_overall is None else max(oldest_overall, age)
    return {
        "queues": queues,
        "totals": totals,
        "oldest_pending_age_seconds": None if oldest_overall is None else round(oldest_overall, 3),
    }


def _planned_afresh(db: Database | Runner, name: str) -> list[list[Any]]:
    """Run a named query that takes no parameters without preparing it.

    The connection's plan_cache_mode = force_custom_plan plans a prepared
    statement afresh for its parameters each time; one without parameters
    gets a single plan per session instead, made the first time it runs. A
    warm container whose first stats came from an empty table would keep that
    table's plan (a Seq Scan) for the rest of its life, or until an ANALYZE.
    """
    if isinstance(db, Database):
        return db.execute(sql.query(name))
    return run(db, name)


def compact_counts(db: Database | Runner) -> None:
    """Fold job_counts' rows together (each changing statement appends one per queue and state)."""
    run(db, "compact_counts")


def queue_settings(db: Database | Runner) -> dict[str, QueueSettings]:
    """Every configured queue's settings, by name; a queue without a row has the defaults."""
    return {row[0]: QueueSettings(*row) for row in run(db, "queue_settings")}


def configure_queue(db: Database | Runner, name: str, changes: dict[str, Any]) -> QueueSettings:
    """Create or change a queue's settings. ``changes`` holds any of paused,
    concurrency and rate ((limit, per_seconds) or None); the rest stay as they are."""
    rate = changes.get("rate")
    row = run(
        db,
        "configure_queue",
        queue=name,
        set_paused="paused" in changes,
        paused=changes.get("paused"),
        set_concurrency="concurrency" in changes,
        concurrency=changes.get("concurrency"),
        set_rate="rate" in changes,
        rate_limit=None if rate is None else rate[0],
        rate_seconds=None if rate is None else float(rate[1]),
    )[0]
    return QueueSettings(*row)


@dataclass(frozen=True)
class QueueSettings:
    name: str
    paused: bool = False
    concurrency: int | None = None
    rate_limit: int | None = None
    rate_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        rate = None if self.rate_limit is None else {"limit": self.rate_limit, "per_seconds": self.rate_seconds}
        return {"paused": self.paused, "concurrency": self.concurrency, "rate": rate}


def prune(db: Database | Runner, retention_seconds: float, *, limit: int = 5000) -> int:
    """Delete finished jobs older than the retention; returns how many went."""
    return run(db, "prune", retention_seconds=float(retention_seconds), limit=limit)[0][0]


def rescue(db: Database | Runner, *, limit: int = 1000) -> dict[str, int]:
    """Return lost jobs (lease expired) to pending, or fail them when out of attempts."""
    counts = {states.PENDING: 0, states.FAILED: 0}
    for _, state in run(db, "rescue", limit=limit):
        counts[state] += 1
    return counts


def schema_version(db: Database | Runner) -> int | None:
    return run(db, "schema_version")[0][0]


# The worker's statements: batched, guarded by (state, attempt, worker).


@dataclass
class Claim:
    """What one claim took, and why it did not take more.

    ``rows`` are [id, task, payload, attempt, max_attempts, timeout, queue];
    ``deferred`` the queues whose next jobs need more time than was left;
    ``capped`` the queues at their concurrency or rate limit, ``wait`` the
    seconds until a rate window lets more start; ``parked`` how many jobs
    were set aside because no drain's budget can ever fit their timeout.
    """

    rows: list[list[Any]]
    deferred: list[str]
    capped: list[str]
    wait: float | None
    parked: int
    reclaimed: bool = False  # read back after a lost answer: every job the worker holds


def claim(
    db: Database | Runner,
    *,
    worker: str,
    limit: int,
    grace: float,
    fits: float,
    cap: float | None = None,
    park_seconds: float = 600.0,
    queues: Iterable[str] | None = None,
) -> Claim:
    """Lease up to ``limit`` due jobs whose timeout is at most ``fits`` seconds.

    Raises ClaimLost when the answer was lost and what the claim took could
    not be read back yet: call ``reclaim`` before claiming again.
    """
    params: dict[str, Any] = {"worker": worker, "limit": limit, "grace": grace, "fits": fits, "cap": cap}
    try:
        rows = run(
            db, "claim", resend=False, queues=None if queues is None else list(queues), park=park_seconds, **params
        )
    except ConnectionLost:
        # The claim may have committed before the answer was lost; sending it
        # again would take a second batch and strand the first until its
        # leases ran out. Read back whatever this worker holds instead.
        try:
            return reclaim(db, worker=worker)
        except DatabaseUnavailable as exc:
            raise ClaimLost(str(exc)) from None
    answer = json.loads(rows[0][0])
    return Claim(answer["j"], answer["d"], answer["c"], answer["w"], answer["p"])


def reclaim(db: Database | Runner, *, worker: str) -> Claim:
    """Every job ``worker`` holds, as a claim (after a claim whose answer was lost)."""
    answer = json.loads(run(db, "reclaim", worker=worker)[0][0])
    return Claim(answer["j"], [], [], None, 0, True)


def attempt_records(worker: str, ids: list[Any], attempts: list[int], **columns: list[str | None]) -> str:
    """One attempt per record, as the JSON array the outcome statements read
    (short keys, see queries.sql; a None value is left out, which reads as NULL).

    Written by hand rather than by json.dumps: the values are ids, integers
    and JSON texts already made (results, errors), and this runs per job.
    """
    who = json.dumps(worker)
    names = list(columns)
    parts = []
    for row in zip(ids, attempts, *columns.values(), strict=True):
        extra = "".join(f',"{n}":{v}' for n, v in zip(names, row[2:], strict=True) if v is not None)
        parts.append(f'{{"i":"{row[0]}","a":{int(row[1])},"w":{who}{extra}}}')
    return "[" + ",".join(parts) + "]"


def complete(
    db: Database | Runner, *, worker: str, ids: list[Any], attempts: list[int], results: list[str | None]
) -> None:
    """Record successes; ``results`` are JSON texts (None for no result)."""
    run(db, "complete", batch=attempt_records(worker, ids, attempts, r=results))


def fail(
    db: Database | Runner,
    *,
    worker: str,
    ids: list[Any],
    attempts: list[int],
    finals: list[bool],
    delays: list[float],
    errors: list[str],
) -> None:
    """Record failed attempts; ``errors`` are JSON texts."""
    batch = attempt_records(
        worker,
        ids,
        attempts,
        f=["true" if f else "false" for f in finals],
        d=[repr(float(d)) for d in delays],
        e=errors,
    )
    run(db, "fail", batch=batch)


def release(db: Database | Runner, *, worker: str, ids: list[Any], attempts: list[int]) -> None:
    run(db, "release", batch=attempt_records(worker, ids, attempts))


def renew_leases(
    db: Database | Runner,
    *,
    worker: str,
    ids: list[Any],
    attempts: list[int],
    grace: float,
    waits: list[float] | None = None,
) -> set[str]:
    """Extend leases to timeout + grace (+ each job's wait); returns the ids still held."""
    extra = {} if waits is None else {"x": [repr(float(w)) for w in waits]}
    rows = run(db, "renew_leases", batch=attempt_records(worker, ids, attempts, **extra), grace=grace)
    return {row[0] for row in rows}


def _uuid(value: str, *, field: str = "id") -> str:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValidationError(f"{field} must be a UUID", field=field) from None
