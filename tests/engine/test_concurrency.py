"""Several processes at once, processes that die, and a database that restarts."""

from __future__ import annotations

import threading

from jobqueue import JobSpec
from jobqueue.engine import drain
from jobqueue.store import connection, jobs
from tests.support.drains import start_drain
from tests.support.waiting import wait_until


def test_four_processes_run_every_job_exactly_once(database, server_env, raw):
    jobs.enqueue_many(database, [JobSpec("noop", {"i": i}) for i in range(1000)])
    jobs.enqueue_many(database, [JobSpec("noop", {"i": i}) for i in range(1000, 2000)])
    procs = [start_drain(server_env, batch=25) for _ in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    rows = raw.run("SELECT state, attempts, count(*) FROM jobs GROUP BY state, attempts")
    assert rows == [["succeeded", 1, 2000]]
    import json

    assert sum(json.loads(out)["processed"] for out, _ in outputs) == 2000


def leases_expired(raw) -> None:
    """Wait until no running job's lease is still current, by the database's clock
    (a batch-mate's lease is extended past its own timeout while it waits)."""
    wait_until(
        lambda: raw.run("SELECT count(*) FROM jobs WHERE state = 'running' AND lease_expires_at >= now()")[0][0] == 0,
        what="the running jobs' leases to expire",
    )


def test_a_crashed_worker_loses_nothing(database, server_env, raw, tmp_path):
    """A task kills its process running alone (one slot): the death counts
    against it at once, and its batch-mate, claimed but never started, keeps
    its attempt and runs exactly once; the crash job runs alone again, dies
    again, and fails for good with ProcessCrashed."""
    crash, _ = jobs.enqueue(database, JobSpec("tests.crash", timeout_seconds=0.5, max_attempts=2))
    out = tmp_path / "ran"
    mate, _ = jobs.enqueue(database, JobSpec("tests.record", {"path": str(out), "value": "mate"}, timeout_seconds=0.5))

    first = start_drain(server_env, grace=0.3, batch=50, concurrency=1)
    first.communicate(timeout=30)
    assert first.returncode == 17
    assert raw.run("SELECT count(*) FROM jobs WHERE state = 'running'")[0][0] == 2  # it held both

    leases_expired(raw)
    second = start_drain(server_env, grace=0.3, batch=50, concurrency=1)
    out2 = second.communicate(timeout=30)
    assert second.returncode == 17, out2  # rescued, the mate run, the crash run alone: died again (attempt 2)
    assert jobs.get(database, mate["id"])["attempts"] == 1  # claimed twice, started once

    leases_expired(raw)
    report = drain.run(database)  # rescue: out of attempts -> failed
    assert report.rescued == 1
    lost = jobs.get(database, crash["id"])
    assert lost["state"] == "failed" and lost["attempts"] == 2
    assert [(e["type"], e["counted"]) for e in lost["errors"]] == [("ProcessCrashed", True)] * 2
    done = jobs.get(database, mate["id"])
    assert done["state"] == "succeeded" and out.read_text().split() == ["mate"]
    assert raw.run("SELECT count(*) FROM jobs WHERE state = 'running'")[0][0] == 0


def test_cancel_racing_claim_never_runs_a_job_cancelled_before_it_started(database, db_settings, raw, tmp_path):
    """A cancel that wins the race ends the job at once and it never runs; one
    that finds it running asks it to stop, and it ends cancelled whatever it
    returns. Either way every cancelled job ends cancelled, none succeeds."""
    out = tmp_path / "ran"
    batch = jobs.enqueue_many(
        database, [JobSpec("tests.record", {"path": str(out), "value": str(i)}) for i in range(300)]
    )
    cancelled: list[str] = []  # cancelled before they started
    asked: list[str] = []  # found running: asked to stop

    def canceller() -> None:
        own = connection.Database(db_settings)
        for job in reversed(batch):
            try:
                answer = jobs.cancel(own, job["id"])
            except Exception:  # noqa: BLE001 - lost the race: the job had finished
                continue
            (asked if answer["state"] == "running" else cancelled).append(answer["id"])
        own.close()

    thread = threading.Thread(target=canceller)
    thread.start()
    drain.run(database, batch_size=5)
    thread.join()
    ran = out.read_text().split() if out.exists() else []
    states = dict(raw.run("SELECT state, count(*) FROM jobs GROUP BY state"))
    assert states.get("cancelled", 0) == len(cancelled) + len(asked)
    assert states.get("succeeded", 0) == 300 - len(cancelled) - len(asked)
    assert len(set(ran)) == len(ran) and len(ran) == 300 - len(cancelled)
    value_of = {job["id"]: str(i) for i, job in enumerate(batch)}
    assert not {value_of[c] for c in cancelled} & set(ran)


def test_next_drain_reconnects_after_a_database_restart(database, restart_database):
    jobs.enqueue(database, JobSpec("echo", {"n": 1}))
    assert drain.run(database).succeeded == 1
    before = database.execute("SELECT pg_backend_pid()")[0][0]
    restart_database()
    assert drain.run(database).processed == 0  # its first statement meets the dead connection
    job, _ = jobs.enqueue(database, JobSpec("echo", {"n": 2}))
    assert drain.run(database).succeeded == 1
    assert database.execute("SELECT pg_backend_pid()")[0][0] != before
    assert jobs.get(database, job["id"])["state"] == "succeeded"
