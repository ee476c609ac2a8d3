"""API Gateway REST (payload 1.0), HTTP API (2.0) and Function URL events, all
made into one Request; and the body's limits: its size (413), base64, and a
declared type that is not JSON (415)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import BadRequest
from ..cold_start import Container
from ..problems import HttpError
from .request import Request


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


def to_request(event: Mapping[str, Any], context: Any, container: Container, request_id: str) -> Request:
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
    return Request(method, paths[0], headers, query, body, request_id, context, container, paths, ctx)


def check_body(event: Mapping[str, Any], request: Request, limit: int) -> None:
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


def check_content_type(request: Request) -> None:
    """A body declared as anything but JSON is refused (415) rather than parsed as
    JSON regardless. No Content-Type at all is taken as JSON: curl -d sends
    form encoding's type only when asked, and many clients send none.

    A POST or PATCH declaring another type is refused even with no body: a web
    page may send a form or text/plain POST to any site without asking first
    (a "simple" cross-site request), and when the API runs without a token
    that must not cancel, retry or drain anything."""
    if not request.body and request.method == "GET":
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
