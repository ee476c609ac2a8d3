-- 0005: one crash takes one job. A drain writes down, before it starts them,
-- the jobs it may be running (its slots); when it dies, the rescue knows
-- which of its claimed jobs never started (they go back as if never
-- claimed) and which were running beside others (suspects: they run alone
-- next, and only a death while alone counts against them).

-- What each drain may be running now: the jobs in its slots and those it
-- will start before it writes again. Written with the drain's outcomes, one
-- row per drain (never a write per job), deleted when the drain ends. jobs
-- NULL stands for every job the drain held when it wrote (claimed at or
-- before "at"): what a drain of many short jobs writes instead of hundreds
-- of ids.
CREATE TABLE drain_slots (
    worker text        PRIMARY KEY,
    jobs   uuid[],
    at     timestamptz NOT NULL DEFAULT now()
);

-- suspect: its process died while it ran beside other jobs; it waits for a
-- drain that runs it alone, outside the claim index (due = false, and out
-- of the promotion's index too). forgiven: runs that do not count against
-- max_attempts (deaths beside other jobs); attempts still counts every run
-- that started, so a job never runs more often than its attempts say. A
-- death while alone counts them all again: the job is a crasher.
ALTER TABLE jobs ADD COLUMN suspect boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN forgiven smallint NOT NULL DEFAULT 0;

CREATE INDEX jobs_suspect_idx ON jobs (queue, run_at) WHERE state = 'pending' AND suspect;
DROP INDEX jobs_scheduled_idx;
CREATE INDEX jobs_scheduled_idx ON jobs (run_at) WHERE state = 'pending' AND NOT due AND NOT suspect;

CREATE OR REPLACE FUNCTION jobqueue_promote(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    promoted integer;
BEGIN
    EXECUTE $sql$
        UPDATE jobs SET due = true
        WHERE id = ANY(ARRAY(SELECT id FROM jobs
                             WHERE state = 'pending' AND NOT due AND NOT suspect AND run_at <= now()
                             ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED))
    $sql$ USING p_limit;
    GET DIAGNOSTICS promoted = ROW_COUNT;
    RETURN promoted;
END $$;

-- The count triggers plan their statements once per session. They read
-- only their own transition tables, so one plan always suits; planned anew
-- for every statement (under force_custom_plan, which reaches inside
-- PL/pgSQL), they cost 0.4 ms per write, which small, frequent outcome
-- writes cannot afford.
ALTER FUNCTION jobqueue_count_inserted() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION jobqueue_count_updated() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION jobqueue_count_deleted() SET plan_cache_mode = force_generic_plan;

-- Write a drain's outcomes and its slots in one round trip: successes and
-- failed attempts (the records of queries.sql's "record") and, unless
-- p_slots (a JSON array of ids) is NULL, the jobs it may run until it
-- writes again, or every job it holds when p_slots is the JSON text "all";
-- p_done ends the drain (its row goes). Every outcome is guarded by (id, attempt,
-- worker), so a late write from an attempt that lost its lease is a no-op.
--
-- One plan, made once per session: the only good plan looks each record's
-- job up by primary key, whatever the batch's size, so join methods that
-- would read the table are turned off rather than left to an estimate (the
-- recordset is always guessed at 100 rows; a generic plan then hashed the
-- whole table, and a custom one costs 0.3 ms to make, for every write).
-- No JIT, as for jobqueue_suspects_waiting.
CREATE FUNCTION jobqueue_record(p_worker text, p_batch json, p_slots json, p_done boolean)
RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_seqscan = off SET jit = off AS $$
BEGIN
    IF p_batch IS NOT NULL THEN
        UPDATE jobs AS j
        SET state = CASE WHEN o.e IS NULL THEN 'succeeded'
                         WHEN o.f OR j.attempts >= j.max_attempts + j.forgiven THEN 'failed' ELSE 'pending' END,
            result = CASE WHEN o.e IS NULL THEN o.r END,
            run_at = CASE WHEN o.e IS NULL OR o.f OR j.attempts >= j.max_attempts + j.forgiven THEN j.run_at
                          ELSE now() + make_interval(secs => o.d) END,
            due = CASE WHEN o.e IS NULL THEN j.due ELSE o.d <= 0 END,
            finished_at = CASE WHEN o.e IS NULL OR o.f OR j.attempts >= j.max_attempts + j.forgiven THEN now() END,
            errors = CASE WHEN o.e IS NULL THEN j.errors ELSE j.errors || jsonb_build_array(o.e) END,
            suspect = false, lease_expires_at = NULL, worker_id = NULL
        FROM json_to_recordset(p_batch) AS o(i uuid, a int, w text, r jsonb, e jsonb, f bool, d float8)
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

-- The queues (of p_queues, or all when NULL) that have suspects, paused
-- ones left out, each with its first suspect's run_at: one index probe per
-- queue that has any (a loose index scan), however many suspects wait, and
-- one probe of an empty index while no process has died.
CREATE FUNCTION jobqueue_suspect_queues(p_queues text[]) RETURNS TABLE (queue text, first_at timestamptz)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE q AS (
        (SELECT j.queue, j.run_at FROM jobs AS j WHERE j.state = 'pending' AND j.suspect
         ORDER BY j.queue, j.run_at LIMIT 1)
        UNION ALL
        SELECT nx.queue, nx.run_at FROM q, LATERAL (
            SELECT j.queue, j.run_at FROM jobs AS j
            WHERE j.state = 'pending' AND j.suspect AND j.queue > q.queue
            ORDER BY j.queue, j.run_at LIMIT 1) AS nx
    )
    SELECT q.queue, q.run_at FROM q
    WHERE (p_queues IS NULL OR q.queue = ANY(p_queues))
      AND q.queue NOT IN (SELECT name FROM queues WHERE paused)
$$;

-- Whether a suspect is due in the queues a drain serves: asked by every
-- claim, so planned once per session (the connections plan every statement
-- afresh otherwise, which made this probe cost more than the claim of ten
-- jobs it rides along with). A plan made once may be made on an empty
-- table, where a Seq Scan and a Sort look cheapest; the only plan that stays
-- right reads jobs_suspect_idx in its order, so the others are turned off.
-- So is JIT: what is turned off still costs its plan a penalty (1e10 for a
-- Seq Scan of the queues table, which has no other path), and a plan that
-- costly is compiled first: 50 ms for a probe of an empty index.
CREATE FUNCTION jobqueue_suspects_waiting(p_queues text[]) RETURNS boolean
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_sort = off SET jit = off AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM jobqueue_suspect_queues(p_queues) AS sq WHERE sq.first_at <= now());
END $$;

-- Lease to p_worker the first suspect that is due in the queues it serves
-- (all when NULL), fits p_fits and whose queue lets one more start, and
-- write down that the drain runs it alone: its slots hold it and nothing
-- else. Answers as jobqueue_claim does (no row: {"j":[]}).
--
-- A limited queue's row is locked before it is counted, as in
-- jobqueue_claim, but only if free at once: a claim that waited here could
-- close a circle with one that waits in name order. Planned once per
-- session, on index paths only (see jobqueue_suspects_waiting).
CREATE FUNCTION jobqueue_claim_alone(
    p_worker text, p_queues text[], p_fits double precision, p_grace double precision
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
          AND j.timeout_seconds <= p_fits
        ORDER BY j.run_at LIMIT 1
        FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN picked IS NULL;  -- another drain holds them, or none fits the time left
        UPDATE jobs AS j
        SET state = 'running', attempts = j.attempts + 1, started_at = now(), worker_id = p_worker, due = true,
            lease_expires_at = now() + make_interval(secs => j.timeout_seconds + p_grace)
        WHERE j.id = picked
        RETURNING '{"j":[' || json_build_array(j.id, j.task, j.payload, j.attempts, j.max_attempts + j.forgiven,
                                                 j.timeout_seconds, j.queue,
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

-- The claim's batch (jobqueue_take, as in 0002) now answers each job's
-- attempts limit as the drain must judge it: max_attempts plus the runs
-- forgiven, so a job that died beside a crasher keeps all its attempts.
CREATE OR REPLACE FUNCTION jobqueue_take(
    p_worker text, p_queues text[], p_asks integer[], p_fits double precision,
    p_cap double precision, p_grace double precision, p_park double precision,
    OUT chunk text, OUT taken integer, OUT per_queue integer[], OUT deferred text[], OUT parked integer
) LANGUAGE plpgsql AS $$
BEGIN
    WITH next AS (
        SELECT j.id, j.queue, j.timeout_seconds
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
            lease_expires_at = now() + make_interval(secs => j.timeout_seconds + p_grace)
        WHERE j.id = ANY(ARRAY(SELECT id FROM next WHERE timeout_seconds <= p_fits))
        RETURNING j.id, j.task, j.payload, j.attempts, j.max_attempts + j.forgiven AS max_attempts, j.timeout_seconds, j.queue,
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
