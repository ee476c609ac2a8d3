"""Enqueue, read, cancel, retry, list, stats and prune against a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

import jobqueue
from jobqueue import JobSpec
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.errors import InvalidTransition, JobNotFound, UnknownTask, ValidationError
from jobqueue.store import connection, jobs, queues, upkeep


def count(raw, where: str = "true") -> int:
    return raw.run(f"SELECT count(*) FROM jobs WHERE {where}")[0][0]


def test_enqueue_fills_task_defaults_and_returns_the_job(database):
    job, created = jobs.enqueue(database, JobSpec("echo", {"a": 1}))
    assert created
    assert job["state"] == "pending" and job["attempts"] == 0
    assert job["queue"] == "default" and job["max_attempts"] == 3 and job["timeout_seconds"] is None
    assert job["payload"] == {"a": 1}
    assert job["created_at"].endswith("Z") and datetime.fromisoformat(job["created_at"])
    assert jobs.get(database, job["id"]) == job


def test_ids_are_time_ordered_uuids(database):
    first, _ = jobs.enqueue(database, JobSpec("noop"))
    second, _ = jobs.enqueue(database, JobSpec("noop"))
    assert first["id"] < second["id"]
    assert first["id"][14] == "7"  # UUID version 7


def test_delay_and_run_at_hold_a_job_back(database):
    later, _ = jobs.enqueue(database, JobSpec("echo", delay_seconds=3600))
    at = datetime.now(timezone.utc) + timedelta(days=1)
    scheduled, _ = jobs.enqueue(database, JobSpec("echo", run_at=at.isoformat()))
    assert drain.run(database).processed == 0
    assert jobs.get(database, later["id"])["state"] == "pending"
    assert abs(datetime.fromisoformat(scheduled["run_at"]) - at) < timedelta(milliseconds=1)


def test_priority_then_age_decides_the_order(database, tmp_path):
    out = tmp_path / "order"
    for value, priority in (("low", 5), ("high", -5), ("mid-first", 0), ("mid-second", 0)):
        jobs.enqueue(database, JobSpec("tests.record", {"path": str(out), "value": value}, priority=priority))
    drain.run(database, batch_size=1, settings=Settings(concurrency=1))  # claim order, one job at a time
    assert out.read_text().split() == ["high", "mid-first", "mid-second", "low"]


def test_idempotency_key_returns_the_existing_job(database, raw):
    first, created = jobs.enqueue(database, JobSpec("echo", {"n": 1}, idempotency_key="order-7"))
    again, created_again = jobs.enqueue(database, JobSpec("echo", {"n": 2}, idempotency_key="order-7"))
    assert created and not created_again
    assert again["id"] == first["id"] and again["payload"] == {"n": 1}
    assert count(raw) == 1


def test_concurrent_submits_with_one_key_make_one_job(db_settings, database, raw):
    results, barrier = [], threading.Barrier(8)

    def submit() -> None:
        own = connection.Database(db_settings)
        barrier.wait()
        results.append(jobs.enqueue(own, JobSpec("echo", idempotency_key="same")))
        own.close()

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({job["id"] for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert count(raw) == 1


def test_batch_is_one_statement_in_order_with_keys(database, raw):
    existing, _ = jobs.enqueue(database, JobSpec("echo", idempotency_key="k-1"))
    specs = [JobSpec("echo", {"i": i}) for i in range(5)] + [
        JobSpec("echo", idempotency_key="k-1"),
        JobSpec("echo", idempotency_key="k-2"),
        JobSpec("echo", idempotency_key="k-2"),
    ]
    batch = jobs.enqueue_many(database, specs)
    assert [j["payload"].get("i") for j in batch[:5]] == list(range(5))
    assert batch[5]["id"] == existing["id"]
    assert batch[6]["id"] == batch[7]["id"]
    assert count(raw) == 7
    assert all(j["state"] == "pending" and j["created_at"].endswith("Z") for j in batch)


def test_batch_with_one_bad_job_enqueues_nothing(database, raw):
    specs = [JobSpec("echo"), JobSpec("echo", priority="high"), JobSpec("echo")]
    with pytest.raises(ValidationError) as err:
        jobs.enqueue_many(database, specs)
    assert err.value.field == "jobs[1].priority"
    with pytest.raises(UnknownTask):
        jobs.enqueue_many(database, [JobSpec("echo"), JobSpec("no.such.task")])
    assert count(raw) == 0


def test_batch_over_the_limit_is_refused(database, raw):
    with pytest.raises(ValidationError):
        jobs.enqueue_many(database, [JobSpec("noop")] * 1001)
    assert count(raw) == 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (JobSpec("echo", payload=[1, 2]), "payload"),
        (JobSpec("echo", queue="bad queue!"), "queue"),
        (JobSpec("echo", priority=True), "priority"),
        (JobSpec("echo", priority=40000), "priority"),
        (JobSpec("echo", max_attempts=0), "max_attempts"),
        (JobSpec("echo", timeout_seconds=0), "timeout_seconds"),
        (JobSpec("echo", timeout_seconds=float("nan")), "timeout_seconds"),
        (JobSpec("echo", delay_seconds=-1), "delay_seconds"),
        (JobSpec("echo", run_at="yesterday"), "run_at"),
        (JobSpec("echo", run_at="2030-01-01T00:00:00Z", delay_seconds=1), "delay_seconds"),
        (JobSpec("echo", idempotency_key=""), "idempotency_key"),
        (JobSpec("echo", payload={"x": {1, 2}}), "payload"),
        (JobSpec(""), "task"),
    ],
)
def test_bad_fields_are_named_and_nothing_is_written(database, raw, spec, field):
    with pytest.raises(ValidationError) as err:
        jobs.enqueue(database, spec)
    assert err.value.field == field
    assert count(raw) == 0


def test_from_dict_rejects_unknown_and_missing_fields():
    with pytest.raises(ValidationError) as err:
        JobSpec.from_dict({"task": "echo", "delay": 5})
    assert err.value.field == "delay"
    with pytest.raises(ValidationError) as err:
        JobSpec.from_dict({"payload": {}})
    assert err.value.field == "task"


def test_enqueue_joins_the_callers_transaction(database, db_settings, raw):
    conn = connection.connect(db_settings)
    conn.run("BEGIN")
    job = jobqueue.enqueue("echo", {"in": "tx"}, conn=conn)
    assert count(raw, f"id = '{job['id']}'") == 0  # not visible before commit
    conn.run("ROLLBACK")
    assert count(raw) == 0
    conn.run("BEGIN")
    job = jobqueue.enqueue("echo", {"in": "tx"}, conn=conn)
    conn.run("COMMIT")
    conn.close()
    assert jobs.get(database, job["id"])["payload"] == {"in": "tx"}


def test_cancel_only_pending_and_retry_only_final(database):
    job, _ = jobs.enqueue(database, JobSpec("fail", {"permanent": True}))
    cancelled = jobs.cancel(database, job["id"])
    assert cancelled["state"] == "cancelled" and cancelled["finished_at"]
    with pytest.raises(InvalidTransition) as err:
        jobs.cancel(database, job["id"])
    assert err.value.state == "cancelled"
    assert drain.run(database).processed == 0  # a cancelled job never runs
    again = jobs.retry(database, job["id"])
    assert again["state"] == "pending" and again["finished_at"] is None
    drain.run(database)
    failed = jobs.get(database, job["id"])
    assert failed["state"] == "failed" and failed["attempts"] == 1
    retried = jobs.retry(database, failed["id"])
    assert retried["max_attempts"] >= 2  # a retry grants at least one more attempt
    with pytest.raises(InvalidTransition):
        jobs.retry(database, job["id"])  # pending now
    ok, _ = jobs.enqueue(database, JobSpec("echo"))
    drain.run(database)
    with pytest.raises(InvalidTransition):
        jobs.retry(database, ok["id"])  # succeeded is final for good


def test_unknown_and_malformed_ids(database):
    missing = "01890a5d-ac96-774b-bcce-b302099a8057"
    for action in (jobs.get, jobs.cancel, jobs.retry):
        with pytest.raises(JobNotFound):
            action(database, missing)
        with pytest.raises(ValidationError):
            action(database, "'; DROP TABLE jobs; --")


def test_list_filters_and_keyset_pages(database):
    for i in range(7):
        jobs.enqueue(database, JobSpec("echo", {"i": i}, queue="a" if i % 2 else "b"))
    jobs.enqueue(database, JobSpec("noop"))
    seen, cursor = [], None
    while True:
        page = jobs.list_jobs(database, task="echo", cursor=cursor, limit=3)
        seen += [j["payload"]["i"] for j in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [6, 5, 4, 3, 2, 1, 0]
    assert {j["payload"]["i"] for j in jobs.list_jobs(database, queue="a").jobs} == {1, 3, 5}
    assert jobs.list_jobs(database, state="succeeded").jobs == []
    with pytest.raises(ValidationError):
        jobs.list_jobs(database, state="done")


def test_stats_counts_per_queue_and_oldest_age(database, raw):
    jobs.enqueue(database, JobSpec("echo", queue="mail"))
    jobs.enqueue(database, JobSpec("echo", queue="mail", delay_seconds=600))
    jobs.enqueue(database, JobSpec("noop"))
    raw.run("UPDATE jobs SET run_at = now() - interval '90 seconds' WHERE queue = 'mail' AND run_at <= now()")
    drain.run(database, queues=["default"])
    stats = queues.stats(database)
    assert stats["queues"]["mail"]["counts"]["pending"] == 2
    assert stats["queues"]["default"]["counts"]["succeeded"] == 1
    assert 89 <= stats["queues"]["mail"]["oldest_pending_age_seconds"] < 120
    assert stats["totals"]["pending"] == 2


def test_prune_deletes_only_old_finished_jobs(database, raw):
    old, _ = jobs.enqueue(database, JobSpec("echo"))
    recent, _ = jobs.enqueue(database, JobSpec("echo"))
    drain.run(database)
    waiting, _ = jobs.enqueue(database, JobSpec("echo", delay_seconds=600))
    raw.run("UPDATE jobs SET finished_at = now() - interval '8 days' WHERE id = CAST(:id AS uuid)", id=old["id"])
    raw.run("UPDATE jobs SET created_at = now() - interval '9 days' WHERE id = CAST(:id AS uuid)", id=waiting["id"])
    assert upkeep.prune(database, 7 * 86400) == 1
    left = {row[0] for row in raw.run("SELECT id::text FROM jobs")}
    assert left == {recent["id"], waiting["id"]}


def test_uuid7_takes_its_random_bits_from_the_csprng_a_pool_at_a_time(monkeypatch):
    import random
    import secrets

    from jobqueue.store import ids

    calls = []
    real = secrets.token_bytes
    monkeypatch.setattr(secrets, "token_bytes", lambda n: calls.append(n) or real(n))
    monkeypatch.setattr(random, "getrandbits", lambda *_: pytest.fail("ids must not use the random module"))
    ids._forget_pool()
    made = {ids.uuid7() for _ in range(1000)}
    assert len(made) == 1000
    assert 1 <= len(calls) <= 4  # at most two 8-byte draws per id, 512 per call: not a call per id


def test_a_forked_child_never_deals_its_parents_random_bits():
    import os

    from jobqueue.store import ids

    ids.uuid7()  # the parent's pool holds unused bits now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids' random tails, to the parent
        os.write(write, ",".join(ids.uuid7()[-12:] for _ in range(5)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = set(os.read(read, 4096).decode().split(","))
    parent = {ids.uuid7()[-12:] for _ in range(5)}
    assert len(child) == 5 and not child & parent


def test_uuid7_is_strictly_increasing_within_a_process():
    from jobqueue.store.ids import uuid7

    ids = [uuid7() for _ in range(20_000)]  # many share a millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_batch_returns_exactly_what_the_database_holds(database):
    at = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    specs = [
        JobSpec("echo", {"i": 1}),
        JobSpec("echo", {"i": 2}, delay_seconds=12.3456789),
        JobSpec("echo", {"i": 3}, run_at=at, priority=4, queue="q", max_attempts=7, timeout_seconds=2.5),
    ]
    returned = jobs.enqueue_many(database, specs)
    assert returned == [jobs.get(database, job["id"]) for job in returned]
    assert returned[2]["run_at"] == "2031-05-06T07:08:09.123456Z"


def test_a_resent_batch_returns_the_jobs_it_already_made(database, raw, monkeypatch):
    """After a lost connection the batch statement is sent again; if the first
    one had committed, its ids now exist: the answer is those jobs, not an error."""
    first = jobs.enqueue_many(database, [JobSpec("echo", {"i": i}) for i in range(3)])
    again = iter([job["id"] for job in first])
    monkeypatch.setattr(jobs, "uuid7", lambda: next(again))
    second = jobs.enqueue_many(database, [JobSpec("echo", {"i": i}) for i in range(3)])
    assert second == first
    assert count(raw) == 3


@pytest.mark.parametrize("bad", [{"x": "nul \x00"}, {"x": "lone \ud800"}, {"x": float("inf")}, {"x": object()}])
def test_a_batch_names_the_job_whose_payload_cannot_be_stored(database, raw, bad):
    specs = [JobSpec("echo", {"ok": 1}), JobSpec("echo", bad), JobSpec("echo")]
    with pytest.raises(ValidationError) as err:
        jobs.enqueue_many(database, specs)
    assert err.value.field == "jobs[1].payload"
    assert count(raw) == 0


def test_a_resent_submit_still_reports_the_job_as_created(database, monkeypatch):
    """The insert committed but its answer was lost; the resent statement
    inserts nothing, yet the job is the one this call made: 202, not 200."""
    real = connection.Database._execute
    calls = []

    def execute(self, name, params):
        rows = real(self, name, params)
        if name == "enqueue" and not calls:
            calls.append(name)
            from pg8000.exceptions import InterfaceError

            raise InterfaceError("network error")
        return rows

    monkeypatch.setattr(connection.Database, "_execute", execute)
    job, created = jobs.enqueue(database, JobSpec("echo", {"n": 1}))
    assert calls and created
    assert jobs.list_jobs(database).jobs == [job]


def test_stats_count_the_age_of_jobs_that_came_due_while_no_drain_ran(database, raw):
    job, _ = jobs.enqueue(database, JobSpec("echo", queue="later", delay_seconds=60))
    assert queues.stats(database)["queues"]["later"]["oldest_pending_age_seconds"] is None  # not due yet
    raw.run("UPDATE jobs SET run_at = now() - interval '90 seconds' WHERE id = CAST(:id AS uuid)", id=job["id"])
    age = queues.stats(database)["queues"]["later"]["oldest_pending_age_seconds"]
    assert 89 <= age <= 120
