-- 0006: starting drains on demand. Which drains run is known from their
-- session advisory locks (one per slot, freed the moment a drain's connection
-- ends, however it ends); this row remembers that a submit has asked for a
-- drain, so a burst of submits asks once.
CREATE TABLE jobqueue_wake (
    id           integer     PRIMARY KEY CHECK (id = 1),
    requested_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO jobqueue_wake (id) VALUES (1);
