"""Jobs side by side in one drain: plain functions on threads, async tasks on
the event loop, both kinds of timeout, tasks that must run alone, and drains
that run many jobs at once across processes and crashes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from jobqueue import JobSpec
from jobqueue.config import Settings
from jobqueue.engine import drain, pace
from jobqueue.store import connection, jobs, upkeep
from tests.support.drains import start_drain

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def spans(path: Path) -> list[tuple[str, float, float]]:
    rows = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return [(value, float(start), float(end)) for value, start, end in rows]


def most_at_once(intervals: list[tuple[str, float, float]]) -> int:
    events = sorted([(start, 1) for _, start, _ in intervals] + [(end, -1) for _, _, end in intervals])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def test_plain_jobs_overlap_on_threads_up_to_the_concurrency(database, tmp_path):
    out = tmp_path / "spans"
    jobs.enqueue_many(
        database, [JobSpec("tests.span", {"path": str(out), "value": str(i), "seconds": 0.2}) for i in range(16)]
    )
    started = time.monotonic()
    report = drain.run(database, settings=Settings(concurrency=4))
    elapsed = time.monotonic() - started
    assert report.succeeded == 16
    assert most_at_once(spans(out)) == 4  # never more than the concurrency, and it is used
    assert elapsed < 16 * 0.2  # side by side, not one after another


def test_async_jobs_overlap_on_the_event_loop(database, tmp_path):
    out = tmp_path / "ran"
    jobs.enqueue_many(
        database,
        [JobSpec("tests.async_record", {"path": str(out), "value": str(i), "seconds": 0.3}) for i in range(8)],
    )
    started = time.monotonic()
    report = drain.run(database, settings=Settings(concurrency=8))
    assert report.succeeded == 8 and time.monotonic() - started < 8 * 0.3
    assert sorted(out.read_text().split(), key=int) == [str(i) for i in range(8)]


def test_a_thread_past_its_timeout_is_recorded_at_its_deadline_and_its_late_result_dropped(database, tmp_path):
    marker = tmp_path / "late"
    stuck, _ = jobs.enqueue(
        database, JobSpec("tests.hang", {"marker": str(marker), "seconds": 2.0}, timeout_seconds=0.3, max_attempts=1)
    )
    out = tmp_path / "ran"
    others = jobs.enqueue_many(
        database, [JobSpec("tests.record", {"path": str(out), "value": str(i)}) for i in range(5)]
    )
    started = time.monotonic()
    report = drain.run(database, settings=Settings(concurrency=4))
    assert time.monotonic() - started < 1.8  # it did not wait for the thread
    assert (report.failed, report.succeeded, report.abandoned) == (1, 5, 1)
    failed = jobs.get(database, stuck["id"])
    assert failed["state"] == "failed" and failed["error"]["type"] == "JobTimeout"
    wait_for(marker.exists, what="the abandoned thread to finish")
    after = jobs.get(database, stuck["id"])
    assert (after["state"], after["result"], len(after["errors"])) == ("failed", None, 1)
    assert all(jobs.get(database, job["id"])["state"] == "succeeded" for job in others)


def test_an_async_job_past_its_timeout_is_cancelled(database, tmp_path):
    marker = tmp_path / "cancelled"
    job, _ = jobs.enqueue(
        database, JobSpec("tests.async_hang", {"marker": str(marker)}, timeout_seconds=0.3, max_attempts=1)
    )
    started = time.monotonic()
    report = drain.run(database, settings=Settings(concurrency=4))
    assert report.failed == 1 and time.monotonic() - started < 3
    assert jobs.get(database, job["id"])["error"]["type"] == "JobTimeout"
    wait_for(marker.exists, what="the coroutine to see its cancellation")
    assert marker.read_text() == "cancelled"


def test_an_async_job_runs_and_times_out_in_a_drain_of_one_too(database, tmp_path):
    out, marker = tmp_path / "ran", tmp_path / "cancelled"
    ok, _ = jobs.enqueue(database, JobSpec("tests.async_record", {"path": str(out), "value": "a"}))
    slow, _ = jobs.enqueue(
        database, JobSpec("tests.async_hang", {"marker": str(marker)}, timeout_seconds=0.3, max_attempts=1)
    )
    report = drain.run(database, settings=Settings(concurrency=1))
    assert (report.succeeded, report.failed) == (1, 1)
    assert jobs.get(database, ok["id"])["result"] == "a"
    assert jobs.get(database, slow["id"])["error"]["type"] == "JobTimeout"


def test_a_task_that_asks_to_run_alone_has_nothing_beside_it(database, tmp_path):
    out = tmp_path / "spans"
    specs = [JobSpec("tests.span", {"path": str(out), "value": f"n{i}", "seconds": 0.1}) for i in range(6)]
    specs[3] = JobSpec("tests.span_alone", {"path": str(out), "value": "alone", "seconds": 0.2})
    jobs.enqueue_many(database, specs)
    report = drain.run(database, settings=Settings(concurrency=4))
    assert report.succeeded == 6
    rows = spans(out)
    alone = next(row for row in rows if row[0] == "alone")
    for value, start, end in rows:
        if value != "alone":
            assert end <= alone[1] or start >= alone[2], "a job ran beside the one that asked to run alone"
    assert most_at_once([row for row in rows if row[0] != "alone"]) > 1  # the others did overlap


def test_jobs_waiting_for_a_slot_keep_their_leases(database, db_settings, tmp_path, monkeypatch):
    """Two slots, six jobs of 0.8 s with a 1 s timeout and a tiny grace: the last
    two wait 1.6 s for a slot, past their first lease; a rescuer running all the
    while must find nothing to rescue, and every job runs once."""

    out = tmp_path / "ran"
    jobs.enqueue_many(
        database,
        [
            JobSpec("tests.span", {"path": str(out), "value": str(i), "seconds": 0.8}, timeout_seconds=1.0)
            for i in range(6)
        ],
    )
    rescued = []
    stop = False
    import threading

    def rescuer() -> None:
        own = connection.Database(db_settings)
        while not stop:
            rescued.append(upkeep.rescue(own))
            time.sleep(0.05)
        own.close()

    thread = threading.Thread(target=rescuer)
    thread.start()
    monkeypatch.setattr(pace, "_mean_job_seconds", 0.001)  # jobs believed fast: all six claimed at once
    try:
        report = drain.run(database, settings=Settings(concurrency=2, lease_grace_seconds=0.3))
    finally:
        stop = True
        thread.join()
    assert report.succeeded == 6
    assert sum(r.total for r in rescued) == 0
    assert sorted(v for v, _, _ in spans(out)) == [str(i) for i in range(6)]


def test_the_budget_hands_back_jobs_not_started_while_others_run(database, raw, tmp_path, monkeypatch):
    monkeypatch.setattr(pace, "_mean_job_seconds", 0.001)  # jobs believed fast: all six claimed at once
    out = tmp_path / "spans"
    jobs.enqueue_many(
        database,
        [
            JobSpec("tests.span", {"path": str(out), "value": str(i), "seconds": 1.0}, timeout_seconds=1.5)
            for i in range(6)
        ],
    )
    started = time.monotonic()
    report = drain.run(database, budget_seconds=3.3, settings=Settings(concurrency=2, drain_safety_ms=0))
    assert time.monotonic() - started < 3.3
    # Two waves of two fit (each start needs its 1.5 s timeout free before the last 0.5 s); the third does not.
    assert (report.succeeded, report.released, report.stopped) == (4, 2, "budget")
    assert dict(raw.run("SELECT state, max(attempts) FROM jobs GROUP BY state")) == {"succeeded": 1, "pending": 0}


def test_four_drains_of_eight_run_every_job_exactly_once_with_both_kinds_of_timeout(
    database, server_env, raw, tmp_path
):
    sync_out, async_out = tmp_path / "sync", tmp_path / "async"
    specs = []
    for i in range(150):
        specs.append(JobSpec("tests.span", {"path": str(sync_out), "value": f"s{i}", "seconds": 0.02}))
        specs.append(JobSpec("tests.async_record", {"path": str(async_out), "value": f"a{i}", "seconds": 0.02}))
    for i in range(3):
        specs.append(
            JobSpec(
                "tests.hang",
                {"marker": str(tmp_path / f"late{i}"), "seconds": 1.5},
                timeout_seconds=0.3,
                max_attempts=1,
            )
        )
        specs.append(
            JobSpec("tests.async_hang", {"marker": str(tmp_path / f"cancel{i}")}, timeout_seconds=0.3, max_attempts=1)
        )
    jobs.enqueue_many(database, specs)
    procs = [start_drain(server_env, concurrency=8) for _ in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    reports = [json.loads(out) for out, _ in outputs]
    assert sum(r["succeeded"] for r in reports) == 300 and sum(r["failed"] for r in reports) == 6
    assert sorted(v for v, _, _ in spans(sync_out)) == sorted(f"s{i}" for i in range(150))
    assert sorted(async_out.read_text().split()) == sorted(f"a{i}" for i in range(150))
    rows = raw.run("SELECT task, state, attempts, count(*) FROM jobs GROUP BY 1, 2, 3 ORDER BY 1")
    assert rows == [
        ["tests.async_hang", "failed", 1, 3],
        ["tests.async_record", "succeeded", 1, 150],
        ["tests.hang", "failed", 1, 3],
        ["tests.span", "succeeded", 1, 150],
    ]
    timeouts = raw.run("SELECT DISTINCT errors -> 0 ->> 'type' FROM jobs WHERE state = 'failed'")
    assert timeouts == [["JobTimeout"]]
    assert most_at_once(spans(sync_out)) > 8  # the drains ran side by side, each with several jobs at once


def test_a_drain_that_dies_mid_batch_with_jobs_on_threads_loses_nothing(database, server_env, raw, tmp_path):
    """A task kills its process while seven others run beside it: the jobs it
    had finished and written stay done; the ones running beside it become
    suspects and run alone, the crasher among them, which kills only its own
    drain; none is lost, and only the death alone counts against it."""
    out = tmp_path / "spans"
    specs = [
        JobSpec("tests.span", {"path": str(out), "value": str(i), "seconds": 0.3}, timeout_seconds=1.0)
        for i in range(20)
    ]
    specs.insert(10, JobSpec("tests.crash", timeout_seconds=1.0, max_attempts=1))
    jobs.enqueue_many(database, specs)

    def leases_expire() -> None:
        wait_for(
            lambda: (
                raw.run("SELECT count(*) FROM jobs WHERE state = 'running' AND lease_expires_at > now()")[0][0] == 0
            ),
            what="the dead drain's leases to expire",
        )

    exits = []
    for _ in range(4):
        proc = start_drain(server_env, grace=0.3, concurrency=8)
        _, err = proc.communicate(timeout=60)
        exits.append(proc.returncode)
        if (
            proc.returncode == 0
            and not raw.run("SELECT count(*) FROM jobs WHERE state <> 'succeeded' AND state <> 'failed'")[0][0]
        ):
            break
        assert proc.returncode in (0, 17), err
        leases_expire()
    assert exits[:2] == [17, 17] and exits[-1] == 0  # beside seven others, then alone; then the rest
    states = dict(raw.run("SELECT task, string_agg(DISTINCT state, ',') FROM jobs GROUP BY task"))
    assert states == {"tests.span": "succeeded", "tests.crash": "failed"}
    [[errors, attempts]] = raw.run("SELECT errors, attempts FROM jobs WHERE task = 'tests.crash'")
    assert [(e["type"], e["counted"]) for e in errors] == [("ProcessCrashed", False), ("ProcessCrashed", True)]
    assert attempts == 2
    ran = [v for v, _, _ in spans(out)]
    assert set(ran) == {str(i) for i in range(20)}  # every job ran
    assert max(ran.count(v) for v in ran) <= 2  # the ones beside the crash twice at most


def test_a_batch_claimed_for_fast_jobs_that_turn_out_slow_is_given_back(database, db_settings, tmp_path, monkeypatch):
    """A warm container that ran no-ops claims a big batch; once its jobs prove
    slow it keeps a few per slot and gives the rest back, so another drain takes them."""

    monkeypatch.setattr(pace, "_mean_job_seconds", 0.0001)
    monkeypatch.setattr(pace, "_task_seconds", {})
    out = tmp_path / "spans"
    jobs.enqueue_many(
        database, [JobSpec("tests.span", {"path": str(out), "value": str(i), "seconds": 0.3}) for i in range(40)]
    )
    reports = []

    def second() -> None:
        wait_for(lambda: out.exists(), what="the first drain to start")
        own = connection.Database(db_settings)
        reports.append(drain.run(own, settings=Settings(concurrency=2)))
        own.close()

    thread = threading.Thread(target=second)
    thread.start()
    first = drain.run(database, settings=Settings(concurrency=2))
    thread.join()
    assert first.processed + reports[0].processed == 40
    assert reports[0].processed >= 10  # the second drain got a fair share of what the first gave back
    assert sorted(v for v, _, _ in spans(out)) == sorted(str(i) for i in range(40))
