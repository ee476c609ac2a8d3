"""Actions on jobs: submit one or a batch, read one or a page, cancel, retry.

Input is untrusted and already JSON-decoded; output is JSON-ready bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import rules, states
from ..engine import wake
from ..errors import ValidationError
from ..store import jobs
from ..store.connection import Database, Runner
from ..tasks.spec import JobSpec
from . import workflows

Body = dict[str, Any]
LIST_FIELDS = frozenset({"state", "queue", "task", "cursor", "limit"})
FLOW_FIELDS = workflows.BATCH_JOB_FIELDS


def json_object(data: Any, what: str = "the request body") -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{what} must be a JSON object", field="body")
    return data


def submit(db: Database | Runner, data: Any, *, idempotency_key: str | None = None) -> tuple[Body, bool]:
    """Submit one job; returns (body, created). ``idempotency_key`` is the
    Idempotency-Key header: the job's key unless the body names its own.

    The body's key wins, as it does over an SQS message id: it says which
    submissions the producer considers the same job, while a header is often
    added per request by an HTTP client's retry layer.
    """
    data = json_object(data)
    if idempotency_key is not None:
        rules.idempotency_key(idempotency_key, "Idempotency-Key")  # checked even when the body's wins
        if data.get("idempotency_key") is None:
            data = {**data, "idempotency_key": idempotency_key}
    if workflows.wants_flow(data):
        return workflows.submit(db, data)
    job, created = jobs.enqueue(db, JobSpec.from_dict(data))
    if created:
        wake.after_submit(db, [job])  # due now: make sure a drain is running
    return {"status": "ok", "job": job}, created


def submit_batch(db: Database | Runner, data: Any) -> Body:
    """Submit many jobs, all or nothing: one bad job rejects the batch, naming it."""
    data = json_object(data)
    listed = data.get("jobs")
    if "then" in data or (
        isinstance(listed, list) and any(isinstance(job, Mapping) and not FLOW_FIELDS.isdisjoint(job) for job in listed)
    ):
        return workflows.submit_batch(db, data)
    rules.only(data, frozenset({"jobs"}))
    batch = data.get("jobs")
    if not isinstance(batch, list):
        raise ValidationError("jobs must be a JSON array of jobs", field="jobs")
    if len(batch) > rules.MAX_BATCH:
        raise ValidationError(f"a batch holds at most {rules.MAX_BATCH} jobs, got {len(batch)}", field="jobs")
    specs = [JobSpec.from_dict(job, prefix=f"jobs[{i}].") for i, job in enumerate(batch)]
    created = jobs.enqueue_many(db, specs)
    wake.after_submit(db, created)
    return {"status": "ok", "jobs": created}


def status(db: Database | Runner, job_id: Any) -> Body:
    return {"status": "ok", "job": jobs.get(db, _job_id(job_id))}


def cancel(db: Database | Runner, job_id: Any) -> Body:
    return {"status": "ok", "job": jobs.cancel(db, _job_id(job_id))}


def retry(db: Database | Runner, job_id: Any) -> Body:
    return {"status": "ok", "job": jobs.retry(db, _job_id(job_id))}


def _job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise ValidationError("job_id must be a job's id (a UUID)", field="job_id")
    return rules.uuid_text(job_id, "id")


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
    if queue is not None:
        rules.queue_name(queue)
    if task is not None:
        _filter_text(task, "task")
    if state is not None and state not in states.ALL:
        raise ValidationError(f"state must be one of {', '.join(states.ALL)}", field="state")
    if cursor is not None:
        _filter_text(cursor, "cursor")
        rules.uuid_text(cursor, "cursor")
    page = jobs.list_jobs(db, state=state, queue=queue, task=task, cursor=cursor, limit=50 if limit is None else limit)
    return {"status": "ok", "jobs": page.jobs, "next_cursor": page.next_cursor}


def _filter_text(value: Any, name: str) -> None:
    """Filters reach the database as parameters, so they only need to be text it can take."""
    if not isinstance(value, str) or not 1 <= len(value) <= rules.MAX_FILTER_LENGTH or "\x00" in value:
        raise ValidationError(f"{name} must be text of 1 to {rules.MAX_FILTER_LENGTH} characters", field=name)
    if not rules.utf8(value):
        raise ValidationError(f"{name} must be valid Unicode text", field=name)
