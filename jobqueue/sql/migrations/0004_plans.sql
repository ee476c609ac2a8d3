-- 0004: every statement's plan is right whatever the table held when a
-- connection first ran it, and whatever the statistics say after a burst.
--
-- Connections run with plan_cache_mode = force_custom_plan, and so does
-- jobqueue_claim: a statement with parameters is planned for the values and
-- the table size at hand every time it runs. A statement without parameters
-- has only one plan, though, made the first time a session runs it and kept
-- until the next ANALYZE of the table. Inside jobqueue_claim there were two:
-- the promotion of jobs that have become due, and the heads of every queue.
-- A warm container that had polled an empty table kept their empty-table
-- plans (a Seq Scan of jobs under a hash join) after a burst of 60,000 jobs:
-- every claim read all 60,000 rows, until autovacuum came by. They now run
-- through EXECUTE, which plans a statement afresh each time.
--
-- Fresh plans are still made from the statistics at hand, and after such a
-- burst those are an empty table's: no column statistics at all, so the
-- planner takes "queue = 'q1' AND state = 'pending'" for a handful of rows.
-- It then read a queue's 50,000 pending jobs through jobs_queue_list_idx and
-- sorted them to take the first 20, on every claim, rather than read 20 in
-- order from jobs_claim_idx. Every statement of the claim is written to read
-- an index in its order, so the function turns sorting off (enable_sort =
-- off): a Sort is then the planner's last resort, never its choice, whatever
-- the statistics say. (Sorting inside an aggregate, as in string_agg(...
-- ORDER BY ...), is not a Sort node and is unaffected.)
--
-- Claims of many queues at once share the claim among them: see the
-- comment in the function.
--
-- The function is otherwise as 0002 made it.

CREATE OR REPLACE FUNCTION jobqueue_claim(
    p_worker text, p_queues text[], p_limit integer, p_fits double precision,
    p_cap double precision, p_grace double precision, p_park double precision
) RETURNS text LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan SET enable_sort = off AS $$
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
    prios smallint[];      -- the priority of each queue's first job
    tier text[];           -- the queues served together first (see below)
    asks integer[];
    counts integer[];
    spent text[] := '{}';  -- queues that gave less than they were asked: no more now
    k integer;
BEGIN
    -- Jobs whose run_at has come join the claim index; a burst larger than
    -- this is promoted over the next claims. (EXECUTE: planned afresh each
    -- time, see above; the rows are then found by primary key, whatever the
    -- statistics say.)
    EXECUTE $sql$
        UPDATE jobs SET due = true
        WHERE id = ANY(ARRAY(SELECT id FROM jobs WHERE state = 'pending' AND NOT due AND run_at <= now()
                             ORDER BY run_at LIMIT 5000 FOR UPDATE SKIP LOCKED))
    $sql$;

    IF p_queues IS NULL THEN
        -- Every queue with due work, one index probe each (a loose index scan).
        -- (EXECUTE: planned afresh each time, see above.)
        EXECUTE $sql$
            WITH RECURSIVE heads AS (
                (SELECT queue, priority, run_at, id FROM jobs WHERE state = 'pending' AND due
                 ORDER BY queue, priority, run_at, id LIMIT 1)
                UNION ALL
                SELECT nx.* FROM heads, LATERAL (
                    SELECT queue, priority, run_at, id FROM jobs
                    WHERE state = 'pending' AND due AND queue > heads.queue
                    ORDER BY queue, priority, run_at, id LIMIT 1) AS nx
            )
            SELECT array_agg(queue ORDER BY priority, run_at, id), array_agg(priority ORDER BY priority, run_at, id)
            FROM heads
        $sql$ INTO names, prios;
    ELSE
        SELECT array_agg(nx.queue ORDER BY nx.priority, nx.run_at, nx.id),
               array_agg(nx.priority ORDER BY nx.priority, nx.run_at, nx.id)
        INTO names, prios
        FROM (SELECT DISTINCT name FROM unnest(p_queues) AS u(name)) AS q, LATERAL (
            SELECT queue, priority, run_at, id FROM jobs
            WHERE state = 'pending' AND due AND queue = q.name
            ORDER BY priority, run_at, id LIMIT 1) AS nx;
    END IF;

    -- The queues whose first jobs come first in priority, as long as none of
    -- them has settings (paused, limits), are served together, in one
    -- statement: each gives an even share of the claim (the odd ones go to
    -- those whose first job is oldest), its first jobs in order. Taken queue
    -- after queue instead, a claim of 500 over 50 queues took one queue's
    -- 400 jobs, which lie one in 50 among the others' (jobs of many queues
    -- arrive interleaved): 400 pages of the table and of each index written
    -- to, where the first jobs of every queue lie together on a few. Such
    -- drains ran at half the rate of a drain of one queue. It also shares a
    -- claim fairly among queues of equal priority. What the shares leave is
    -- taken queue after queue, as below.
    SELECT array_agg(h.name ORDER BY h.ord) INTO tier
    FROM unnest(names, prios) WITH ORDINALITY AS h(name, prio, ord)
    WHERE h.ord < coalesce((SELECT min(x.ord) FROM unnest(names, prios) WITH ORDINALITY AS x(name, prio, ord)
                            WHERE x.prio <> prios[1]
                               OR x.name IN (SELECT q.name FROM queues AS q
                                             WHERE q.paused OR q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL)),
                           cardinality(names) + 1);
    IF cardinality(tier) > 1 THEN
        asks := ARRAY(SELECT p_limit / cardinality(tier) + CASE WHEN i <= p_limit % cardinality(tier) THEN 1 ELSE 0 END
                      FROM generate_series(1, cardinality(tier)) AS i);
        WITH next AS (
            SELECT j.id, j.queue, j.timeout_seconds
            FROM unnest(tier, asks) AS a(name, k), LATERAL (
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
            RETURNING j.id, j.task, j.payload, j.attempts, j.max_attempts, j.timeout_seconds, j.queue,
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
                FROM unnest(tier) WITH ORDINALITY AS t(name, ord)
                LEFT JOIN (SELECT queue, count(*)::integer AS n FROM claimed GROUP BY queue) AS per
                       ON per.queue = t.name),
               ARRAY(SELECT DISTINCT x.queue FROM next AS x
                     WHERE x.timeout_seconds > p_fits AND x.timeout_seconds <= coalesce(p_cap, 'Infinity')),
               (SELECT count(*) FROM parked_now)
        INTO chunk, n, counts, deferred, gone
        FROM claimed AS c;

        taken := n;
        parked := gone;
        IF n > 0 THEN
            parts := parts || chunk;
        END IF;
        FOR k IN 1 .. cardinality(tier) LOOP
            IF asks[k] > 0 AND counts[k] < asks[k] THEN
                spent := spent || tier[k];
            END IF;
        END LOOP;
    END IF;

    FOREACH qname IN ARRAY coalesce(names, '{}') LOOP
        EXIT WHEN taken >= p_limit;
        CONTINUE WHEN qname = ANY(spent);
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
        IF late > 0 AND qname <> ALL(deferred) THEN
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

