-- 0008: workflows. A job may depend on others (depends_on): it is blocked
-- until every parent has succeeded, then pending. A parent that ends failed
-- or cancelled cancels it, and its own children after it, unless it said
-- on_parent_failure = 'run'. A batch's "then" job is such a child of every
-- job of the batch, with 'run'.
--
-- The edges live in their own table, read by parent (who waits for me?) and
-- by child (whom do I wait for?). A child counts the parents it still waits
-- for (parents_left), so a parent's end is one decrement per child, never a
-- count of all a child's parents, and a fan-in of ten thousand parents ends
-- with the last one's decrement.
--
-- Children are released by a statement trigger on jobs: whatever ends a
-- parent (an outcome, a cancel, a rescue that fails a crasher) releases its
-- children in the same transaction. Only parents carry has_children, and the
-- trigger looks at nothing else until one of those has ended, so a plain
-- job's outcome costs a scan of the statement's own changed rows in memory,
-- not a query.

ALTER TABLE jobs ADD COLUMN parents_left integer;  -- NULL: no parents
ALTER TABLE jobs ADD COLUMN on_parent_failure text CHECK (on_parent_failure IN ('cancel', 'run'));
ALTER TABLE jobs ADD COLUMN has_children boolean NOT NULL DEFAULT false;

CREATE TABLE job_edges (
    parent uuid NOT NULL,
    child  uuid NOT NULL,
    key    text,  -- the parent's key in its batch: how the child's job.parents names it
    PRIMARY KEY (parent, child)
);
CREATE INDEX job_edges_child_idx ON job_edges (child);

-- What becomes of the children of parents that ended (p_ended: their ids
-- and states) or came back from failed or cancelled (p_back: a retry).
--
-- Each step reads by key: the ended parents' edges (by parent), then each
-- child (by id). The children and their counts pass through arrays, whose
-- size the planner does not guess from the table: a table without fresh
-- statistics (new, or just emptied) otherwise looks as if it held one
-- blocked row, and a plan for one row redid the per-child count for every
-- child. Join methods that would read a whole table are off.
CREATE FUNCTION jobqueue_release_children(p_ended uuid[], p_states text[], p_back uuid[])
RETURNS void LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off SET jit = off AS $$
DECLARE
    children uuid[];
    counts integer[];
    bads uuid[];
    bad_states text[];
BEGIN
    IF p_ended IS NOT NULL THEN
        SELECT array_agg(x.child), array_agg(x.k), array_agg(x.bad), array_agg(x.bad_state)
        INTO children, counts, bads, bad_states
        FROM (
            SELECT e.child, count(*)::integer AS k,
                   (array_agg(d.id ORDER BY d.id) FILTER (WHERE d.state <> 'succeeded'))[1] AS bad,
                   (array_agg(d.state ORDER BY d.id) FILTER (WHERE d.state <> 'succeeded'))[1] AS bad_state
            FROM unnest(p_ended, p_states) AS d(id, state) JOIN job_edges AS e ON e.parent = d.id
            GROUP BY e.child
        ) AS x;
        IF children IS NOT NULL THEN
            PERFORM jobqueue_settle_children(children, counts, bads, bad_states);
        END IF;
    END IF;
    IF p_back IS NOT NULL THEN
        -- Children cancelled for a parent now retried wait for it again
        -- (unless retried on their own since); theirs follow, by this trigger.
        UPDATE jobs AS c
        SET state = 'blocked', due = false, finished_at = NULL, parents_left = c.parents_left + 1
        FROM job_edges AS e
        WHERE e.parent = ANY(p_back) AND c.id = e.child AND c.state = 'cancelled'
          AND c.errors -> -1 ->> 'type' = 'ParentFailed' AND c.errors -> -1 ->> 'parent' = CAST(e.parent AS text);
    END IF;
END $$;

-- Count p_counts more ended parents against each blocked child of
-- p_children; p_bads names the first of them that failed or was cancelled
-- (NULL: none did). A child with no parent left to wait for is pending
-- (due if its time has come); one with a failed parent is cancelled unless
-- it said on_parent_failure 'run'. Cancelling a child ends it: its own
-- children follow through the trigger, transitively.
CREATE FUNCTION jobqueue_settle_children(p_children uuid[], p_counts integer[], p_bads uuid[], p_bad_states text[])
RETURNS void LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off SET jit = off AS $$
BEGIN
    UPDATE jobs AS c
    SET parents_left = c.parents_left - p.k,
        state = CASE WHEN p.bad IS NOT NULL AND c.on_parent_failure IS DISTINCT FROM 'run' THEN 'cancelled'
                     WHEN c.parents_left - p.k <= 0 THEN 'pending' ELSE 'blocked' END,
        due = CASE WHEN (p.bad IS NULL OR c.on_parent_failure = 'run') AND c.parents_left - p.k <= 0
                   THEN c.run_at <= now() ELSE false END,
        finished_at = CASE WHEN p.bad IS NOT NULL AND c.on_parent_failure IS DISTINCT FROM 'run' THEN now() END,
        errors = CASE WHEN p.bad IS NOT NULL AND c.on_parent_failure IS DISTINCT FROM 'run'
                      THEN c.errors || jsonb_build_array(jsonb_build_object(
                          'attempt', c.attempts, 'at', now(), 'type', 'ParentFailed', 'parent', p.bad,
                          'message', format('parent job %s ended %s', p.bad, p.bad_state)))
                      ELSE c.errors END
    FROM unnest(p_children, p_counts, p_bads, p_bad_states) AS p(child, k, bad, bad_state)
    WHERE c.id = p.child AND c.state = 'blocked' AND p.k > 0;
END $$;

CREATE FUNCTION jobqueue_jobs_updated_workflow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ended uuid[];
    ended_states text[];
    back uuid[];
BEGIN
    -- The common case, every claim and outcome of jobs without children: one
    -- pass over the statement's own rows.
    IF NOT EXISTS (SELECT 1 FROM new_jobs WHERE has_children) THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(n.id) FILTER (WHERE n.state IN ('succeeded', 'failed', 'cancelled')
                                     AND o.state NOT IN ('succeeded', 'failed', 'cancelled')),
           array_agg(n.state) FILTER (WHERE n.state IN ('succeeded', 'failed', 'cancelled')
                                        AND o.state NOT IN ('succeeded', 'failed', 'cancelled')),
           array_agg(n.id) FILTER (WHERE o.state IN ('failed', 'cancelled')
                                     AND n.state NOT IN ('succeeded', 'failed', 'cancelled'))
    INTO ended, ended_states, back
    FROM new_jobs AS n JOIN old_jobs AS o ON o.id = n.id
    WHERE n.has_children;
    IF ended IS NOT NULL OR back IS NOT NULL THEN
        PERFORM jobqueue_release_children(ended, ended_states, back);
    END IF;
    RETURN NULL;
END $$;
-- It joins the statement's own before and after rows, by hash whatever the
-- statement that fired it turned off for itself (the outcome write and the
-- children's release turn hash joins off for their table reads).
ALTER FUNCTION jobqueue_jobs_updated_workflow()
    SET plan_cache_mode = force_generic_plan SET enable_hashjoin = on SET enable_mergejoin = on;

CREATE TRIGGER jobs_workflow_updated AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_updated_workflow();

-- Edges go with their jobs when finished jobs are pruned.
CREATE FUNCTION jobqueue_jobs_deleted_workflow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_jobs WHERE has_children OR parents_left IS NOT NULL) THEN
        DELETE FROM job_edges WHERE parent = ANY(ARRAY(SELECT id FROM old_jobs WHERE has_children));
        DELETE FROM job_edges WHERE child = ANY(ARRAY(SELECT id FROM old_jobs WHERE parents_left IS NOT NULL));
    END IF;
    RETURN NULL;
END $$;
ALTER FUNCTION jobqueue_jobs_deleted_workflow() SET plan_cache_mode = force_generic_plan;

CREATE TRIGGER jobs_workflow_deleted AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_deleted_workflow();

-- Link new children (inserted blocked, parents_left = their number of
-- parents) to their parents: p_edges is a JSON array of {"p": parent, "c":
-- child, "k": the parent's key or null}. Parents are locked first, so none
-- can end unseen between this count and the commit (a parent's end waits,
-- then its trigger sees these edges). Parents that ended already count
-- now: a child of succeeded parents only is pending at once, one of a failed
-- or cancelled parent is cancelled (unless 'run'). Returns the parent ids
-- that are no job: the caller refuses the submit.
CREATE FUNCTION jobqueue_link(p_edges json) RETURNS uuid[] LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off SET jit = off AS $$
DECLARE
    wanted uuid[];
    missing uuid[];
    children uuid[];
    counts integer[];
    bads uuid[];
    bad_states text[];
BEGIN
    SELECT array_agg(DISTINCT e.p) INTO wanted FROM json_to_recordset(p_edges) AS e(p uuid, c uuid, k text);
    UPDATE jobs SET has_children = true WHERE id = ANY(wanted);
    SELECT array_agg(w) INTO missing
    FROM unnest(wanted) AS w WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE id = w);
    IF missing IS NOT NULL THEN
        RETURN missing;
    END IF;
    INSERT INTO job_edges (parent, child, key)
    SELECT e.p, e.c, e.k FROM json_to_recordset(p_edges) AS e(p uuid, c uuid, k text)
    ON CONFLICT DO NOTHING;
    SELECT array_agg(x.child), array_agg(x.k), array_agg(x.bad), array_agg(x.bad_state)
    INTO children, counts, bads, bad_states
    FROM (
        SELECT e.c AS child,
               count(*) FILTER (WHERE p.state IN ('succeeded', 'failed', 'cancelled'))::integer AS k,
               (array_agg(p.id ORDER BY p.id) FILTER (WHERE p.state IN ('failed', 'cancelled')))[1] AS bad,
               (array_agg(p.state ORDER BY p.id) FILTER (WHERE p.state IN ('failed', 'cancelled')))[1] AS bad_state
        FROM json_to_recordset(p_edges) AS e(p uuid, c uuid, k text) JOIN jobs AS p ON p.id = e.p
        GROUP BY e.c
    ) AS x
    WHERE x.k > 0;
    IF children IS NOT NULL THEN
        PERFORM jobqueue_settle_children(children, counts, bads, bad_states);
    END IF;
    RETURN NULL;
END $$;

-- Emptying jobs empties the edges, as it does the counts.
CREATE FUNCTION jobqueue_jobs_truncated_workflow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE job_edges;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_workflow_truncated AFTER TRUNCATE ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_truncated_workflow();
