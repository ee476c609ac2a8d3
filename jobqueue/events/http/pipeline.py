"""One request from proxy event to proxy response: normalise it, refuse it
early (configuration, route, auth, body), run its route, and shape the
answer. Never raises: every failure becomes the standard body in
``problems``, and every request one log line."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ... import log
from ...errors import ConfigError
from ..cold_start import Container
from ..problems import HttpError, error_body, problem
from ..replies import elapsed_ms, request_id_of
from .auth import CORS_ALLOW_HEADERS, CORS_MAX_AGE, authorize, cors_headers
from .gateway import check_body, check_content_type, to_request
from .request import Request, Response, encode, fits
from .router import Route
from .routes import ROUTER


def handle(event: Mapping[str, Any], context: Any, container: Container) -> dict[str, Any]:
    """Answer one proxy event; never raises, always the standard shapes."""
    started = time.perf_counter()
    request_id = request_id_of(event, context)
    request: Request | None = None
    route: Route | None = None
    head = False
    try:
        request = to_request(event, context, container, request_id)
        head = request.method == "HEAD"
        if container.error is not None:
            raise ConfigError(container.error)
        if request.method == "OPTIONS":
            response = _options(request)
        else:
            route, request.params, request.path = ROUTER.match(request.method, request.paths)
            if route.auth:
                authorize(request.headers, request.config)
            if route.body == "none":
                if request.method != "GET":
                    check_content_type(request)  # a cross-site form POST is refused, body or not
                request.body = None  # a route that takes no body ignores one
            else:
                check_body(event, request, request.config.max_body_bytes)
                check_content_type(request)
            response = route.respond(request)
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
        latency_ms=elapsed_ms(started),
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
    cors_headers(request, headers)
    if body is None:
        del headers["Content-Type"]
        text = ""
    elif isinstance(body, str):  # a dashboard file: small, and its type is in ``extra``
        text = body
    else:
        text = encode(body)
        if not fits(text):
            log.error("response_too_large", request_id=request_id, bytes=len(text))
            status = 500
            text = encode(
                error_body(
                    "the response would exceed the Lambda response size limit",
                    {"request_id": request_id, "bytes": len(text)},
                )
            )
    return {"statusCode": status, "headers": headers, "body": "" if head else text, "isBase64Encoded": False}
