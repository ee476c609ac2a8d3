-- 0003: where each periodic schedule stands, so that every slot is enqueued once.
-- A schedule's row is added the first time a tick sees it (first_seen, the
-- tick's own clock); slots after COALESCE(last_slot, first_seen) are due. The
-- tick locks the row while it enqueues a slot's job and moves last_slot on in
-- the same transaction; the job's idempotency key (periodic:<name>:<slot>)
-- stops a double even when an answer was lost and the insert sent again.

CREATE TABLE schedules (
    name       text        PRIMARY KEY,
    first_seen timestamptz NOT NULL,
    last_slot  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
