"""Events, contexts and gateway answers as AWS builds them, for the local stack.

Real HTTP requests become API Gateway HTTP API (payload 2.0) events and the
handler's answers become HTTP responses by the gateway's rules; a timer's tick
is an EventBridge scheduled event; a message of the local SQS is a record of
an event source mapping's SQS event; each invocation gets a context shaped
like the Python runtime's. Nothing here runs in the deployed function.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import time
import uuid
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

INVOCATION_TIMEOUT = 60.0  # seconds: the default Timeout in template.yaml (must exceed the 30 s job timeout)
FUNCTION_NAME = "jobqueue-local"
ACCOUNT = "000000000000"
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})
_GATEWAY_HEADERS = frozenset({"x-forwarded-proto", "x-forwarded-for"})


def region() -> str:
    """The local stack's region: the configured one, else a real region name, so
    that AWS's clients accept the function's ARN."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def function_arn() -> str:
    return f"arn:aws:lambda:{region()}:{ACCOUNT}:function:{FUNCTION_NAME}"


def http_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for one request."""
    url = urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        elif name not in _GATEWAY_HEADERS:
            merged[name] = f"{merged[name]},{value}" if name in merged else value
    # What API Gateway itself adds (overwriting any the client sent), with this
    # server's plain HTTP in place of the gateway's HTTPS.
    merged.update({"x-forwarded-proto": "http", "x-forwarded-for": source_ip})
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path or "/",
        "rawQueryString": url.query,
        "headers": merged,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": merged.get("host", "localhost").split(".")[0],
            "http": {
                "method": method,
                "path": url.path or "/",
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if url.query:
        event["queryStringParameters"] = _query_parameters(url.query)
    if body:
        _attach_body(event, body)
    return event


def _query_parameters(query: str) -> dict[str, str]:
    """Repeated parameters are joined with commas, as API Gateway does."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


def _attach_body(event: dict[str, Any], body: bytes) -> None:
    try:
        event["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True


def scheduled_event() -> dict[str, Any]:
    """An EventBridge rule's scheduled event, as the deployed schedule sends it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region(),
        "resources": [f"arn:aws:events:{region()}:{ACCOUNT}:rule/jobqueue-drain"],
        "detail": {},
    }


def sqs_record(message: dict[str, Any], *, sender: str, queue_arn: str) -> dict[str, Any]:
    """One record of the SQS event an event source mapping sends, for a message of the
    local SQS (sqs_service: messageId, body, sentTimestamp, messageAttributes as
    ``sqs_attribute`` makes them, md5OfBody, and md5OfMessageAttributes with them)."""
    record: dict[str, Any] = {
        "messageId": message["messageId"],
        "receiptHandle": "AQEB" + base64.b64encode(secrets.token_bytes(96)).decode(),
        "body": message["body"],
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": message["sentTimestamp"],
            "SenderId": sender,
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": message["messageAttributes"],
        "md5OfBody": message["md5OfBody"],
    }
    if message["messageAttributes"]:
        record["md5OfMessageAttributes"] = message["md5OfMessageAttributes"]
    return {**record, "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": queue_arn.split(":")[3]}


def sqs_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute (DataType, and StringValue or BinaryValue in bytes) as an
    SQS event record carries it."""
    if "BinaryValue" in value:
        first: dict[str, Any] = {"binaryValue": base64.b64encode(value["BinaryValue"]).decode()}
    else:
        first = {"stringValue": value["StringValue"]}
    return {**first, "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}


class LambdaContext:
    """Lambda's context object as the Python runtime (awslambdaric) builds it: the
    same public attributes and methods, and the same clock (a deadline in epoch
    milliseconds). The runtime's class is not importable here, since it is no
    dependency of the function; a test holds the two side by side."""

    def __init__(
        self,
        timeout_seconds: float = INVOCATION_TIMEOUT,
        *,
        request_id: str | None = None,
        invoked_function_arn: str | None = None,
    ) -> None:
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.function_name = FUNCTION_NAME
        self.function_version = "$LATEST"
        self.invoked_function_arn = invoked_function_arn or function_arn()
        self.memory_limit_in_mb = "512"  # the runtime reads it from the environment: a string
        self.log_group_name = "/aws/lambda/jobqueue-local"
        self.log_stream_name = "local"
        self.tenant_id = None
        self.client_context = None  # only mobile SDK invocations carry these two
        self.identity = SimpleNamespace(cognito_identity_id=None, cognito_identity_pool_id=None)
        self._epoch_deadline_time_in_ms = int(time.time() * 1000 + timeout_seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._epoch_deadline_time_in_ms - int(time.time() * 1000))

    def w3c(self) -> dict[str, str]:
        """The W3C trace context of the invocation: none locally."""
        return {}

    def log(self, msg: Any) -> None:
        sys.stdout.write(str(msg))


def http_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """What API Gateway makes of a handler's result (payload format 2.0 rules)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, [("Content-Type", "application/json")], json.dumps(result, default=str).encode()
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(c)) for c in result.get("cookies") or [])
    headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, payload


def gateway_error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """API Gateway's own answer when the function cannot give one."""
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()
