"""Submits that make workflows: a job with ``depends_on`` (job ids), and a
batch whose jobs carry ``key`` and ``after`` (keys of the same batch) and may
end in a ``then`` job that runs once every job of the batch has ended.

The whole submit is checked before anything is written (a cycle, an unknown
or repeated key, a bad field: 422 naming it) and written in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import rules
from ..engine import wake
from ..errors import ValidationError
from ..store import workflows
from ..store.connection import Database, Runner
from ..tasks import graph
from ..tasks.spec import FIELDS, JobSpec

Body = dict[str, Any]
JOB_FIELDS = frozenset({"depends_on", "on_parent_failure"})  # on any submit
BATCH_JOB_FIELDS = JOB_FIELDS | {"key", "after"}  # on a job of a batch
SPEC_FIELDS = frozenset(FIELDS)


def wants_flow(data: Mapping[str, Any], fields: frozenset[str] = JOB_FIELDS) -> bool:
    return not fields.isdisjoint(data)


def node(data: Mapping[str, Any], prefix: str = "", extra: tuple[tuple[str, str | None], ...] = ()) -> workflows.Node:
    """A job of a workflow from a submit's fields (its depends_on parents, and ``extra`` ones)."""
    rest = {name: value for name, value in data.items() if name not in BATCH_JOB_FIELDS}
    spec = JobSpec.from_dict(rest, prefix=prefix)
    parents = list(extra)
    if data.get("depends_on") is not None:
        parents += [(job_id, None) for job_id in workflows.depends_on(data["depends_on"], prefix + "depends_on")]
    failure = workflows.on_parent_failure(data.get("on_parent_failure"), prefix + "on_parent_failure")
    return workflows.Node(spec, parents, failure)


def submit(db: Database | Runner, data: Mapping[str, Any]) -> tuple[Body, bool]:
    """One job that depends on others; (body, created) as a plain submit answers."""
    rules.only(data, SPEC_FIELDS | JOB_FIELDS)
    one = node(data)
    (job,) = workflows.submit(db, [one])
    _wake(db, [job])
    return {"status": "ok", "job": job}, job["id"] == one.id


def submit_batch(db: Database | Runner, data: Mapping[str, Any]) -> Body:
    """A batch with keys, after and then: all or nothing."""
    rules.only(data, frozenset({"jobs", "then"}))
    batch = data.get("jobs")
    if not isinstance(batch, list) or not batch:
        raise ValidationError("jobs must be a non-empty JSON array of jobs", field="jobs")
    if len(batch) > rules.MAX_BATCH:
        raise ValidationError(f"a batch holds at most {rules.MAX_BATCH} jobs, got {len(batch)}", field="jobs")
    keys: list[str | None] = []
    afters: list[tuple[str, ...]] = []
    for i, job in enumerate(batch):
        if not isinstance(job, Mapping):
            raise ValidationError("a job must be a JSON object", field=f"jobs[{i}]")
        rules.only(job, SPEC_FIELDS | BATCH_JOB_FIELDS, prefix=f"jobs[{i}].")
        keys.append(None if job.get("key") is None else graph.check_key(job["key"], f"jobs[{i}].key"))
        afters.append(() if job.get("after") is None else graph.check_after(job["after"], f"jobs[{i}].after"))
    graph.order(keys, afters)
    nodes: list[workflows.Node] = []
    by_key: dict[str, workflows.Node] = {}
    for i, job in enumerate(batch):
        made = node(job, f"jobs[{i}].")
        nodes.append(made)
        if keys[i] is not None:
            by_key[keys[i]] = made
    for made, after in zip(nodes, afters, strict=True):
        made.parents = [(by_key[key].id, key) for key in after] + made.parents
    then = data.get("then")
    if then is not None:
        if not isinstance(then, Mapping):
            raise ValidationError("then must be a job: a JSON object", field="then")
        rules.only(then, SPEC_FIELDS, prefix="then.")
        everyone = tuple((made.id, key) for made, key in zip(nodes, keys, strict=True))
        last = node(then, "then.", everyone)
        last.on_parent_failure = "run"  # it runs once every job has ended, however
        nodes.append(last)
    made_jobs = workflows.submit(db, nodes)
    _wake(db, made_jobs)
    body: Body = {"status": "ok", "jobs": made_jobs[: len(batch)]}
    if then is not None:
        body["then"] = made_jobs[-1]
    return body


def _wake(db: Database | Runner, jobs: list[dict[str, Any]]) -> None:
    """As after any submit, for the jobs not waiting for parents (a blocked
    job is woken by its parents' end, in the database)."""
    wake.after_submit(db, [job for job in jobs if job["state"] == "pending"])
