"""Big jobs tables, built in SQL, for bench_scale.py.

Rows are made by ``INSERT ... SELECT generate_series`` in chunks (a progress
line per chunk), never sent from Python. Ids are UUIDv7-like and made in SQL
from each row's creation time, so the primary key grows at its right edge and
sorts by age exactly as jobqueue's own ids do; the low bits carry the row's
serial number, which keeps them unique. A table built from empty has its
secondary indexes dropped first and rebuilt after (far faster than growing
them row by row), then VACUUM ANALYZE leaves it as autovacuum would.
"""

from __future__ import annotations

import time
from typing import Any

import common

CHUNK = 500_000
_serial = [1]  # the next row's serial number, unique within this process

# created_at of row g.i: t0 + (i - first) * step seconds. The id: 48 bits of
# Unix milliseconds, version 7, then the serial number (12 + 60 bits).
_ROWS = """
    SELECT g.i,
           CAST(:t0 AS timestamptz) + (g.i - CAST(:first AS bigint)) * CAST(:step AS float8) * interval '1 second'
               AS created,
           abs(CAST(hashint8(g.i) AS bigint)) % 10000 AS u,
           abs(CAST(hashint8(-g.i) AS bigint)) % 1000000 AS v
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g(i)
"""
_ID = """CAST(lpad(to_hex(CAST(floor(extract(epoch FROM r.created) * 1000) AS bigint)), 12, '0') || '7'
              || lpad(to_hex(r.i & 4095), 3, '0') || '8' || lpad(to_hex(r.i), 15, '0') AS uuid)"""
# Queue of a row: one of :queues, skewed (the first busiest) when :skew > 1.
_QUEUE = "(CAST(:queues AS text[]))[1 + floor(power(r.v / 1000000.0, :skew) * cardinality(CAST(:queues AS text[])))]"
_TASK = "(ARRAY['send_email', 'resize_image', 'sync_account', 'charge', 'noop'])[1 + r.u % 5]"

# Finished jobs: :failed and :cancelled in ten-thousandths, the rest succeeded.
_HISTORY = f"""
INSERT INTO jobs (id, queue, task, payload, state, priority, run_at, due, attempts, max_attempts, timeout_seconds,
                  result, errors, created_at, started_at, finished_at)
SELECT {_ID}, {_QUEUE}, {_TASK}, jsonb_build_object('n', r.i), f.state, 0, r.created, true,
       CASE f.state WHEN 'cancelled' THEN 0 WHEN 'failed' THEN 3 ELSE 1 END, 3, 30,
       CASE f.state WHEN 'succeeded' THEN '{{"ok": true}}'::jsonb END,
       CASE f.state WHEN 'failed' THEN jsonb_build_array(jsonb_build_object(
           'attempt', 3, 'type', 'RuntimeError', 'message', 'upstream answered 503'))
       ELSE '[]'::jsonb END,
       r.created, CASE WHEN f.state <> 'cancelled' THEN r.created + interval '1 second' END,
       r.created + interval '2 seconds'
FROM ({_ROWS}) AS r,
     LATERAL (SELECT CASE WHEN r.u < :failed THEN 'failed' WHEN r.u < :failed + :cancelled THEN 'cancelled'
                          ELSE 'succeeded' END AS state) AS f
"""  # noqa: S608 - constant fragments only; every value is a parameter

# Pending jobs due at :run_at (+ jitter) or waiting for it (due false when it is later than now).
_PENDING = f"""
INSERT INTO jobs (id, queue, task, payload, state, priority, run_at, due, created_at)
SELECT {_ID}, {_QUEUE}, CAST(:task AS text), '{{}}'::jsonb, 'pending', :priority, t.run_at, t.run_at <= now(), r.created
FROM ({_ROWS}) AS r,
     LATERAL (SELECT COALESCE(CAST(:run_at AS timestamptz), r.created) + r.v * CAST(:spread AS float8) / 1000000
                     * interval '1 second' AS run_at) AS t
"""  # noqa: S608 - constant fragments only; every value is a parameter

# Running jobs whose leases end :lease seconds from now (negative: already lost).
_RUNNING = f"""
INSERT INTO jobs (id, queue, task, payload, state, priority, run_at, due, attempts, lease_expires_at, worker_id,
                  created_at, started_at)
SELECT {_ID}, {_QUEUE}, {_TASK}, '{{}}'::jsonb, 'running', 0, r.created, true, 1,
       now() + CAST(:lease AS float8) * interval '1 second', 'bench/' || (r.i % 8), r.created, now()
FROM ({_ROWS}) AS r
"""  # noqa: S608 - constant fragments only; every value is a parameter


def _insert(conn: Any, statement: str, n: int, label: str, t0: float, span: float, **params: Any) -> None:
    """Insert n rows created evenly over [t0, t0 + span) (Unix seconds), in chunks."""
    step = span / max(n, 1)
    done = 0
    started = time.perf_counter()
    while done < n:
        k = min(CHUNK, n - done)
        first = _serial[0]
        _serial[0] += k
        conn.run(
            statement,
            first=first,
            last=first + k - 1,
            t0=_timestamp(t0 + done * step),
            step=step,
            **params,
        )
        done += k
        if n > CHUNK:
            rate = done / max(time.perf_counter() - started, 1e-9)
            common.progress(f"{label}: {done:,}/{n:,} rows ({rate:,.0f}/s)")


def _timestamp(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix)) + f".{int(unix % 1 * 1e6):06d}+00:00"


def history(conn: Any, n: int, queues: list[str], *, failed: float, cancelled: float, days: float) -> None:
    """n finished jobs created over the last ``days`` (up to an hour ago), over queues (skewed)."""
    now = time.time()
    _insert(
        conn,
        _HISTORY,
        n,
        "finished jobs",
        now - days * 86400,
        days * 86400 - 3600,
        queues=queues,
        skew=2.0,
        failed=round(failed * 10000),
        cancelled=round(cancelled * 10000),
    )


def pending(
    conn: Any,
    n: int,
    queues: list[str],
    *,
    task: str = "noop",
    priority: int = 0,
    run_at: float | None = None,
    spread: float = 0.0,
    age: float = 0.0,
    skew: float = 1.0,
    label: str = "pending jobs",
) -> None:
    """n pending jobs created over the last ``age`` seconds, due at their creation
    or at ``run_at`` (Unix seconds) plus up to ``spread`` seconds."""
    now = time.time()
    _insert(
        conn,
        _PENDING,
        n,
        label,
        now - age,
        age,
        queues=queues,
        skew=skew,
        task=task,
        priority=priority,
        run_at=None if run_at is None else _timestamp(run_at),
        spread=spread,
    )


def running(conn: Any, n: int, queues: list[str], *, lease: float) -> None:
    """n running jobs, started now, whose leases end ``lease`` seconds from now."""
    _insert(conn, _RUNNING, n, "running jobs", time.time() - 1.0, 1.0, queues=queues, skew=1.0, lease=lease)


class BulkLoad:
    """Drop jobs' secondary indexes for a load into an empty table, rebuild after.

    The definitions are read from the catalog, so whatever the migrations
    created comes back exactly as it was.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.indexes: list[tuple[str, str]] = []

    def __enter__(self) -> BulkLoad:
        self.indexes = [
            (name, definition)
            for name, definition in self.conn.run(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs' AND indexname <> 'jobs_pkey'"
            )
        ]
        for name, _ in self.indexes:
            self.conn.run(f'DROP INDEX "{name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.run("SET maintenance_work_mem = '512MB'")
        for name, definition in self.indexes:
            with common.timer() as t:
                self.conn.run(definition)
            common.progress(f"index {name} built in {t[0]:.1f}s")
        self.conn.run("RESET maintenance_work_mem")


def settle(conn: Any, label: str = "jobs") -> None:
    """VACUUM ANALYZE (visibility map set, statistics fresh: the table as
    autovacuum leaves it) and fold the count rows the load appended."""
    with common.timer() as t:
        conn.run("VACUUM ANALYZE jobs")
        conn.run("VACUUM ANALYZE job_counts")
    from jobqueue.store import queries

    conn.run(queries.query("compact_counts"))
    conn.run("VACUUM ANALYZE job_counts")
    common.progress(f"{label}: vacuumed and analyzed in {t[0]:.1f}s")
