"""Who may call: bearer tokens (JOBQUEUE_API_TOKEN, several for rotation, or
JOBQUEUE_AUTH=none), and which web origins may read the answers (CORS)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from ..problems import HttpError
from .request import HttpConfig, Request

CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
CORS_MAX_AGE = "600"

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="jobqueue"'}
_INVALID = {"WWW-Authenticate": 'Bearer realm="jobqueue", error="invalid_token"'}


def authorize(headers: Mapping[str, str], config: HttpConfig) -> None:
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


def cors_headers(request: Request | None, headers: dict[str, str]) -> None:
    """The CORS answer headers for a request from an allowed origin."""
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
