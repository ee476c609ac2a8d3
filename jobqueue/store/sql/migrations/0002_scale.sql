-- 0002: a queue's claim reads only that queue's due rows, whatever else the
-- table holds; counts and lists cost the same at ten million rows as at ten;
-- queue settings (paused, concurrency, rate) are enforced inside the claim;
-- drains can tell how many of them run and be started on demand.

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
-- EXECUTE plans the statement afresh each call (see jobqueue_claim on why),
-- and the rows are then updated by primary key from an array, whatever the
-- statistics say of how many there are.
CREATE FUNCTION jobqueue_promote(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    promoted integer;
BEGIN
    EXECUTE $sql$
        UPDATE jobs SET due = true
        WHERE id = ANY(ARRAY(SELECT id FROM jobs WHERE state = 'pending' AND NOT due AND run_at <= now()
                             ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED))
    $sql$ USING p_limit;
    GET DIAGNOSTICS promoted = ROW_COUNT;
    RETURN promoted;
END $$;

-- How many more jobs a limited queue may start now, and when a full rate
-- window next opens (seconds, else NULL). Every statement in it sees a
-- snapshot taken as it starts, so called after taking the queue's lock it
-- counts what other claims took up to then. stamp: when it looked.
CREATE FUNCTION jobqueue_room(q queues, OUT room integer, OUT opens double precision, OUT stamp timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    free integer;
    window_start timestamptz;
BEGIN
    room := 2147483647;
    stamp := clock_timestamp();
    IF q.concurrency IS NOT NULL THEN
        SELECT q.concurrency - count(*) INTO room
        FROM (SELECT 1 FROM jobs WHERE queue = q.name AND state = 'running' LIMIT q.concurrency) AS busy;
    END IF;
    IF q.rate_limit IS NOT NULL THEN
        window_start := stamp - make_interval(secs => q.rate_seconds);
        SELECT q.rate_limit - coalesce(sum(e.n), 0), extract(epoch FROM min(e.at) - window_start)
        INTO free, opens
        FROM unnest(q.rate_at, q.rate_n) AS e(at, n) WHERE e.at > window_start;
        room := least(room, free);
        IF free > 0 THEN
            opens := NULL;
        END IF;
    END IF;
END $$;

-- Lease to p_worker the first p_asks[k] due jobs of each queue p_queues[k],
-- skipping jobs other claims hold, and park those no drain can ever fit.
-- Answers the leased jobs as JSON rows (see jobqueue_claim), how many, how
-- many of each queue, the queues whose next jobs need more than p_fits, and
-- how many were parked. Called by jobqueue_claim for the queues it serves
-- together and for each queue after them; runs under its settings.
CREATE FUNCTION jobqueue_take(
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
            FROM unnest(p_queues) WITH ORDINALITY AS t(name, ord)
            LEFT JOIN (SELECT queue, count(*)::integer AS n FROM claimed GROUP BY queue) AS per
                   ON per.queue = t.name),
           ARRAY(SELECT DISTINCT x.queue FROM next AS x
                 WHERE x.timeout_seconds > p_fits AND x.timeout_seconds <= coalesce(p_cap, 'Infinity')),
           (SELECT count(*) FROM parked_now)
    INTO chunk, taken, per_queue, deferred, parked
    FROM claimed AS c;
END $$;

-- The claim: lease up to p_limit due jobs to p_worker, queues in the order
-- of their first job (priority, run_at, id), each queue's jobs in that
-- order, taking no more from a queue than its settings allow.
--
--   p_queues  the queues to serve, or NULL for every queue with due work
--   p_fits    the longest job timeout this drain can still finish
--   p_cap     the longest budget any drain gets (NULL: unknown); a job with a
--             longer timeout can never run, and is parked for p_park seconds
--             instead of blocking its queue
--
-- It answers one JSON text: {"j": [[id, task, payload, attempt, max_attempts,
-- timeout, queue, seconds it waited since due], ...], "d": queues whose next
-- jobs do not fit p_fits, "c": queues at their concurrency or rate limit,
-- "w": seconds until a rate window opens (or null), "p": jobs parked}.
--
-- A PL/pgSQL function so that a limited queue's claim can lock its settings
-- row and then count, with a snapshot taken after the lock, the jobs other
-- drains have claimed meanwhile: each statement in it sees a fresh snapshot.
--
-- Plans. Connections run with plan_cache_mode = force_custom_plan, and so
-- does this function: a statement with parameters is planned for the values
-- and the table size at hand every time. A statement without parameters has
-- one plan per session, made the first time it runs; a warm container that
-- had polled an empty table kept the empty table's plans (a Seq Scan under a
-- hash join) after a burst of 60,000 jobs. The heads of every queue (and the
-- promotion) therefore run through EXECUTE, planned afresh each time. Fresh
-- plans still come from the statistics at hand, and after such a burst those
-- are an empty table's: the planner then took a queue's pending jobs for a
-- handful and read 50,000 of them to sort out the first 20. Every statement
-- here reads an index in its order, so the function turns sorting off: a Sort
-- is the planner's last resort, never its choice. (Ordering inside an
-- aggregate is not a Sort node and is unaffected.)
--
-- Limits, under many drains at once:
-- * No deadlock. Two claims can see the queues' order differently (a job
--   lands in between); each locking limited queues as it came to them, two
--   could each hold one and wait for the other's. A claim now waits only for
--   a queue whose name sorts after every queue it already holds; any other it
--   takes only if free at once, and otherwise leaves to the claim serving it
--   (reported as capped). Waits only go up the name order: no circle.
-- * A queue at its limit costs other claims nothing: its room is first
--   looked at without the lock, and only a queue that seems to have room is
--   locked and counted again.
-- * A rate is judged, and its starts logged, by the clock read once the lock
--   is held, so each claim's time is later than that of the claim before it.
-- * A rate's log holds at most 1000 entries per window: starts are summed per
--   slot of window/1000 seconds, stamped with the end of their slot, so they
--   leave the window no sooner than they should and at most window/1000
--   seconds later.
CREATE FUNCTION jobqueue_claim(
    p_worker text, p_queues text[], p_limit integer, p_fits double precision,
    p_cap double precision, p_grace double precision, p_park double precision
) RETURNS text LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan SET enable_sort = off AS $$
DECLARE
    names text[];
    qname text;
    s queues%ROWTYPE;
    limited boolean;
    want integer;
    free integer;
    opens double precision;
    stamp timestamptz;
    held text;  -- the limited queue this claim holds that comes last in name order
    slot_seconds double precision;
    slot timestamptz;
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
    PERFORM jobqueue_promote(5000);

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
        SELECT t.chunk, t.taken, t.per_queue, t.deferred, t.parked INTO chunk, n, counts, deferred, gone
        FROM jobqueue_take(p_worker, tier, asks, p_fits, p_cap, p_grace, p_park) AS t;

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
            -- First without the lock: a queue at its limit is passed over
            -- without making any other claim wait.
            SELECT f.room, f.opens INTO free, opens FROM jobqueue_room(s) AS f;
            IF free > 0 THEN
                -- Then under its lock, counting again. Wait for the lock only
                -- when the name comes after every queue this claim holds.
                IF held IS NULL OR qname COLLATE "C" > held COLLATE "C" THEN
                    SELECT * INTO s FROM queues WHERE name = qname FOR UPDATE;
                    held := qname;
                ELSE
                    SELECT * INTO s FROM queues WHERE name = qname FOR UPDATE SKIP LOCKED;
                    IF NOT FOUND THEN  -- another claim is serving it right now
                        capped := capped || qname;
                        CONTINUE;
                    END IF;
                END IF;
                CONTINUE WHEN s.paused;
                limited := s.concurrency IS NOT NULL OR s.rate_limit IS NOT NULL;
                IF limited THEN
                    SELECT f.room, f.opens, f.stamp INTO free, opens, stamp FROM jobqueue_room(s) AS f;
                END IF;
            END IF;
            IF limited THEN
                IF free <= 0 THEN
                    capped := capped || qname;
                    wait := least(wait, opens);  -- least() ignores NULLs
                    CONTINUE;
                END IF;
                want := least(want, free);
            END IF;
        END IF;

        SELECT t.chunk, t.taken, cardinality(t.deferred), t.parked INTO chunk, n, late, gone
        FROM jobqueue_take(p_worker, ARRAY[qname], ARRAY[want], p_fits, p_cap, p_grace, p_park) AS t;

        taken := taken + n;
        parked := parked + gone;
        IF n > 0 THEN
            parts := parts || chunk;
        END IF;
        IF late > 0 AND qname <> ALL(deferred) THEN
            deferred := deferred || qname;
        END IF;
        IF limited AND s.rate_limit IS NOT NULL AND n > 0 THEN
            -- The starts go in the slot holding the stamp, stamped with its
            -- end; entries that left the window are dropped.
            slot_seconds := s.rate_seconds / 1000;
            slot := to_timestamp((floor(extract(epoch FROM stamp) / slot_seconds) + 1) * slot_seconds);
            UPDATE queues SET (rate_at, rate_n) = (
                SELECT coalesce(array_agg(e.at ORDER BY e.at), '{}'), coalesce(array_agg(e.n ORDER BY e.at), '{}')
                FROM (SELECT o.at, sum(o.n)::integer AS n
                      FROM (SELECT * FROM unnest(s.rate_at, s.rate_n) AS l(at, n)
                            WHERE l.at > stamp - make_interval(secs => s.rate_seconds)
                            UNION ALL SELECT slot, n) AS o
                      GROUP BY o.at) AS e)
            WHERE name = qname;
        END IF;
    END LOOP;

    RETURN '{"j":[' || array_to_string(parts, ',') || '],"d":' || to_json(deferred)::text
        || ',"c":' || to_json(capped)::text || ',"w":' || coalesce(to_json(wait)::text, 'null')
        || ',"p":' || parked || '}';
END $$;

-- Starting drains on demand (jobqueue/engine/fanout.py). Which drains run is known from their
-- session advisory locks (one per slot, freed the moment a drain's connection
-- ends, however it ends); this row remembers that a submit has asked for a
-- drain, so a burst of submits asks once.
CREATE TABLE jobqueue_wake (
    id           integer     PRIMARY KEY CHECK (id = 1),
    requested_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO jobqueue_wake (id) VALUES (1);
