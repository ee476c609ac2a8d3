-- Every query jobqueue runs, by name. Python asks for them with queries.query("name")
-- (jobqueue/store/queries.py), and only modules of jobqueue/store/ do.
-- Parameters are pg8000 ":name" placeholders; nothing is ever formatted into SQL.
--
-- Plans. A query is planned for its values and the table at hand every time
-- it runs, unless marked "plan: once": then it is prepared once per
-- connection and PostgreSQL may keep one plan for it. A plan kept from a
-- table that was empty (a warm container polling an idle queue) scans and
-- sorts the millions of rows that arrive later, so only queries that read
-- no table (inserts, calls of functions that plan for themselves) or a
-- small one by its key are marked; planning afresh costs a single enqueue
-- a fifth of its time, and the others are not run per job.

-- name: enqueue
-- plan: once
-- Insert one job. A repeat of its id or idempotency key inserts nothing and
-- returns no row; the caller then reads the existing job with find_existing.
-- A job due now goes straight into the claim index (due); a later one waits
-- in jobs_scheduled_idx until a claim promotes it. :delay is in microseconds,
-- as in enqueue_many. Only the statement's now() (the job's created_at) comes
-- back: the rest of the job is what the caller sent.
INSERT INTO jobs (id, queue, task, payload, priority, run_at, due, max_attempts,
                  timeout_seconds, idempotency_key)
SELECT CAST(:id AS uuid), :queue, :task, CAST(:payload AS jsonb), :priority, t.run_at, t.run_at <= now(),
       :max_attempts, CAST(:timeout AS float8), :idempotency_key
FROM (SELECT COALESCE(CAST(:run_at AS timestamptz), now()) + CAST(:delay AS bigint) * interval '1 microsecond'
             AS run_at) AS t
ON CONFLICT DO NOTHING
RETURNING {time:now()};

-- name: enqueue_many
-- plan: once
-- Insert a batch in one statement (all or nothing). The batch arrives as one
-- JSON array, which the server parses far faster than the driver escapes
-- arrays; its keys are short and defaults left out, since the server parses
-- every byte: i id, q queue, t task, p payload, pr priority, r run_at,
-- d delay in microseconds, m max_attempts, o timeout, k idempotency key.
-- What every job of the batch has alike (its task, queue, max_attempts,
-- timeout) comes once, as :queue, :task, :max_attempts and :timeout, and is
-- left out of the records; such a parameter is null when its field differs
-- between jobs, and each record then has its own.
-- One row comes back, the statement's now() (every job's created_at)
-- and the count; the rest of each job is what the caller sent. No ON CONFLICT:
-- the ids are new, and a plain insert costs the server less than a
-- speculative one.
WITH inserted AS (
    INSERT INTO jobs (id, queue, task, payload, priority, run_at, due, max_attempts,
                      timeout_seconds, idempotency_key)
    SELECT b.i, COALESCE(b.q, :queue), COALESCE(b.t, :task), COALESCE(b.p, '{}'), COALESCE(b.pr, 0),
           b.run_at, b.run_at <= now(), COALESCE(b.m, CAST(:max_attempts AS int)),
           COALESCE(b.o, CAST(:timeout AS float8)), b.k
    FROM (SELECT *, COALESCE(r, now()) + COALESCE(d, 0) * interval '1 microsecond' AS run_at
          FROM json_to_recordset(CAST(:batch AS json))
               AS b(i uuid, q text, t text, p jsonb, pr smallint, r timestamptz, d bigint, m int, o float8, k text)
         ) AS b
    RETURNING 1
)
SELECT {time:now()}, (SELECT count(*) FROM inserted);

-- name: enqueue_many_keyed
-- plan: once
-- As enqueue_many, for a batch that carries idempotency keys: rows that repeat
-- a key (or an id) are skipped, and when fewer were inserted than sent the
-- caller reads the others with find_existing_many.
WITH inserted AS (
    INSERT INTO jobs (id, queue, task, payload, priority, run_at, due, max_attempts,
                      timeout_seconds, idempotency_key)
    SELECT b.i, COALESCE(b.q, :queue), COALESCE(b.t, :task), COALESCE(b.p, '{}'), COALESCE(b.pr, 0),
           b.run_at, b.run_at <= now(), COALESCE(b.m, CAST(:max_attempts AS int)),
           COALESCE(b.o, CAST(:timeout AS float8)), b.k
    FROM (SELECT *, COALESCE(r, now()) + COALESCE(d, 0) * interval '1 microsecond' AS run_at
          FROM json_to_recordset(CAST(:batch AS json))
               AS b(i uuid, q text, t text, p jsonb, pr smallint, r timestamptz, d bigint, m int, o float8, k text)
         ) AS b
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
-- plan: once
-- Lease up to :limit due jobs to :worker: of the :queues named, or of any
-- queue when it is NULL, within each queue's settings (see jobqueue_claim in
-- migrations/0002_scale.sql, where the claim lives whole). Each claim is an
-- attempt. The answer is one JSON text, one value to decode instead of a
-- driver round of conversions per row and column; beside it, whether a
-- suspect (migrations/0005) waits for a drain to run it alone, which costs
-- a probe of an index that is empty while no process has died.
SELECT jobqueue_claim(:worker, CAST(:queues AS text[]), :limit, CAST(:fits AS float8), CAST(:cap AS float8),
                      CAST(:grace AS float8), CAST(:park AS float8)),
       jobqueue_suspects_waiting(CAST(:queues AS text[]));

-- name: claim_alone
-- plan: once
-- Lease one suspect to :worker, to run with nothing beside it (see
-- jobqueue_claim_alone in migrations/0005_crash_isolation.sql).
SELECT jobqueue_claim_alone(:worker, CAST(:queues AS text[]), CAST(:fits AS float8), CAST(:cap AS float8),
                            CAST(:grace AS float8));

-- name: reclaim
-- The batch a claim took when its answer was lost with the connection: the
-- jobs this worker holds (worker ids are unique per drain), in claim order,
-- each with the timeout it was claimed with (its drain's whole budget :cap).
SELECT '{"j":' || COALESCE(CAST(json_agg(json_build_array(id, task, payload, attempts, max_attempts + forgiven,
                                                            jobqueue_timeout(timeout_seconds, CAST(:cap AS float8), 'Infinity'),
                                                            queue,
                                                            extract(epoch FROM started_at - run_at))
                                          ORDER BY priority, run_at, id) AS text), '[]')
       || ',"d":[],"c":[],"w":null,"p":0}'
FROM jobs WHERE state = 'running' AND worker_id = :worker;

-- name: record
-- plan: once
-- Write a batch of outcomes and the drain's slots in one round trip (see
-- jobqueue_record in migrations/0005_crash_isolation.sql). The guard (same
-- worker, same attempt) makes a late write from an attempt that lost its
-- lease a no-op: worker_id is set exactly while a job is running (a CHECK
-- enforces it), so it also means "still running". Batches arrive as one
-- JSON array of records, like enqueue_many's: i id, a attempt, w worker,
-- and r result for a success, or e error, f final and d delay in seconds
-- for a failed attempt (back to pending after d, or failed when final or
-- out of attempts, the error joining its history).
SELECT jobqueue_record(:worker, CAST(:batch AS json), CAST(:slots AS json), :done);

-- name: release
-- Give back claimed jobs this worker never started (its time ran out): they
-- return to pending as if never claimed, so the attempt is not counted (a
-- suspect to the suspects, to be run alone).
UPDATE jobs AS j
SET state = 'pending', attempts = j.attempts - 1, started_at = NULL, due = NOT j.suspect,
    lease_expires_at = NULL, worker_id = NULL
FROM json_to_recordset(CAST(:batch AS json)) AS o(i uuid, a int, w text)
WHERE j.id = o.i AND j.attempts = o.a AND j.worker_id = o.w;

-- name: renew_leases
-- Extend the leases of claimed jobs still waiting their turn in this worker,
-- so a slow batch does not look lost while it is being worked through: each
-- must last through the job about to run (x seconds more) and then its own
-- run (t, the timeout it was claimed with).
-- The ids renewed come back; one missing was rescued meanwhile and is not
-- this worker's to run any more.
UPDATE jobs AS j
SET lease_expires_at = now() + make_interval(secs => COALESCE(o.t, j.timeout_seconds) + :grace + COALESCE(o.x, 0))
FROM json_to_recordset(CAST(:batch AS json)) AS o(i uuid, a int, w text, x float8, t float8)
WHERE j.id = o.i AND j.attempts = o.a AND j.worker_id = o.w
RETURNING CAST(j.id AS text);

-- name: rescue
-- Jobs whose drain died (or lost the database for longer than their lease),
-- told apart by the slots it wrote down before starting them:
-- * not in its slots (listed, or claimed after a drain wrote "all it
--   holds"): it never started. Back to pending as if never claimed, its
--   attempt uncounted, in its place in line.
-- * in its slots beside others: a suspect. Any of them may have killed the
--   process, so the run is forgiven (it does not count against
--   max_attempts); it waits, out of the claim index, for a drain that runs
--   it alone.
-- * alone in its slots: it died by itself, a crasher. Every run counts
--   again, forgiven ones too, and it fails (ProcessCrashed) once they reach
--   max_attempts; else it waits to run alone again.
-- attempts keeps counting every run that started. The rows are found by
-- primary key, as an array (see prune).
WITH lost AS MATERIALIZED (
    SELECT j.id,
           coalesce(j.id = ANY(d.jobs), j.started_at <= d.at, false) AS started,
           CASE WHEN d.jobs IS NOT NULL THEN cardinality(d.jobs) END AS held  -- NULL: many
    FROM jobs AS j LEFT JOIN drain_slots AS d ON d.worker = j.worker_id
    WHERE j.id = ANY(ARRAY(
        SELECT id FROM jobs
        WHERE state = 'running' AND lease_expires_at < now()
        ORDER BY lease_expires_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED))
), judged AS (
    SELECT lost.*, CASE WHEN NOT started THEN 'unstarted' WHEN held = 1 THEN 'alone' ELSE 'suspect' END AS kind
    FROM lost
)
UPDATE jobs AS j
SET state = CASE WHEN c.kind = 'alone' AND j.attempts >= j.max_attempts THEN 'failed' ELSE 'pending' END,
    attempts = CASE WHEN c.kind = 'unstarted' THEN j.attempts - 1 ELSE j.attempts END,
    forgiven = CASE c.kind WHEN 'alone' THEN 0 WHEN 'suspect' THEN j.forgiven + 1 ELSE j.forgiven END,
    suspect = c.kind <> 'unstarted' OR j.suspect,
    due = c.kind = 'unstarted' AND NOT j.suspect,
    run_at = CASE WHEN c.kind = 'unstarted' THEN j.run_at ELSE now() END,
    started_at = CASE WHEN c.kind = 'unstarted' THEN NULL ELSE j.started_at END,
    finished_at = CASE WHEN c.kind = 'alone' AND j.attempts >= j.max_attempts THEN now() END,
    errors = CASE WHEN c.kind = 'unstarted' THEN j.errors ELSE j.errors || jsonb_build_array(jsonb_build_object(
        'attempt', j.attempts, 'at', now(), 'type', 'ProcessCrashed', 'counted', c.kind = 'alone',
        'message', CASE WHEN c.kind = 'alone'
            THEN format('the process running it alone died (worker %s): killed, out of memory or out of time; '
                        'run %s of at most %s', j.worker_id, j.attempts, j.max_attempts)
            ELSE format('the process running it beside %s other jobs died (worker %s); not counted: it runs '
                        'alone next, and only a death there counts', coalesce(CAST(c.held - 1 AS text), 'many'),
                        j.worker_id) END)) END,
    lease_expires_at = NULL, worker_id = NULL
FROM judged AS c
WHERE j.id = c.id
RETURNING c.kind, j.state;

-- name: get
-- One job by id.
SELECT {job_columns} FROM jobs WHERE id = CAST(:id AS uuid);

-- name: list
-- Jobs newest first, keyset-paginated on id (ids are time-ordered UUIDv7),
-- optionally of one task: the primary key read backwards. The list queries
-- differ by what they filter on, so that each has one plan that reads only
-- the rows it returns (plus :limit per state, or per queue, at most): by
-- queue (and state) through jobs_queue_list_idx, by state alone through the
-- same index queue by queue, running jobs (few) through jobs_running_idx. A
-- task filter narrows what those find.
SELECT {job_columns} FROM jobs
WHERE (CAST(:task AS text) IS NULL OR task = :task)
      AND (CAST(:before AS uuid) IS NULL OR id < CAST(:before AS uuid))
ORDER BY id DESC
LIMIT :limit;

-- name: list_state
-- Jobs in one state other than running, newest first, across queues, from
-- jobs_queue_list_idx (an index by state alone would read one range, but
-- every job would pay for its entries when it is submitted and when it
-- finishes). The queues are found by skipping through the index, one probe
-- each; then each queue's newest job in the state, one entry each. The
-- :limit-th newest of those is a floor: :limit queues have a job at or above
-- it, so no job of the page is below it, and only the queues whose newest
-- job reaches the floor (at most a page's worth, ties aside) are read
-- further, :limit entries each at most. Their ids are merged and only the
-- newest :limit fetched whole. So it reads two entries per queue and at most
-- :limit pages, whatever the table holds.
--
-- The state is not matched with "state = :state", nor the order written
-- "ORDER BY id": with the state equal to a constant, the planner sees the
-- primary key's id order as serving the query just as well, and (reckoning
-- that one job in twenty is failed, evenly spread) walks the primary key
-- backwards filtering by state. But the newest jobs are the pending and
-- running ones: at ten million jobs the walk passed 200,000 of them before the
-- first failed one (25-40 ms, growing with the backlog). Ordered by
-- (state, id) and bounded by a row comparison, each range can only be read
-- in order from the index, entered at (queue, :state, cursor), with
-- "state >= :state" ending it at the state's last job. (The floor is a
-- filter on the queues, not a bound of the reads: PostgreSQL does not end a
-- backward scan at a row comparison's lower bound, while LIMIT does.)
WITH RECURSIVE every_queue AS (
    (SELECT queue FROM jobs WHERE state <> 'running' ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM jobs WHERE state <> 'running' AND queue > every_queue.queue
            ORDER BY queue LIMIT 1)
    FROM every_queue WHERE every_queue.queue IS NOT NULL
), tops AS MATERIALIZED (
    SELECT q.queue, t.id FROM every_queue AS q,
    LATERAL (
        SELECT id FROM jobs
        WHERE queue = q.queue
          AND state >= :state
          AND (state, id) < (:state, COALESCE(CAST(:before AS uuid), 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
          AND state <> 'running'
          AND (CAST(:task AS text) IS NULL OR task = :task)
        ORDER BY state DESC, id DESC
        LIMIT 1
    ) AS t
    WHERE q.queue IS NOT NULL
), floor AS MATERIALIZED (
    SELECT COALESCE(
        (SELECT id FROM tops ORDER BY id DESC OFFSET :limit - 1 LIMIT 1),
        '00000000-0000-0000-0000-000000000000') AS id
), newest AS (
    SELECT j.id FROM tops, floor,
    LATERAL (
        SELECT id FROM jobs
        WHERE queue = tops.queue
          AND state >= :state
          AND (state, id) < (:state, COALESCE(CAST(:before AS uuid), 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
          AND state <> 'running'
          AND (CAST(:task AS text) IS NULL OR task = :task)
        ORDER BY state DESC, id DESC
        LIMIT :limit
    ) AS j
    WHERE tops.id >= floor.id
)
SELECT {job_columns} FROM jobs
-- By primary key from an array, as the claim does: with IN (subquery), a
-- small table's plan may hash all of it for a page of rows.
WHERE id = ANY(ARRAY(SELECT id FROM newest ORDER BY id DESC LIMIT :limit))
ORDER BY id DESC;

-- name: list_queue_state
-- One queue's jobs in one state other than running, newest first: one range
-- of jobs_queue_list_idx, held to it as list_state's reads are.
SELECT {job_columns} FROM jobs
WHERE queue = :queue
  AND state >= :state AND (state, id) < (:state, COALESCE(CAST(:before AS uuid), 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
  AND state <> 'running'
  AND (CAST(:task AS text) IS NULL OR task = :task)
ORDER BY state DESC, id DESC
LIMIT :limit;

-- name: list_running
-- Running jobs, newest first, of one queue or all. They are few (no more
-- than the drains hold) and only jobs_running_idx, which holds nothing else,
-- is read: every running job's id, the newest :limit sorted out, then only
-- those rows fetched. (Fenced, or the planner may walk the primary key
-- backwards instead, through every newer job in other states.)
WITH running AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE state = 'running' AND (CAST(:queue AS text) IS NULL OR queue = :queue)
      AND (CAST(:task AS text) IS NULL OR task = :task)
      AND (CAST(:before AS uuid) IS NULL OR id < CAST(:before AS uuid))
)
SELECT {job_columns} FROM jobs
WHERE id IN (SELECT id FROM running ORDER BY id DESC LIMIT :limit)
ORDER BY id DESC;

-- name: list_queue
-- One queue's jobs in every state, newest first: the ids of the newest
-- :limit of each state (each one range of jobs_queue_list_idx, see
-- list_state for why a range; the running ones as in list_running), merged,
-- and only the newest :limit of those fetched whole.
WITH running AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE queue = :queue AND state = 'running' AND (CAST(:task AS text) IS NULL OR task = :task)
      AND (CAST(:before AS uuid) IS NULL OR id < CAST(:before AS uuid))
), newest AS (
    SELECT j.id FROM (VALUES ('pending'), ('succeeded'), ('failed'), ('cancelled')) AS s(state),
    LATERAL (
        SELECT id FROM jobs
        WHERE queue = :queue
          AND jobs.state >= s.state
          AND (jobs.state, id) < (s.state, COALESCE(CAST(:before AS uuid), 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
          AND jobs.state <> 'running'
          AND (CAST(:task AS text) IS NULL OR task = :task)
        ORDER BY jobs.state DESC, id DESC
        LIMIT :limit
    ) AS j
    UNION ALL
    SELECT id FROM running
)
SELECT {job_columns} FROM jobs
-- By primary key from an array, as the claim does: with IN (subquery), a
-- small table's plan may hash all of it for a page of rows.
WHERE id = ANY(ARRAY(SELECT id FROM newest ORDER BY id DESC LIMIT :limit))
ORDER BY id DESC;

-- name: cancel
-- Cancel a job: one that is not running ends cancelled now; one that runs is
-- asked to stop (cancel_requested), and the drain that holds it learns of it
-- within a second (cancels_requested). A job a worker holds is not pending,
-- so a cancel racing a claim either wins before it or asks the new run to stop.
UPDATE jobs
SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
    finished_at = CASE WHEN state = 'running' THEN finished_at ELSE now() END,
    cancel_requested = (state = 'running'),
    waiting_for = CASE WHEN state = 'running' THEN waiting_for END
WHERE id = CAST(:id AS uuid) AND state IN ('pending', 'waiting', 'blocked', 'running')
RETURNING {job_columns};

-- name: retry
-- Put a failed or cancelled job back to pending now, granting one more attempt
-- when it had used them all (a crasher too: it runs beside others again, and
-- a death there makes it a suspect as it would any job). A durable job keeps
-- its checkpoints: it resumes after its last completed step.
UPDATE jobs SET state = 'pending', run_at = now(), due = true, suspect = false, finished_at = NULL,
    cancel_requested = false, waiting_for = NULL,
    max_attempts = GREATEST(max_attempts, attempts - forgiven + 1)
WHERE id = CAST(:id AS uuid) AND state IN ('failed', 'cancelled')
RETURNING {job_columns};

-- name: state_of
-- Why a cancel or retry matched nothing: the job's current state, if it exists.
SELECT state FROM jobs WHERE id = CAST(:id AS uuid);

-- name: stats_counts
-- Jobs per queue and state, exact, from the counts the triggers keep: as
-- cheap at ten million jobs as at ten.
SELECT queue, state, CAST(sum(n) AS bigint) FROM job_counts
GROUP BY queue, state HAVING sum(n) <> 0
ORDER BY queue, state;

-- name: promote
-- plan: once
-- Move jobs whose run_at has come into the claim index (claims do this too).
SELECT jobqueue_promote(:limit);

-- name: compact_counts
-- Fold the count rows into one per queue and state, so reading them stays
-- cheap. Rows another compaction holds are left to it, never waited for.
WITH gone AS (
    DELETE FROM job_counts
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM job_counts FOR UPDATE SKIP LOCKED))
    RETURNING queue, state, n
)
INSERT INTO job_counts (queue, state, n)
SELECT queue, state, sum(n) FROM gone GROUP BY queue, state HAVING sum(n) <> 0;

-- name: stats_oldest
-- Per queue, seconds since its oldest due job became due. Within a queue and
-- priority the claim index is in run_at order, so one probe per (queue,
-- priority) pair finds every candidate (a loose index scan).
WITH RECURSIVE firsts AS (
    (SELECT queue, priority, run_at FROM jobs WHERE state = 'pending' AND due
     ORDER BY queue, priority, run_at, id LIMIT 1)
    UNION ALL
    SELECT nx.* FROM firsts, LATERAL (
        SELECT queue, priority, run_at FROM jobs
        WHERE state = 'pending' AND due AND (queue, priority) > (firsts.queue, firsts.priority)
        ORDER BY queue, priority, run_at, id LIMIT 1) AS nx
)
SELECT queue, EXTRACT(EPOCH FROM now() - min(run_at))::float8 FROM firsts GROUP BY queue;

-- name: prune
-- Delete up to :limit finished jobs older than the retention, oldest first.
-- The rows are then found by primary key, as an array: joined to the batch
-- instead, a table of a few hundred thousand rows is hashed whole (a Seq
-- Scan) to delete 5,000 of them.
WITH gone AS (
    DELETE FROM jobs
    WHERE id = ANY(ARRAY(
        SELECT id FROM jobs
        WHERE finished_at < now() - make_interval(secs => :retention_seconds)
          AND state IN ('succeeded', 'failed', 'cancelled')
        ORDER BY finished_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED))
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: forget_drains
-- The slots of drains that ended without saying so (killed), once none of
-- their jobs waits to be rescued. Only rows not written for :age seconds: a
-- live drain's row is fresh, or, if it holds nothing, harmless to lose (its
-- next write makes it again). A row written meanwhile is re-checked and kept.
WITH gone AS (
    DELETE FROM drain_slots AS d
    WHERE d.at < now() - make_interval(secs => :age)
      AND NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND worker_id = d.worker)
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: schema_version
-- plan: once
-- The newest applied migration, for /health.
SELECT max(version) FROM jobqueue_migrations;

-- name: queue_settings
-- plan: once
-- Every configured queue's settings.
SELECT name, paused, concurrency, rate_limit, rate_seconds FROM queues ORDER BY name;

-- name: configure_queue
-- plan: once
-- Create or change one queue's settings; a :set_x false leaves x as it was
-- (as it is on a new queue: not paused, no limits). They apply from the next
-- claim on, which reads them under the queue's lock.
INSERT INTO queues (name, paused, concurrency, rate_limit, rate_seconds)
VALUES (:queue, COALESCE(CAST(:paused AS boolean), false), :concurrency, :rate_limit, CAST(:rate_seconds AS float8))
ON CONFLICT (name) DO UPDATE SET
    paused = CASE WHEN :set_paused THEN EXCLUDED.paused ELSE queues.paused END,
    concurrency = CASE WHEN :set_concurrency THEN EXCLUDED.concurrency ELSE queues.concurrency END,
    rate_limit = CASE WHEN :set_rate THEN EXCLUDED.rate_limit ELSE queues.rate_limit END,
    rate_seconds = CASE WHEN :set_rate THEN EXCLUDED.rate_seconds ELSE queues.rate_seconds END,
    updated_at = now()
RETURNING name, paused, concurrency, rate_limit, rate_seconds;

-- Drains on demand (jobqueue/store/drains.py, for jobqueue/engine/fanout.py). A running drain holds a session
-- advisory lock (:slot_class, slot) for one of JOBQUEUE_MAX_DRAINS slots.

-- name: take_drain_slot
-- plan: once
-- The first free slot, now held by this session; no row when all are taken.
SELECT s FROM generate_series(0, :max_drains - 1) AS s WHERE pg_try_advisory_lock(:slot_class, s) LIMIT 1;

-- name: give_drain_slot
-- plan: once
SELECT pg_advisory_unlock(:slot_class, :slot);

-- name: running_drains
-- plan: once
-- How many drains hold a slot, in this database, across every container.
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND classid = :slot_class AND objsubid = 2 AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database());

-- name: request_wake
-- plan: once
-- After a submit made work due: one row back means "start a drain", when no
-- drain runs and no other submit asked for one in the last :ttl seconds (the
-- drain it asked for may still be starting).
UPDATE jobqueue_wake SET requested_at = now()
WHERE id = 1 AND requested_at < now() - make_interval(secs => :ttl)
  AND NOT EXISTS (
      SELECT 1 FROM pg_locks
      WHERE locktype = 'advisory' AND classid = :slot_class AND objsubid = 2 AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
RETURNING 1;

-- name: drain_started
-- plan: once
-- A drain has its slot: submits from now on are covered by it.
UPDATE jobqueue_wake SET requested_at = '-infinity' WHERE id = 1 AND requested_at <> '-infinity';

-- name: backlog
-- Due jobs waiting in the queues a drain serves, paused queues left out,
-- counted up to :cap per queue: enough to size a fan-out, never a scan of a
-- big backlog or of a paused queue's rows.
WITH RECURSIVE every_queue AS (
    (SELECT queue FROM jobs WHERE state = 'pending' AND due AND CAST(:queues AS text[]) IS NULL
     ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM jobs WHERE state = 'pending' AND due AND queue > every_queue.queue
            ORDER BY queue LIMIT 1)
    FROM every_queue WHERE every_queue.queue IS NOT NULL
), served AS (
    SELECT queue FROM every_queue WHERE queue IS NOT NULL
    UNION
    SELECT unnest(CAST(:queues AS text[]))
)
SELECT COALESCE(sum(waiting.n), 0)::bigint
FROM served, LATERAL (
    SELECT count(*) AS n FROM (
        SELECT 1 FROM jobs WHERE state = 'pending' AND due AND queue = served.queue LIMIT :cap
    ) AS due
) AS waiting
WHERE served.queue NOT IN (SELECT name FROM queues WHERE paused);

-- name: work_due
-- Whether anything is due (or about to be promoted) in the queues a drain
-- serves, paused ones left out: asked by a drain after it gave up its slot,
-- so that a job submitted while it was stopping is never left for the next
-- schedule.
WITH RECURSIVE every_queue AS (
    (SELECT queue FROM jobs WHERE state = 'pending' AND due AND CAST(:queues AS text[]) IS NULL
     ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM jobs WHERE state = 'pending' AND due AND queue > every_queue.queue
            ORDER BY queue LIMIT 1)
    FROM every_queue WHERE every_queue.queue IS NOT NULL
)
SELECT EXISTS (
    SELECT 1 FROM every_queue
    WHERE queue IS NOT NULL AND queue NOT IN (SELECT name FROM queues WHERE paused)
) OR EXISTS (
    SELECT 1 FROM unnest(CAST(:queues AS text[])) AS served(queue)
    WHERE queue NOT IN (SELECT name FROM queues WHERE paused)
      AND EXISTS (SELECT 1 FROM jobs WHERE state = 'pending' AND due AND jobs.queue = served.queue)
) OR (
    -- The first job past its run_at still waiting to be promoted, in run_at
    -- order: a walk of jobs_scheduled_idx over those alone. (As an EXISTS,
    -- whose order PostgreSQL drops, the planner may scan the table instead,
    -- expecting an early match among a big backlog of future jobs, and read
    -- it whole when none is due.)
    SELECT true FROM jobs
    WHERE state = 'pending' AND NOT due AND NOT suspect AND run_at <= now()
      AND (CAST(:queues AS text[]) IS NULL OR queue = ANY(CAST(:queues AS text[])))
    ORDER BY run_at
    LIMIT 1
) IS NOT NULL OR EXISTS (
    -- A suspect waiting to run alone (migrations/0005_crash_isolation.sql).
    SELECT 1 WHERE jobqueue_suspects_waiting(CAST(:queues AS text[]))
);

-- ---------------------------------------------------------------------------
-- Periodic schedules (the schedules table, migration 0003). The slots come from
-- the caller's clock (:now), never the database's now(), so a tick decides the
-- same slots wherever it runs and tests can move time.

-- name: schedules_state
-- plan: once
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
-- plan: once
-- Schedules seen for the first time start from :now (no backfill). Another
-- container adding the same one at once is harmless: the first row stays.
-- In name order, so that two such inserts never wait on each other in a cycle.
INSERT INTO schedules (name, first_seen)
SELECT name, CAST(:now AS timestamptz) FROM json_array_elements_text(CAST(:names AS json)) AS name
ORDER BY name
ON CONFLICT (name) DO NOTHING;

-- name: schedule_lock
-- plan: once
-- Take one schedule's row for the enqueue that follows in this transaction; a
-- concurrent tick waits here and then sees the slot this one enqueued.
SELECT COALESCE(last_slot, first_seen) FROM schedules WHERE name = :schedule FOR UPDATE;

-- name: schedule_advance
-- plan: once
-- Record the last slot enqueued (same transaction as the enqueue); never backwards.
UPDATE schedules SET last_slot = CAST(:slot AS timestamptz), updated_at = now()
WHERE name = :schedule AND COALESCE(last_slot, first_seen) < CAST(:slot AS timestamptz);

-- Durable jobs (migrations/0007_durable_jobs.sql). Each statement below is
-- run only by a task that takes a ``job`` argument, or by a signal; every
-- write by the job's own run is guarded by (id, attempt, worker), so a run
-- that lost its lease changes nothing.

-- name: durable_state
-- plan: once
-- What a durable run replays from: its checkpoints and the signals waiting;
-- and whether a cancel was asked for, and the run still holds the job.
SELECT steps, signals, cancel_requested, (attempts = :attempt AND worker_id = :worker)
FROM jobs WHERE id = CAST(:id AS uuid);

-- name: checkpoint
-- plan: once
-- Keep one step's entry (its result, or the start of a sleep or a wait)
-- before the task goes on.
UPDATE jobs SET steps = coalesce(steps, '{}') || jsonb_build_object(CAST(:step AS text), CAST(:entry AS jsonb))
WHERE id = CAST(:id AS uuid) AND attempts = :attempt AND worker_id = :worker
RETURNING 1;

-- name: consume_signal
-- plan: once
-- Take a delivered signal as the result of the wait of the same name.
UPDATE jobs
SET steps = coalesce(steps, '{}') || jsonb_build_object(
        CAST(:step AS text), jsonb_build_object('r', signals -> CAST(:step AS text), 'at', CAST(:at AS text))),
    signals = signals - CAST(:step AS text)
WHERE id = CAST(:id AS uuid) AND attempts = :attempt AND worker_id = :worker
  AND jsonb_exists(coalesce(signals, '{}'), CAST(:step AS text))
RETURNING steps -> CAST(:step AS text) -> 'r';

-- name: suspend
-- plan: once
-- End the run until :until (NULL: until a signal): the job waits outside
-- the claim index, in the promotion's (run_at 'infinity' without a
-- timeout), holding no slot and no concurrency unit, and the run is not
-- counted. Nothing matches when the awaited signal has already arrived or a
-- cancel was asked for: the caller reads which, and goes on.
UPDATE jobs
SET state = 'waiting', due = false, run_at = coalesce(CAST(:until AS timestamptz), 'infinity'),
    attempts = attempts - 1, worker_id = NULL, lease_expires_at = NULL,
    waiting_for = CAST(:waiting_for AS jsonb),
    steps = coalesce(steps, '{}') || jsonb_build_object(CAST(:step AS text), CAST(:entry AS jsonb))
WHERE id = CAST(:id AS uuid) AND attempts = :attempt AND worker_id = :worker AND NOT cancel_requested
  AND (CAST(:signal AS text) IS NULL OR NOT jsonb_exists(coalesce(signals, '{}'), CAST(:signal AS text)))
RETURNING 1;

-- name: progress
-- plan: once
UPDATE jobs SET progress = CAST(:progress AS jsonb)
WHERE id = CAST(:id AS uuid) AND attempts = :attempt AND worker_id = :worker;

-- name: cancels_requested
-- plan: once
-- Which of a drain's running jobs were asked to stop: one probe per job by
-- primary key, once a second per drain, and only while a job has run that long.
SELECT CAST(id AS text) FROM jobs
WHERE id = ANY(CAST(:ids AS uuid[])) AND state = 'running' AND cancel_requested;

-- name: signal
-- Deliver a signal: kept until a wait of that name takes it; a job waiting
-- for it becomes due now. Nothing matches for a finished job or none.
UPDATE jobs
SET signals = coalesce(signals, '{}') || jsonb_build_object(CAST(:signal AS text), CAST(:value AS jsonb)),
    state = CASE WHEN state = 'waiting' AND waiting_for ->> 'signal' = :signal THEN 'pending' ELSE state END,
    due = CASE WHEN state = 'waiting' AND waiting_for ->> 'signal' = :signal THEN true ELSE due END,
    run_at = CASE WHEN state = 'waiting' AND waiting_for ->> 'signal' = :signal THEN now() ELSE run_at END,
    waiting_for = CASE WHEN state = 'waiting' AND waiting_for ->> 'signal' = :signal THEN NULL ELSE waiting_for END
WHERE id = CAST(:id AS uuid) AND state IN ('pending', 'running', 'waiting', 'blocked')
RETURNING {job_columns};

-- Workflows (migrations/0008_workflows.sql). Run only for jobs that have
-- parents or children: a plain job's submit and outcome never reach them.

-- name: enqueue_flow
-- Insert the jobs of a workflow submit in one statement: those that wait for
-- parents (n, how many) blocked, outside every index a claim or a promotion
-- reads, each saying what a parent's failure does to it (f: 'run', or null
-- to cancel); the others as enqueue_many inserts them. jobqueue_link then
-- counts the parents that have ended already. Ids (and keys) seen before
-- insert nothing; the ids inserted come back.
INSERT INTO jobs (id, queue, task, payload, priority, run_at, due, max_attempts,
                  timeout_seconds, idempotency_key, state, parents_left, on_parent_failure)
SELECT b.i, b.q, b.t, COALESCE(b.p, '{}'), COALESCE(b.pr, 0), b.run_at, b.n IS NULL AND b.run_at <= now(), b.m, b.o,
       b.k, CASE WHEN b.n IS NULL THEN 'pending' ELSE 'blocked' END, b.n, b.f
FROM (SELECT *, COALESCE(r, now()) + COALESCE(d, 0) * interval '1 microsecond' AS run_at
      FROM json_to_recordset(CAST(:batch AS json))
           AS b(i uuid, q text, t text, p jsonb, pr smallint, r timestamptz, d bigint, m int, o float8, k text,
                n int, f text)
     ) AS b
ON CONFLICT DO NOTHING
RETURNING CAST(id AS text);

-- name: jobs_by_id
-- Jobs as they stand, by id (a workflow submit's, after linking).
SELECT {job_columns} FROM jobs WHERE id = ANY(CAST(:ids AS uuid[]));

-- name: link
SELECT CAST(jobqueue_link(CAST(:edges AS json)) AS text[]);

-- name: job_links
-- A job's parents, and its children (the first :limit, and how many in all).
SELECT ARRAY(SELECT CAST(parent AS text) FROM job_edges WHERE child = CAST(:id AS uuid) ORDER BY parent),
       ARRAY(SELECT CAST(child AS text) FROM job_edges WHERE parent = CAST(:id AS uuid) ORDER BY child LIMIT :limit),
       (SELECT count(*) FROM job_edges WHERE parent = CAST(:id AS uuid));

-- name: parents_of
-- What a child's job.parents holds: each parent's key (in its batch) or id,
-- state, result and last error.
SELECT e.key, CAST(p.id AS text), p.state, p.result, p.errors -> -1
FROM job_edges AS e JOIN jobs AS p ON p.id = e.parent
WHERE e.child = CAST(:id AS uuid)
ORDER BY e.key NULLS LAST, p.id;

-- Timers (migrations/0009_timers.sql). Run only where timers are on, and
-- never for a job due now.

-- name: arm_timer
-- plan: once
-- Arm a wake at :at unless one as early is armed and has not fired: one row
-- back means "send the message". A row that does not match is not locked.
UPDATE jobqueue_timer SET armed_at = CAST(:at AS timestamptz)
WHERE id = 1 AND (armed_at IS NULL OR armed_at > CAST(:at AS timestamptz) OR armed_at < now())
RETURNING CAST(extract(epoch FROM CAST(:at AS timestamptz) - now()) AS float8);

-- name: disarm_timer
-- A message that could not be sent: forget the wake it stood for.
UPDATE jobqueue_timer SET armed_at = NULL WHERE id = 1 AND armed_at = CAST(:at AS timestamptz);

-- name: timer_fired
-- The timer message of the wake armed for :due came (a stale one, for a
-- wake since replaced, matches nothing).
UPDATE jobqueue_timer SET armed_at = NULL WHERE id = 1 AND armed_at = CAST(:due AS timestamptz);

-- name: next_start
-- When the earliest job not yet due becomes due: a scheduled job, a retry, a
-- snooze, or a durable job's sleep or wait timeout. The first entry of the
-- promotion's index, whatever the table holds.
SELECT {time:run_at}, CAST(extract(epoch FROM run_at - now()) AS float8) FROM jobs
WHERE ((state = 'pending' AND NOT due AND NOT suspect) OR state = 'waiting') AND run_at < 'infinity'
ORDER BY run_at LIMIT 1;
