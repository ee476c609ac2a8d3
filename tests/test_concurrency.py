"""Several processes at once, processes that die, and a database that restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from jobqueue import JobSpec, db, queue, worker

from .conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]

DRAIN = """
import json, sys
from jobqueue import db, tasks, worker
from jobqueue.config import Settings
tasks.load_modules(["tests.tasks"])
settings = Settings(lease_grace_seconds=float(sys.argv[1]), drain_safety_ms=0)
report = worker.drain(db.default(), settings=settings, batch_size=int(sys.argv[2]))
print(json.dumps(report.as_dict()))
"""


def start_drain(env: dict[str, str], grace: float = 10.0, batch: int = 50) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRAIN, str(grace), str(batch)],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT), "JOBQUEUE_LOG_LEVEL": "ERROR"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_processes_run_every_job_exactly_once(database, server_env, raw):
    queue.enqueue_many(database, [JobSpec("noop", {"i": i}) for i in range(1000)])
    queue.enqueue_many(database, [JobSpec("noop", {"i": i}) for i in range(1000, 2000)])
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
    """A task kills its process mid-batch: after the lease the crash job runs
    again, then fails for good; its batch-mate still runs exactly once."""
    crash, _ = queue.enqueue(database, JobSpec("tests.crash", timeout_seconds=0.5, max_attempts=2))
    out = tmp_path / "ran"
    mate, _ = queue.enqueue(database, JobSpec("tests.record", {"path": str(out), "value": "mate"}, timeout_seconds=0.5))

    first = start_drain(server_env, grace=0.3)
    first.communicate(timeout=30)
    assert first.returncode == 17
    assert raw.run("SELECT count(*) FROM jobs WHERE state = 'running'")[0][0] == 2

    leases_expired(raw)
    second = start_drain(server_env, grace=0.3)
    out2 = second.communicate(timeout=30)
    assert second.returncode == 17, out2  # rescued, re-run, crashed again (attempt 2)

    leases_expired(raw)
    report = worker.drain(database)  # rescue: out of attempts -> failed
    assert report.rescued >= 1
    lost = queue.get(database, crash["id"])
    assert lost["state"] == "failed" and lost["attempts"] == 2
    assert [e["type"] for e in lost["errors"]] == ["LeaseExpired", "LeaseExpired"]
    done = queue.get(database, mate["id"])
    assert done["state"] == "succeeded" and out.read_text().split() == ["mate"]
    assert raw.run("SELECT count(*) FROM jobs WHERE state = 'running'")[0][0] == 0


def test_cancel_racing_claim_never_runs_a_cancelled_job(database, db_settings, raw, tmp_path):
    out = tmp_path / "ran"
    jobs = queue.enqueue_many(
        database, [JobSpec("tests.record", {"path": str(out), "value": str(i)}) for i in range(300)]
    )
    cancelled: list[str] = []

    def canceller() -> None:
        own = db.Database(db_settings)
        for job in reversed(jobs):
            try:
                cancelled.append(queue.cancel(own, job["id"])["id"])
            except Exception:  # noqa: BLE001 - lost the race: the job was claimed first
                pass
        own.close()

    thread = threading.Thread(target=canceller)
    thread.start()
    worker.drain(database, batch_size=5)
    thread.join()
    ran = out.read_text().split() if out.exists() else []
    states = dict(raw.run("SELECT state, count(*) FROM jobs GROUP BY state"))
    assert states.get("cancelled", 0) == len(cancelled)
    assert states.get("succeeded", 0) == len(ran) == 300 - len(cancelled)
    assert len(set(ran)) == len(ran)
    cancelled_values = {str(jobs.index(next(j for j in jobs if j["id"] == c))) for c in cancelled}
    assert not cancelled_values & set(ran)


def test_next_drain_reconnects_after_a_database_restart(database, restart_database):
    queue.enqueue(database, JobSpec("echo", {"n": 1}))
    assert worker.drain(database).succeeded == 1
    before = database.execute("SELECT pg_backend_pid()")[0][0]
    restart_database()
    assert worker.drain(database).processed == 0  # its first statement meets the dead connection
    job, _ = queue.enqueue(database, JobSpec("echo", {"n": 2}))
    assert worker.drain(database).succeeded == 1
    assert database.execute("SELECT pg_backend_pid()")[0][0] != before
    assert queue.get(database, job["id"])["state"] == "succeeded"
