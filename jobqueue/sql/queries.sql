-- Every query jobqueue runs, by name. Python asks for them with sql.query("name").
-- Parameters are pg8000 ":name" placeholders; nothing is ever formatted into SQL.

-- name: enqueue
-- Insert one job. A repeat of its id or idempotency key inserts nothing and
-- returns no row; the caller then reads the existing job with find_existing.
INSERT INTO jobs (id, queue, task, payload, priority, run_at, max_attempts,
                  timeout_seconds, idempotency_key)
VALUES (CAST(:id AS uuid), :queue, :task, CAST(:payload AS jsonb), :priority,
        COALESCE(CAST(:run_at AS timestamptz), now()) + make_interval(secs => CAST(:delay AS float8)),
        :max_attempts, CAST(:timeout AS float8), :idempotency_key)
ON CONFLICT DO NOTHING
RETURNING {job_columns};

-- name: enqueue_many
-- Insert a batch in one statement (all or nothing). The batch arrives as one
-- JSON array, which the server parses far faster than the driver escapes
-- arrays; its keys are short and defaults left out, since the server parses
-- every byte: i id, q queue, t task, p payload, pr priority, r run_at,
-- d delay in microseconds, m max_attempts, o timeout, k idempotency key.
-- One row comes back, the statement's now() (every job's created_at)
-- and the count; the rest of each job is what the caller sent. No ON CONFLICT:
-- the ids are new, and a plain insert costs the server less than a
-- speculative one.
WITH inserted AS (
    INSERT INTO jobs (id, queue, task, payload, priority, run_at, max_attempts,
                      timeout_seconds, idempotency_key)
    SELECT b.i, b.q, b.t, COALESCE(b.p, '{}'), COALESCE(b.pr, 0),
           COALESCE(b.r, now()) + COALESCE(b.d, 0) * interval '1 microsecond',
           b.m, b.o, b.k
    FROM json_to_recordset(CAST(:batch AS json))
         AS b(i uuid, q text, t text, p jsonb, pr smallint, r timestamptz, d bigint, m int, o float8, k text)
    RETURNING 1
)
SELECT {time:now()}, (SELECT count(*) FROM inserted);

-- name: enqueue_many_keyed
-- As enqueue_many, for a batch that carries idempotency keys: rows that repeat
-- a key (or an id) are skipped, and when fewer were inserted than sent the
-- caller reads the others with find_existing_many.
WITH inserted AS (
    INSERT INTO jobs (id, queue, task, payload, priority, run_at, max_attempts,
                      timeout_seconds, idempotency_key)
    SELECT b.i, b.q, b.t, COALESCE(b.p, '{}'), COALESCE(b.pr, 0),
           COALESCE(b.r, now()) + COALESCE(b.d, 0) * interval '1 microsecond',
           b.m, b.o, b.k
    FROM json_to_recordset(CAST(:batch AS json))
         AS b(i uuid, q text, t text, p jsonb, pr smallint, r timestamptz, d bigint, m int, o float8, k text)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT {time:now()}, (SELECT count(*) FROM inserted);

-- name: find_existing
-- The job a repeated submit refers to: by idempotency key when it has one, else by id.
SELECT {job_columns} FROM jobs
WHERE (CAST(:idempotency_key AS text) IS NOT NULL AND idempotency_key = :idempotency_key)
   OR (CAST(:idempotency_key AS text) IS NULL AND id = CAST(:id AS uuid));

-- name: find_existing_many
-- The jobs a repeated batch refers to, by id or idempotency key.
SELECT {job_columns} FROM jobs
WHERE id = ANY(CAST(:ids AS uuid[])) OR idempotency_key = ANY(CAST(:idempotency_keys AS text[]));

-- name: claim
-- Take up to :limit due pending jobs (of the :queues named, or of any queue
-- when it is NULL) whose timeout fits the time left, in priority, run_at, id
-- order, skipping rows other workers hold. Each claim is an attempt:
-- attempts goes up and the job is leased to :worker.
-- The batch comes back as one JSON text, [[id, task, payload, attempt,
-- max_attempts, timeout], ...] (NULL when nothing was due): one value to
-- decode instead of a driver round of conversions per row and column.
WITH next AS (
    SELECT id FROM jobs
    WHERE state = 'pending' AND run_at <= now() AND timeout_seconds <= :max_timeout
      AND (CAST(:queues AS text[]) IS NULL OR queue = ANY(CAST(:queues AS text[])))
    ORDER BY priority, run_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs AS j
    SET state = 'running', attempts = j.attempts + 1, started_at = now(), worker_id = :worker,
        lease_expires_at = now() + make_interval(secs => j.timeout_seconds + :grace)
    FROM next WHERE j.id = next.id
    RETURNING j.id, j.task, j.payload, j.attempts, j.max_attempts, j.timeout_seconds
)
SELECT CAST(json_agg(json_build_array(id, task, payload, attempts, max_attempts, timeout_seconds)) AS text)
FROM claimed;

-- name: reclaim
-- The batch a claim took when its answer was lost with the connection: the
-- jobs this worker holds (worker ids are unique per drain), in claim order.
SELECT CAST(json_agg(json_build_array(id, task, payload, attempts, max_attempts, timeout_seconds)
                     ORDER BY priority, run_at, id) AS text)
FROM jobs WHERE state = 'running' AND worker_id = :worker;

-- name: complete
-- Record a batch of successes. The guard (same worker, same attempt) makes a
-- late write from an attempt that lost its lease a no-op: worker_id is set
-- exactly while a job is running (a CHECK enforces it), so it also means
-- "still running". The worker comes in as a column of the batch, not a
-- constant, so the planner cannot mistake "worker_id = constant" for a
-- selective filter and scan the table; it looks each id up by primary key.
-- Batches arrive as one JSON array of records, like enqueue_many's: i id,
-- a attempt, w worker, r result (e error, f final, d delay in fail).
UPDATE jobs AS j
SET state = 'succeeded', result = o.r, finished_at = now(),
    lease_expires_at = NULL, worker_id = NULL
FROM json_to_recordset(CAST(:batch AS json)) AS o(i uuid, a int, w text, r jsonb)
WHERE j.id = o.i AND j.attempts = o.a AND j.worker_id = o.w;

-- name: fail
-- Record a batch of failed attempts: each goes back to pending after its
-- backoff (its delay) or, when final or out of attempts, to failed. The error
-- joins the history.
-- Guarded like complete.
UPDATE jobs AS j
SET state = CASE WHEN o.f OR j.attempts >= j.max_attempts THEN 'failed' ELSE 'pending' END,
    run_at = CASE WHEN o.f OR j.attempts >= j.max_attempts THEN j.run_at
                  ELSE now() + make_interval(secs => o.d) END,
    finished_at = CASE WHEN o.f OR j.attempts >= j.max_attempts THEN now() END,
    errors = j.errors || jsonb_build_array(o.e),
    lease_expires_at = NULL, worker_id = NULL
FROM json_to_recordset(CAST(:batch AS json))
     AS o(i uuid, a int, w text, f bool, d float8, e jsonb)
WHERE j.id = o.i AND j.attempts = o.a AND j.worker_id = o.w;

-- name: release
-- Give back claimed jobs this worker never started (its time ran out): they
-- return to pending as if never claimed, so the attempt is not counted.
UPDATE jobs AS j
SET state = 'pending', attempts = j.attempts - 1, started_at = NULL,
    lease_expires_at = NULL, worker_id = NULL
FROM json_to_recordset(CAST(:batch AS json)) AS o(i uuid, a int, w text)
WHERE j.id = o.i AND j.attempts = o.a AND j.worker_id = o.w;

-- name: renew_leases
-- Extend the leases of claimed jobs still waiting their turn in this worker,
-- so a slow batch does not look lost while it is being worked through: each
-- must last through the job about to run (x seconds more) and then its own.
-- The ids renewed come back; one missing was rescued meanwhile and is not
-- this worker's to run any more.
UPDATE jobs AS j
SET lease_expires_at = now() + make_interval(secs => j.timeout_seconds + :grace + COALESCE(o.x, 0))
FROM json_to_recordset(CAST(:batch AS json)) AS o(i uuid, a int, w text, x float8)
WHERE j.id = o.i AND j.attempts = o.a AND j.worker_id = o.w
RETURNING CAST(j.id AS text);

-- name: rescue
-- Jobs whose worker died: a running job past its lease goes back to pending,
-- or to failed when it has no attempts left, with the loss in its history.
WITH lost AS (
    SELECT id FROM jobs
    WHERE state = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs AS j
SET state = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'pending' END,
    run_at = CASE WHEN j.attempts >= j.max_attempts THEN j.run_at ELSE now() END,
    finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
    errors = j.errors || jsonb_build_array(jsonb_build_object(
        'attempt', j.attempts, 'at', now(), 'type', 'LeaseExpired',
        'message', 'worker ' || COALESCE(j.worker_id, '?') || ' lost its lease (process died or timed out)')),
    lease_expires_at = NULL, worker_id = NULL
FROM lost WHERE j.id = lost.id
RETURNING j.id, j.state;

-- name: count_unfit
-- Due pending jobs whose timeout is longer than a drain can give them: they
-- would wait forever for a longer-running drain, so an idle drain says so.
SELECT count(*) FROM jobs
WHERE state = 'pending' AND run_at <= now() AND timeout_seconds > :max_timeout
  AND (CAST(:queues AS text[]) IS NULL OR queue = ANY(CAST(:queues AS text[])));

-- name: get
-- One job by id.
SELECT {job_columns} FROM jobs WHERE id = CAST(:id AS uuid);

-- name: list
-- Jobs newest first, filtered, keyset-paginated on id (ids are time-ordered UUIDv7).
SELECT {job_columns} FROM jobs
WHERE (CAST(:state AS text) IS NULL OR state = :state)
  AND (CAST(:queue AS text) IS NULL OR queue = :queue)
  AND (CAST(:task AS text) IS NULL OR task = :task)
  AND (CAST(:before AS uuid) IS NULL OR id < CAST(:before AS uuid))
ORDER BY id DESC
LIMIT :limit;

-- name: cancel
-- Cancel a job that has not started. A job a worker holds is not pending, so a
-- cancel racing a claim either wins before it or matches nothing after it.
UPDATE jobs SET state = 'cancelled', finished_at = now()
WHERE id = CAST(:id AS uuid) AND state = 'pending'
RETURNING {job_columns};

-- name: retry
-- Put a failed or cancelled job back to pending now, granting one more attempt
-- when it had used them all.
UPDATE jobs SET state = 'pending', run_at = now(), finished_at = NULL,
    max_attempts = GREATEST(max_attempts, attempts + 1)
WHERE id = CAST(:id AS uuid) AND state IN ('failed', 'cancelled')
RETURNING {job_columns};

-- name: state_of
-- Why a cancel or retry matched nothing: the job's current state, if it exists.
SELECT state FROM jobs WHERE id = CAST(:id AS uuid);

-- name: stats_counts
-- Jobs per queue and state.
SELECT queue, state, count(*) FROM jobs GROUP BY queue, state ORDER BY queue, state;

-- name: stats_oldest
-- Per queue, seconds since the oldest due pending job became due.
SELECT queue, EXTRACT(EPOCH FROM now() - min(run_at))::float8
FROM jobs WHERE state = 'pending' AND run_at <= now()
GROUP BY queue;

-- name: prune
-- Delete up to :limit finished jobs older than the retention.
WITH old AS (
    SELECT id FROM jobs
    WHERE finished_at < now() - make_interval(secs => :retention_seconds)
      AND state IN ('succeeded', 'failed', 'cancelled')
    ORDER BY finished_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM jobs AS j USING old WHERE j.id = old.id RETURNING 1
)
SELECT count(*) FROM gone;

-- name: schema_version
-- The newest applied migration, for /health.
SELECT max(version) FROM jobqueue_migrations;

-- ---------------------------------------------------------------------------
-- Periodic schedules (the schedules table, migration 0003). The slots come from
-- the caller's clock (:now), never the database's now(), so a tick decides the
-- same slots wherever it runs and tests can move time.

-- name: schedules_state
-- Where each of the named schedules stands: one round trip for all of them,
-- by primary key, which is all an idle tick costs. One JSON text,
-- [[name, last_slot, first_seen], ...] with times in microseconds since the
-- epoch (exact, and cheap to read), rather than a row of timestamps each; the
-- names arrive as a JSON array, which the driver sends far faster than a text[].
SELECT CAST(json_agg(json_build_array(name,
                                      CAST(EXTRACT(EPOCH FROM last_slot) * 1000000 AS bigint),
                                      CAST(EXTRACT(EPOCH FROM first_seen) * 1000000 AS bigint))) AS text)
FROM schedules WHERE name IN (SELECT json_array_elements_text(CAST(:names AS json)));

-- name: schedules_add
-- Schedules seen for the first time start from :now (no backfill). Another
-- container adding the same one at once is harmless: the first row stays.
-- In name order, so that two such inserts never wait on each other in a cycle.
INSERT INTO schedules (name, first_seen)
SELECT name, CAST(:now AS timestamptz) FROM json_array_elements_text(CAST(:names AS json)) AS name
ORDER BY name
ON CONFLICT (name) DO NOTHING;

-- name: schedule_lock
-- Take one schedule's row for the enqueue that follows in this transaction; a
-- concurrent tick waits here and then sees the slot this one enqueued.
SELECT COALESCE(last_slot, first_seen) FROM schedules WHERE name = :schedule FOR UPDATE;

-- name: schedule_advance
-- Record the last slot enqueued (same transaction as the enqueue); never backwards.
UPDATE schedules SET last_slot = CAST(:slot AS timestamptz), updated_at = now()
WHERE name = :schedule AND COALESCE(last_slot, first_seen) < CAST(:slot AS timestamptz);
