"""Job states and the transitions between them, written down once.

    pending  --claim-->            running
    running  --success-->          succeeded
    running  --failure, attempts left / lease lost-->  pending (run_at = backoff)
    running  --failure, none left / Permanent-->      failed
    running  --budget ran out before it started-->    pending (attempt not counted)
    running  --job.sleep / job.wait_for-->           waiting (run not counted)
    running  --Snooze-->                              pending (run_at = now + s, run not counted)
    running  --Cancelled, or a cancel while it ran--> cancelled
    waiting  --its time, or the signal it waits for--> pending
    pending, waiting, blocked --cancel-->            cancelled
    failed, cancelled --retry-->   pending

succeeded, failed and cancelled are final: only an explicit retry (of failed or
cancelled) moves a job out of them. Every UPDATE in queries.sql names the
state it moves from, so a transition not listed here matches no row.
"""

from __future__ import annotations

PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
WAITING = "waiting"  # a durable job suspended itself (sleep, wait_for): no drain holds it
BLOCKED = "blocked"  # its parents have not all finished (workflows)

ALL = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, WAITING, BLOCKED)
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
RETRYABLE = frozenset({FAILED, CANCELLED})
CANCELLABLE = frozenset({PENDING, WAITING, BLOCKED, RUNNING})  # a running one is asked to stop

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({SUCCEEDED, PENDING, FAILED, WAITING, CANCELLED}),
    WAITING: frozenset({PENDING, CANCELLED}),
    BLOCKED: frozenset({PENDING, CANCELLED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset({PENDING}),
    CANCELLED: frozenset({PENDING}),
}
