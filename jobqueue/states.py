"""Job states and the transitions between them, written down once.

    pending  --claim-->            running
    running  --success-->          succeeded
    running  --failure, attempts left / lease lost-->  pending (run_at = backoff)
    running  --failure, none left / Permanent-->      failed
    running  --budget ran out before it started-->    pending (attempt not counted)
    pending  --cancel-->           cancelled
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

ALL = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
RETRYABLE = frozenset({FAILED, CANCELLED})
CANCELLABLE = frozenset({PENDING})

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({SUCCEEDED, PENDING, FAILED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset({PENDING}),
    CANCELLED: frozenset({PENDING}),
}
