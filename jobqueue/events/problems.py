"""Every failure as the standard error body, in one place, whatever raised it
and whichever event source answers with it.

Errors are raised deep down as typed exceptions (jobqueue.errors); this is the
only code that knows which status each one means. Server-side failures are
logged here with their detail; the caller gets no stack trace, no connection
details, and for the unexpected a request id to quote. A configuration error
is such a failure too: its detail (variable names, secret ARNs, AWS error
codes) is for the operator, in the log and in the error a direct (IAM-signed)
invocation raises, never for an HTTP caller, who may be anyone.
"""

from __future__ import annotations

from typing import Any

from .. import log
from ..errors import BadRequest, ConfigError, DatabaseUnavailable, InvalidTransition, JobNotFound, ValidationError

MISCONFIGURED = "the service is misconfigured; its log has the detail"


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


def problem(exc: BaseException, request_id: str) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """The status, standard error body and extra headers for any exception."""
    if isinstance(exc, HttpError):
        return exc.status, error_body(exc.message, exc.details), exc.headers
    if isinstance(exc, ValidationError):
        details = dict(exc.details)
        if exc.field is not None:
            details["field"] = exc.field
        return (400 if isinstance(exc, BadRequest) else 422), error_body(exc.message, details), None
    if isinstance(exc, JobNotFound):
        return 404, error_body(str(exc), {}), None
    if isinstance(exc, InvalidTransition):
        return 409, error_body(exc.message, {"state": exc.state}), None
    if isinstance(exc, DatabaseUnavailable):
        log.error("database_unavailable", request_id=request_id, error=str(exc))
        safe = getattr(exc, "public_message", None) or "the database is unavailable; try again shortly"
        return 503, error_body(safe, {"request_id": request_id}), {"Retry-After": "5"}
    if isinstance(exc, ConfigError):
        log.error("config_error", request_id=request_id, error=str(exc))
        return 500, error_body(MISCONFIGURED, {"request_id": request_id}), None
    import traceback

    log.error(
        "unhandled_exception",
        request_id=request_id,
        error=f"{type(exc).__name__}: {exc}"[:2000],
        traceback="".join(traceback.format_exception(exc))[-8000:],
    )
    return 500, error_body("internal error; quote the request id when reporting it", {"request_id": request_id}), None


def error_body(message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"status": "error", "message": message, "details": details}
