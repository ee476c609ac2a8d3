"""A database restart costs a pause, not re-runs: three fast restarts of a
private PostgreSQL while four drains work through 40,000 jobs.

Outcomes the database could not take are kept and written again once it is
back (every write is guarded by its attempt, so a repeat changes nothing),
and a claim whose answer was lost is read back rather than left to expire.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from jobqueue import JobSpec
from jobqueue.config import Settings
from jobqueue.store import connection, jobs, schema
from jobqueue.tasks.loading import load_modules
from tests.support.aws import ROOT
from tests.support.embedded import start_embedded

JOBS = 40_000

DRAIN = """
import json, sys
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.store import connection
from jobqueue.tasks.loading import load_modules
from tests.support.aws import ROOT
load_modules(["tests.support.tasks"])
report = drain.run(connection.default(), settings=Settings(drain_safety_ms=0), budget_seconds=150)
print(json.dumps(report.as_dict()))
"""


@pytest.fixture
def private_server() -> Iterator[tuple[dict[str, str], Callable[[], None]]]:
    """A PostgreSQL of this test's own (the embedded wheel), and a way to restart it;
    stopped at the end whichever postmaster the restarts left running."""
    server = start_embedded("jobqueue-restart-")
    try:
        yield {**server.env, "DB_NAME": "postgres"}, server.restart
    finally:
        server.stop()


def succeeded(settings: connection.DatabaseSettings) -> int:
    """Jobs done so far, or -1 while the server is down."""
    try:
        conn = connection.connect(settings)
    except Exception:  # noqa: BLE001 - restarting
        return -1
    try:
        return conn.run("SELECT count(*) FROM jobs WHERE state = 'succeeded'")[0][0]
    except Exception:  # noqa: BLE001 - cut by the restart
        return -1
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def test_three_restarts_during_a_drain_re_run_almost_nothing(private_server, tmp_path):
    env, restart = private_server
    load_modules(["tests.support.tasks"])
    settings = Settings.from_env(env).db
    database = connection.Database(settings)
    schema.migrate(database)
    out = tmp_path / "ran"
    for start in range(0, JOBS, 1000):
        jobs.enqueue_many(
            database, [JobSpec("tests.record", {"path": str(out), "value": str(i)}) for i in range(start, start + 1000)]
        )
    database.close()

    drains = [
        subprocess.Popen(
            [sys.executable, "-c", DRAIN],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT), "JOBQUEUE_LOG_LEVEL": "ERROR"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        done_at_restart = []
        for share in (0.15, 0.40, 0.65):
            wait_until(lambda share=share: succeeded(settings) >= share * JOBS, 120, f"{share:.0%} of the jobs")
            done_at_restart.append(succeeded(settings))
            restart()
        outputs = [p.communicate(timeout=150) for p in drains]
    finally:
        for p in drains:
            p.kill()
    assert all(p.returncode == 0 for p in drains), [err[-2000:] for _, err in outputs]

    assert max(done_at_restart) < JOBS  # every restart hit a drain at work
    assert succeeded(settings) == JOBS  # none lost, none left running
    runs = Counter(out.read_text().split())
    assert len(runs) == JOBS
    reruns = sum(n - 1 for n in runs.values())
    print(f"restarts at {done_at_restart} of {JOBS} jobs done; {reruns} ran twice")
    assert reruns <= 10, f"{reruns} jobs ran twice"
