"""What a durable job keeps in its row: checkpointed steps, sleeps and waits,
signals, progress, and a cancel asked for while it runs.

Only tasks that take a ``job`` argument (and signals, and the drain's
once-a-second look for cancels) reach this module, so a plain job never pays
for it. Writes by a run are guarded by (id, attempt, worker): a run that lost
its lease to another drain changes nothing, and is told so.
"""

from __future__ import annotations

import json
from typing import Any

from .connection import Database, Runner, run
from .jobs import JobRecord, _job, _why_not


def state(db: Database | Runner, run_of: tuple[str, int, str]) -> tuple[dict[str, Any], dict[str, Any], bool, bool]:
    """The job's checkpoints, the signals waiting for it, whether a cancel was
    asked for, and whether this run still holds it."""
    job_id, attempt, worker = run_of
    rows = run(db, "durable_state", id=job_id, attempt=attempt, worker=worker)
    if not rows:
        return {}, {}, False, False
    steps, signals, cancel, held = rows[0]
    return steps or {}, signals or {}, bool(cancel), bool(held)


def checkpoint(db: Database | Runner, run_of: tuple[str, int, str], name: str, entry: dict[str, Any]) -> bool:
    """Keep a step's entry; False when the run no longer holds the job."""
    job_id, attempt, worker = run_of
    entry_json = json.dumps(entry, separators=(",", ":"))
    return bool(run(db, "checkpoint", id=job_id, attempt=attempt, worker=worker, step=name, entry=entry_json))


def consume_signal(db: Database | Runner, run_of: tuple[str, int, str], name: str, at: str) -> tuple[bool, Any]:
    """Take the signal ``name`` as its wait's result: (found, value)."""
    job_id, attempt, worker = run_of
    rows = run(db, "consume_signal", id=job_id, attempt=attempt, worker=worker, step=name, at=at)
    return (True, rows[0][0]) if rows else (False, None)


def suspend(
    db: Database | Runner,
    run_of: tuple[str, int, str],
    *,
    name: str,
    entry: dict[str, Any],
    until: str | None,
    waiting_for: dict[str, Any],
    signal: str | None = None,
) -> bool:
    """Move the job to waiting until ``until`` (or a signal); False when the
    signal already came, a cancel was asked for, or the run lost the job."""
    job_id, attempt, worker = run_of
    return bool(
        run(
            db, "suspend", id=job_id, attempt=attempt, worker=worker, step=name,
            entry=json.dumps(entry, separators=(",", ":")), until=until,
            waiting_for=json.dumps(waiting_for, separators=(",", ":")), signal=signal,
        )
    )  # fmt: skip


def progress(db: Database | Runner, run_of: tuple[str, int, str], value: dict[str, Any]) -> None:
    job_id, attempt, worker = run_of
    run(db, "progress", id=job_id, attempt=attempt, worker=worker, progress=json.dumps(value, separators=(",", ":")))


def cancels_requested(db: Database | Runner, ids: list[str]) -> set[str]:
    """Which of these running jobs were asked to stop."""
    return {row[0] for row in run(db, "cancels_requested", ids=ids)}


def parents(db: Database | Runner, job_id: str) -> dict[str, Any]:
    """What a child's ``job.parents`` holds: by the parent's key in its batch,
    else by id, its result when it succeeded, else its state and last error."""
    found: dict[str, Any] = {}
    for key, parent_id, state, result, error in run(db, "parents_of", id=job_id):
        found[key or parent_id] = result if state == "succeeded" else {"state": state, "error": error}
    return found


def signal(db: Database | Runner, job_id: str, name: str, value_json: str) -> JobRecord:
    """Deliver a signal; the job as it is after it (pending again if it waited for it)."""
    rows = run(db, "signal", id=job_id, signal=name, value=value_json)
    if rows:
        return _job(rows[0])
    raise _why_not(db, job_id, "signal", "a finished job takes no more signals")
