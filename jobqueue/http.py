"""HTTP for the Lambda: proxy event in, proxy response out, and nothing of SQL.

API Gateway REST (payload 1.0), HTTP API (2.0) and Function URL events all
become one ``Request``; a route table maps method and path to a plain function
that calls ``api``; every failure, whatever raised it, becomes the standard
error body in ``problem``, the only place that knows status codes for errors.

Per-request work is kept small on purpose (the handler's overhead on a submit
is benchmarked against the bare enqueue): routes are matched by dictionary for
fixed paths, settings are read once per container, encoders are built once.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import api, log
from . import db as dbmod
from .config import Settings
from .errors import ConfigError, DatabaseUnavailable, InvalidTransition, JobNotFound, ValidationError
from .invocation import remaining_seconds

# Lambda's synchronous response limit is 6 MB for the whole serialised reply,
# in which the JSON body is itself escaped once more; stay well under it.
MAX_RESPONSE_BYTES = 5_500_000
# A JSON body nested deeper than this is refused before it reaches any
# recursive code (json encoders, PostgreSQL's jsonb parser).
MAX_JSON_DEPTH = 64

CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
CORS_MAX_AGE = "600"


# --- errors ------------------------------------------------------------------------


class HttpError(Exception):
    """A failure that is about HTTP itself (routing, auth, size), not the queue."""

    def __init__(
        self, status: int, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.headers = headers


class BadRequest(ValidationError):
    """The body is not JSON at all (400), as opposed to JSON with a wrong field (422).

    A ValidationError, so that SQS and direct callers treat it as the sender's fault.
    """


def problem(exc: BaseException, request_id: str) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """The status, standard error body and extra headers for any exception.

    The one place where errors become responses. Server-side failures are
    logged here with their detail; the client gets no stack trace, no
    connection details, and for the unexpected a request id to quote.
    """
    if isinstance(exc, HttpError):
        return exc.status, _error(exc.message, exc.details), exc.headers
    if isinstance(exc, ValidationError):
        details = dict(exc.details)
        if exc.field is not None:
            details["field"] = exc.field
        return (400 if isinstance(exc, BadRequest) else 422), _error(exc.message, details), None
    if isinstance(exc, JobNotFound):
        return 404, _error(str(exc), {}), None
    if isinstance(exc, InvalidTransition):
        return 409, _error(exc.message, {"state": exc.state}), None
    if isinstance(exc, DatabaseUnavailable):
        log.error("database_unavailable", request_id=request_id, error=str(exc))
        safe = getattr(exc, "public_message", None) or "the database is unavailable; try again shortly"
        return 503, _error(safe, {"request_id": request_id}), {"Retry-After": "5"}
    if isinstance(exc, ConfigError):
        log.error("config_error", request_id=request_id, error=str(exc))
        return 500, _error(f"the service is misconfigured: {exc}", {"request_id": request_id}), None
    import traceback

    log.error(
        "unhandled_exception",
        request_id=request_id,
        error=f"{type(exc).__name__}: {exc}"[:2000],
        traceback="".join(traceback.format_exception(exc))[-8000:],
    )
    return 500, _error("internal error; quote the request id when reporting it", {"request_id": request_id}), None


def _error(message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"status": "error", "message": message, "details": details}


# --- configuration -----------------------------------------------------------------


class Config:
    """What the HTTP layer needs from Settings, precomputed once per container.

    Plain classes rather than dataclasses here and below: creating a dataclass
    costs import time, and ``import app`` is every cold start.
    """

    __slots__ = ("auth", "cors_any", "cors_origins", "error", "max_body_bytes", "settings", "tokens")

    def __init__(self, settings: Settings | None = None, error: str | None = None) -> None:
        settings = settings or Settings()
        self.settings = settings
        self.auth = settings.auth
        self.tokens = tuple(token.encode("utf-8", "surrogatepass") for token in settings.api_tokens)
        self.cors_any = "*" in settings.cors_origins
        self.cors_origins = frozenset(settings.cors_origins)
        self.max_body_bytes = settings.max_body_bytes
        self.error = error  # a ConfigError found at cold start: every request fails with it

    @classmethod
    def from_settings(cls, settings: Settings, error: str | None = None) -> Config:
        return cls(settings, error)


# --- request and response ----------------------------------------------------------


class Request:
    """One HTTP request, whatever the event version; header names are lower-case."""

    __slots__ = (
        "body",
        "config",
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
        config: Config | None = None,
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
        self.config = config or Config()
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

    def remaining_seconds(self) -> float | None:
        """How long a drain started by this request may run: the invocation's time.

        Not capped at API Gateway's 30 s: a job's default timeout is 30 s, and a
        drain that outlives the HTTP connection still finishes its work.
        """
        return remaining_seconds(self.context)


class Response:
    """A JSON body (a dict), no body (None), or text already encoded (a str: a
    dashboard file, whose headers then name its Content-Type)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: dict[str, Any] | str | None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)

_encode = log.dumps  # compact ASCII JSON, its C encoder built once


def parse_json(raw: str | bytes, *, field: str = "body") -> Any:
    """Strict JSON from an untrusted body: no NaN/Infinity, bounded depth, and
    any failure a BadRequest naming ``field`` (never a crash)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except RecursionError:
        raise BadRequest(f"{field} is nested too deeply", field=field) from None
    except UnicodeDecodeError:
        raise BadRequest(f"{field} is not valid UTF-8", field=field) from None
    except ValueError as exc:
        raise BadRequest(f"{field} is not valid JSON: {exc}", field=field) from None
    except TypeError:
        raise BadRequest(f"{field} must be JSON text", field=field) from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise BadRequest(f"{field} is nested more than {MAX_JSON_DEPTH} levels deep", field=field)
    return value


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _header_map(headers: Any, multi: Any) -> dict[str, str]:
    if multi:
        return {str(k).lower(): ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in multi.items()}
    if not headers:
        return {}
    return {str(k).lower(): v if isinstance(v, str) else str(v) for k, v in headers.items()}


def _query_map(single: Any, multi: Any) -> dict[str, str]:
    if multi:
        return {str(k): ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in multi.items()}
    return dict(single) if single else {}


def _stage_variants(path: str, stage: Any, stage_first: bool) -> tuple[str, ...]:
    """The path with and without a stage prefix, in the order worth trying."""
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    if not isinstance(stage, str) or not stage or stage == "$default":
        return (path,)
    prefix = "/" + stage
    if path != prefix and not path.startswith(prefix + "/"):
        return (path,)
    stripped = path[len(prefix) :] or "/"
    return (stripped, path) if stage_first else (path, stripped)


def to_request(event: Mapping[str, Any], context: Any, config: Config, request_id: str) -> Request:
    """Normalise a REST v1, HTTP API v2 or Function URL event.

    v1 gives the path without the stage; v2 puts a non-default stage in
    rawPath. Either way both spellings are tried, the likelier first, so a
    custom domain's mapping works too. Repeated headers and query parameters
    are joined with commas in both versions, so both route identically.
    """
    ctx = event.get("requestContext") or {}
    http = ctx.get("http")
    try:
        if http is not None:
            method = str(http["method"]).upper()
            path = event.get("rawPath") or http.get("path") or "/"
            # HTTP APIs and Function URLs send header names lower-case already.
            headers = event.get("headers") or {}
            query = event.get("queryStringParameters") or {}
            if not isinstance(headers, dict) or not isinstance(query, dict):
                raise TypeError("headers")
            paths = _stage_variants(path, ctx.get("stage"), stage_first=True)
        else:
            method = str(event["httpMethod"]).upper()
            path = event.get("path") or "/"
            headers = _header_map(event.get("headers"), event.get("multiValueHeaders"))
            query = _query_map(event.get("queryStringParameters"), event.get("multiValueQueryStringParameters"))
            paths = _stage_variants(path, ctx.get("stage"), stage_first=False)
        body = event.get("body")
        if body is not None and not isinstance(body, str):
            raise TypeError("body")
    except (AttributeError, KeyError, TypeError, ValueError):
        raise HttpError(400, "malformed request event") from None
    return Request(method, paths[0], headers, query, body, request_id, context, config, paths, ctx)


def _check_body(event: Mapping[str, Any], request: Request, limit: int) -> None:
    """Enforce the size limit (413) and undo base64, never decoding a body that
    is plainly too large first."""
    body = request.body
    if not body:
        return
    if event.get("isBase64Encoded"):
        if len(body) > (limit // 3 + 1) * 4 + 4:
            raise _too_large(limit)
        import base64
        import binascii

        try:
            request.body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the body is marked base64 but is not valid base64", field="body") from None
        if len(request.body) > limit:
            raise _too_large(limit)
    elif isinstance(body, str) and len(body) > limit // 4 and len(body.encode("utf-8", "surrogatepass")) > limit:
        raise _too_large(limit)


def _check_content_type(request: Request) -> None:
    """A body declared as anything but JSON is refused (415) rather than parsed as
    JSON regardless. No Content-Type at all is taken as JSON: curl -d sends
    form encoding's type only when asked, and many clients send none."""
    if not request.body:
        return
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = str(declared).split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise HttpError(
        415,
        f"the body must be JSON (Content-Type: application/json), not {media[:100] or 'an empty type'!r}",
        {"field": "Content-Type", "accepted": ["application/json"]},
    )


def _too_large(limit: int) -> HttpError:
    return HttpError(413, f"the request body is over {limit} bytes", {"limit_bytes": limit})


# --- auth and CORS -----------------------------------------------------------------

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="jobqueue"'}
_INVALID = {"WWW-Authenticate": 'Bearer realm="jobqueue", error="invalid_token"'}


def authorize(headers: Mapping[str, str], config: Config) -> None:
    """Accept the request only with one of the configured bearer tokens.

    Every configured token is compared, in constant time, whatever matched
    earlier, so the time taken says nothing about which token came close.
    """
    if config.auth == "none":
        return
    if not config.tokens:
        raise HttpError(
            401,
            "API authentication is not configured: set JOBQUEUE_API_TOKEN, or JOBQUEUE_AUTH=none",
            headers=_CHALLENGE,
        )
    header = headers.get("authorization")
    if not header or not isinstance(header, str):
        raise HttpError(401, "missing bearer token: send Authorization: Bearer <token>", headers=_CHALLENGE)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HttpError(401, "the Authorization header must be: Bearer <token>", headers=_CHALLENGE)
    supplied = token.encode("utf-8", "surrogatepass")
    matched = False
    for known in config.tokens:
        matched |= hmac.compare_digest(supplied, known)
    if not matched:
        raise HttpError(401, "invalid bearer token", headers=_INVALID)


def _cors_headers(request: Request | None, headers: dict[str, str]) -> None:
    if request is None:
        return
    config = request.config
    if not (config.cors_any or config.cors_origins):
        return
    origin = request.headers.get("origin")
    if not origin or not isinstance(origin, str):
        return
    if config.cors_any:
        headers["Access-Control-Allow-Origin"] = "*"
    elif origin in config.cors_origins:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    else:
        headers["Vary"] = "Origin"
        return
    headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"


# --- routing -----------------------------------------------------------------------


class Route:
    """One entry of the route table; ``path`` is a template like ``/jobs/{id}``."""

    __slots__ = ("action", "auth", "body", "method", "name", "path", "summary")

    def __init__(
        self,
        method: str,
        path: str,
        name: str,
        action: Callable[[Request], Response],
        summary: str,
        *,
        auth: bool = True,
        body: str = "none",  # none | optional | required
    ) -> None:
        self.method = method
        self.path = path
        self.name = name
        self.action = action
        self.summary = summary
        self.auth = auth
        self.body = body

    def __repr__(self) -> str:
        return f"Route({self.method} {self.path})"


class Router:
    """Fixed paths by dictionary, templated ones by precompiled regex."""

    def __init__(self, routes: list[Route]) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        templated: dict[str, dict[str, Route]] = {}
        for route in routes:
            target = templated if "{" in route.path else self._static
            methods = target.setdefault(route.path, {})
            if route.method in methods:
                raise ValueError(f"route {route.method} {route.path} is declared twice")
            methods[route.method] = route
        self._templated = [(self._compile(path), methods) for path, methods in templated.items()]

    @staticmethod
    def _compile(template: str) -> re.Pattern[str]:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        return re.compile(pattern)

    def _candidates(self, path: str) -> list[tuple[dict[str, Route], dict[str, str]]]:
        """The route group living at ``path``, with its parameters. A fixed path
        is a resource of its own: it shadows any template it also matches, for
        every method (``GET /jobs/batch`` is a 405, not a job named "batch")."""
        static = self._static.get(path)
        if static is not None:
            return [(static, {})]
        for pattern, methods in self._templated:
            match = pattern.fullmatch(path)
            if match:
                return [(methods, {k: _unquote(v) for k, v in match.groupdict().items()})]
        return []

    def match(self, method: str, paths: tuple[str, ...]) -> tuple[Route, dict[str, str], str]:
        """The route for the method at the first path that has one; else 404 or 405."""
        lookup = "GET" if method == "HEAD" else method
        static = self._static.get(paths[0])
        if static is not None and lookup in static:  # the common case, without a regex
            return static[lookup], {}, paths[0]
        allowed: set[str] = set()
        for path in paths:
            for methods, params in self._candidates(path):
                route = methods.get(lookup)
                if route is not None:
                    return route, params, path
                allowed.update(methods)
        if allowed:
            allow = _allow_header(allowed)
            raise HttpError(
                405,
                f"method {method[:20]} is not allowed here; allowed: {allow}",
                {"allow": allow.split(", ")},
                headers={"Allow": allow},
            )
        raise HttpError(404, f"no route for {method[:20]} {paths[0][:200]}", {"path": paths[0][:200]})

    def allowed(self, paths: tuple[str, ...]) -> str | None:
        """The Allow header for a path, or None when nothing lives there."""
        methods: set[str] = set()
        for path in paths:
            for group, _ in self._candidates(path):
                methods.update(group)
        return _allow_header(methods) if methods else None


def _unquote(value: str) -> str:
    if "%" not in value:
        return value
    from urllib.parse import unquote

    return unquote(value)


def _allow_header(methods: set[str]) -> str:
    if "GET" in methods:
        methods = methods | {"HEAD"}
    return ", ".join(sorted(methods | {"OPTIONS"}))


# --- route functions: parse the request, call api, shape the response ---------------


def _db() -> dbmod.Database:
    return dbmod.default()


def submit_job(request: Request) -> Response:
    body, created = api.submit(_db(), request.json(), idempotency_key=request.headers.get("idempotency-key"))
    return Response(202 if created else 200, body)


def submit_batch(request: Request) -> Response:
    return Response(202, api.submit_batch(_db(), request.json()))


def get_job(request: Request) -> Response:
    return Response(200, api.status(_db(), request.params["id"]))


_LIST_PARAMS = frozenset({"state", "queue", "task", "cursor", "limit"})


def list_jobs(request: Request) -> Response:
    query = request.query
    unknown = sorted(set(query) - _LIST_PARAMS)
    if unknown:
        raise ValidationError(
            f"unknown query parameter {unknown[0][:100]!r}; expected {', '.join(sorted(_LIST_PARAMS))}",
            field=unknown[0][:100],
        )
    limit = query.get("limit")
    if limit is not None:
        if not (limit.isascii() and limit.isdigit() and len(limit) <= 6):
            raise ValidationError("limit must be a whole number between 1 and 500", field="limit")
        limit = int(limit)
    # An empty value (?cursor=) is a value, checked like any other: not "no filter".
    body = api.list_jobs(
        _db(),
        state=query.get("state"),
        queue=query.get("queue"),
        task=query.get("task"),
        cursor=query.get("cursor"),
        limit=limit,
    )
    return Response(200, _fit_page(body))


def _fit_page(body: dict[str, Any]) -> dict[str, Any]:
    """Shorten a page that would not fit in a Lambda response; the cursor then
    continues right after the last job that did fit."""
    jobs = body["jobs"]
    while len(jobs) > 1 and _response_size(_encode(body)) > MAX_RESPONSE_BYTES:
        jobs = jobs[: len(jobs) // 2]
        body = {**body, "jobs": jobs, "next_cursor": jobs[-1]["id"]}
    return body


def cancel_job(request: Request) -> Response:
    return Response(200, api.cancel(_db(), request.params["id"]))


def retry_job(request: Request) -> Response:
    return Response(200, api.retry(_db(), request.params["id"]))


def process(request: Request) -> Response:
    options = request.json(required=False)
    if options is None and request.body:  # a body of JSON null is not "no options"
        raise ValidationError("the process options must be a JSON object", field="body")
    body = api.process(_db(), options, budget_seconds=request.remaining_seconds(), settings=request.config.settings)
    return Response(200, body)


def stats(request: Request) -> Response:
    return Response(200, api.stats(_db()))


def list_queues(request: Request) -> Response:
    return Response(200, api.queues(_db()))


def configure_queue(request: Request) -> Response:
    # An empty body is refused by api, naming what the body must hold.
    return Response(200, api.configure_queue(_db(), request.params["name"], request.json(required=False)))


def list_schedules(request: Request) -> Response:
    return Response(200, api.list_schedules(_db()))


def health(request: Request) -> Response:
    return Response(200, api.health(_db()))


def openapi(request: Request) -> Response:
    from .openapi import document

    return Response(200, document(_server_url(request)))


def ui_page(request: Request) -> Response:
    from . import dashboard  # only the dashboard's requests load its files

    return dashboard.page(request)


def ui_asset(request: Request) -> Response:
    from . import dashboard

    return dashboard.asset(request)


def _server_url(request: Request) -> str | None:
    """The API's base URL as the client called it: its domain, and whatever
    came before the matched route in the requested path (a stage, a base path)."""
    ctx = request.request_context
    domain = ctx.get("domainName")
    if not isinstance(domain, str) or not domain:
        return None
    requested = ctx.get("path")  # v1: the path as requested, stage included
    if "http" in ctx or not isinstance(requested, str):  # v2: rawPath has it
        requested = max(request.paths, key=len)
    base = requested[: -len(request.path)] if requested.endswith(request.path) else ""
    # API Gateway and Function URLs serve only HTTPS and say so in X-Forwarded-Proto;
    # the local stack serves plain HTTP and says that.
    scheme = "http" if request.headers.get("x-forwarded-proto") == "http" else "https"
    return f"{scheme}://{domain}{base.rstrip('/')}"


ROUTES: list[Route] = [
    Route("POST", "/jobs", "submitJob", submit_job, "Submit one job", body="required"),
    Route("POST", "/jobs/batch", "submitBatch", submit_batch, "Submit many jobs, all or nothing", body="required"),
    Route("GET", "/jobs", "listJobs", list_jobs, "List jobs, newest first, filtered and keyset-paginated"),
    Route("GET", "/jobs/{id}", "getJob", get_job, "One job's state, attempts, result and errors"),
    Route("POST", "/jobs/{id}/cancel", "cancelJob", cancel_job, "Cancel a pending job"),
    Route("POST", "/jobs/{id}/retry", "retryJob", retry_job, "Put a failed or cancelled job back to pending"),
    Route("POST", "/process", "process", process, "Drain due jobs within this invocation's time", body="optional"),
    Route("GET", "/stats", "stats", stats, "Counts per queue and state, age of the oldest due job"),
    Route("GET", "/queues", "listQueues", list_queues, "Every queue: its settings and counts"),
    Route(
        "PATCH", "/queues/{name}", "configureQueue", configure_queue, "Pause, resume or limit a queue", body="required"
    ),
    Route("GET", "/schedules", "listSchedules", list_schedules, "Periodic jobs with their last and next run"),
    Route("GET", "/health", "health", health, "Database reachable and schema version", auth=False),
    Route("GET", "/openapi.json", "openapi", openapi, "This API as an OpenAPI 3 document"),
    Route("GET", "/ui", "dashboard", ui_page, "The dashboard page", auth=False),
    Route("GET", "/ui/{asset}", "dashboardAsset", ui_asset, "A file of the dashboard page", auth=False),
]
ROUTER = Router(ROUTES)


# --- the pipeline -----------------------------------------------------------------


def handle(event: Mapping[str, Any], context: Any, config: Config) -> dict[str, Any]:
    """Answer one proxy event; never raises, always the standard shapes."""
    started = time.perf_counter()
    request_id = request_id_of(event, context)
    request: Request | None = None
    route: Route | None = None
    head = False
    try:
        request = to_request(event, context, config, request_id)
        head = request.method == "HEAD"
        if config.error is not None:
            raise ConfigError(config.error)
        if request.method == "OPTIONS":
            response = _options(request)
        else:
            route, request.params, request.path = ROUTER.match(request.method, request.paths)
            if route.auth:
                authorize(request.headers, config)
            if route.body == "none":
                request.body = None  # a route that takes no body ignores one, whatever it is
            else:
                _check_body(event, request, config.max_body_bytes)
                _check_content_type(request)
            response = route.action(request)
        status, body, extra = response.status, response.body, response.headers
    except Exception as exc:  # noqa: BLE001 - every failure becomes a response in problem()
        status, body, extra = problem(exc, request_id)
    result = _respond(status, body, extra, request, request_id, head)
    path = None  # a fixed route says it all; a job's id or an unknown path is worth logging
    if request is not None and (route is None or request.path != route.path):
        path = request.path[:300]
    log.info(
        "request",
        request_id=request_id,
        method=request.method[:20] if request else None,
        route=route.path if route else None,
        path=path,
        status=result["statusCode"],
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return result


def _options(request: Request) -> Response:
    """A preflight (or plain OPTIONS): what the path allows, no auth needed."""
    allow = ROUTER.allowed(request.paths)
    if allow is None:
        raise HttpError(404, f"no route for {request.paths[0][:200]}", {"path": request.paths[0][:200]})
    headers = {"Allow": allow}
    config = request.config
    origin = request.headers.get("origin")
    if isinstance(origin, str) and (config.cors_any or origin in config.cors_origins):
        headers["Access-Control-Allow-Methods"] = allow
        headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return Response(204, None, headers)


def _response_size(text: str) -> int:
    # The body is ASCII (ensure_ascii); Lambda escapes its quotes and backslashes once more.
    return len(text) + text.count('"') + text.count("\\")


def _respond(
    status: int,
    body: dict[str, Any] | str | None,
    extra: dict[str, str] | None,
    request: Request | None,
    request_id: str,
    head: bool,
) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store", "X-Request-Id": request_id}
    if extra:
        headers.update(extra)
    _cors_headers(request, headers)
    if body is None:
        del headers["Content-Type"]
        text = ""
    elif isinstance(body, str):  # a dashboard file: small, and its type is in ``extra``
        text = body
    else:
        text = _encode(body)
        if _response_size(text) > MAX_RESPONSE_BYTES:
            log.error("response_too_large", request_id=request_id, bytes=len(text))
            status = 500
            text = _encode(
                _error(
                    "the response would exceed the Lambda response size limit",
                    {"request_id": request_id, "bytes": len(text)},
                )
            )
    return {"statusCode": status, "headers": headers, "body": "" if head else text, "isBase64Encoded": False}


def request_id_of(event: Any, context: Any) -> str:
    """Lambda's request id (what CloudWatch shows), else API Gateway's, else a new one."""
    request_id = getattr(context, "aws_request_id", None)
    if isinstance(request_id, str) and request_id:
        return request_id
    ctx = event.get("requestContext") if isinstance(event, Mapping) else None
    if isinstance(ctx, Mapping) and isinstance(ctx.get("requestId"), str) and ctx["requestId"]:
        return ctx["requestId"]
    import uuid

    return str(uuid.uuid4())
