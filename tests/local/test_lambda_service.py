"""The local Lambda service: warm containers in worker processes, its
asynchronous queue, and Lambda's Invoke API, called with the real boto3.

A small function of the test's own stands in for app.py here, so that what
the containers do (one invocation at a time, in their main thread, killed at
the timeout, retried when an Event fails) can be seen directly.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from jobqueue.local import aws_events
from jobqueue.local.http_server import make_server
from jobqueue.local.lambda_service import InvocationFailed, Service
from tests.support.waiting import wait_until

FUNCTION = """
import json, os, threading, time
from pathlib import Path

def lambda_handler(event, context):
    if event.get("record"):
        with open(event["record"], "a") as fh:
            fh.write(json.dumps([os.getpid(), time.time()]) + "\\n")
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("record"):
        with open(event["record"], "a") as fh:
            fh.write(json.dumps([os.getpid(), time.time(), "end"]) + "\\n")
    return {
        "pid": os.getpid(),
        "main_thread": threading.current_thread() is threading.main_thread(),
        "left_ms": context.get_remaining_time_in_millis(),
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "echo": event.get("echo"),
    }
"""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    (tmp_path / "app.py").write_text(FUNCTION)
    sys.path.insert(0, str(tmp_path))  # the containers are spawned with this path: they import this app
    saved = sys.modules.pop("app", None)
    service = Service(2, 3.0, aws_events.function_arn())
    service.start()
    try:
        yield service
    finally:
        service.close(5)
        sys.path.remove(str(tmp_path))
        if saved is not None:
            sys.modules["app"] = saved


@pytest.fixture
def lambda_client(service: Service) -> Iterator[Any]:
    server = make_server("127.0.0.1", 0, service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        region_name="us-east-1",
        aws_access_key_id=service.credentials.access_key,  # the only key its Invoke API takes
        aws_secret_access_key=service.credentials.secret_key,
        config=Config(retries={"max_attempts": 1}),
    )
    yield client
    server.shutdown()
    server.server_close()


def test_each_container_runs_one_invocation_at_a_time_in_its_main_thread(service, tmp_path):
    record = tmp_path / "calls"
    results: list[dict[str, Any]] = []
    callers = [
        threading.Thread(target=lambda: results.append(service.invoke({"record": str(record), "sleep": 0.2})))
        for _ in range(6)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(results) == 6 and all(r["main_thread"] for r in results)
    assert all(1000 < r["left_ms"] <= 3000 for r in results)
    assert len({r["pid"] for r in results}) == 2  # two warm containers served all six
    assert results[0]["arn"] == aws_events.function_arn()
    spans: dict[int, list[float]] = {}
    for line in record.read_text().splitlines():
        pid, at, *end = json.loads(line)
        spans.setdefault(pid, []).append(at)
    for times in spans.values():  # start, end, start, end...: never two at once in one container
        assert times == sorted(times) and len(times) % 2 == 0


def test_an_invocation_past_its_timeout_loses_its_container(service):
    first = service.invoke({})
    with pytest.raises(InvocationFailed) as failure:
        service.invoke({"sleep": 10})
    assert failure.value.error["errorType"] == "Sandbox.Timedout"
    pids = {service.invoke({})["pid"] for _ in range(4)}
    assert first["pid"] in pids or len(pids) <= 2  # a fresh container replaced the killed one
    assert all(isinstance(pid, int) for pid in pids)


def test_events_wait_their_turn_and_a_failed_one_is_retried_twice(service, tmp_path, capsys):
    record = tmp_path / "events"
    for _ in range(5):
        service.invoke_async({"record": str(record), "sleep": 0.3})
    wait_until(lambda: record.exists() and record.read_text().count("end") == 5, timeout=30)
    starts = sorted(json.loads(line)[1] for line in record.read_text().splitlines() if "end" not in line)
    ends = sorted(json.loads(line)[1] for line in record.read_text().splitlines() if "end" in line)
    assert starts[2] >= ends[0] - 0.05  # at most two at once: the third waited for a container

    failing = tmp_path / "failing"
    service.invoke_async({"record": str(failing), "fail": True})
    wait_until(lambda: '"event":"local.async_failed"' in capsys.readouterr().err, timeout=30, what="it to give up")
    assert len(failing.read_text().splitlines()) == 3  # the first try and two retries, no more


def test_boto3_invokes_through_the_local_invoke_api(service, lambda_client, tmp_path):
    arn = aws_events.function_arn()
    answer = lambda_client.invoke(FunctionName=arn, Payload=json.dumps({"echo": "héllo"}).encode())
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert json.loads(answer["Payload"].read())["echo"] == "héllo"
    assert answer["ExecutedVersion"] == "$LATEST"

    record = tmp_path / "queued"
    queued = lambda_client.invoke(
        FunctionName="jobqueue-local", InvocationType="Event", Payload=json.dumps({"record": str(record)}).encode()
    )
    assert queued["StatusCode"] == 202
    wait_until(lambda: record.exists() and "end" in record.read_text(), timeout=30)

    assert lambda_client.invoke(FunctionName=arn, InvocationType="DryRun")["StatusCode"] == 204

    failed = lambda_client.invoke(FunctionName=arn, Payload=b'{"fail": true}')
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "asked to fail")

    with pytest.raises(ClientError) as missing:
        lambda_client.invoke(FunctionName="another-function", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as bad:
        lambda_client.invoke(FunctionName=arn, Payload=b"{not json")
    assert bad.value.response["Error"]["Code"] == "InvalidRequestContentException"
