"""Drains that follow the backlog, on the local stack with its schedule off:
a submit wakes a drain, drains start drains up to JOBQUEUE_MAX_DRAINS and
never more, a drain that dies frees its slot at once, and no chain of drains
starting drains grows past the hop cap. Every invocation goes through the real
boto3 client and the local Invoke API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from jobqueue import JobSpec, log, rules
from jobqueue.config import Settings
from jobqueue.engine import fanout, invoker
from jobqueue.local import aws_events
from jobqueue.store import connection, drains, jobs
from tests.support.aws import ROOT
from tests.support.localstack import Stack, call, free_port, stack_env
from tests.support.waiting import wait_until

TOKEN = "fanout-test-token-0123456789abcdef"


def start_stack(server_env: dict[str, str], tmp_path: Path, stacks: list[Stack], *args: str, **env: str) -> str:
    settings = {
        "JOBQUEUE_API_TOKEN": TOKEN,
        "JOBQUEUE_TASK_MODULES": "tests.support.tasks",
        "JOBQUEUE_MAX_DRAINS": "3",
        "JOBQUEUE_CONCURRENCY": "2",
        **env,
    }
    stack = Stack(
        stack_env(**server_env, **settings), tmp_path, free_port(), ("--drain-every", "0", "--concurrency", "5", *args)
    )
    stacks.append(stack)
    return stack.wait_ready()


def watch_slots(db_settings: Any) -> tuple[list[int], Any]:
    """Sample how many drains hold a slot, every 10 ms, until the returned done() is called."""
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        own = connection.connect(db_settings)  # a connection of its own: pg8000's are not shared by threads
        while not stop.is_set():
            seen.append(running_drains(own))
            time.sleep(0.01)
        own.close()

    watcher = threading.Thread(target=watch)
    watcher.start()

    def done() -> None:
        stop.set()
        watcher.join()

    return seen, done


def running_drains(raw: Any) -> int:
    return raw.run(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :k AND objsubid = 2 AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        k=drains.SLOT_CLASS,
    )[0][0]


def test_a_submit_wakes_a_drain_with_no_schedule(server_env, database, tmp_path, stacks):
    url = start_stack(server_env, tmp_path, stacks)
    status, body = call("POST", f"{url}/jobs", {"task": "echo", "payload": {"n": 1}}, TOKEN)
    assert status == 202, body
    job = wait_until(
        lambda: (
            (done := call("GET", f"{url}/jobs/{body['job']['id']}", token=TOKEN)[1]["job"])["state"] == "succeeded"
            and done
        ),
        timeout=30,
        what="the woken drain to run the job",
    )
    assert job["attempts"] == 1
    logs = stacks[0].logs()
    assert '"event":"wake"' in logs and '"reason":"drain (hop 1)"' in logs
    # A delayed job wakes nobody: nothing is due.
    status, body = call("POST", f"{url}/jobs", {"task": "echo", "delay_seconds": 3600}, TOKEN)
    assert status == 202 and stacks[0].logs().count('"event":"wake"') == 1


def test_drains_fan_out_to_the_maximum_and_never_past_it(server_env, db_settings, database, raw, tmp_path, stacks):
    url = start_stack(server_env, tmp_path, stacks)
    out = tmp_path / "spans"
    # 90 jobs of half a second, two at a time: 22 s for one drain, so three are wanted.
    batch = [{"task": "tests.span", "payload": {"path": str(out), "value": str(i), "seconds": 0.5}} for i in range(90)]
    seen, done = watch_slots(db_settings)

    try:
        status, body = call("POST", f"{url}/jobs/batch", {"jobs": batch}, TOKEN)
        assert status == 202, body
        wait_until(
            lambda: raw.run("SELECT count(*) FROM jobs WHERE state = 'succeeded'")[0][0] == 90,
            timeout=60,
            what="every job to run",
        )
    finally:
        done()
    assert max(seen) == 3  # it reached the maximum, and never went past it
    lines = [line.split() for line in out.read_text().splitlines()]
    assert sorted(value for value, _, _ in lines) == sorted(str(i) for i in range(90))  # each exactly once
    logs = stacks[0].logs()
    assert '"event":"fanout"' in logs and '"reason":"backlog"' in logs


def test_many_drains_at_once_take_at_most_max_drains_slots(server_env, db_settings, database, raw, tmp_path):
    """Six drains started together with three slots: never more than three drain,
    and the others return at once without running anything."""
    out = tmp_path / "spans"
    jobs.enqueue_many(
        database, [JobSpec("tests.span", {"path": str(out), "value": str(i), "seconds": 1.0}) for i in range(24)]
    )
    seen, done = watch_slots(db_settings)

    script = """
import json
from jobqueue.actions import drains
from jobqueue.config import Settings
from jobqueue.engine import invocation
from jobqueue.local.aws_events import LambdaContext
from jobqueue.store import connection
from jobqueue.tasks.loading import load_modules
load_modules(["tests.support.tasks"])
settings = Settings.from_env()
invocation.begin(LambdaContext(60), settings)  # a function timeout the jobs' 30 s fit in
print(json.dumps(drains.process(connection.default(), {}, budget_seconds=60, settings=settings)["drain"]))
"""
    env = {
        **os.environ,
        **server_env,
        "PYTHONPATH": str(ROOT),
        "JOBQUEUE_MAX_DRAINS": "3",
        "JOBQUEUE_CONCURRENCY": "2",
        "JOBQUEUE_LOG_LEVEL": "ERROR",
        # Nothing listens here: drains that try to start more drains fail to, and go on.
        "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{free_port()}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        reports = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    finally:
        done()
    assert max(seen) == 3, reports
    assert sum(r["processed"] for r in reports) == 24, reports
    turned_away = [r for r in reports if r["stopped"] == "max_drains"]
    assert turned_away and all(r["processed"] == 0 for r in turned_away)


def test_a_drain_killed_mid_run_frees_its_slot_at_once(server_env, database, raw, tmp_path):
    jobs.enqueue(database, JobSpec("sleep", {"seconds": 30}, timeout_seconds=40))
    script = """
from jobqueue.actions import drains
from jobqueue.config import Settings
from jobqueue.engine import invocation
from jobqueue.local.aws_events import LambdaContext
from jobqueue.store import connection
from jobqueue.tasks.loading import load_modules
load_modules([])
settings = Settings.from_env()
invocation.begin(LambdaContext(60), settings)
drains.process(connection.default(), {}, budget_seconds=60, settings=settings)
"""
    env = {
        **os.environ,
        **server_env,
        "PYTHONPATH": str(ROOT),
        "JOBQUEUE_MAX_DRAINS": "1",
        "JOBQUEUE_LOG_LEVEL": "ERROR",
    }
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env)
    try:
        wait_until(lambda: running_drains(raw) == 1, timeout=30, what="the drain to take its slot")
        wait_until(lambda: raw.run("SELECT count(*) FROM jobs WHERE state = 'running'")[0][0] == 1, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: running_drains(raw) == 0, timeout=5, what="the dead drain's slot to be freed")
    finally:
        proc.kill()
    own = connection.Database(database.settings)
    slot = fanout.FanOut(own, Settings(max_drains=1), "unused", 0, None)
    assert slot.take_slot()  # the one slot is free for the next drain at once
    slot.give_slot()
    own.close()


def test_chains_of_drains_stop_at_the_hop_cap(server_env, database, raw, tmp_path, stacks):
    """A drain at the last hop, with a backlog too big for its 3 s, starts no other
    drain and does not hand over when its budget ends; one hop lower it does both."""
    url = start_stack(server_env, tmp_path, stacks, "--timeout", "3", JOBQUEUE_SAFETY_MS="500")
    out = tmp_path / "spans"
    jobs.enqueue_many(
        database,
        [
            JobSpec("tests.span", {"path": str(out), "value": str(i), "seconds": 0.3}, timeout_seconds=1)
            for i in range(60)
        ],
    )
    client = boto3.client(
        "lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local"
    )
    event = {"action": "process", "hop": rules.MAX_HOPS}
    answer = client.invoke(FunctionName=aws_events.function_arn(), Payload=json.dumps(event).encode())
    report = json.loads(answer["Payload"].read())["drain"]
    assert report["stopped"] == "budget" and 0 < report["processed"] < 60
    assert '"event":"fanout"' not in stacks[0].logs()  # neither more drains nor a hand-over
    left = raw.run("SELECT count(*) FROM jobs WHERE state = 'pending'")[0][0]
    assert left == 60 - report["processed"]

    event["hop"] = rules.MAX_HOPS - 1
    client.invoke(FunctionName=aws_events.function_arn(), Payload=json.dumps(event).encode())
    logs = stacks[0].logs()
    assert f'"hop":{rules.MAX_HOPS}' in logs
    assert f'"hop":{rules.MAX_HOPS + 1}' not in logs
    wait_until(lambda: f'"hop":{rules.MAX_HOPS + 1}' not in stacks[0].logs() and running_drains(raw) == 0, timeout=60)
    assert f'"hop":{rules.MAX_HOPS + 1}' not in stacks[0].logs()


@pytest.fixture(autouse=True)
def _no_leftover_slots(raw):
    yield
    wait_until(lambda: running_drains(raw) == 0, timeout=60, what="every drain to end")


def test_with_fan_out_off_a_submit_wakes_nothing_and_drains_take_no_slot(server_env, database, raw, tmp_path, stacks):
    url = start_stack(server_env, tmp_path, stacks, JOBQUEUE_FANOUT="off")
    status, body = call("POST", f"{url}/jobs", {"task": "echo"}, TOKEN)
    assert status == 202
    status, drained = call("POST", f"{url}/process", {}, TOKEN)  # as today: a drain on request (or schedule)
    assert status == 200 and drained["drain"]["succeeded"] == 1
    logs = stacks[0].logs()
    assert '"event":"wake"' not in logs and '"event":"local.invoke"' not in logs
    assert raw.run("SELECT state FROM jobs")[0][0] == "succeeded"


def test_a_function_without_permission_to_invoke_itself_says_so_once_and_waits(monkeypatch, capsys):
    """Lambda's answer to an Invoke the role does not allow, from botocore's own
    model of the API: logged once, and no more Invoke calls for a while."""
    import botocore.session
    from botocore.stub import Stubber

    monkeypatch.setattr(log, "_threshold", log.LEVELS["WARNING"])
    client = botocore.session.get_session().create_client(
        "lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    function = aws_events.function_arn()
    monkeypatch.setattr(invoker, "_client", client)
    monkeypatch.setattr(invoker, "_client_for", function)
    monkeypatch.setattr(invoker, "_refused_until", 0.0)
    with Stubber(client) as stub:
        stub.add_client_error("invoke", service_error_code="AccessDeniedException", http_status_code=403)
        assert invoker.invoke(function, {"action": "process", "hop": 1}) is False
        assert invoker.invoke(function, {"action": "process", "hop": 1}) is False  # not even tried
        stub.assert_no_pending_responses()
    err = capsys.readouterr().err
    assert err.count('"event":"fanout_not_permitted"') == 1 and '"event":"invoke_failed"' not in err
