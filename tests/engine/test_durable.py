"""Durable jobs: steps checkpointed once, sleeps and waits that hold no drain,
signals kept until taken, progress written at most once a second, cancels
that reach running jobs, and snoozes that cost no attempt."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from jobqueue import JobSpec
from jobqueue.actions import signals
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.errors import InvalidTransition
from jobqueue.store import connection, jobs
from tests.support.drains import start_drain
from tests.support.waiting import wait_until

FAST = Settings(concurrency=4, drain_safety_ms=0)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def drain_until(database: Any, job_id: str, states: set[str], timeout: float = 30.0, **options: Any) -> dict:
    """Drain again and again until the job reaches one of ``states``."""

    def reached() -> dict | None:
        drain.run(database, settings=options.pop("settings", FAST), budget_seconds=None)
        job = jobs.get(database, job_id)
        return job if job["state"] in states else None

    return wait_until(reached, timeout=timeout, what=f"job {job_id} to be {states}")


def test_checkpointed_steps_run_once_when_the_process_dies_between_them(database, raw, server_env, tmp_path):
    """A drain process dies (os._exit) after two steps. The job runs again and
    each checkpointed step's side effect, read from the log the steps write,
    happened exactly once; the step that had not run runs once."""
    log, marker = tmp_path / "effects.log", tmp_path / "crashed"
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_steps", {"path": str(log), "crash_marker": str(marker)}))
    process = start_drain(server_env, grace=0.5)
    assert process.wait(timeout=60) == 17 and marker.exists(), process.communicate()
    assert lines(log) == ["a", "b"]
    raw.run("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'")
    done = drain_until(database, job["id"], {"succeeded"})
    assert done["result"] == ["a", "b", "c"]
    assert lines(log) == ["a", "b", "c"]  # a and b once each, though the job ran twice
    assert [step["name"] for step in done["steps"]] == ["a", "b", "c"]
    assert all("r" not in step for step in done["steps"])  # the read shows names and times, not results


def test_a_sleep_holds_no_drain_and_the_job_wakes_when_it_is_due(database, raw, tmp_path):
    log = tmp_path / "woke.log"
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_sleeps", {"seconds": 0.5, "path": str(log)}))
    report = drain.run(database, settings=FAST, budget_seconds=None)
    assert (report.suspended, report.stopped) == (1, "idle")  # the drain returned at once, holding nothing
    waiting = jobs.get(database, job["id"])
    assert waiting["state"] == "waiting" and waiting["attempts"] == 0
    assert set(waiting["waiting_for"]) == {"sleep_until"}
    assert raw.run("SELECT due, worker_id FROM jobs WHERE id = CAST(:id AS uuid)", id=job["id"]) == [[False, None]]
    done = drain_until(database, job["id"], {"succeeded"})
    assert done["result"] == 1 and lines(log) == ["woke 0"] and done["attempts"] == 1
    assert done["waiting_for"] is None


def test_sleeps_and_snoozes_never_use_an_attempt(database, tmp_path):
    log = tmp_path / "runs.log"
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_snooze", {"path": str(log), "sleeps": 3, "snoozes": 5}))
    done = drain_until(database, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded" and done["max_attempts"] == 1
    assert done["result"] == 5 and len(lines(log)) == 6
    assert done["errors"] == []


def test_a_signal_resumes_a_waiting_job_with_its_value(database):
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_wait", {"name": "approved"}))
    assert drain.run(database, settings=FAST, budget_seconds=None).suspended == 1
    waiting = jobs.get(database, job["id"])
    assert waiting["state"] == "waiting"
    assert waiting["waiting_for"] == {"signal": "approved", "timeout_at": None}
    body = signals.signal(database, job["id"], "approved", {"by": "ana"})
    assert body["job"]["state"] == "pending"  # due now
    done = drain_until(database, job["id"], {"succeeded"})
    assert done["result"] == {"got": {"by": "ana"}}


def test_a_signal_sent_before_the_wait_is_kept_and_taken_by_it(database, raw):
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_wait", {"name": "early"}))
    assert signals.signal(database, job["id"], "early", [1, 2])["job"]["state"] == "pending"
    done = drain_until(database, job["id"], {"succeeded"})
    assert done["result"] == {"got": [1, 2]}
    assert raw.run("SELECT signals FROM jobs WHERE id = CAST(:id AS uuid)", id=job["id"]) == [[{}]]  # taken once


def test_a_wait_that_times_out_raises_wait_timeout_in_the_task(database):
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_wait", {"name": "never", "timeout": 0.3}))
    assert drain.run(database, settings=FAST, budget_seconds=None).suspended == 1
    assert jobs.get(database, job["id"])["waiting_for"]["timeout_at"] is not None
    done = drain_until(database, job["id"], {"succeeded"})
    assert "never" in done["result"]["timed_out"]


def test_signals_to_a_finished_job_are_refused(database):
    job, _ = jobs.enqueue(database, JobSpec("echo"))
    drain.run(database, settings=FAST, budget_seconds=None)
    with pytest.raises(InvalidTransition) as refused:
        signals.signal(database, job["id"], "late", 1)
    assert refused.value.state == "succeeded"


def test_a_signal_value_over_the_limit_is_refused_whole(database, raw):
    from jobqueue.errors import ValidationError

    job, _ = jobs.enqueue(database, JobSpec("tests.durable_wait"))
    with pytest.raises(ValidationError) as refused:
        signals.signal(database, job["id"], "go", "x" * 300_000)
    assert refused.value.field == "value" and "not truncated" in refused.value.message
    assert raw.run("SELECT signals FROM jobs WHERE id = CAST(:id AS uuid)", id=job["id"]) == [[None]]


def test_a_step_name_used_twice_fails_the_job_naming_it(database):
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_twice"))
    done = drain_until(database, job["id"], {"failed"})
    assert done["error"]["type"] == "DurableError" and "'same'" in done["error"]["message"]
    assert done["attempts"] == 1  # the same code would do the same again: not retried


def test_a_step_result_over_the_limit_is_refused_not_truncated(database):
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_big_step", {"size": 300_000}))
    done = drain_until(database, job["id"], {"failed"})
    assert done["error"]["type"] == "DurableError" and "never truncated" in done["error"]["message"]


def test_progress_in_a_tight_loop_writes_about_once_a_second_and_the_last_value(database, raw):
    """1,000 progress calls over 3 s: a handful of writes, counted from the
    row's own versions (xmin changes once per write), and the last value kept."""
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_progress", {"times": 1000, "seconds": 3.0}))
    seen: set[str] = set()
    stop = time.monotonic() + 60

    def sample() -> str:
        return raw.run("SELECT CAST(xmin AS text), state FROM jobs WHERE id = CAST(:id AS uuid)", id=job["id"])[0]

    process_report = {}

    def run() -> None:
        process_report["report"] = drain.run(database, settings=FAST, budget_seconds=None)

    import threading

    worker = threading.Thread(target=run)
    worker.start()
    while worker.is_alive() and time.monotonic() < stop:
        xmin, state = sample()
        if state == "running":
            seen.add(xmin)
        time.sleep(0.005)
    worker.join()
    done = jobs.get(database, job["id"])
    assert done["state"] == "succeeded"
    assert done["progress"]["value"] == 1.0 and done["progress"]["message"] == "1000 of 1000"
    assert 2 <= len(seen) <= 6, seen  # the claim's version, then about one per second of the 3 s


def test_async_durable_tasks_await_the_same_steps_and_sleeps(database, tmp_path):
    log = tmp_path / "async.log"
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_async", {"path": str(log)}))
    assert drain.run(database, settings=FAST, budget_seconds=None).suspended == 1
    done = drain_until(database, job["id"], {"succeeded"})
    assert done["result"] == "first+second" and lines(log) == ["first", "second"]


# --- cancel -------------------------------------------------------------------------------


def _run_in_background(database: Any, settings: Settings = FAST, budget: float | None = None) -> Any:
    import threading

    box: dict[str, Any] = {}
    database = connection.Database(database.settings)  # its own connection: the test reads on the other
    worker = threading.Thread(target=lambda: box.update(report=drain.run(database, settings=settings,
                                                                         budget_seconds=budget)))  # fmt: skip
    worker.start()
    return worker, box


def _cancel_when_running(database: Any, job_id: str) -> float:
    wait_until(lambda: jobs.get(database, job_id)["state"] == "running", timeout=30, what="the job to start")
    time.sleep(0.2)  # let it get going: a cancel must reach a job mid-run
    body = jobs.cancel(database, job_id)
    assert body["state"] == "running" and body["cancel_requested"] is True
    return time.monotonic()


@pytest.mark.parametrize(
    ("task", "payload_key"),
    [("tests.durable_cancellable", "path"), ("tests.async_hang", "marker"), ("tests.hang", "marker")],
)
def test_a_cancel_reaches_a_running_job_within_two_seconds(database, tmp_path, task, payload_key):
    marker = tmp_path / "marker"
    payload = {payload_key: str(marker), "seconds": 4.0}
    job, _ = jobs.enqueue(database, JobSpec(task, payload, timeout_seconds=30))
    worker, box = _run_in_background(database)
    asked = _cancel_when_running(database, job["id"])
    wait_until(lambda: jobs.get(database, job["id"])["state"] == "cancelled", timeout=10, what="the cancel")
    assert time.monotonic() - asked < 2.0
    worker.join()
    done = jobs.get(database, job["id"])
    assert done["state"] == "cancelled" and done["result"] is None and done["finished_at"] is not None
    assert done["error"]["type"] == "Cancelled"
    if task == "tests.async_hang":
        wait_until(lambda: marker.exists(), timeout=5, what="the coroutine to see CancelledError")
        assert marker.read_text() == "cancelled"
    if task == "tests.hang":  # its late result comes and is dropped
        wait_until(lambda: marker.exists(), timeout=10, what="the late result")
        assert jobs.get(database, job["id"])["state"] == "cancelled"
    if task == "tests.durable_cancellable":
        time.sleep(0.3)
        assert not marker.exists()  # the next step raised Cancelled: it never finished


def test_a_cancel_of_a_waiting_job_is_immediate(database):
    job, _ = jobs.enqueue(database, JobSpec("tests.durable_wait", {"name": "never"}))
    drain.run(database, settings=FAST, budget_seconds=None)
    cancelled = jobs.cancel(database, job["id"])
    assert cancelled["state"] == "cancelled" and cancelled["waiting_for"] is None
    with pytest.raises(InvalidTransition):
        signals.signal(database, job["id"], "never", 1)


def test_raising_cancelled_ends_the_job_cancelled_not_retried(database):
    from jobqueue import Cancelled, task

    @task(name="tests.gives_up")
    def gives_up(**_: Any) -> None:
        raise Cancelled("nothing left to do")

    job, _ = jobs.enqueue(database, JobSpec("tests.gives_up"))
    report = drain.run(database, settings=FAST, budget_seconds=None)
    done = jobs.get(database, job["id"])
    assert report.cancelled == 1 and done["state"] == "cancelled" and done["attempts"] == 1
    assert done["error"]["type"] == "Cancelled"


def test_plain_jobs_write_nothing_durable(database, raw):
    jobs.enqueue_many(database, [JobSpec("echo", {"n": i}) for i in range(50)])
    report = drain.run(database, settings=FAST, budget_seconds=None)
    assert report.succeeded == 50
    rows = raw.run("SELECT count(*) FROM jobs WHERE steps IS NOT NULL OR progress IS NOT NULL OR signals IS NOT NULL")
    assert rows == [[0]]


def test_the_job_view_carries_the_durable_fields(database):
    job, _ = jobs.enqueue(database, JobSpec("echo"))
    view = jobs.get(database, job["id"])
    assert {"progress", "steps", "waiting_for", "cancel_requested"} <= set(view)
    assert json.loads(json.dumps(view))["cancel_requested"] is False
