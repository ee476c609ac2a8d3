-- 0007: durable jobs. A task that takes a ``job`` argument checkpoints
-- steps, sleeps, waits for signals, reports progress and can be cancelled
-- while it runs (see jobqueue/engine/job_handle.py). Everything a durable job
-- keeps lives in its own row, so it is pruned with it, and every new column
-- is NULL (or false) for a plain job: nothing here costs a plain job a read
-- or a write.
--
-- steps:       {name: {"r": result, "at": time}} for a completed step (or a
--              received signal); {"until": time} for a sleep; {"timeout_at":
--              time} for a wait begun, {"timed_out": true} for one that ended so.
-- signals:     {name: value}, delivered and not yet consumed by a wait.
-- waiting_for: what a waiting job waits for (shown by GET /jobs/{id}).
-- progress:    {"value", "message", "at"}, the last reported.
-- cancel_requested: POST /jobs/{id}/cancel reached the job while it ran; the
--              drain that holds it learns of it within a second, and any
--              outcome written after it makes the job cancelled.
ALTER TABLE jobs ADD COLUMN steps jsonb;
ALTER TABLE jobs ADD COLUMN signals jsonb;
ALTER TABLE jobs ADD COLUMN waiting_for jsonb;
ALTER TABLE jobs ADD COLUMN progress jsonb;
ALTER TABLE jobs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;

-- Two more states: waiting (a durable job suspended itself: no drain holds
-- it) and blocked (its parents have not all finished; workflows). NOT VALID
-- then VALIDATE: the check of existing rows does not lock writers out.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'waiting', 'blocked')) NOT VALID;
ALTER TABLE jobs VALIDATE CONSTRAINT jobs_state_check;

-- A waiting job wakes by the promotion that makes scheduled jobs due: its
-- run_at is the end of its sleep or of its wait's timeout ('infinity' when
-- the wait has none), and it sits in the same index as scheduled jobs, so
-- waking ten thousand sleepers costs what promoting ten thousand scheduled
-- jobs does, and a promotion with nothing to do probes one index as before.
DROP INDEX jobs_scheduled_idx;
CREATE INDEX jobs_scheduled_idx ON jobs (run_at)
    WHERE (state = 'pending' AND NOT due AND NOT suspect) OR state = 'waiting';

CREATE OR REPLACE FUNCTION jobqueue_promote(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    promoted integer;
BEGIN
    EXECUTE $sql$
        UPDATE jobs SET due = true, state = 'pending', waiting_for = NULL
        WHERE id = ANY(ARRAY(SELECT id FROM jobs
                             WHERE ((state = 'pending' AND NOT due AND NOT suspect) OR state = 'waiting')
                               AND run_at <= now()
                             ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED))
    $sql$ USING p_limit;
    GET DIAGNOSTICS promoted = ROW_COUNT;
    RETURN promoted;
END $$;

-- The outcome write, as in 0005, with three more cases that cost a plain
-- job two CASE arms: c (the task raised Cancelled: the job ends cancelled),
-- s (it raised Snooze(s): back to pending after s seconds, the run not
-- counted), and a cancel requested while it ran, which turns any outcome
-- into cancelled (a late result never overwrites a cancel).
CREATE OR REPLACE FUNCTION jobqueue_record(p_worker text, p_batch json, p_slots json, p_done boolean)
RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_seqscan = off SET jit = off AS $$
BEGIN
    IF p_batch IS NOT NULL THEN
        UPDATE jobs AS j
        SET state = CASE WHEN o.c OR j.cancel_requested THEN 'cancelled'
                         WHEN o.s IS NOT NULL THEN 'pending'
                         WHEN o.e IS NULL THEN 'succeeded'
                         WHEN o.f OR j.attempts >= j.max_attempts + j.forgiven THEN 'failed' ELSE 'pending' END,
            result = CASE WHEN o.e IS NULL AND o.s IS NULL AND NOT j.cancel_requested THEN o.r END,
            attempts = CASE WHEN o.s IS NOT NULL AND NOT j.cancel_requested THEN j.attempts - 1 ELSE j.attempts END,
            run_at = CASE WHEN o.c OR j.cancel_requested THEN j.run_at
                          WHEN o.s IS NOT NULL THEN now() + make_interval(secs => o.s)
                          WHEN o.e IS NULL OR o.f OR j.attempts >= j.max_attempts + j.forgiven THEN j.run_at
                          ELSE now() + make_interval(secs => o.d) END,
            due = CASE WHEN o.c OR j.cancel_requested THEN j.due
                       WHEN o.s IS NOT NULL THEN o.s <= 0
                       WHEN o.e IS NULL THEN j.due ELSE o.d <= 0 END,
            finished_at = CASE WHEN o.c OR j.cancel_requested THEN now()
                               WHEN o.s IS NOT NULL THEN NULL
                               WHEN o.e IS NULL OR o.f OR j.attempts >= j.max_attempts + j.forgiven THEN now() END,
            errors = CASE WHEN j.cancel_requested AND NOT coalesce(o.c, false) THEN j.errors || jsonb_build_array(
                              jsonb_build_object('attempt', j.attempts, 'at', now(), 'type', 'Cancelled',
                                                 'message', 'cancelled while it ran; its outcome was dropped'))
                          WHEN o.e IS NULL OR o.s IS NOT NULL THEN j.errors ELSE j.errors || jsonb_build_array(o.e) END,
            waiting_for = NULL,
            suspect = false, lease_expires_at = NULL, worker_id = NULL
        FROM json_to_recordset(p_batch) AS o(i uuid, a int, w text, r jsonb, e jsonb, f bool, d float8, c bool, s float8)
        WHERE j.id = o.i AND j.attempts = o.a AND j.worker_id = o.w;
    END IF;
    IF p_done THEN
        DELETE FROM drain_slots WHERE worker = p_worker;
    ELSIF p_slots IS NOT NULL THEN
        INSERT INTO drain_slots (worker, jobs)
        VALUES (p_worker, CASE WHEN json_typeof(p_slots) = 'array'
                               THEN ARRAY(SELECT CAST(x AS uuid) FROM json_array_elements_text(p_slots) AS x) END)
        ON CONFLICT (worker) DO UPDATE SET jobs = EXCLUDED.jobs, at = now();
    END IF;
END $$;

-- A job's steps as GET /jobs/{id} shows them: each entry's name and times,
-- oldest first, without the checkpointed results (which can be large).
CREATE FUNCTION jobqueue_steps(p_steps jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_steps IS NOT NULL THEN
        (SELECT coalesce(jsonb_agg(jsonb_build_object('name', e.key) || (e.value - 'r') ORDER BY e.value ->> 'at'),
                         '[]')
         FROM jsonb_each(p_steps) AS e)
    END
$$;
