"""The local stack's SQS: SendMessage on the timer queue, in the AWS JSON
protocol boto3 speaks for SQS, on the stack's own port.

The function arms a wake by sending one message with DelaySeconds to its
timer queue (engine.timers). Here that message is held for its delay (one
thread, a heap, a condition: no polling), then delivered as the SQS event an
event source mapping sends, one record, to a container, on the path the
scheduled tick takes: Lambda's asynchronous queue, which keeps it while every
container is busy and runs it when one frees up. Messages still held at
shutdown are dropped, and the log says how many.

``serve`` points its containers' boto3 here (AWS_ENDPOINT_URL_SQS) and names
the queue (JOBQUEUE_TIMER_QUEUE_URL). http_server lets through only requests
signed (SigV4, service ``sqs``) with the run's credentials, under the
server's own Host and without an Origin, as for the Invoke API. Only
SendMessage, and only to this one queue: anything else is an SQS error in the
JSON protocol's shape (``__type`` and ``x-amzn-query-error``, which botocore
turns into the code and exception it raises against AWS). Nothing here runs
in the deployed function.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import itertools
import json
import re
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .. import log
from ..errors import BadRequest
from ..events.strict_json import parse_json
from .aws_events import ACCOUNT, region, sqs_attribute, sqs_record
from .lambda_service import Answer, Closed, Service

QUEUE_NAME = "jobqueue-timers"
QUEUE_PATH = f"/{ACCOUNT}/{QUEUE_NAME}"
TARGET_PREFIX = "AmazonSQS."
CONTENT_TYPE = "application/x-amz-json-1.0"
MAX_DELAY_SECONDS = 900  # SQS's limits for one message
MAX_MESSAGE_BYTES = 256 * 1024  # body, attribute names, types and values together
MAX_ATTRIBUTES = 10
# What SQS accepts in a message body and a string attribute (anything else: InvalidMessageContents).
_NOT_ALLOWED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
# The query-era codes SQS puts in x-amzn-query-error, for the errors whose shape name differs.
_QUERY_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
}


def queue_url(base_url: str) -> str:
    """The timer queue's URL on the stack at ``base_url`` (``http://127.0.0.1:8000``)."""
    return base_url.rstrip("/") + QUEUE_PATH


def queue_arn() -> str:
    return f"arn:aws:sqs:{region()}:{ACCOUNT}:{QUEUE_NAME}"


class SqsError(Exception):
    """An SQS error: the shape's name (``__type``), its status and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def sqs_error(status: int, code: str, message: str) -> Answer:
    """An error as SQS sends it in the JSON protocol: the shape in ``__type``, and the
    query-era code in ``x-amzn-query-error``, which botocore reports as the code."""
    fault = "Sender" if status < 500 else "Receiver"
    headers = [
        ("Content-Type", CONTENT_TYPE),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("x-amzn-query-error", f"{_QUERY_CODES.get(code, code)};{fault}"),
    ]
    return status, headers, json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()


def _invalid(message: str) -> SqsError:
    return SqsError("InvalidParameterValue", message)


def attributes_md5(attributes: dict[str, dict[str, Any]]) -> str:
    """SQS's MD5OfMessageAttributes: per attribute, by name, the name, the data type
    and the value, each prefixed with its length (4 bytes, big-endian), the value
    after a transport byte (1 string, 2 binary)."""
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        for part in (name.encode(), value["DataType"].encode()):
            digest.update(struct.pack(">I", len(part)) + part)
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            digest.update(b"\x02" + struct.pack(">I", len(raw)) + raw)
        else:
            raw = value["StringValue"].encode()
            digest.update(b"\x01" + struct.pack(">I", len(raw)) + raw)
    return digest.hexdigest()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class SqsService:
    """The timer queue: SendMessage answered, each message held for its delay, then
    delivered as an SQS event through ``service``'s asynchronous queue."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._held: list[tuple[float, int, dict[str, Any]]] = []  # (due, order, message): a heap
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._deliver_when_due, name="sqs-timers", daemon=True)
        self._thread.start()

    def close(self, grace: float = 5.0) -> None:
        """Stop delivering: messages still held are dropped (and counted in the log)."""
        with self._changed:
            self._closed = True
            dropped = len(self._held)
            self._held.clear()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(grace)
        log.info("local.sqs_stopped", queue=QUEUE_NAME, dropped=dropped)

    def held(self) -> int:
        with self._changed:
            return len(self._held)

    # --- the API ----------------------------------------------------------------------

    @staticmethod
    def handles(targets: Sequence[str]) -> bool:
        """A request for SQS: its X-Amz-Target names an SQS operation."""
        return any(target.strip().startswith(TARGET_PREFIX) for target in targets)

    def api(self, method: str, path: str, headers: Sequence[tuple[str, str]], body: bytes) -> Answer:
        """One SQS request (http_server lets through only requests signed with the run's
        credentials); SendMessage to the timer queue is the one that succeeds."""
        try:
            reply = self._send_message(method, path, {name.lower(): value for name, value in headers}, body)
        except SqsError as exc:
            return sqs_error(exc.status, exc.code, exc.message)
        answer = [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", str(uuid.uuid4()))]
        return 200, answer, json.dumps(reply).encode()

    def _send_message(self, method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        operation = headers.get("x-amz-target", "").strip()[len(TARGET_PREFIX) :]
        if method != "POST" or operation != "SendMessage":
            raise SqsError(
                "UnsupportedOperation", f"the local stack's SQS answers only POST SendMessage, not {operation[:50]}"
            )
        if headers.get("content-type", "").split(";")[0].strip().lower() != CONTENT_TYPE:
            raise SqsError("UnsupportedOperation", f"the local stack's SQS speaks the JSON protocol ({CONTENT_TYPE})")
        try:
            request = parse_json(body) if body else None  # too deep or not JSON: BadRequest
        except BadRequest:
            request = None
        if not isinstance(request, dict):
            raise _invalid("The request body must be a JSON object.")
        url = request.get("QueueUrl")
        if not isinstance(url, str) or not url:
            raise SqsError("MissingParameter", "The request must contain the parameter QueueUrl.")
        if path.split("?", 1)[0] not in ("/", QUEUE_PATH) or urlsplit(url).path.rstrip("/") != QUEUE_PATH:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        message = _message(request)
        delay = message.pop("delay")
        with self._changed:
            if self._closed:
                raise SqsError("ServiceUnavailable", "the local stack is shutting down", 503)
            heapq.heappush(self._held, (time.monotonic() + delay, next(self._order), message))
            self._changed.notify()
        log.debug("local.sqs_send", queue=QUEUE_NAME, message_id=message["messageId"], delay_seconds=delay)
        reply = {"MessageId": message["messageId"], "MD5OfMessageBody": message["md5OfBody"]}
        if "md5OfMessageAttributes" in message:
            reply["MD5OfMessageAttributes"] = message["md5OfMessageAttributes"]
        return reply

    # --- delivery ---------------------------------------------------------------------

    def _deliver_when_due(self) -> None:
        while True:
            with self._changed:
                while True:
                    if self._closed:
                        return
                    wait = self._held[0][0] - time.monotonic() if self._held else None
                    if wait is not None and wait <= 0:
                        message = heapq.heappop(self._held)[2]
                        break
                    self._changed.wait(wait)
            self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        """One record, as an event source mapping sends it, to Lambda's asynchronous
        queue: a container runs it when one is free."""
        record = sqs_record(message, sender=self.service.credentials.access_key, queue_arn=queue_arn())
        try:
            self.service.invoke_async({"Records": [record]}, reason=f"sqs {QUEUE_NAME}")
        except Closed:
            log.info("local.sqs_stopped", queue=QUEUE_NAME, dropped=1)


def _message(request: dict[str, Any]) -> dict[str, Any]:
    """The message a SendMessage request describes, checked as SQS checks it."""
    body = request.get("MessageBody")
    if not isinstance(body, str) or not body:
        raise SqsError("MissingParameter", "The request must contain the parameter MessageBody.")
    if _NOT_ALLOWED.search(body):
        raise SqsError("InvalidMessageContents", "Invalid characters found. Deleted message body.")
    delay = request.get("DelaySeconds", 0)
    delay = 0 if delay is None else delay
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY_SECONDS:
        raise _invalid(
            f"Value {str(delay)[:20]} for parameter DelaySeconds is invalid. "
            f"Reason: DelaySeconds must be >= 0 and <= {MAX_DELAY_SECONDS}."
        )
    attributes = _attributes(request.get("MessageAttributes"))
    size = len(body.encode()) + sum(
        len(name.encode())
        + len(value["DataType"].encode())
        + len(value.get("BinaryValue") or value["StringValue"].encode())
        for name, value in attributes.items()
    )
    if size > MAX_MESSAGE_BYTES:
        raise _invalid(
            f"One or more parameters are invalid. Reason: Message must be shorter than {MAX_MESSAGE_BYTES} bytes."
        )
    message: dict[str, Any] = {
        "messageId": str(uuid.uuid4()),
        "body": body,
        "sentTimestamp": str(int(time.time() * 1000)),
        "messageAttributes": {name: sqs_attribute(value) for name, value in attributes.items()},
        "md5OfBody": _md5(body),
        "delay": delay,
    }
    if attributes:
        message["md5OfMessageAttributes"] = attributes_md5(attributes)
    return message


def _attributes(given: Any) -> dict[str, dict[str, Any]]:
    """MessageAttributes checked; binary values decoded from base64."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise _invalid("MessageAttributes must be a map of names to attribute values.")
    if len(given) > MAX_ATTRIBUTES:
        raise _invalid(f"Number of message attributes [{len(given)}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].")
    checked: dict[str, dict[str, Any]] = {}
    for name, value in given.items():
        if not _ATTRIBUTE_NAME.fullmatch(name) or name.lower().startswith(("aws.", "amazon.")):
            raise _invalid(f"Message attribute name '{name[:256]}' is invalid.")
        kind = value.get("DataType") if isinstance(value, dict) else None
        if not isinstance(kind, str) or kind.split(".", 1)[0] not in ("String", "Number", "Binary"):
            raise _invalid(f"The message attribute '{name}' has an invalid message attribute type.")
        if kind.startswith("Binary"):
            try:
                raw = base64.b64decode(value.get("BinaryValue") or "", validate=True)
            except (binascii.Error, TypeError, ValueError):
                raw = b""
            if not raw:
                raise _invalid(f"The message attribute '{name}' must contain a non-empty binary value.")
            checked[name] = {"DataType": kind, "BinaryValue": raw}
        else:
            text = value.get("StringValue")
            if not isinstance(text, str) or not text:
                raise _invalid(f"The message attribute '{name}' must contain a non-empty message attribute value.")
            if _NOT_ALLOWED.search(text):
                raise SqsError("InvalidMessageContents", f"The message attribute '{name}' has invalid characters.")
            checked[name] = {"DataType": kind, "StringValue": text}
    return checked
