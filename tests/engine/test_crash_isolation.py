"""One crash takes one job: a drain writes down the jobs it may be running
before it starts them, so when its process dies the jobs it never started
go back uncounted, the ones that ran beside others become suspects and run
alone, and only a death while alone counts against a job."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

from jobqueue import JobSpec
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.store import claims, jobs, queues, upkeep
from tests.support.aws import ROOT
from tests.support.drains import start_drain
from tests.support.intervals import most_at_once, span_jobs, spans, starts
from tests.support.waiting import wait_until

OTHER = "00000000-0000-0000-0000-000000000000"  # a job id beside it in a drain's slots


def expire_leases(raw: Any) -> None:
    raw.run("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'")


def running(raw: Any) -> int:
    return raw.run("SELECT count(*) FROM jobs WHERE state = 'running'")[0][0]


def leases_expired(raw: Any, timeout: float = 60) -> None:
    wait_until(
        lambda: raw.run("SELECT count(*) FROM jobs WHERE state = 'running' AND lease_expires_at >= now()")[0][0] == 0,
        timeout=timeout,
        what="the dead drain's leases to expire",
    )


# --- what the rescue makes of a dead drain's jobs ----------------------------------------


def test_the_rescue_tells_unstarted_jobs_from_suspects_by_the_slots_written(database, raw):
    specs = [JobSpec("echo", {"n": i}) for i in range(4)]
    ids = [job["id"] for job in jobs.enqueue_many(database, specs)]
    rows = claims.claim(database, worker="A", limit=4, grace=0, fits=60).rows
    assert [row[0] for row in rows] == [str(i) for i in ids]
    claims.record(database, worker="A", batch=None, slots=[rows[0][0], rows[1][0]])  # two started
    expire_leases(raw)

    assert upkeep.rescue(database) == upkeep.Rescued(unstarted=2, suspects=2)
    got = {str(i): jobs.get(database, i) for i in ids}
    for unstarted in (str(ids[2]), str(ids[3])):
        assert got[unstarted]["state"] == "pending" and got[unstarted]["attempts"] == 0
        assert got[unstarted]["errors"] == []
    for suspect in (str(ids[0]), str(ids[1])):
        job = got[suspect]
        assert job["state"] == "pending" and job["attempts"] == 1
        [error] = job["errors"]
        assert error["type"] == "ProcessCrashed" and error["counted"] is False
        assert "beside 1 other jobs" in error["message"]

    # Suspects wait outside the claim: a claim takes the unstarted jobs, and says a suspect waits.
    claim = claims.claim(database, worker="B", limit=10, grace=0, fits=60)
    assert sorted(row[0] for row in claim.rows) == sorted([str(ids[2]), str(ids[3])]) and claim.suspects
    # A suspect is claimed alone, and its slots hold it alone.
    alone = claims.claim_alone(database, worker="C", grace=0, fits=60)
    assert [row[0] for row in alone.rows] == [str(ids[0])]
    assert alone.rows[0][3:5] == [2, 4]  # its second run, and the forgiven run does not count: 3 + 1
    assert raw.run("SELECT CAST(jobs AS text[]) FROM drain_slots WHERE worker = 'C'") == [[[str(ids[0])]]]


def test_a_drain_of_many_short_jobs_writes_every_job_it_holds_in_one_word(database, raw):
    """A batch of hundreds of short jobs is written down as "every job held"
    (not as their ids): the jobs it held then are suspects after its death,
    the ones it claimed after that write never started."""
    ids = [job["id"] for job in jobs.enqueue_many(database, [JobSpec("echo", {"n": i}) for i in range(300)])]
    claims.claim(database, worker="A", limit=200, grace=0, fits=60)
    claims.record(database, worker="A", batch=None, every_held=True)
    assert raw.run("SELECT jobs FROM drain_slots WHERE worker = 'A'") == [[None]]
    claims.claim(database, worker="A", limit=100, grace=0, fits=60)
    expire_leases(raw)

    assert upkeep.rescue(database) == upkeep.Rescued(unstarted=100, suspects=200)
    suspects = {row[0] for row in raw.run("SELECT CAST(id AS text) FROM jobs WHERE suspect")}
    assert suspects == {str(i) for i in ids[:200]}
    message = jobs.get(database, ids[0])["error"]["message"]
    assert "beside many other jobs" in message


def test_a_death_alone_counts_and_fails_the_job_once_its_runs_reach_max_attempts(database, raw):
    job, _ = jobs.enqueue(database, JobSpec("echo", max_attempts=2))
    claims.claim(database, worker="A", limit=1, grace=0, fits=60)
    claims.record(database, worker="A", batch=None, slots=[str(job["id"]), OTHER])  # dies beside another job
    expire_leases(raw)
    assert upkeep.rescue(database) == upkeep.Rescued(suspects=1)
    assert claims.claim_alone(database, worker="B", grace=0, fits=60).rows  # then alone
    expire_leases(raw)
    assert upkeep.rescue(database) == upkeep.Rescued(failed=1)
    after = jobs.get(database, job["id"])
    # The death alone makes every run count again: two runs of at most two.
    assert after["state"] == "failed" and after["attempts"] == 2
    assert [(e["type"], e["counted"]) for e in after["errors"]] == [("ProcessCrashed", False), ("ProcessCrashed", True)]
    assert after["error"]["message"].startswith("the process running it alone died")


def test_a_suspect_waits_for_its_queue_paused_or_full(database, raw):
    job, _ = jobs.enqueue(database, JobSpec("echo", queue="narrow"))
    rows = claims.claim(database, worker="A", limit=1, grace=0, fits=60).rows
    claims.record(database, worker="A", batch=None, slots=[rows[0][0], OTHER])
    expire_leases(raw)
    upkeep.rescue(database)

    queues.configure_queue(database, "narrow", {"paused": True})
    assert not claims.claim(database, worker="B", limit=1, grace=0, fits=60).suspects  # nothing to wait for
    assert claims.claim_alone(database, worker="B", grace=0, fits=60).rows == []
    queues.configure_queue(database, "narrow", {"paused": False, "concurrency": 1})
    other, _ = jobs.enqueue(database, JobSpec("echo", queue="narrow"))
    assert claims.claim(database, worker="B", limit=1, grace=0, fits=60).rows[0][0] == str(other["id"])
    assert claims.claim_alone(database, worker="C", grace=0, fits=60).rows == []  # the queue is full
    claims.complete(database, worker="B", ids=[str(other["id"])], attempts=[1], results=[None])
    assert claims.claim_alone(database, worker="C", grace=0, fits=60).rows[0][0] == str(job["id"])


def test_a_drain_runs_a_suspect_alone_and_the_rest_beside_each_other(database, raw, tmp_path):
    log = tmp_path / "spans"
    [suspect] = jobs.enqueue_many(database, span_jobs(log, "q", 1, 0.2, priority=-1))
    rows = claims.claim(database, worker="A", limit=1, grace=0, fits=60).rows
    claims.record(database, worker="A", batch=None, slots=[rows[0][0], OTHER])
    expire_leases(raw)
    jobs.enqueue_many(database, span_jobs(log, "r", 12, 0.2))

    report = drain.run(database, settings=Settings(concurrency=4))
    assert (report.rescued, report.alone, report.succeeded) == (1, 1, 13)
    runs = spans(log)
    others = [run for tag, run in runs.items() if tag != "q-0"]
    assert most_at_once(others) > 1  # the others ran side by side
    mine = runs["q-0"]
    assert all(run["end"] <= mine["start"] or run["start"] >= mine["end"] for run in others)  # nothing beside it
    done = jobs.get(database, suspect["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 2
    assert raw.run("SELECT worker FROM drain_slots") == [["A"]]  # the drain's own slots went with it


# --- processes that die -------------------------------------------------------------------


def test_a_killed_drain_gives_back_its_unstarted_jobs_uncounted(database, server_env, raw, tmp_path):
    """SIGKILL while holding a claimed batch: the jobs that never started keep
    their attempt counts and their place in line; only the two running become suspects."""
    log = tmp_path / "spans"
    ids = [job["id"] for job in jobs.enqueue_many(database, span_jobs(log, "q", 8, 30, timeout_seconds=2))]
    doomed = start_drain(server_env, grace=0.3, concurrency=2, batch=8)
    try:
        wait_until(lambda: len(spans(log)) == 2, timeout=60, what="two jobs to start")
        wait_until(lambda: running(raw) > 2, timeout=60, what="a claim beyond the two slots")
        held = running(raw)
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.communicate(timeout=30)
    leases_expired(raw)

    assert upkeep.rescue(database) == upkeep.Rescued(unstarted=held - 2, suspects=2)
    started = set(spans(log))
    for job in (jobs.get(database, i) for i in ids):
        tag = job["payload"]["tag"]
        assert job["state"] == "pending"
        if tag in started:
            assert job["attempts"] == 1 and job["errors"][0]["type"] == "ProcessCrashed"
        else:
            assert job["attempts"] == 0 and job["errors"] == []


def test_a_kill_re_runs_only_the_jobs_that_were_running(database, server_env, raw, tmp_path):
    """Outcomes are written before a slot starts its next job: a drain killed
    mid-stream leaves unwritten only the jobs in its slots, never a backlog of
    finished ones (those would run twice)."""
    log = tmp_path / "spans"
    jobs.enqueue_many(database, span_jobs(log, "q", 60, 0.1, timeout_seconds=2))
    doomed = start_drain(server_env, grace=0.3, concurrency=4, batch=60)
    try:
        wait_until(lambda: sum("end" in run for run in spans(log).values()) >= 20, timeout=60, what="20 jobs to end")
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.communicate(timeout=30)
    ran = set(spans(log))
    written = {row[0] for row in raw.run("SELECT payload ->> 'tag' FROM jobs WHERE state = 'succeeded'")}
    assert written <= ran and len(ran - written) <= 4  # at most the four slots' jobs run again


INVOKE = """
import sys
import app
from tests.support.aws import make_context, sample
app.lambda_handler(sample("eventbridge-scheduled.json"), make_context(remaining_ms=int(sys.argv[1])))
"""


def test_a_lambda_killed_past_a_misjudged_budget_charges_only_what_ran(database, server_env, raw, tmp_path):
    """A scheduled invocation whose context promised 60 s, killed after a few
    (as Lambda kills a function at its timeout): its unstarted jobs are not charged."""
    log = tmp_path / "spans"
    ids = [job["id"] for job in jobs.enqueue_many(database, span_jobs(log, "q", 12, 30, timeout_seconds=2))]
    env = {
        **os.environ,
        **server_env,
        "PYTHONPATH": str(ROOT),
        "JOBQUEUE_TASK_MODULES": "tests.support.tasks",
        "JOBQUEUE_CONCURRENCY": "3",
        "JOBQUEUE_LEASE_GRACE_SECONDS": "0.3",
        "JOBQUEUE_LOG_LEVEL": "ERROR",
    }
    invocation = subprocess.Popen([sys.executable, "-c", INVOKE, "60000"], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(spans(log)) == 3, timeout=60, what="three jobs to start")
    finally:
        invocation.kill()
        invocation.communicate(timeout=30)
    leases_expired(raw)
    rescued = upkeep.rescue(database)
    assert rescued.suspects == 3 and rescued.crashed == rescued.failed == 0
    charged = [job for job in (jobs.get(database, i) for i in ids) if job["attempts"]]
    assert sorted(job["payload"]["tag"] for job in charged) == sorted(spans(log))


def test_poison_jobs_among_ordinary_ones_fail_alone_and_take_nothing_with_them(database, server_env, raw, tmp_path):
    """20 jobs that kill their process (SIGSEGV) shuffled among 3,000 ordinary
    5 ms jobs, 4 drains of 8 slots each, replaced when they die as Lambda
    replaces a container: every ordinary job succeeds, every poison job ends
    failed with ProcessCrashed, after at most max_attempts deaths each."""
    log = tmp_path / "starts"
    poison = [JobSpec("tests.segv", {"path": str(log), "tag": f"p{i}"}, timeout_seconds=1) for i in range(20)]
    ordinary = [JobSpec("sleep", {"seconds": 0.005}, timeout_seconds=2) for _ in range(3000)]
    specs = poison + ordinary
    random.Random(15).shuffle(specs)
    for start in range(0, len(specs), 1000):
        jobs.enqueue_many(database, specs[start : start + 1000])

    started = time.monotonic()
    deaths = 0
    procs = [start_drain(server_env, grace=0.3, concurrency=8) for _ in range(4)]

    def settled() -> bool:
        nonlocal deaths
        for k, proc in enumerate(procs):
            if proc.poll() is None:
                continue
            _, err = proc.communicate()
            if proc.returncode == -signal.SIGSEGV:
                deaths += 1
            else:
                assert proc.returncode == 0, err[-3000:]
            procs[k] = start_drain(server_env, grace=0.3, concurrency=8)
        return raw.run("SELECT count(*) FROM jobs WHERE state IN ('pending', 'running')")[0][0] == 0

    try:
        wait_until(settled, timeout=300, what="every job to end")
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()
    seconds = time.monotonic() - started

    assert raw.run("SELECT task, state, count(*) FROM jobs GROUP BY 1, 2 ORDER BY 1") == [
        ["sleep", "succeeded", 3000],
        ["tests.segv", "failed", 20],
    ]
    last = raw.run(
        "SELECT DISTINCT errors -> -1 ->> 'type', errors -> -1 ->> 'counted' FROM jobs WHERE task = 'tests.segv'"
    )
    assert last == [["ProcessCrashed", "true"]]
    per_poison = starts(log)
    assert len(per_poison) == 20 and max(per_poison.values()) <= 3  # max_attempts deaths at most, each
    assert 20 <= deaths <= sum(per_poison.values())  # two poison jobs may die in one process
    print(f"\n20 poison among 3,000: {deaths} deaths, {seconds:.1f} s")
