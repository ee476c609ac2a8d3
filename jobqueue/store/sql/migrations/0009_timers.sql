-- 0009: timers. A job whose next start is later than now (a delayed submit,
-- a retry's backoff, a snooze, a sleep, a wait's timeout, a parked job) is
-- woken on time by one SQS message sent with DelaySeconds, not by the next
-- scheduled tick. This one row remembers the earliest wake armed, so a burst
-- of ten thousand delayed jobs arms a handful of messages, not ten thousand.
-- armed_at in the past means the wake armed has fired (or is firing).
CREATE TABLE jobqueue_timer (
    id       integer     PRIMARY KEY CHECK (id = 1),
    armed_at timestamptz
);
INSERT INTO jobqueue_timer (id, armed_at) VALUES (1, NULL);
