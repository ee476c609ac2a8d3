"""Submitting jobs that wait for other jobs (depends_on, a batch's after and
then): inserted, linked to their parents and counted against the parents
that have already ended, all in one transaction, so a refused submit (an
unknown parent) leaves nothing behind and no parent can end unseen.

What happens when a parent ends lives in the database (the trigger of
migrations/0008_workflows.sql), so every way a job ends releases its
children, and a plain job's outcome never reaches this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import rules
from ..errors import ValidationError
from ..tasks.spec import JobSpec
from .connection import Database, Runner, run
from .ids import uuid7
from .jobs import JobRecord, _job, job_record

MAX_PARENTS = 10_000  # a job's depends_on


@dataclass
class Node:
    """One job of a workflow submit: its spec, its id, and its parents (each
    an id and the key it has in the batch, or None)."""

    spec: JobSpec
    parents: list[tuple[str, str | None]]
    on_parent_failure: str | None = None  # "run", or None: a failed parent cancels it
    id: str = ""

    def __post_init__(self) -> None:
        self.id = self.id or uuid7()


def submit(db: Database | Runner, nodes: Sequence[Node]) -> list[JobRecord]:
    """Insert and link ``nodes`` in one transaction; the jobs come back in
    order, each as it stands after linking (pending, blocked, or cancelled
    for a parent that had failed). An unknown parent refuses the whole submit."""
    records = [_record(node, f"jobs[{i}]." if len(nodes) > 1 else "") for i, node in enumerate(nodes)]
    edges = [{"p": parent, "c": node.id, "k": key} for node in nodes for parent, key in node.parents]
    ids = [node.id for node in nodes]
    with _transaction(db) as tx:
        inserted = {row[0] for row in run(tx, "enqueue_flow", batch=json.dumps(records, separators=(",", ":")))}
        stand_in = _existing(tx, [node for node in nodes if node.id not in inserted])
        # A job whose key was seen before is that job: its children wait for it,
        # and it keeps the links it was given the first time.
        new_edges = [
            {**edge, "p": stand_in.get(edge["p"], {"id": edge["p"]})["id"]} for edge in edges if edge["c"] in inserted
        ]
        if new_edges:
            missing = run(tx, "link", edges=json.dumps(new_edges, separators=(",", ":")))[0][0]
            if missing:
                raise ValidationError(
                    "depends_on names jobs that do not exist: " + ", ".join(sorted(missing)[:20]),
                    field="depends_on",
                    missing=sorted(missing)[:100],
                )
        found = {job["id"]: job for job in map(_job, run(tx, "jobs_by_id", ids=sorted(inserted)))} if inserted else {}
    found.update(stand_in)
    parents_of = {node.id: [stand_in.get(p, {"id": p})["id"] for p, _ in node.parents] for node in nodes}
    return [
        {**found[job_id], "depends_on": parents_of[job_id]} if job_id in inserted else found[job_id]
        for job_id in ids
        if job_id in found
    ]


def _existing(db: Database | Runner, repeated: list[Node]) -> dict[str, JobRecord]:
    """The jobs that nodes whose idempotency key was seen before stand for, by the nodes' ids."""
    if not repeated:
        return {}
    keys = [node.spec.idempotency_key for node in repeated]
    by_key = {
        job["idempotency_key"]: job for job in map(_job, run(db, "find_existing_many", ids=[], idempotency_keys=keys))
    }
    return {node.id: by_key[node.spec.idempotency_key] for node in repeated if node.spec.idempotency_key in by_key}


def _record(node: Node, prefix: str) -> dict[str, Any]:
    r = node.spec.resolve(prefix)
    if r.payload:
        rules.payload_text(r.payload, prefix + "payload")  # jsonb must be able to hold it: refused, not a 500
    record = job_record(node.id, r)
    record.update(q=r.queue, t=r.task, m=r.max_attempts)
    if r.timeout_seconds is not None:
        record["o"] = r.timeout_seconds
    if node.parents:
        record["n"] = len({parent for parent, _ in node.parents})
        if node.on_parent_failure == "run":
            record["f"] = "run"
    return record


def _transaction(db: Database | Runner) -> Any:
    if isinstance(db, Database):
        return db.transaction()
    return _Caller(db)  # a caller's own connection: their transaction, their commit


class _Caller:
    def __init__(self, conn: Runner) -> None:
        self.conn = conn

    def __enter__(self) -> Runner:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def depends_on(value: Any, field: str = "depends_on") -> list[str]:
    """A submit's depends_on: job ids, none twice."""
    if not isinstance(value, list) or not value:
        raise ValidationError("depends_on must be a non-empty JSON array of job ids", field=field)
    if len(value) > MAX_PARENTS:
        raise ValidationError(f"depends_on names at most {MAX_PARENTS:,} jobs, got {len(value):,}", field=field)
    ids = [rules.uuid_text(item, f"{field}[{i}]").lower() for i, item in enumerate(value)]
    if len(set(ids)) != len(ids):
        raise ValidationError("depends_on names a job twice", field=field)
    return ids


def on_parent_failure(value: Any, field: str = "on_parent_failure") -> str | None:
    if value is None or value == "cancel":
        return None
    if value == "run":
        return "run"
    raise ValidationError('on_parent_failure must be "cancel" (the default) or "run"', field=field)
