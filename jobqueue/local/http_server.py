"""The local stack's HTTP server: API Gateway in front of the function, and
Lambda's Invoke API and SQS (the timer queue) beside it, on one port.

A request to ``/2015-03-31/functions/...`` is Lambda's Invoke API (what the
handler's boto3 client calls to start more drains); one whose X-Amz-Target
names an SQS operation goes to the local SQS (sqs_service: the function's
timers); any other request is turned into an HTTP API event, run in a
container, and its answer turned back into HTTP by the gateway's rules.
Nothing here runs in the deployed function.

Any web page open in the developer's browser can send requests to a port on
localhost, and a page whose owner points its name at 127.0.0.1 (DNS rebinding)
can read the answers too. So the Invoke API, which runs whatever event it is
given, answers only requests signed (SigV4) with the containers' credentials
for this run, never one with an Origin (browsers add it; boto3 never does), and
only under the server's own Host (a loopback name, or the address ``--host``
named); so does SQS, whose messages become events. The API is held to the same Host rule while the server listens on
loopback alone, where no other name reaches it honestly; listening wider is a
choice to be reached under other names, and its bearer token guards it then.
The dashboard's own POSTs carry an Origin, so Origin is no reason to refuse it.
"""

from __future__ import annotations

import ipaddress
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import AF_INET6
from typing import Any

from .. import log
from ..errors import ConfigError
from .aws_events import gateway_error, http_event, http_response
from .invoke_auth import unsigned
from .lambda_service import RETRY_AFTER, Answer, Busy, Closed, Service, api_error
from .sqs_service import SqsService, sqs_error

MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's limit for a synchronous invocation
LISTEN_BACKLOG = 1024  # connections the kernel holds before accept (the default 5 resets them under load)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


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
        service = self.server.service
        if service.handles(self.path):  # Lambda's own API, which the handler calls through boto3
            self._send(*self._invoke_api(body))
            return
        sqs = self.server.sqs
        if sqs is not None and sqs.handles(self.headers.get_all("X-Amz-Target") or []):
            self._send(*self._sqs_api(sqs, body))
            return
        if not (self.server.any_host or self._own_host()):
            log.warning("local.http_refused", reason="host", host=str(self.headers.get("Host"))[:200])
            self._send(*gateway_error(403, "Forbidden"))
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

    def _invoke(self, event: dict[str, Any]) -> Answer:
        try:
            return http_response(self.server.service.invoke(event))
        except Closed:
            return gateway_error(503, "Service Unavailable")
        except Busy:  # every container stayed busy: come back, rather than wait on a reset
            status, headers, body = gateway_error(503, "Service Unavailable")
            return status, [*headers, ("Retry-After", RETRY_AFTER)], body
        except Exception:  # noqa: BLE001 - the invocation failed: API Gateway answers 500
            return gateway_error(500, "Internal Server Error")

    def _refusal(
        self, api: str, signing_name: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[str, str] | None:
        """Why the Invoke API or SQS refuses this request (an error code and message), or None:
        the server's own Host, no Origin, and signed with the run's credentials."""
        if not self._own_host():
            return "AccessDeniedException", f"{api} answers only under a loopback Host."
        if any(name == "origin" for name, _ in headers):
            return "AccessDeniedException", f"{api} takes no requests from web pages."
        return unsigned(self.server.service.credentials, self.command, self.path, headers, body, signing_name)

    def _invoke_api(self, body: bytes) -> Answer:
        """Lambda's Invoke API, for a caller that passes every check; a refusal is 403."""
        headers = [(name.lower(), value) for name, value in self.headers.items()]
        refusal = self._refusal("The Invoke API", "lambda", headers, body)
        if refusal is not None:
            log.warning("local.invoke_refused", reason=refusal[0], path=self.path[:200])
            return api_error(403, *refusal)
        try:
            return self.server.service.invoke_api(self.command, self.path, headers, body)
        except Exception as exc:  # noqa: BLE001 - answer, rather than drop the connection
            log.error("local.invoke_api_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return api_error(500, "ServiceException", "the local Lambda service failed this request")

    def _sqs_api(self, sqs: SqsService, body: bytes) -> Answer:
        """SQS, for a caller that passes the Invoke API's checks; a refusal is 403."""
        headers = [(name.lower(), value) for name, value in self.headers.items()]
        refusal = self._refusal("SQS", "sqs", headers, body)
        if refusal is not None:
            log.warning("local.sqs_refused", reason=refusal[0], path=self.path[:200])
            return sqs_error(403, *refusal)
        try:
            return sqs.api(self.command, self.path, headers, body)
        except Exception as exc:  # noqa: BLE001 - answer, rather than drop the connection
            log.error("local.sqs_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return sqs_error(500, "InternalError", "the local SQS failed this request")

    def _own_host(self) -> bool:
        """The one Host header names this server by a name that cannot be rebound."""
        hosts = self.headers.get_all("Host") or []
        return len(hosts) == 1 and hosts[0].strip().lower() in self.server.hosts

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
    request_queue_size = LISTEN_BACKLOG
    service: Service
    sqs: SqsService | None  # the timer queue's SQS, when serve runs one
    hosts: frozenset[str]  # the Host values of this server: loopback names (and the address it listens on)
    any_host: bool  # the API answers any Host (it listens beyond loopback)


class _Server6(_Server):
    address_family = AF_INET6


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server to this machine ("" and 0.0.0.0 do not)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_server(host: str, port: int, service: Service, sqs: SqsService | None = None) -> _Server:
    """Bind now, so a taken port fails before anything is announced. With ``sqs``,
    the port answers SQS's SendMessage too."""
    server_class = _Server6 if ":" in host else _Server
    try:
        server = server_class((host, port), _RequestHandler)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.service = service
    server.sqs = sqs
    names = set(LOOPBACK_NAMES)
    if host not in ("", "0.0.0.0", "::"):  # the address serve gives its containers when not loopback
        names.add(f"[{host}]".lower() if ":" in host else host.lower())
    bound = server.server_address[1]
    server.hosts = frozenset({f"{name}:{bound}" for name in names} | (names if bound == 80 else set()))
    server.any_host = not is_loopback(host)
    return server
