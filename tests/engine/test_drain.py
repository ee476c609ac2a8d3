"""The drain: outcomes, retries, timeouts, the time budget, leases and rescue."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timezone

import pytest

from jobqueue import JobSpec, log, rules
from jobqueue.config import Settings
from jobqueue.engine import claiming, cleaner, drain, failures, pace
from jobqueue.store import claims, connection, jobs, queues, upkeep
from tests.support.aws import ROOT
from tests.support.waiting import wait_until

FAST_RETRY = Settings(retry_base_seconds=0.05, retry_max_seconds=0.1, drain_safety_ms=0)


def test_success_stores_the_result_and_times(database):
    job, _ = jobs.enqueue(database, JobSpec("echo", {"greeting": "hi"}))
    report = drain.run(database)
    assert (report.processed, report.succeeded, report.stopped) == (1, 1, "idle")
    done = jobs.get(database, job["id"])
    assert done["state"] == "succeeded" and done["result"] == {"greeting": "hi"}
    assert done["attempts"] == 1 and done["error"] is None
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]


def test_failures_retry_with_backoff_then_fail_keeping_each_error(database):
    job, _ = jobs.enqueue(database, JobSpec("fail", {"message": "boom"}, max_attempts=3))
    before = datetime.now(timezone.utc)
    report = drain.run(database, settings=Settings(retry_base_seconds=2.0))
    assert (report.retried, report.failed) == (1, 0)
    waiting = jobs.get(database, job["id"])
    delay = (datetime.fromisoformat(waiting["run_at"]) - before).total_seconds()
    assert waiting["state"] == "pending" and 1.0 <= delay <= 2.5  # first retry within seconds

    def drained_to_failure() -> dict | None:
        drain.run(database, settings=FAST_RETRY)
        current = jobs.get(database, job["id"])
        return current if current["state"] == "failed" else None

    failed = wait_until(drained_to_failure, timeout=10, what="the job to use up its attempts")
    assert failed["state"] == "failed" and failed["attempts"] == 3
    assert [e["attempt"] for e in failed["errors"]] == [1, 2, 3]
    assert failed["error"]["type"] == "RuntimeError" and failed["error"]["message"] == "boom"
    assert "Traceback" in failed["error"]["traceback"]


def test_backoff_is_exponential_jittered_and_capped():
    for attempt in range(1, 12):
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        samples = [failures.backoff(attempt, 2.0, 60.0) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 100  # jittered, not lockstep
    assert failures.backoff(10_000, 2.0, 60.0) <= 60.0


def test_permanent_error_fails_at_once(database):
    job, _ = jobs.enqueue(database, JobSpec("tests.permanent", max_attempts=5))
    report = drain.run(database)
    assert report.failed == 1 and report.retried == 0
    failed = jobs.get(database, job["id"])
    assert failed["state"] == "failed" and failed["attempts"] == 1 and failed["error"]["type"] == "Permanent"


def test_result_that_is_not_json_fails_without_retry(database):
    job, _ = jobs.enqueue(database, JobSpec("tests.unserialisable"))
    drain.run(database)
    assert jobs.get(database, job["id"])["state"] == "failed"


def test_unknown_task_at_run_time_is_a_retryable_failure(database, raw):
    job, _ = jobs.enqueue(database, JobSpec("echo"))
    raw.run("UPDATE jobs SET task = 'gone.from.this.deploy' WHERE id = CAST(:id AS uuid)", id=job["id"])
    drain.run(database)
    after = jobs.get(database, job["id"])
    assert after["state"] == "pending" and after["error"]["type"] == "UnknownTask"


def test_timeout_interrupts_the_task(database):
    job, _ = jobs.enqueue(database, JobSpec("sleep", {"seconds": 5}, timeout_seconds=0.3, max_attempts=1))
    started = time.monotonic()
    drain.run(database)
    assert time.monotonic() - started < 2
    failed = jobs.get(database, job["id"])
    assert failed["state"] == "failed" and failed["error"]["type"] == "JobTimeout"


def test_timeout_cannot_be_swallowed_by_a_broad_except(database):
    job, _ = jobs.enqueue(database, JobSpec("tests.swallow", {"seconds": 3}, timeout_seconds=0.3))
    drain.run(database)
    after = jobs.get(database, job["id"])
    assert after["result"] is None and after["error"]["type"] == "JobTimeout"


def test_timeout_is_enforced_off_the_main_thread_too(database):
    job, _ = jobs.enqueue(database, JobSpec("sleep", {"seconds": 5}, timeout_seconds=0.3, max_attempts=1))
    reports = []
    thread = threading.Thread(target=lambda: reports.append(drain.run(database)))
    started = time.monotonic()
    thread.start()
    thread.join(10)
    assert time.monotonic() - started < 2 and reports[0].failed == 1
    assert jobs.get(database, job["id"])["error"]["type"] == "JobTimeout"


def test_budget_stops_claiming_and_gives_back_unstarted_jobs(database, raw, monkeypatch):
    monkeypatch.setattr(pace, "_mean_job_seconds", 0.001)  # jobs believed fast: all five claimed at once
    for _ in range(5):
        jobs.enqueue(database, JobSpec("sleep", {"seconds": 1}, timeout_seconds=1.5))
    started = time.monotonic()
    one_at_a_time = Settings(drain_safety_ms=0, concurrency=1)
    report = drain.run(database, budget_seconds=3.6, settings=one_at_a_time, batch_size=10)
    elapsed = time.monotonic() - started
    assert report.stopped == "budget" and elapsed < 3.6
    assert report.succeeded == 2 and report.released == 3
    states = dict(raw.run("SELECT state, count(*) FROM jobs GROUP BY state"))
    assert states == {"succeeded": 2, "pending": 3}
    # Given-back jobs were never started, so the attempt does not count.
    assert raw.run("SELECT max(attempts) FROM jobs WHERE state = 'pending'")[0][0] == 0


def test_a_job_longer_than_what_is_left_waits_for_a_fresh_drain(database, raw):
    job, _ = jobs.enqueue(database, JobSpec("echo", timeout_seconds=20))
    later, _ = jobs.enqueue(database, JobSpec("echo", priority=5))
    report = drain.run(database, budget_seconds=10, cap_seconds=60, settings=Settings(drain_safety_ms=0))
    # Strict order within a queue: the drain does not skip ahead of the job it cannot fit.
    assert (report.processed, report.unfit, report.stopped) == (0, 0, "budget")
    assert jobs.get(database, job["id"])["attempts"] == 0 and jobs.get(database, job["id"])["errors"] == []
    report = drain.run(database, budget_seconds=60, cap_seconds=60)
    assert report.succeeded == 2
    assert jobs.get(database, later["id"])["state"] == "succeeded"


def test_a_job_no_drain_can_fit_is_set_aside_and_reported_once(database, raw, capsys, monkeypatch):
    monkeypatch.setattr(log, "_threshold", log.LEVELS["WARNING"])
    job, _ = jobs.enqueue(database, JobSpec("echo", timeout_seconds=120))
    behind, _ = jobs.enqueue(database, JobSpec("echo", priority=5, timeout_seconds=5))
    report = drain.run(database, budget_seconds=10, cap_seconds=10, settings=Settings(drain_safety_ms=0))
    # It no longer blocks its queue: the job behind it runs.
    assert (report.unfit, report.succeeded, report.stopped) == (1, 1, "idle")
    assert jobs.get(database, behind["id"])["state"] == "succeeded"
    parked = jobs.get(database, job["id"])
    assert parked["state"] == "pending" and parked["attempts"] == 0
    assert parked["error"]["type"] == "TimeoutExceedsBudget" and "120" in parked["error"]["message"]
    wait = datetime.fromisoformat(parked["run_at"]) - datetime.now(timezone.utc)
    assert 500 < wait.total_seconds() <= claiming.PARK_SECONDS
    assert capsys.readouterr().err.count('"event":"jobs_exceed_budget"') == 1
    assert drain.run(database, budget_seconds=10, cap_seconds=10).unfit == 0  # said once, not every tick
    assert capsys.readouterr().err.count('"event":"jobs_exceed_budget"') == 0
    # When its time comes again and the function's timeout has been raised, it runs; its error history
    # keeps one entry for the wait, however many times it was set aside.
    raw.run("UPDATE jobs SET run_at = now() - interval '1 second' WHERE id = CAST(:id AS uuid)", id=job["id"])
    assert drain.run(database, budget_seconds=200, cap_seconds=200).succeeded == 1
    done = jobs.get(database, job["id"])
    assert done["state"] == "succeeded" and [e["type"] for e in done["errors"]] == ["TimeoutExceedsBudget"]


def test_max_jobs_and_queue_filters(database):
    for _ in range(5):
        jobs.enqueue(database, JobSpec("noop", queue="mail"))
    jobs.enqueue(database, JobSpec("noop", queue="other"))
    report = drain.run(database, queues=["mail"], max_jobs=3)
    assert (report.processed, report.stopped) == (3, "max_jobs")
    report = drain.run(database, queues=["mail"])
    assert report.processed == 2
    assert queues.stats(database)["queues"]["other"]["counts"]["pending"] == 1


def test_slow_batches_renew_their_leases(database, db_settings, raw):
    """Without renewal the third job's lease would lapse while it waits its turn."""
    for _ in range(3):
        jobs.enqueue(database, JobSpec("sleep", {"seconds": 0.8}, timeout_seconds=1.0))
    stop = threading.Event()
    rescued = []

    def rescuer() -> None:
        own = connection.Database(db_settings)
        while not stop.is_set():
            rescued.append(upkeep.rescue(own))
            time.sleep(0.05)
        own.close()

    thread = threading.Thread(target=rescuer)
    thread.start()
    report = drain.run(database, settings=Settings(lease_grace_seconds=0.3), batch_size=3)
    stop.set()
    thread.join()
    assert report.succeeded == 3
    assert sum(r.total for r in rescued) == 0
    assert raw.run("SELECT max(attempts) FROM jobs")[0][0] == 1


def test_a_late_write_from_a_lost_lease_changes_nothing(database, raw):
    """River #1302: the first attempt's outcome arrives after its job was
    rescued and re-claimed; it must not overwrite the second attempt."""
    job, _ = jobs.enqueue(database, JobSpec("echo"))
    first = claims.claim(database, worker="A", limit=10, grace=0, fits=60).rows
    claims.record(database, worker="A", batch=None, slots=[first[0][0]])  # A started it, alone
    raw.run("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")
    assert upkeep.rescue(database) == upkeep.Rescued(crashed=1)
    second = claims.claim_alone(database, worker="B", grace=0, fits=60).rows
    assert (first[0][3], second[0][3]) == (1, 2)
    claims.complete(database, worker="A", ids=[first[0][0]], attempts=[1], results=['"stale"'])
    claims.fail(database, worker="A", ids=[first[0][0]], attempts=[1], finals=[True], delays=[0], errors=['{"x":1}'])
    still = jobs.get(database, job["id"])
    assert still["state"] == "running" and still["result"] is None and len(still["errors"]) == 1
    claims.complete(database, worker="B", ids=[second[0][0]], attempts=[2], results=['"fresh"'])
    claims.complete(database, worker="A", ids=[first[0][0]], attempts=[1], results=['"stale"'])
    done = jobs.get(database, job["id"])
    assert done["state"] == "succeeded" and done["result"] == "fresh"


def test_rescue_fails_jobs_that_have_no_attempts_left(database, raw):
    job, _ = jobs.enqueue(database, JobSpec("echo", max_attempts=1))
    claimed = claims.claim(database, worker="A", limit=1, grace=0, fits=60).rows
    claims.record(database, worker="A", batch=None, slots=[claimed[0][0]])
    raw.run("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")
    report = drain.run(database)
    assert report.rescued == 1
    lost = jobs.get(database, job["id"])
    assert lost["state"] == "failed" and lost["error"]["type"] == "ProcessCrashed"


def test_an_idle_drain_returns_at_once(database):
    started = time.monotonic()
    report = drain.run(database, budget_seconds=60)
    assert report.stopped == "idle" and time.monotonic() - started < 1


def test_worker_id_is_set_exactly_while_running(database, raw):
    jobs.enqueue(database, JobSpec("echo"))
    with pytest.raises(Exception, match="jobs_worker_iff_running"):
        raw.run("UPDATE jobs SET worker_id = 'x'")


def test_batches_shrink_for_slow_jobs_so_other_workers_share_them(database, db_settings, monkeypatch):
    monkeypatch.setattr(pace, "_mean_job_seconds", None)
    monkeypatch.setattr(pace, "_task_seconds", {})
    for _ in range(50):
        pace.observe("noop", 0.0001)
    assert pace.batch_limit(500) == 500  # fast jobs: the whole ceiling
    assert pace.batch_limit(500, slots=8) == 500
    for _ in range(50):
        pace.observe("sleep", 2.0)
    assert pace.batch_limit(500) == 1  # slow jobs: one at a time
    assert pace.batch_limit(500, slots=8) == 1  # still a fraction of a second of work per slot
    for _ in range(200):
        pace.observe("sleep", 0.1)
    assert pace.batch_limit(500, slots=8) == 20  # I/O-bound jobs: enough for every slot
    for _ in range(6):
        jobs.enqueue(database, JobSpec("sleep", {"seconds": 0.3}))
    reports = []

    def one_drain() -> None:
        own = connection.Database(db_settings)
        reports.append(drain.run(own, settings=Settings(concurrency=1)))
        own.close()

    threads = [threading.Thread(target=one_drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.processed for r in reports) == 6
    assert all(r.processed >= 2 for r in reports)


def test_unstorable_results_and_errors_fail_one_job_not_the_batch(database):
    bad, _ = jobs.enqueue(database, JobSpec("tests.nul_result"))
    noisy, _ = jobs.enqueue(database, JobSpec("tests.nul_error", max_attempts=1))
    good, _ = jobs.enqueue(database, JobSpec("echo", {"ok": True}))
    report = drain.run(database, batch_size=10)
    assert (report.succeeded, report.failed) == (1, 2)
    assert jobs.get(database, good["id"])["result"] == {"ok": True}
    assert jobs.get(database, bad["id"])["error"]["type"] == "TypeError"
    assert "bad \ufffd byte" in jobs.get(database, noisy["id"])["error"]["message"]


def test_an_idle_drain_prunes_in_batches_until_done(database, raw, monkeypatch):
    jobs.enqueue_many(database, [JobSpec("echo") for _ in range(7)])
    drain.run(database)
    raw.run("UPDATE jobs SET finished_at = now() - interval '30 days'")
    monkeypatch.setattr(cleaner, "PRUNE_BATCH", 2)
    monkeypatch.setattr(cleaner, "_last_prune", 0.0)
    report = drain.run(database, budget_seconds=30)
    assert (report.stopped, report.pruned) == ("idle", 7)
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 0
    assert drain.run(database).pruned == 0  # not again within the interval


def test_a_job_waiting_behind_a_slower_one_keeps_its_lease(database, db_settings, raw, tmp_path):
    """One batch, mixed timeouts: the short job waits while the long one runs;
    a second drain meanwhile must not rescue it, and it runs exactly once."""
    out = tmp_path / "ran"
    slow, _ = jobs.enqueue(database, JobSpec("sleep", {"seconds": 2.0}, timeout_seconds=4))
    fast, _ = jobs.enqueue(
        database, JobSpec("tests.record", {"path": str(out), "value": "fast"}, timeout_seconds=0.3, max_attempts=1)
    )
    others = []

    def second_drain() -> None:
        own = connection.Database(db_settings)
        # Past the fast job's first lease (timeout 0.3 + grace 0.3 from its claim),
        # by the database's clock, while the slow job ahead of it still runs.
        wait_until(
            lambda: own.execute(
                "SELECT now() > started_at + interval '0.65 seconds' FROM jobs WHERE id = :id", id=fast["id"]
            )[0][0],
            what="the fast job's first lease to pass",
        )
        running = own.execute("SELECT state FROM jobs WHERE id = :id", id=slow["id"])[0][0]
        others.append((running, drain.run(own, settings=Settings(lease_grace_seconds=0.3))))
        own.close()

    thread = threading.Thread(target=second_drain)
    thread.start()
    drain.run(database, settings=Settings(lease_grace_seconds=0.3), batch_size=10)
    thread.join()
    assert others[0][0] == "running"  # the second drain came while the fast job was waiting
    assert others[0][1].rescued == 0
    done = jobs.get(database, fast["id"])
    assert (done["state"], done["attempts"], done["errors"]) == ("succeeded", 1, [])
    assert out.read_text().split() == ["fast"]
    assert jobs.get(database, slow["id"])["state"] == "succeeded"


def test_a_task_calling_sys_exit_fails_alone(database, tmp_path):
    out = tmp_path / "ran"
    bad, _ = jobs.enqueue(database, JobSpec("tests.exit", max_attempts=1))
    mate, _ = jobs.enqueue(database, JobSpec("tests.record", {"path": str(out), "value": "mate"}, max_attempts=1))
    report = drain.run(database, batch_size=10)
    assert (report.failed, report.succeeded) == (1, 1)
    assert jobs.get(database, bad["id"])["error"]["type"] == "SystemExit"
    assert jobs.get(database, mate["id"])["state"] == "succeeded"


def test_an_interrupted_drain_gives_back_what_it_had_not_started(database, raw):
    jobs.enqueue(database, JobSpec("tests.interrupt"))
    waiting, _ = jobs.enqueue(database, JobSpec("echo", max_attempts=1))
    with pytest.raises(KeyboardInterrupt):
        drain.run(database, batch_size=10, settings=Settings(concurrency=1))
    after = jobs.get(database, waiting["id"])
    assert (after["state"], after["attempts"]) == ("pending", 0)
    assert drain.run(database).succeeded == 1


def test_a_claim_whose_answer_is_lost_is_read_back_not_resent(database, raw, monkeypatch):
    from pg8000.exceptions import InterfaceError

    jobs.enqueue_many(database, [JobSpec("echo", {"i": i}, max_attempts=1) for i in range(4)])
    real = connection.Database._execute
    lost = []

    def execute(self, name, params):
        rows = real(self, name, params)
        if name == "claim" and not lost:
            lost.append(name)
            raise InterfaceError("network error")  # committed, but the answer never arrived
        return rows

    monkeypatch.setattr(connection.Database, "_execute", execute)
    report = drain.run(database, batch_size=2)
    assert lost and report.succeeded == 4
    assert raw.run("SELECT state, attempts, count(*) FROM jobs GROUP BY 1, 2") == [["succeeded", 1, 4]]


def test_stored_tracebacks_name_files_relative_to_their_import_root(database):
    """The API returns tracebacks: they show where the code is in the package
    (jobqueue/engine/starting.py), never where the server keeps it."""
    job, _ = jobs.enqueue(database, JobSpec("fail", {"message": "boom"}, max_attempts=1))
    drain.run(database)
    text = jobs.get(database, job["id"])["error"]["traceback"]
    assert 'File "jobqueue/engine/starting.py"' in text and 'File "jobqueue/tasks/builtin.py"' in text, text
    assert str(ROOT) not in text
    assert re.search(r'File "/', text) is None, text


# --- timeouts that fit the function (issue 16) ------------------------------------------


def test_a_job_that_names_no_timeout_runs_on_a_function_shorter_than_the_default(database, raw):
    """On a 30 s function (28 s budget), a job with no timeout gets the budget,
    not the 30 s default that no drain could ever give, and is not set aside."""
    job, _ = jobs.enqueue(database, JobSpec("echo"))
    assert jobs.get(database, job["id"])["timeout_seconds"] is None
    report = drain.run(database, budget_seconds=30, cap_seconds=30, settings=Settings(drain_safety_ms=2000))
    assert (report.succeeded, report.unfit) == (1, 0)
    assert jobs.get(database, job["id"])["errors"] == []  # never set aside


def test_a_job_with_no_timeout_is_stopped_at_the_budget_it_was_given(database, raw):
    """The budget is its timeout: a job that names none and runs longer than a
    short function allows is stopped there and retried, not left to overrun."""
    job, _ = jobs.enqueue(database, JobSpec("sleep", {"seconds": 30}, max_attempts=1))
    report = drain.run(database, budget_seconds=4.5, cap_seconds=4.5, settings=Settings(drain_safety_ms=2000))
    done = jobs.get(database, job["id"])
    assert report.failed == 1 and done["state"] == "failed" and done["error"]["type"] == "JobTimeout"


def test_on_a_long_function_a_job_with_no_timeout_gets_the_default(database, raw):
    job, _ = jobs.enqueue(database, JobSpec("sleep", {"seconds": 60}, max_attempts=1))
    claim = claims.claim(database, worker="w-default", limit=1, grace=10, fits=800, cap=880)
    assert [row[5] for row in claim.rows] == [rules.DEFAULT_TIMEOUT]
    claims.release(database, worker="w-default", ids=[job["id"]], attempts=[1])


def test_a_job_that_names_its_timeout_keeps_it_whatever_the_function(database, raw):
    """An explicit timeout is a promise the drain keeps or sets aside with its
    reason; it is never cut to fit."""
    job, _ = jobs.enqueue(database, JobSpec("echo", timeout_seconds=29))
    report = drain.run(database, budget_seconds=30, cap_seconds=30, settings=Settings(drain_safety_ms=2000))
    assert report.unfit == 1
    assert jobs.get(database, job["id"])["error"]["type"] == "TimeoutExceedsBudget"


def test_the_default_in_sql_is_the_default_in_python(raw):
    assert raw.run("SELECT jobqueue_timeout(NULL, NULL, 'Infinity')") == [[rules.DEFAULT_TIMEOUT]]
    assert raw.run("SELECT jobqueue_timeout(NULL, 880, 29.0)") == [[28.5]]  # late in a long drain: a little less
    assert raw.run("SELECT jobqueue_timeout(NULL, 27.5, 27.0)") == [[26.5]]  # a short function: its budget
    assert raw.run("SELECT jobqueue_timeout(NULL, 27.5, 20.0)") == [[26.0]]  # more than is left: not this drain
    assert raw.run("SELECT jobqueue_timeout(NULL, 0.2, 0.1)") == [[1.0]]
    assert raw.run("SELECT jobqueue_timeout(12, 5, 5)") == [[12.0]]
