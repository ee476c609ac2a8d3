"""The local stack's Lambda service: warm containers in worker processes, and
Lambda's Invoke API in front of them.

Each container is a process that imported ``app`` once (its cold start) and
then runs one invocation at a time in its main thread, with its own database
connection, as a Lambda execution environment does. Requests (HTTP through
the gateway, RequestResponse invokes) take the next free container; Event
invokes (schedule ticks, drains starting drains, wake-ups) wait in a queue
as Lambda's asynchronous queue does, and one that fails is retried twice.
A request that no container takes within a short wait is turned away (Busy),
as Lambda throttles, rather than left to pile up. An invocation that outlives
its timeout loses its container, as in Lambda.

The handler reaches the Invoke API through boto3, with the standard
AWS_ENDPOINT_URL_LAMBDA pointing here, so the real client code runs. The
containers sign with ``credentials``, made for this run, and the server in
front (http_server) lets through only Invoke requests signed with them.
Nothing here runs in the deployed function.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import secrets
import threading
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .. import log
from ..errors import BadRequest
from ..events.strict_json import parse_json
from .aws_events import FUNCTION_NAME

INVOKE_PREFIX = "/2015-03-31/functions/"
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # Lambda's limits, request and response
MAX_ASYNC_PAYLOAD = 1024 * 1024
ASYNC_RETRY_DELAYS = (1.0, 2.0)  # Lambda waits about 1 and 2 minutes; seconds here
QUEUE_WAIT = 5.0  # how long a request waits for a free container before it is turned away
RETRY_AFTER = "1"  # seconds, in the Retry-After of a request turned away

Answer = tuple[int, list[tuple[str, str]], bytes]


class InvocationFailed(Exception):
    """The function raised (or timed out): Lambda's error document is in ``error``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("errorMessage", "invocation failed"))
        self.error = error


class Closed(Exception):
    """The service is shutting down and takes no more invocations."""


class Busy(Exception):
    """No container took the request within the wait: every one is busy (Lambda throttles)."""


@dataclass(frozen=True)
class Credentials:
    """The access key the containers sign their Invoke requests with: the only one
    the Invoke API accepts. Fresh for each run, so no page or script can know it."""

    access_key: str
    secret_key: str

    @classmethod
    def fresh(cls) -> Credentials:
        return cls(secrets.token_hex(10).upper(), secrets.token_hex(32))

    def __repr__(self) -> str:
        return f"Credentials({self.access_key!r}, ...)"  # never the secret, in a log or a traceback


@dataclass
class _Call:
    event: Any
    sync: bool
    started: threading.Event = field(default_factory=threading.Event)  # a container took it
    abandoned: bool = False  # its caller stopped waiting: no container runs it
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    attempt: int = 1
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _container_main(conn: Any, env: dict[str, str], timeout: float, arn: str) -> None:
    """A container's life: cold start, then one invocation at a time."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service stops us; Ctrl-C is for it
    os.environ.update(env)
    import app  # the cold start

    from .aws_events import LambdaContext

    while True:
        message = conn.recv()
        if message is None:
            return
        request_id, event = message
        context = LambdaContext(timeout, request_id=request_id, invoked_function_arn=arn)
        try:
            conn.send(("ok", app.lambda_handler(event, context)))
        except Exception as exc:  # noqa: BLE001 - reported as Lambda reports an unhandled error
            conn.send(("error", error_document(exc)))


def error_document(exc: BaseException) -> dict[str, Any]:
    """Lambda's body for an unhandled error."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


class _Container:
    """One worker process and the parent-side thread that feeds it calls."""

    def __init__(self, service: Service, number: int) -> None:
        self.service = service
        self.number = number
        self.process: Any = None
        self.conn: Any = None

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: a real cold start
        parent, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_container_main,
            args=(child, self.service.env, self.service.timeout, self.service.arn),
            name=f"jobqueue-container-{self.number}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.conn = parent

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        self.process = None

    def run(self, call: _Call) -> None:
        """Send one call and wait for its answer, within the function's timeout."""
        if self.process is None or not self.process.is_alive():
            self.start()
        self.conn.send((call.request_id, call.event))
        if not self.conn.poll(self.service.timeout + 1.0):
            log.warning("local.invocation_timed_out", request_id=call.request_id, limit=self.service.timeout)
            self.process.kill()  # Lambda discards a timed-out environment
            self.process.join(2.0)
            self.process = None
            raise InvocationFailed(
                {
                    "errorMessage": f"Task timed out after {self.service.timeout:.2f} seconds",
                    "errorType": "Sandbox.Timedout",
                }
            )
        try:
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            self.process = None
            raise InvocationFailed({"errorMessage": "the container exited", "errorType": "Runtime.ExitError"}) from None
        if kind == "error":
            raise InvocationFailed(value)
        return value


class Service:
    """N warm containers, a queue for asynchronous invocations, and the Invoke API's answers."""

    def __init__(
        self,
        size: int,
        timeout: float,
        arn: str,
        env: Mapping[str, str] | None = None,
        *,
        credentials: Credentials | None = None,
        queue_wait: float = QUEUE_WAIT,
    ) -> None:
        self.size = size
        self.timeout = timeout
        self.arn = arn
        self.env = dict(env or {})  # the containers' environment, fixed when they start
        self.credentials = credentials or Credentials.fresh()
        self.queue_wait = queue_wait
        self._sync: queue.Queue[_Call] = queue.Queue()
        self._async: queue.Queue[_Call] = queue.Queue()
        self._wake = threading.Condition()
        self._closed = False
        self._containers = [_Container(self, n) for n in range(size)]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for container in self._containers:
            container.start()
            thread = threading.Thread(target=self._serve, args=(container,), name=f"container-{container.number}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def close(self, grace: float = 10.0) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(grace)
        for container in self._containers:
            container.stop()
        for pending in (self._sync, self._async):
            while True:
                try:
                    call = pending.get_nowait()
                except queue.Empty:
                    break
                call.error = Closed()
                call.started.set()
                call.done.set()

    # --- taking calls -------------------------------------------------------------------

    def invoke(self, event: Any) -> Any:
        """A synchronous invocation: the handler's result, or InvocationFailed; Busy when
        no container took it within ``queue_wait`` (it is then never run)."""
        call = _Call(event, sync=True)
        self._put(self._sync, call)
        if not call.started.wait(self.queue_wait):
            with self._wake:  # _next takes calls under this lock: a call is taken or abandoned, not both
                if not call.started.is_set():
                    call.abandoned = True
                    log.warning("local.busy", waited=self.queue_wait, waiting=self._sync.qsize())
                    raise Busy()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def invoke_async(self, event: Any, reason: str = "event") -> str:
        """An asynchronous invocation, queued; returns its request id."""
        call = _Call(event, sync=False)
        self._put(self._async, call)
        log.info("local.invoke", type="Event", reason=reason, request_id=call.request_id, queued=self._async.qsize())
        return call.request_id

    def _put(self, target: queue.Queue[_Call], call: _Call) -> None:
        with self._wake:
            if self._closed:
                raise Closed()
            target.put(call)
            self._wake.notify()

    def _next(self) -> _Call | None:
        """The next call for a free container: requests first, then the asynchronous queue."""
        with self._wake:
            while True:
                for source in (self._sync, self._async):
                    while not source.empty():
                        call = source.get_nowait()
                        if not call.abandoned:
                            call.started.set()
                            return call
                if self._closed:
                    return None
                self._wake.wait(0.5)

    def _serve(self, container: _Container) -> None:
        while True:
            call = self._next()
            if call is None:
                return
            try:
                call.result = container.run(call)
            except InvocationFailed as exc:
                call.error = exc
                if not call.sync:
                    self._failed_async(call, exc)
            except Exception as exc:  # noqa: BLE001 - the service itself failed this call
                log.error("local.invoke_failed", request_id=call.request_id, error=f"{type(exc).__name__}: {exc}"[:300])
                call.error = exc
            finally:
                call.done.set()

    def _failed_async(self, call: _Call, exc: InvocationFailed) -> None:
        """Lambda retries a failed asynchronous invocation twice, after a pause."""
        if call.attempt > len(ASYNC_RETRY_DELAYS):
            log.error("local.async_failed", request_id=call.request_id, attempts=call.attempt, error=exc.error)
            return
        delay = ASYNC_RETRY_DELAYS[call.attempt - 1]
        log.warning("local.async_retry", request_id=call.request_id, attempt=call.attempt, retry_in=delay)
        retry = _Call(call.event, sync=False, attempt=call.attempt + 1, request_id=call.request_id)
        timer = threading.Timer(delay, lambda: self._retry(retry))
        timer.daemon = True
        timer.start()

    def _retry(self, call: _Call) -> None:
        try:
            self._put(self._async, call)
        except Closed:
            pass

    # --- the Invoke API ---------------------------------------------------------------

    def handles(self, path: str) -> bool:
        return path.startswith(INVOKE_PREFIX)

    def invoke_api(self, method: str, path: str, headers: Sequence[tuple[str, str]], body: bytes) -> Answer:
        """``POST /2015-03-31/functions/{name}/invocations``, answered as Lambda answers it
        (http_server lets through only requests signed with ``credentials``)."""
        named = [(name.lower(), value) for name, value in headers]
        route = path.split("?", 1)[0][len(INVOKE_PREFIX) :]
        name, _, rest = route.partition("/")
        if rest != "invocations":
            return api_error(404, "ResourceNotFoundException", f"no such Lambda API path: {path[:200]}")
        if method != "POST":
            return api_error(405, "InvalidRequestContentException", "the Invoke API takes POST")
        name = unquote(name)
        if name not in (FUNCTION_NAME, self.arn) and not name.startswith(self.arn + ":"):
            return api_error(404, "ResourceNotFoundException", f"Function not found: {name[:200]}")
        kind = dict(named).get("x-amz-invocation-type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            return api_error(400, "InvalidParameterValueException", f"unknown InvocationType {kind[:50]}")
        limit = MAX_ASYNC_PAYLOAD if kind == "Event" else MAX_SYNC_PAYLOAD
        if len(body) > limit:
            return api_error(413, "RequestTooLargeException", f"Request must be smaller than {limit} bytes")
        try:
            event = parse_json(body) if body else {}  # too deep or not JSON: BadRequest, never a dead thread
        except BadRequest:
            return api_error(400, "InvalidRequestContentException", "Could not parse request body into json")
        version = [("X-Amz-Executed-Version", "$LATEST")]
        if kind == "DryRun":
            return 204, version, b""
        try:
            if kind == "Event":
                request_id = self.invoke_async(event, reason=_reason(event))
                return 202, [("X-Amzn-RequestId", request_id)], b""
            result = self.invoke(event)
        except Closed:
            return api_error(503, "ServiceException", "the local stack is shutting down")
        except Busy:  # what Lambda answers a synchronous invoke past its concurrency
            status, throttled, text = api_error(429, "TooManyRequestsException", "Rate Exceeded.")
            return status, [*throttled, ("Retry-After", RETRY_AFTER)], text
        except InvocationFailed as exc:
            failed = [*version, ("X-Amz-Function-Error", "Unhandled"), ("Content-Type", "application/json")]
            return 200, failed, json.dumps(exc.error).encode()
        return 200, [*version, ("Content-Type", "application/json")], json.dumps(result, default=str).encode()


def _reason(event: Any) -> str:
    """What an asynchronous invocation is for, for the log: a drain started by a drain or a submit."""
    if isinstance(event, dict) and event.get("action") == "process":
        return f"drain (hop {event.get('hop', 0)})"
    return "event"


def api_error(status: int, code: str, message: str) -> Answer:
    """An error as Lambda's REST-JSON protocol sends it (botocore reads the type from the header)."""
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    return status, headers, json.dumps({"Type": "User", "message": message}).encode()
