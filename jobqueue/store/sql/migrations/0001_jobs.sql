-- 0001: the jobs table and the indexes its queries need.
-- States and their transitions are documented in jobqueue/states.py.

CREATE TABLE jobs (
    id               uuid             PRIMARY KEY,
    queue            text             NOT NULL DEFAULT 'default',
    task             text             NOT NULL,
    payload          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    state            text             NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    priority         smallint         NOT NULL DEFAULT 0,
    run_at           timestamptz      NOT NULL DEFAULT now(),
    attempts         integer          NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer          NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    timeout_seconds  double precision NOT NULL DEFAULT 30 CHECK (timeout_seconds > 0),
    lease_expires_at timestamptz,
    worker_id        text,
    result           jsonb,
    errors           jsonb            NOT NULL DEFAULT '[]'::jsonb,
    idempotency_key  text,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    -- A worker holds a job exactly while it runs; the lease guard relies on it.
    CONSTRAINT jobs_worker_iff_running CHECK ((state = 'running') = (worker_id IS NOT NULL))
);

-- The claim: due pending work in priority, run_at, id order. Partial, so it
-- stays small however many finished jobs the table holds.
CREATE INDEX jobs_pending_idx ON jobs (priority, run_at, id) WHERE state = 'pending';

-- The rescuer: running jobs whose lease has expired.
CREATE INDEX jobs_running_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';

-- Idempotent submits: one job per key.
CREATE UNIQUE INDEX jobs_idempotency_key_idx ON jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Pruning finished jobs past their retention.
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;
