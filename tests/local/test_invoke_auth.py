"""Who the local stack answers: its Invoke API runs any event it is given, and any
web page in the developer's browser can send requests to a port on localhost
(with ``Content-Type: text/plain`` no preflight stops it), or rebind its own
name to 127.0.0.1. So the Invoke API answers only requests signed with the
run's credentials, none from a browser (Origin) and none under a foreign Host;
a body it cannot parse, however deep, is a 400, and a request no container
takes in time is turned away with Retry-After rather than dropped.

The server runs in-process here, in front of a small function of the tests'
own (the one of test_lambda_service), so that what ran can be seen.
"""

from __future__ import annotations

import datetime
import http.client
import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import pytest

from jobqueue.local import aws_events
from jobqueue.local.http_server import make_server
from jobqueue.local.lambda_service import Credentials, Service
from tests.local.test_lambda_service import FUNCTION
from tests.support.localstack import invoke_request
from tests.support.waiting import wait_until

Local = tuple[Service, int]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Local]]:
    """Start the service and its server on a free port: ``start(size=1, host=..., queue_wait=...)``."""
    (tmp_path / "app.py").write_text(FUNCTION)
    sys.path.insert(0, str(tmp_path))  # the containers are spawned with this path: they import this app
    saved = sys.modules.pop("app", None)
    running: list[tuple[Service, Any]] = []

    def start(size: int = 1, host: str = "127.0.0.1", **options: Any) -> Local:
        service = Service(size, 10.0, aws_events.function_arn(), **options)
        service.start()
        server = make_server(host, 0, service)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append((service, server))
        return service, server.server_address[1]

    try:
        yield start
    finally:
        for service, server in running:
            server.shutdown()
            server.server_close()
            service.close(5)
        sys.path.remove(str(tmp_path))
        if saved is not None:
            sys.modules["app"] = saved


def keys(service: Service) -> tuple[str, str]:
    return service.credentials.access_key, service.credentials.secret_key


def error_code(headers: dict[str, str], body: bytes) -> str:
    """The error as botocore reads it: the type header, and Lambda's JSON body beside it."""
    assert json.loads(body)["message"]
    return headers["x-amzn-ErrorType"]


def recorded(record: Path) -> int:
    """How many invocations of the function wrote to ``record``."""
    return len(record.read_text().splitlines()) if record.exists() else 0


def test_only_requests_signed_with_the_runs_credentials_are_invoked(start, tmp_path):
    service, port = start()
    record = tmp_path / "runs"
    event = json.dumps({"record": str(record), "echo": "signed"}).encode()

    status, _, body = invoke_request(port, event, credentials=keys(service))
    assert (status, json.loads(body)["echo"]) == (200, "signed")
    assert recorded(record) == 2  # its start and its end: the one run so far

    # A web page's "simple" request: no credentials, a text/plain body.
    status, headers, body = invoke_request(port, event, headers={"Content-Type": "text/plain"})
    assert (status, error_code(headers, body)) == (403, "MissingAuthenticationTokenException")
    # The well-known pair the local stack used to give its containers, another key, a wrong secret.
    status, headers, body = invoke_request(port, event, credentials=("local", "local"))
    assert (status, error_code(headers, body)) == (403, "UnrecognizedClientException")
    status, headers, body = invoke_request(port, event, credentials=(service.credentials.access_key, "wrong"))
    assert (status, error_code(headers, body)) == (403, "InvalidSignatureException")
    # Signed, then another body sent under the same signature; a signature edited by hand.
    other = json.dumps({"record": str(record), "echo": "swapped"}).encode()
    status, headers, body = invoke_request(port, event, credentials=keys(service), sent_body=other)
    assert (status, error_code(headers, body)) == (403, "InvalidSignatureException")
    status, headers, body = invoke_request(
        port, event, credentials=keys(service), headers={"X-Amz-Content-SHA256": "0" * 64}
    )
    assert (status, error_code(headers, body)) == (403, "InvalidSignatureException")

    assert recorded(record) == 2  # none of those ran


def test_a_signature_from_long_ago_is_refused(start, monkeypatch):
    service, port = start()
    ten_minutes_ago = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: ten_minutes_ago)
    status, headers, body = invoke_request(port, credentials=keys(service))
    assert (status, error_code(headers, body)) == (403, "InvalidSignatureException")
    assert "expired" in json.loads(body)["message"]


def test_a_request_from_a_web_page_is_refused_even_when_signed(start, tmp_path):
    service, port = start()
    record = tmp_path / "runs"
    event = json.dumps({"record": str(record)}).encode()
    status, headers, body = invoke_request(
        port, event, credentials=keys(service), headers={"Origin": "https://attacker.example"}
    )
    assert (status, error_code(headers, body)) == (403, "AccessDeniedException")
    status, headers, body = invoke_request(port, event, credentials=keys(service), headers={"Origin": "null"})
    assert (status, error_code(headers, body)) == (403, "AccessDeniedException")
    assert recorded(record) == 0


def test_only_a_loopback_host_reaches_the_invoke_api(start, tmp_path):
    """A page whose name was rebound to 127.0.0.1 sends its own name as Host."""
    service, port = start()
    record = tmp_path / "runs"
    event = json.dumps({"record": str(record)}).encode()
    for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1:{port + 1}", f"10.0.0.1:{port}"):
        status, headers, body = invoke_request(port, event, credentials=keys(service), host=host)
        assert (status, error_code(headers, body)) == (403, "AccessDeniedException"), host
    assert recorded(record) == 0
    for host in (f"localhost:{port}", f"LOCALHOST:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        status, _, body = invoke_request(port, event, credentials=keys(service), host=host)
        assert status == 200, (host, body)


def http_get(port: int, path: str, host: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_the_api_takes_loopback_hosts_while_the_server_listens_on_loopback_alone(start):
    _, port = start()
    assert http_get(port, "/health", f"localhost:{port}")[0] == 200
    status, _, body = http_get(port, "/health", f"attacker.example:{port}")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})


def test_listening_wider_the_api_takes_any_host_and_the_invoke_api_still_only_loopback(start):
    service, port = start(host="0.0.0.0")
    assert http_get(port, "/health", f"laptop.lan:{port}")[0] == 200  # asked for: --host 0.0.0.0
    status, headers, body = invoke_request(port, credentials=keys(service), host=f"laptop.lan:{port}")
    assert (status, error_code(headers, body)) == (403, "AccessDeniedException")
    assert invoke_request(port, credentials=keys(service))[0] == 200


def test_a_deeply_nested_body_is_a_400_and_the_server_keeps_answering(start):
    service, port = start()
    deep = b"[" * 100_000 + b"]" * 100_000  # past the parser's recursion limit
    for kind in ("RequestResponse", "Event"):
        status, headers, body = invoke_request(
            port, deep, credentials=keys(service), headers={"X-Amz-Invocation-Type": kind}
        )
        assert (status, error_code(headers, body)) == (400, "InvalidRequestContentException"), kind
    status, _, body = invoke_request(port, b'{"echo": "still here"}', credentials=keys(service))
    assert (status, json.loads(body)["echo"]) == (200, "still here")


def test_a_request_no_container_takes_in_time_is_turned_away_with_retry_after(start, tmp_path):
    """One container, busy for a while: a request waits its short while, then gets
    503 (through the gateway) or Lambda's 429 (Invoke API) with Retry-After, and is
    never run; once the container is free, requests are served again."""
    service, port = start(size=1, queue_wait=0.3)
    record = tmp_path / "runs"
    busy = threading.Thread(target=service.invoke, args=({"record": str(record), "sleep": 3},))
    busy.start()
    try:
        wait_until(lambda: recorded(record) == 1, timeout=30, what="the container to be busy")
        status, headers, body = http_get(port, "/jobs", f"127.0.0.1:{port}")
        assert (status, headers["Retry-After"], json.loads(body)) == (503, "1", {"message": "Service Unavailable"})
        event = json.dumps({"record": str(record)}).encode()
        status, headers, body = invoke_request(port, event, credentials=keys(service))
        assert (status, headers["Retry-After"], error_code(headers, body)) == (429, "1", "TooManyRequestsException")
    finally:
        busy.join()
    assert recorded(record) == 2  # the busy one's start and end: neither turned-away request ran
    assert http_get(port, "/jobs", f"127.0.0.1:{port}")[0] == 200
    assert recorded(record) == 2


def test_fresh_credentials_each_time_and_never_the_secret_in_a_repr():
    one, two = Credentials.fresh(), Credentials.fresh()
    assert one != two and len(one.secret_key) == 64
    assert one.secret_key not in repr(one)
