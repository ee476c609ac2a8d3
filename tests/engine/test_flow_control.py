"""Queue settings enforced in the claim, under real concurrency: drains in
separate processes, tasks that record when they start and end, a drain
killed mid-job, and claims racing for the same queues."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from jobqueue import JobSpec
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.store import claims, connection, jobs, queues
from tests.support.drains import start_drain
from tests.support.intervals import most_at_once, span_jobs, spans
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


def finish(procs: list[Any], timeout: float) -> list[dict[str, Any]]:
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    return reports


def waiting_for_lock(raw: Any, pid: int) -> bool:
    rows = raw.run("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid", pid=pid)
    return bool(rows) and rows[0][0] == "Lock"


# --- claims racing over several limited queues ----------------------------------------


def test_claims_meeting_limited_queues_in_opposite_orders_do_not_deadlock(database, db_settings, raw):
    """A claim serves queues in the order of their first jobs, which differs
    between two claims when a job lands in between. Two claims that lock two
    limited queues in opposite orders would deadlock, and PostgreSQL would
    fail one of them: both must succeed."""
    for name in ("x", "y"):
        queues.configure_queue(database, name, {"concurrency": 100})
    jobs.enqueue(database, JobSpec("noop", queue="x"))
    jobs.enqueue(database, JobSpec("noop", queue="y"))
    holder = connection.connect(db_settings)
    try:
        holder.run("BEGIN")
        holder.run("SELECT 1 FROM queues WHERE name = 'x' FOR UPDATE")  # another claim of x, in progress
        results = race_two_claims(database, db_settings, raw, holder)
    finally:
        holder.close()
    assert not any(isinstance(result, Exception) for result in results.values()), results
    claimed = sorted(row[6] for result in results.values() for row in result.rows)
    assert claimed == ["x", "y", "y"]


def race_two_claims(database: connection.Database, db_settings: Any, raw: Any, holder: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def claim(who: str, ready: threading.Event, pids: dict[str, int]) -> None:
        own = connection.Database(db_settings)
        pids[who] = own.execute("SELECT pg_backend_pid()")[0][0]
        ready.set()
        try:
            results[who] = claims.claim(own, worker=who, limit=10, grace=10.0, fits=1e9)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            results[who] = exc
        finally:
            own.close()

    pids: dict[str, int] = {}
    threads = []
    # First claim: x comes first (its job is older); it waits for x's lock.
    ready = threading.Event()
    threads.append(threading.Thread(target=claim, args=("first", ready, pids)))
    threads[-1].start()
    ready.wait(10)
    wait_until(lambda: waiting_for_lock(raw, pids["first"]), timeout=10, what="the first claim to wait for queue x")
    # Now y's first job comes before x's: the second claim meets y first.
    jobs.enqueue(database, JobSpec("noop", queue="y", priority=-1))
    ready = threading.Event()
    threads.append(threading.Thread(target=claim, args=("second", ready, pids)))
    threads[-1].start()
    ready.wait(10)
    wait_until(
        lambda: "second" in results or waiting_for_lock(raw, pids["second"]),
        timeout=10,
        what="the second claim to wait or end",
    )
    holder.run("COMMIT")
    for thread in threads:
        thread.join(30)
    return results


def test_a_rate_log_stays_short_however_many_claims_it_counts(database, raw):
    """Every claim of a rate-limited queue rewrites its log of starts: the log
    sums starts per slot of 1/1000 of the window instead of growing by one
    entry per claim, and still counts every start."""
    queues.configure_queue(database, "metered", {"rate": (1_000_000, 3600.0)})
    jobs.enqueue_many(database, [JobSpec("noop", queue="metered") for _ in range(300)])
    started = time.monotonic()
    for _ in range(300):
        assert len(claims.claim(database, worker="w", limit=1, grace=10.0, fits=1e9).rows) == 1
    took = time.monotonic() - started
    entries, counted = raw.run("SELECT cardinality(rate_at), (SELECT sum(n) FROM unnest(rate_n) AS n) FROM queues")[0]
    assert entries <= 2 + took / 3.6  # one per 3.6 s slot the claims touched, not one per claim
    assert counted == 300


# --- a concurrency limit across drains ---------------------------------------------------


def test_eight_drains_never_run_more_than_two_jobs_of_a_queue_limited_to_two(database, server_env, raw, tmp_path):
    """8 drain processes, 8 jobs at once each: the limited queue never has more
    than 2 jobs in progress (as the jobs themselves saw it), while another
    queue drained by the same processes at the same time runs far wider."""
    queues.configure_queue(database, "narrow", {"concurrency": 2})
    log = tmp_path / "spans"
    jobs.enqueue_many(database, span_jobs(log, "narrow", 24, 0.2) + span_jobs(log, "wide", 48, 0.2))
    procs = [start_drain(server_env, concurrency=8) for _ in range(8)]
    reports = finish(procs, timeout=240)

    runs = spans(log)
    narrow = [run for tag, run in runs.items() if tag.startswith("narrow-")]
    wide = [run for tag, run in runs.items() if tag.startswith("wide-")]
    assert len(narrow) == 24 and len(wide) == 48
    assert all("end" in run for run in narrow + wide)
    assert most_at_once(narrow) == 2  # never more, and the limit's room is used
    assert most_at_once(wide) > 2
    assert raw.run("SELECT state, attempts, count(*) FROM jobs GROUP BY state, attempts") == [["succeeded", 1, 72]]
    assert sum(report["processed"] for report in reports) == 72


# --- a rate limit across drains ----------------------------------------------------------


def test_a_rate_of_20_per_10_seconds_holds_over_a_minute_of_backlog(database, server_env, raw, tmp_path):
    """Three drains with a budget longer than the backlog lasts: they wait for
    each window to open (or stop when others hold it), and the starts the jobs
    record come to 20 per 10 s over the minute, within 10%."""
    queues.configure_queue(database, "metered", {"rate": (20, 10.0)})
    log = tmp_path / "spans"
    # Short timeouts: a drain claims a job only while its timeout fits the budget left.
    jobs.enqueue_many(database, span_jobs(log, "metered", 160, 0.05, timeout_seconds=2))
    procs = [start_drain(server_env, concurrency=4, budget=90) for _ in range(3)]
    reports = finish(procs, timeout=150)

    starts = sorted(run["start"] for run in spans(log).values())
    assert len(starts) == 160, reports  # the drains kept going across the windows
    # With a backlog the starts come in bursts as each window opens; a minute
    # whose ends fall between bursts sees six of them.
    in_a_minute = [moment for moment in starts if starts[0] + 5 <= moment < starts[0] + 65]
    assert 108 <= len(in_a_minute) <= 132, len(in_a_minute)
    # As the database saw it: never more than 20 starts within any 9 s (a
    # second of slack for claim time against start time).
    claimed = sorted(row[0] for row in raw.run("SELECT extract(epoch FROM started_at)::float8 FROM jobs"))
    most = max(sum(1 for t in claimed if end - 9 < t <= end) for end in claimed)
    assert most <= 20, most
    assert raw.run("SELECT state, count(*) FROM jobs GROUP BY state") == [["succeeded", 160]]


# --- pausing -----------------------------------------------------------------------------


def test_a_paused_queue_keeps_its_submits_and_runs_nothing_until_resumed(database, server_env, raw, tmp_path):
    log = tmp_path / "spans"
    queues.configure_queue(database, "held", {"paused": True})
    jobs.enqueue_many(database, span_jobs(log, "held", 5, 0.0))

    report = finish([start_drain(server_env)], timeout=60)[0]
    assert (report["processed"], report["stopped"]) == (0, "idle")
    assert raw.run("SELECT state, attempts, count(*) FROM jobs GROUP BY state, attempts") == [["pending", 0, 5]]

    jobs.enqueue_many(database, span_jobs(log, "open", 2, 0.0))  # other queues go on meanwhile
    report = finish([start_drain(server_env)], timeout=60)[0]
    assert report["processed"] == 2
    assert sorted(spans(log)) == ["open-0", "open-1"]

    queues.configure_queue(database, "held", {"paused": False})
    report = finish([start_drain(server_env)], timeout=60)[0]
    assert report["processed"] == 5
    assert len(spans(log)) == 7
    assert raw.run("SELECT state, count(*) FROM jobs GROUP BY state") == [["succeeded", 7]]


# --- a drain that dies holding a limited queue's capacity --------------------------------


def test_a_crashed_drains_jobs_hold_the_limit_until_rescued(database, server_env, raw, tmp_path):
    """A drain killed with SIGKILL while running both jobs a queue may run at
    once: until their leases expire and a rescue returns them, the queue's
    other jobs wait; after it, they run."""
    queues.configure_queue(database, "narrow", {"concurrency": 2})
    log = tmp_path / "spans"
    stuck = [
        JobSpec("tests.interval", {"path": str(log), "tag": f"stuck-{i}", "seconds": 60}, queue="narrow", priority=-1,
                timeout_seconds=2, max_attempts=1)
        for i in range(2)
    ]  # fmt: skip
    jobs.enqueue_many(database, stuck + span_jobs(log, "narrow", 3, 0.05))
    doomed = start_drain(server_env, grace=0.5)
    try:
        wait_until(lambda: len(spans(log)) == 2, timeout=60, what="the drain to start both jobs the limit allows")
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.communicate(timeout=30)
    settings = Settings(lease_grace_seconds=0.5, drain_safety_ms=0)

    report = drain.run(database, settings=settings)  # their leases still run: they count
    assert (report.rescued, report.processed, report.stopped) == (0, 0, "limited")
    assert len(spans(log)) == 2

    wait_until(
        lambda: raw.run("SELECT bool_and(lease_expires_at < now()) FROM jobs WHERE state = 'running'")[0][0],
        timeout=60,
        what="the dead drain's leases to expire",
    )
    report = drain.run(database, settings=settings)
    # The two were running side by side: suspects, each then run alone (and
    # timed out alone), after the queue's other jobs.
    assert (report.rescued, report.processed, report.succeeded, report.alone) == (2, 5, 3, 2)
    runs = spans(log)
    assert all("end" in runs[f"narrow-{i}"] for i in range(3))
    lost = raw.run("SELECT state, errors -> 0 ->> 'type', errors -> -1 ->> 'type' FROM jobs WHERE priority = -1")
    assert lost == [["failed", "ProcessCrashed", "JobTimeout"]] * 2
