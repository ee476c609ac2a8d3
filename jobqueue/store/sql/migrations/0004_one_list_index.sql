-- 0004: one list index instead of two. Every job entered both list indexes
-- when it was submitted and again when it finished: an index entry each
-- time for the by-state index alone, written by every enqueue and every
-- outcome. Lists by state across queues now read jobs_queue_list_idx queue
-- by queue (see list_state in queries.sql): a probe or two per queue and at
-- most a page from each of a page's worth of queues, and nothing per job.
DROP INDEX IF EXISTS jobs_state_list_idx;
