"""One HTTP request and its response, whatever the event version, and the
HTTP settings, precomputed once per container.

Plain classes rather than dataclasses: creating a dataclass costs import
time, and ``import app`` is every cold start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import log
from ...actions.table import Call
from ...config import Settings
from ...errors import BadRequest
from ..cold_start import Container
from ..strict_json import parse_json

# Lambda's synchronous response limit is 6 MB for the whole serialised reply,
# in which the JSON body is itself escaped once more; stay well under it.
MAX_RESPONSE_BYTES = 5_500_000

encode = log.dumps  # compact ASCII JSON, its C encoder built once


class HttpConfig:
    """What the HTTP layer needs from the container's settings, worked out once."""

    __slots__ = ("auth", "cors_any", "cors_origins", "max_body_bytes", "tokens")

    def __init__(self, settings: Settings) -> None:
        self.auth = settings.auth
        self.tokens = tuple(token.encode("utf-8", "surrogatepass") for token in settings.api_tokens)
        self.cors_any = "*" in settings.cors_origins
        self.cors_origins = frozenset(settings.cors_origins)
        self.max_body_bytes = settings.max_body_bytes


_configs: tuple[Container, HttpConfig] | None = None


def http_config(container: Container) -> HttpConfig:
    """The container's HTTP settings: worked out again only when it was configured anew."""
    global _configs
    if _configs is None or _configs[0] is not container:
        _configs = (container, HttpConfig(container.settings))
    return _configs[1]


class Request:
    """One HTTP request; header names are lower-case."""

    __slots__ = (
        "body",
        "config",
        "container",
        "context",
        "headers",
        "method",
        "params",
        "path",
        "paths",
        "query",
        "request_context",
        "request_id",
    )

    def __init__(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        query: dict[str, str],
        body: str | bytes | None,
        request_id: str,
        context: Any = None,
        container: Container | None = None,
        paths: tuple[str, ...] = (),
        request_context: Mapping[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.query = query
        self.body = body
        self.request_id = request_id
        self.context = context
        self.container = container or Container()
        self.config = http_config(self.container)
        self.params: dict[str, str] = {}
        self.paths = paths or (path,)  # where to look the route up, most likely first
        self.request_context = request_context or {}

    def json(self, *, required: bool = True) -> Any:
        """The body as JSON; None when optional and empty."""
        if self.body is None or self.body == "" or self.body == b"":
            if required:
                raise BadRequest("the request body must be a JSON object", field="body")
            return None
        return parse_json(self.body)

    def call(self) -> Call:
        """What the action this request asks for needs: the settings and the invocation's time."""
        return self.container.call(self.context)


class Response:
    """A JSON body (a dict), no body (None), or text already encoded (a str: a
    dashboard file, whose headers then name its Content-Type)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: dict[str, Any] | str | None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers


def fits(text: str) -> bool:
    """Whether a JSON body fits in Lambda's reply: it is ASCII (ensure_ascii), and
    Lambda escapes its quotes and backslashes once more."""
    return len(text) + text.count('"') + text.count("\\") <= MAX_RESPONSE_BYTES
