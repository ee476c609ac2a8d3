"""The local stack's SQS: the timer queue the function sends its wakes to, called
with the real boto3 client (botocore's signer, the JSON protocol) as on AWS.

A message is held for its DelaySeconds, then delivered to a container as the
SQS event an event source mapping sends; requests not signed with the run's
credentials, or sent from a web page, are refused as the Invoke API refuses
them, and bad input gets SQS's errors, which boto3 raises as it does on AWS.

In-process first, in front of a small function of the test's own that writes
down each event it gets; then ``serve`` itself, whose function enqueues the
message's body as a job.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from jobqueue import log
from jobqueue.local import aws_events
from jobqueue.local.http_server import make_server
from jobqueue.local.lambda_service import Credentials, Service
from jobqueue.local.serve import container_env
from jobqueue.local.sqs_service import QUEUE_NAME, SqsService, attributes_md5, queue_url
from tests.support.aws import SAMPLES
from tests.support.localstack import FIXED_CREDENTIALS, Stack, call, free_port, stack_env
from tests.support.waiting import wait_until

FUNCTION = """
import json, os, time

def lambda_handler(event, context):
    with open(os.environ["EVENTS"], "a") as fh:
        fh.write(json.dumps({"at": time.time(), "event": event}) + "\\n")
    time.sleep(event.get("sleep", 0) if isinstance(event, dict) else 0)
    return {"batchItemFailures": []}
"""
TIMER = {"jobqueue": {"DataType": "String", "StringValue": "timer"}}

Local = tuple[Service, SqsService, str]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Local]]:
    """The service, its SQS and its server on a free port: ``start(size=1)`` -> (service, sqs, url)."""
    (tmp_path / "app.py").write_text(FUNCTION)
    sys.path.insert(0, str(tmp_path))  # the containers are spawned with this path: they import this app
    saved = sys.modules.pop("app", None)
    running: list[tuple[Service, SqsService, Any]] = []

    def start(size: int = 1) -> Local:
        service = Service(size, 10.0, aws_events.function_arn(), {"EVENTS": str(tmp_path / "events")})
        sqs = SqsService(service)
        service.start()
        sqs.start()
        server = make_server("127.0.0.1", 0, service, sqs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append((service, sqs, server))
        return service, sqs, f"http://127.0.0.1:{server.server_address[1]}"

    try:
        yield start
    finally:
        for service, sqs, server in running:
            server.shutdown()
            server.server_close()
            sqs.close()
            service.close(5)
        sys.path.remove(str(tmp_path))
        if saved is not None:
            sys.modules["app"] = saved


def sqs_client(url: str, credentials: Credentials | tuple[str, str] | None, **config: Any) -> Any:
    """boto3's SQS client, pointed at the local stack as serve points the containers' at it."""
    keys = (credentials.access_key, credentials.secret_key) if isinstance(credentials, Credentials) else credentials
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=keys[0] if keys else "unused",
        aws_secret_access_key=keys[1] if keys else "unused",
        config=Config(retries={"max_attempts": 1}, **config),
    )


def delivered(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "events"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def raw_send(url: str, credentials: Credentials, scope: str, host: str | None = None) -> tuple[int, str]:
    """SendMessage signed by botocore's signer for the service ``scope``, sent as it is;
    returns the status and the code botocore would read (x-amzn-query-error)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"QueueUrl": queue_url(url), "MessageBody": "raw"}).encode()
    request = AWSRequest(method="POST", url=f"{url}/", data=body)
    request.headers["Host"] = host or f"127.0.0.1:{port}"
    request.headers["Content-Type"] = "application/x-amz-json-1.0"
    request.headers["X-Amz-Target"] = "AmazonSQS.SendMessage"
    SigV4Auth(BotoCredentials(credentials.access_key, credentials.secret_key), scope, "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return response.status, (response.getheader("x-amzn-query-error") or "").split(";")[0]
    finally:
        conn.close()


def test_a_delayed_message_arrives_as_an_sqs_event_after_its_delay(start, tmp_path):
    service, _, url = start()
    client = sqs_client(url, service.credentials)
    body = json.dumps({"jobqueue": "timer", "due": "2030-01-01T00:00:00+00:00"})
    sent = time.time()
    answer = client.send_message(QueueUrl=queue_url(url), MessageBody=body, DelaySeconds=2, MessageAttributes=TIMER)
    wait_until(lambda: delivered(tmp_path), timeout=10, what="the message to be delivered")
    (got,) = delivered(tmp_path)
    assert 2.0 <= got["at"] - sent < 3.5, got["at"] - sent

    (record,) = got["event"]["Records"]  # one record, with every field of a real one
    (sample, _) = json.loads((SAMPLES / "sqs.json").read_text())["Records"]
    assert set(sample) | {"md5OfMessageAttributes"} == set(record)
    assert set(sample["attributes"]) == set(record["attributes"])
    assert (record["messageId"], record["body"], record["eventSource"]) == (answer["MessageId"], body, "aws:sqs")
    assert record["eventSourceARN"] == f"arn:aws:sqs:{aws_events.region()}:000000000000:{QUEUE_NAME}"
    assert record["awsRegion"] == aws_events.region()
    assert record["messageAttributes"] == {
        "jobqueue": {"stringValue": "timer", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }
    assert record["md5OfBody"] == answer["MD5OfMessageBody"]
    assert record["md5OfMessageAttributes"] == answer["MD5OfMessageAttributes"]
    assert record["attributes"]["SenderId"] == service.credentials.access_key
    assert int(record["attributes"]["SentTimestamp"]) <= int(record["attributes"]["ApproximateFirstReceiveTimestamp"])


def test_md5s_are_the_ones_sqs_computes():
    """MD5OfMessageAttributes by the algorithm SQS documents: length-prefixed name, type, transport byte, value."""
    from hashlib import md5

    assert attributes_md5({}) == md5(b"").hexdigest()
    attributes = {"jobqueue": {"DataType": "String", "StringValue": "timer"}}
    expected = md5(b"\0\0\0\x08jobqueue\0\0\0\x06String\x01\0\0\0\x05timer").hexdigest()
    assert attributes_md5(attributes) == expected
    binary = {"b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    assert attributes_md5(binary) == md5(b"\0\0\0\x01b\0\0\0\x06Binary\x02\0\0\0\x02\x00\x01").hexdigest()


def test_messages_wait_for_a_free_container_and_are_not_dropped(start, tmp_path):
    service, _, url = start(size=1)
    busy = threading.Thread(target=service.invoke, args=({"sleep": 2},))
    busy.start()
    wait_until(lambda: delivered(tmp_path), timeout=30, what="the container to be busy")
    client = sqs_client(url, service.credentials)
    for n in range(3):
        client.send_message(QueueUrl=queue_url(url), MessageBody=f"message {n}", MessageAttributes=TIMER)
    busy.join()
    wait_until(lambda: len(delivered(tmp_path)) == 4, timeout=15, what="the three messages to be delivered")
    bodies = [got["event"]["Records"][0]["body"] for got in delivered(tmp_path)[1:]]
    assert sorted(bodies) == ["message 0", "message 1", "message 2"]


def test_messages_held_at_shutdown_are_dropped_and_counted(start, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(log, "_threshold", log.LEVELS["INFO"])
    service, sqs, url = start()
    client = sqs_client(url, service.credentials)
    for _ in range(2):
        client.send_message(QueueUrl=queue_url(url), MessageBody="later", DelaySeconds=900)
    assert sqs.held() == 2
    sqs.close()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (stopped,) = [line for line in lines if line["event"] == "local.sqs_stopped"]
    assert (stopped["level"], stopped["dropped"]) == ("INFO", 2)
    assert delivered(tmp_path) == []


def test_unsigned_requests_and_requests_from_web_pages_are_refused(start, tmp_path):
    service, _, url = start()
    unsigned = sqs_client(url, None, signature_version=UNSIGNED)
    with pytest.raises(ClientError) as caught:
        unsigned.send_message(QueueUrl=queue_url(url), MessageBody="x", MessageAttributes=TIMER)
    assert error_of(caught) == (403, "MissingAuthenticationTokenException")
    wrong = sqs_client(url, (service.credentials.access_key, "not-the-secret"))
    with pytest.raises(ClientError) as caught:
        wrong.send_message(QueueUrl=queue_url(url), MessageBody="x")
    assert error_of(caught) == (403, "InvalidSignatureException")
    # Signed with the run's credentials, Origin included in the signature: still a web page's.
    signed = sqs_client(url, service.credentials)
    signed.meta.events.register(
        "before-sign.sqs.SendMessage", lambda request, **_: request.headers.add_header("Origin", "null")
    )
    with pytest.raises(ClientError) as caught:
        signed.send_message(QueueUrl=queue_url(url), MessageBody="x", MessageAttributes=TIMER)
    assert error_of(caught) == (403, "AccessDeniedException")
    # A signature for Lambda (the Invoke API's) does not open SQS; nor does a foreign Host.
    status, code = raw_send(url, service.credentials, "lambda")
    assert (status, code) == (403, "InvalidSignatureException")
    port = int(url.rsplit(":", 1)[1])
    status, code = raw_send(url, service.credentials, "sqs", host=f"attacker.example:{port}")
    assert (status, code) == (403, "AccessDeniedException")
    assert raw_send(url, service.credentials, "sqs") == (200, "")  # the same request, signed for SQS
    wait_until(lambda: delivered(tmp_path), timeout=10, what="the signed message")
    (got,) = delivered(tmp_path)  # none of those refused was held, let alone delivered
    assert got["event"]["Records"][0]["body"] == "raw"


def test_bad_input_gets_the_errors_sqs_sends(start, tmp_path):
    service, _, url = start()
    client = sqs_client(url, service.credentials)
    with pytest.raises(ClientError) as caught:
        client.send_message(QueueUrl=queue_url(url), MessageBody="x", DelaySeconds=901)
    assert error_of(caught) == (400, "InvalidParameterValue")
    assert "DelaySeconds" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        client.send_message(QueueUrl=queue_url(url), MessageBody="x", DelaySeconds=-1)
    assert error_of(caught) == (400, "InvalidParameterValue")
    with pytest.raises(ClientError) as caught:
        client.send_message(QueueUrl=queue_url(url), MessageBody="x" * (256 * 1024 + 1))
    assert error_of(caught) == (400, "InvalidParameterValue")
    with pytest.raises(client.exceptions.QueueDoesNotExist) as caught:
        client.send_message(QueueUrl=f"{url}/000000000000/another-queue", MessageBody="x")
    assert error_of(caught) == (400, "AWS.SimpleQueueService.NonExistentQueue")  # what boto3 reports on AWS
    with pytest.raises(ClientError) as caught:
        client.send_message(QueueUrl=queue_url(url), MessageBody="\x00")
    assert error_of(caught) == (400, "InvalidMessageContents")
    with pytest.raises(ClientError) as caught:
        client.receive_message(QueueUrl=queue_url(url))
    assert error_of(caught) == (400, "AWS.SimpleQueueService.UnsupportedOperation")
    answer = client.send_message(QueueUrl=queue_url(url), MessageBody="x" * (256 * 1024))  # the largest there is
    assert answer["MessageId"] and "MD5OfMessageAttributes" not in answer
    wait_until(lambda: delivered(tmp_path), timeout=10, what="the largest message to be delivered")
    assert "md5OfMessageAttributes" not in delivered(tmp_path)[0]["event"]["Records"][0]


def test_serve_points_the_containers_at_its_timer_queue_unless_told_otherwise():
    credentials = Credentials.fresh()
    url = "http://127.0.0.1:8000"
    env = container_env(url, 4, credentials, {"AWS_ENDPOINT_URL_SQS": "http://elsewhere:4566"})
    assert env["JOBQUEUE_TIMER_QUEUE_URL"] == f"{url}/000000000000/jobqueue-timers"
    assert env["AWS_ENDPOINT_URL_SQS"] == url  # its queue lives here, whatever endpoint the shell named
    own = {"JOBQUEUE_TIMER_QUEUE_URL": "http://127.0.0.1:9324/000000000000/mine"}
    assert container_env(url, 4, credentials, own)["JOBQUEUE_TIMER_QUEUE_URL"] == own["JOBQUEUE_TIMER_QUEUE_URL"]
    off = container_env(url, 4, credentials, own, timers=False)
    assert "JOBQUEUE_TIMER_QUEUE_URL" not in off and "AWS_ENDPOINT_URL_SQS" not in off


# --- serve ------------------------------------------------------------------------------


def test_on_serve_a_delayed_message_reaches_the_function_on_time(
    server_env: dict[str, str], database: Any, tmp_path: Path, stacks: list[Stack]
) -> None:
    """No drain runs (the schedule is a minute away): the function gets the message,
    2 s after it was sent, as an SQS event, and enqueues its body as a job."""
    token = "sqs-test-token-0123456789abcdef-0123"
    stack = Stack(stack_env(**server_env, JOBQUEUE_API_TOKEN=token), tmp_path, free_port(), ("--drain-every", "60"))
    stacks.append(stack)
    url = stack.wait_ready()
    assert stack.printed("timers") == f"{url}/000000000000/jobqueue-timers"
    client = sqs_client(url, FIXED_CREDENTIALS)
    marker = f"sqs-{time.time_ns()}"
    body = {"task": "echo", "payload": {"marker": marker}, "idempotency_key": marker}
    sent = time.time()
    client.send_message(QueueUrl=stack.printed("timers"), MessageBody=json.dumps(body), DelaySeconds=2)

    def job() -> dict[str, Any] | None:
        status, answer = call("GET", f"{url}/jobs?task=echo&limit=100", token=token)
        assert status == 200, answer
        return next((j for j in answer["jobs"] if (j.get("payload") or {}).get("marker") == marker), None)

    found = wait_until(job, timeout=10, what="the message's job")
    created = datetime.fromisoformat(found["created_at"].replace("Z", "+00:00")).timestamp()
    assert 2.0 <= created - sent < 3.5, created - sent
    assert stack.interrupt() == 0
    assert '"reason":"sqs jobqueue-timers"' in stack.logs()


def test_serve_no_timers_leaves_them_off(
    server_env: dict[str, str], database: Any, tmp_path: Path, stacks: list[Stack]
) -> None:
    token = "sqs-test-token-0123456789abcdef-0123"
    env = stack_env(**server_env, JOBQUEUE_API_TOKEN=token, JOBQUEUE_TIMER_QUEUE_URL="http://127.0.0.1:1/0/x")
    stack = Stack(env, tmp_path, free_port(), ("--drain-every", "60", "--no-timers"))
    stacks.append(stack)
    url = stack.wait_ready()
    assert stack.printed("timers") == "off"
    client = sqs_client(url, FIXED_CREDENTIALS)
    with pytest.raises(ClientError) as caught:  # no SQS here: the request goes to the function's API
        client.send_message(QueueUrl=f"{url}/000000000000/jobqueue-timers", MessageBody="x")
    assert error_of(caught) == (404, "404")  # the function's own "no route for POST /"
    assert stack.interrupt() == 0
    assert '"event":"local.sqs' not in stack.logs()
