-- 0002: a queue's claim reads only that queue's due rows, whatever else the
-- table holds; counts and lists cost the same at ten million rows as at ten;
-- queue settings (paused, concurrency, rate) are enforced inside the claim.

-- Due or not yet due. A pending job whose run_at is in the future waits with
-- due = false, outside the claim index, so a million jobs scheduled for
-- tomorrow cost a claim nothing; jobqueue_claim() promotes them when their
-- time comes. Invariant: due implies run_at <= the time it was set, so a due
-- job stays due.
ALTER TABLE jobs ADD COLUMN due boolean NOT NULL DEFAULT true;
UPDATE jobs SET due = false WHERE state = 'pending' AND run_at > now();

-- The claim: one queue's due work in priority, run_at, id order. Leading with
-- the queue, so a claim of queue A never walks queue B's backlog.
DROP INDEX jobs_pending_idx;
CREATE INDEX jobs_claim_idx ON jobs (queue, priority, run_at, id) WHERE state = 'pending' AND due;

-- Jobs waiting for their run_at, in the order they become due.
CREATE INDEX jobs_scheduled_idx ON jobs (run_at) WHERE state = 'pending' AND NOT due;

-- Lists, newest first, by state and by queue. Running jobs are left out:
-- a job is running only briefly, and every claim would pay for the entry;
-- they are few and listed from jobs_running_lease_idx.
CREATE INDEX jobs_state_list_idx ON jobs (state, id) WHERE state <> 'running';
CREATE INDEX jobs_queue_list_idx ON jobs (queue, state, id) WHERE state <> 'running';

-- Exact counts per queue and state without counting rows: every statement
-- that adds, removes or moves jobs appends its net change here (one row per
-- queue and state it touched), and compaction folds the rows together.
CREATE TABLE job_counts (
    queue text   NOT NULL,
    state text   NOT NULL,
    n     bigint NOT NULL
);

CREATE FUNCTION jobqueue_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts (queue, state, n)
    SELECT queue, state, count(*) FROM new_jobs GROUP BY queue, state;
    RETURN NULL;
END $$;

CREATE FUNCTION jobqueue_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts (queue, state, n)
    SELECT queue, state, sum(n) FROM (
        SELECT queue, state, count(*) AS n FROM new_jobs GROUP BY queue, state
        UNION ALL
        SELECT queue, state, -count(*) FROM old_jobs GROUP BY queue, state
    ) AS moved
    GROUP BY queue, state
    HAVING sum(n) <> 0;
    RETURN NULL;
END $$;

CREATE FUNCTION jobqueue_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts (queue, state, n)
    SELECT queue, state, -count(*) FROM old_jobs GROUP BY queue, state;
    RETURN NULL;
END $$;

CREATE FUNCTION jobqueue_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_count_inserted AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_count_inserted();
CREATE TRIGGER jobs_count_updated AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_count_updated();
CREATE TRIGGER jobs_count_deleted AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_count_deleted();
CREATE TRIGGER jobs_count_truncated AFTER TRUNCATE ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_count_truncated();

INSERT INTO job_counts (queue, state, n) SELECT queue, state, count(*) FROM jobs GROUP BY queue, state;

-- Queue settings. A queue needs no row until it is configured; a missing row
-- means not paused and unlimited.
CREATE TABLE queues (
    name         text             PRIMARY KEY,
    paused       boolean          NOT NULL DEFAULT false,
    concurrency  integer          CHECK (concurrency >= 0),
    rate_limit   integer          CHECK (rate_limit > 0),
    rate_seconds double precision CHECK (rate_seconds > 0),
    -- The starts inside the current rate window (a sliding log, one entry per
    -- claim): at[k] claimed n[k] jobs.
    rate_at      timestamptz[]    NOT NULL DEFAULT '{}',
    rate_n       integer[]        NOT NULL DEFAULT '{}',
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    CHECK ((rate_limit IS NULL) = (rate_seconds IS NULL))
);

-- Running jobs per queue (what a concurrency limit counts), with their
-- leases (what the rescuer looks for across queues: running jobs are few).
DROP INDEX jobs_running_lease_idx;
CREATE INDEX jobs_running_idx ON jobs (queue, lease_expires_at) WHERE state = 'running';

-- Jobs whose run_at has come join the claim index, oldest first, at most
-- p_limit at a time (a larger burst is promoted over the next calls). Run by
-- every claim, and by stats so that ages are right while no drain runs.
CREATE FUNCTION jobqueue_promote(p_limit integer) RETURNS integer LANGUAGE sql AS $$
    WITH promoted AS (
        UPDATE jobs SET due = true
        WHERE id IN (SELECT id FROM jobs WHERE state = 'pending' AND NOT due AND run_at <= now()
                     ORDER BY run_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
        RETURNING 1
    )
    SELECT count(*)::integer FROM promoted
$$;

-- The claim: lease up to p_limit due jobs to p_worker, one queue at a time,
-- queues in the order of their first job (priority, run_at, id), each queue's
-- jobs in that order, taking no more from a queue than its settings allow.
--
--   p_queues  the queues to serve, or NULL for every queue with due work
--   p_fits    the longest job timeout this drain can still finish
--   p_cap     the longest budget any drain gets (NULL: unknown); a job with a
--             longer timeout can never run, and is parked for p_park seconds
--             instead of blocking its queue
--
-- It answers one JSON text: {"j": [[id, task, payload, attempt, max_attempts,
-- timeout, queue, seconds it waited since due], ...], "d": queues whose next jobs do not fit p_fits,
-- "c": queues at their concurrency or rate limit, "w": seconds until a rate
-- window opens (or null), "p": jobs parked}.
--
-- A PL/pgSQL function so that a limited queue's claim can lock its settings
-- row and then count, with a snapshot taken after the lock, the jobs other
-- drains have claimed meanwhile; each statement in it sees a fresh snapshot.
CREATE FUNCTION jobqueue_claim(
    p_worker text, p_queues text[], p_limit integer, p_fits double precision,
    p_cap double precision, p_grace double precision, p_park double precision
) RETURNS text LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    names text[];
    qname text;
    s queues%ROWTYPE;
    limited boolean;
    want integer;
    used bigint;
    oldest timestamptz;
    window_start timestamptz;
    taken integer := 0;
    chunk text;
    n integer;
    late integer;
    gone integer;
    parked integer := 0;
    parts text[] := '{}';
    deferred text[] := '{}';
    capped text[] := '{}';
    wait double precision;
BEGIN
    PERFORM jobqueue_promote(5000);

    IF p_queues IS NULL THEN
        -- Every queue with due work, one index probe each (a loose index scan).
        WITH RECURSIVE heads AS (
            (SELECT queue, priority, run_at, id FROM jobs WHERE state = 'pending' AND due
             ORDER BY queue, priority, run_at, id LIMIT 1)
            UNION ALL
            SELECT nx.* FROM heads, LATERAL (
                SELECT queue, priority, run_at, id FROM jobs
                WHERE state = 'pending' AND due AND queue > heads.queue
                ORDER BY queue, priority, run_at, id LIMIT 1) AS nx
        )
        SELECT array_agg(queue ORDER BY priority, run_at, id) INTO names FROM heads;
    ELSE
        SELECT array_agg(nx.queue ORDER BY nx.priority, nx.run_at, nx.id) INTO names
        FROM (SELECT DISTINCT name FROM unnest(p_queues) AS u(name)) AS q, LATERAL (
            SELECT queue, priority, run_at, id FROM jobs
            WHERE state = 'pending' AND due AND queue = q.name
            ORDER BY priority, run_at, id LIMIT 1) AS nx;
    END IF;

    FOREACH qname IN ARRAY coalesce(names, '{}') LOOP
        EXIT WHEN taken >= p_limit;
        want := p_limit - taken;
        SELECT * INTO s FROM queues WHERE name = qname;  -- all NULL when the queue has no settings
        CONTINUE WHEN s.paused;
        limited := s.concurrency IS NOT NULL OR s.rate_limit IS NOT NULL;
        IF limited THEN
            -- One limited claim of this queue at a time, counting after the lock.
            SELECT * INTO s FROM queues WHERE name = qname FOR UPDATE;
            CONTINUE WHEN s.paused;
            IF s.concurrency IS NOT NULL THEN
                SELECT count(*) INTO used FROM jobs WHERE queue = qname AND state = 'running';
                want := least(want, s.concurrency - used);
            END IF;
            IF s.rate_limit IS NOT NULL THEN
                window_start := now() - make_interval(secs => s.rate_seconds);
                SELECT coalesce(sum(r.n), 0), min(r.at) INTO used, oldest
                FROM unnest(s.rate_at, s.rate_n) AS r(at, n) WHERE r.at > window_start;
                want := least(want, s.rate_limit - used);
                IF want <= 0 THEN
                    wait := least(coalesce(wait, 'Infinity'), extract(epoch FROM oldest - window_start));
                END IF;
            END IF;
            IF want <= 0 THEN
                capped := capped || qname;
                CONTINUE;
            END IF;
        END IF;

        WITH next AS (
            SELECT id, timeout_seconds FROM jobs
            WHERE queue = qname AND state = 'pending' AND due
            ORDER BY priority, run_at, id
            LIMIT want
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE jobs AS j
            SET state = 'running', attempts = j.attempts + 1, started_at = now(), worker_id = p_worker,
                lease_expires_at = now() + make_interval(secs => j.timeout_seconds + p_grace)
            FROM next WHERE j.id = next.id AND next.timeout_seconds <= p_fits
            RETURNING j.id, j.task, j.payload, j.attempts, j.max_attempts, j.timeout_seconds,
                      j.priority, j.run_at
        ), parked_now AS (
            UPDATE jobs AS j
            SET due = false, run_at = now() + make_interval(secs => p_park),
                errors = CASE WHEN j.errors -> -1 ->> 'type' = 'TimeoutExceedsBudget' THEN j.errors
                    ELSE j.errors || jsonb_build_array(jsonb_build_object(
                        'attempt', j.attempts, 'at', now(), 'type', 'TimeoutExceedsBudget',
                        'message', format('the job''s timeout (%s s) is longer than a drain''s whole budget '
                                          '(%s s): it waits until a drain can give it that time',
                                          j.timeout_seconds, round(p_cap::numeric, 1)))) END
            FROM next WHERE j.id = next.id AND next.timeout_seconds > p_cap
            RETURNING 1
        )
        SELECT string_agg(json_build_array(c.id, c.task, c.payload, c.attempts, c.max_attempts,
                                           c.timeout_seconds, qname,
                                           round(extract(epoch FROM now() - c.run_at), 3))::text, ','
                          ORDER BY c.priority, c.run_at, c.id),
               count(*),
               (SELECT count(*) FROM next WHERE timeout_seconds > p_fits
                                          AND timeout_seconds <= coalesce(p_cap, 'Infinity')),
               (SELECT count(*) FROM parked_now)
        INTO chunk, n, late, gone
        FROM claimed AS c;

        taken := taken + n;
        parked := parked + gone;
        IF n > 0 THEN
            parts := parts || chunk;
        END IF;
        IF late > 0 THEN
            deferred := deferred || qname;
        END IF;
        IF limited AND s.rate_limit IS NOT NULL AND n > 0 THEN
            UPDATE queues SET
                rate_at = ARRAY(SELECT r.at FROM unnest(s.rate_at) AS r(at) WHERE r.at > window_start) || now(),
                rate_n = ARRAY(SELECT r.n FROM unnest(s.rate_at, s.rate_n) AS r(at, n) WHERE r.at > window_start)
                         || n
            WHERE name = qname;
        END IF;
    END LOOP;

    RETURN '{"j":[' || array_to_string(parts, ',') || '],"d":' || to_json(deferred)::text
        || ',"c":' || to_json(capped)::text || ',"w":' || coalesce(to_json(wait)::text, 'null')
        || ',"p":' || parked || '}';
END $$;
