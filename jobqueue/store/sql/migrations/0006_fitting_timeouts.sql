-- 0006: a job that names no timeout runs on a function of any timeout. Its
-- timeout_seconds is NULL, which means "the default, 30 s, or a drain's whole
-- budget when that is less": on a 30 s function (budget 28 s) such a job gets
-- 28 s instead of being set aside for ever as longer than any drain. A
-- timeout that the submit or the task names is kept as given, and set aside
-- with its reason (TimeoutExceedsBudget) when no drain can fit it.
ALTER TABLE jobs ALTER COLUMN timeout_seconds DROP NOT NULL;
ALTER TABLE jobs ALTER COLUMN timeout_seconds DROP DEFAULT;

-- The timeout a job runs with when claimed with p_fits seconds left, in a
-- drain whose whole budget is p_cap (NULL: no limit). A job that names none
-- gets 30 s (jobqueue.rules.DEFAULT_TIMEOUT; a test holds them equal), or
-- the whole budget when that is less, 1 s at least. It may get up to 1.5 s
-- less: the budget is measured as the invocation begins, the time left
-- just before the claim, and half a second is kept for the drain to start
-- it (a job that no longer fits when its turn comes goes back). Otherwise
-- it waits for a drain with that much time left. A plain SQL function, so
-- the planner inlines it.
CREATE FUNCTION jobqueue_timeout(p_timeout double precision, p_cap double precision, p_fits double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(p_timeout, GREATEST(1, LEAST(30, p_cap, GREATEST(p_fits - 0.5, LEAST(30, p_cap) - 1.5))))
$$;

-- The claim's batch, as in 0005, with each job's timeout as it runs here.
CREATE OR REPLACE FUNCTION jobqueue_take(
    p_worker text, p_queues text[], p_asks integer[], p_fits double precision,
    p_cap double precision, p_grace double precision, p_park double precision,
    OUT chunk text, OUT taken integer, OUT per_queue integer[], OUT deferred text[], OUT parked integer
) LANGUAGE plpgsql AS $$
BEGIN
    WITH next AS (
        SELECT j.id, j.queue, jobqueue_timeout(j.timeout_seconds, p_cap, p_fits) AS timeout_seconds
        FROM unnest(p_queues, p_asks) AS a(name, k), LATERAL (
            SELECT id, queue, timeout_seconds FROM jobs
            WHERE queue = a.name AND state = 'pending' AND due
            ORDER BY priority, run_at, id
            LIMIT a.k
            FOR UPDATE SKIP LOCKED) AS j
        WHERE a.k > 0
    ), claimed AS (
        -- By primary key from an array: the planner cannot know how many
        -- rows "next" holds, and would otherwise hash the whole table.
        UPDATE jobs AS j
        SET state = 'running', attempts = j.attempts + 1, started_at = now(), worker_id = p_worker,
            lease_expires_at = now() + make_interval(secs => jobqueue_timeout(j.timeout_seconds, p_cap, p_fits) + p_grace)
        WHERE j.id = ANY(ARRAY(SELECT id FROM next WHERE timeout_seconds <= p_fits))
        RETURNING j.id, j.task, j.payload, j.attempts, j.max_attempts + j.forgiven AS max_attempts,
                  jobqueue_timeout(j.timeout_seconds, p_cap, p_fits) AS timeout_seconds, j.queue,
                  j.priority, j.run_at
    ), parked_now AS (
        UPDATE jobs AS j
        SET due = false, run_at = now() + make_interval(secs => p_park),
            errors = CASE WHEN j.errors -> -1 ->> 'type' = 'TimeoutExceedsBudget' THEN j.errors
                ELSE j.errors || jsonb_build_array(jsonb_build_object(
                    'attempt', j.attempts, 'at', now(), 'type', 'TimeoutExceedsBudget',
                    'message', format('the job''s timeout (%s s) is longer than a drain''s whole budget '
                                      '(%s s): it waits until a drain can give it that time',
                                      coalesce(j.timeout_seconds, 1), round(p_cap::numeric, 1)))) END
        WHERE j.id = ANY(ARRAY(SELECT id FROM next WHERE timeout_seconds > p_cap))
        RETURNING 1
    )
    SELECT string_agg(json_build_array(c.id, c.task, c.payload, c.attempts, c.max_attempts,
                                       c.timeout_seconds, c.queue,
                                       round(extract(epoch FROM now() - c.run_at), 3))::text, ','
                      ORDER BY c.priority, c.run_at, c.id),
           count(*),
           (SELECT array_agg(coalesce(per.n, 0) ORDER BY t.ord)
            FROM unnest(p_queues) WITH ORDINALITY AS t(name, ord)
            LEFT JOIN (SELECT queue, count(*)::integer AS n FROM claimed GROUP BY queue) AS per
                   ON per.queue = t.name),
           ARRAY(SELECT DISTINCT x.queue FROM next AS x
                 WHERE x.timeout_seconds > p_fits AND x.timeout_seconds <= coalesce(p_cap, 'Infinity')),
           (SELECT count(*) FROM parked_now)
    INTO chunk, taken, per_queue, deferred, parked
    FROM claimed AS c;
END $$;

-- The suspect's claim, as in 0005, with the drain's whole budget (p_cap) to
-- size a job that names no timeout. The four-argument form stays for drains
-- of the previous release that run while a deploy rolls out.
CREATE FUNCTION jobqueue_claim_alone(
    p_worker text, p_queues text[], p_fits double precision, p_cap double precision, p_grace double precision
) RETURNS text LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_sort = off SET jit = off AS $$
DECLARE
    cand record;
    picked uuid;
    s queues%ROWTYPE;
    free integer;
    opens double precision;
    stamp timestamptz;
    slot_seconds double precision;
    slot timestamptz;
    answer text;
BEGIN
    FOR cand IN
        SELECT sq.queue FROM jobqueue_suspect_queues(p_queues) AS sq WHERE sq.first_at <= now() ORDER BY sq.first_at
    LOOP
        SELECT * INTO s FROM queues WHERE name = cand.queue;  -- all NULL when the queue has no settings
        CONTINUE WHEN s.paused;
        IF s.concurrency IS NOT NULL OR s.rate_limit IS NOT NULL THEN
            SELECT * INTO s FROM queues WHERE name = cand.queue FOR UPDATE SKIP LOCKED;
            CONTINUE WHEN NOT FOUND OR s.paused;  -- another claim is serving it right now
            SELECT f.room, f.opens, f.stamp INTO free, opens, stamp FROM jobqueue_room(s) AS f;
            CONTINUE WHEN free <= 0;
        END IF;
        SELECT j.id INTO picked FROM jobs AS j
        WHERE j.state = 'pending' AND j.suspect AND j.queue = cand.queue AND j.run_at <= now()
          AND jobqueue_timeout(j.timeout_seconds, p_cap, p_fits) <= p_fits
        ORDER BY j.run_at LIMIT 1
        FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN picked IS NULL;  -- another drain holds them, or none fits the time left
        UPDATE jobs AS j
        SET state = 'running', attempts = j.attempts + 1, started_at = now(), worker_id = p_worker, due = true,
            lease_expires_at = now() + make_interval(secs => jobqueue_timeout(j.timeout_seconds, p_cap, p_fits) + p_grace)
        WHERE j.id = picked
        RETURNING '{"j":[' || json_build_array(j.id, j.task, j.payload, j.attempts, j.max_attempts + j.forgiven,
                                                 jobqueue_timeout(j.timeout_seconds, p_cap, p_fits), j.queue,
                                                 round(extract(epoch FROM now() - j.run_at), 3))::text
                  || '],"d":[],"c":[],"w":null,"p":0}'
        INTO answer;
        IF s.rate_limit IS NOT NULL THEN
            -- The start joins the queue's rate log, as jobqueue_claim logs its starts.
            slot_seconds := s.rate_seconds / 1000;
            slot := to_timestamp((floor(extract(epoch FROM stamp) / slot_seconds) + 1) * slot_seconds);
            UPDATE queues SET (rate_at, rate_n) = (
                SELECT coalesce(array_agg(e.at ORDER BY e.at), '{}'), coalesce(array_agg(e.n ORDER BY e.at), '{}')
                FROM (SELECT o.at, sum(o.n)::integer AS n
                      FROM (SELECT * FROM unnest(s.rate_at, s.rate_n) AS l(at, n)
                            WHERE l.at > stamp - make_interval(secs => s.rate_seconds)
                            UNION ALL SELECT slot, 1) AS o
                      GROUP BY o.at) AS e)
            WHERE name = cand.queue;
        END IF;
        INSERT INTO drain_slots (worker, jobs) VALUES (p_worker, ARRAY[picked])
        ON CONFLICT (worker) DO UPDATE SET jobs = EXCLUDED.jobs, at = now();
        RETURN answer;
    END LOOP;
    RETURN '{"j":[],"d":[],"c":[],"w":null,"p":0}';
END $$;
