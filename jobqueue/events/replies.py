"""How an invocation that is not an HTTP request answers and is logged: its
request id, the error body for input no retry can fix, and one log line per
invocation (at DEBUG for a drain that found nothing, so an idle schedule
writes nothing at INFO: 1,440 ticks a day)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import log
from ..errors import InvalidTransition, JobNotFound, ValidationError
from .problems import problem

# What is wrong with the input itself: the same event would fail the same way
# however often it is retried, so it is answered, not raised.
INPUT_ERRORS = (ValidationError, JobNotFound, InvalidTransition)


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


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def rejected(kind: str, exc: Exception, request_id: str, started: float, **fields: Any) -> dict[str, Any]:
    """The error body for bad input, and its one log line."""
    _, body, _ = problem(exc, request_id)
    log.warning(
        kind,
        request_id=request_id,
        **fields,
        status="error",
        error=body["message"][:500],
        field=body["details"].get("field"),
        latency_ms=elapsed_ms(started),
    )
    return body


def done(kind: str, body: dict[str, Any], request_id: str, started: float, **fields: Any) -> None:
    """One line per invocation; at DEBUG for a drain that found nothing to do."""
    drain = body.get("drain")
    idle = isinstance(drain, dict) and not any(drain.get(k) for k in ("processed", "rescued", "released", "pruned"))
    log.emit(
        "DEBUG" if idle else "INFO",
        kind,
        request_id=request_id,
        **{k: v for k, v in fields.items() if v is not None},
        status=body.get("status"),
        **(drain if isinstance(drain, dict) else {}),
        latency_ms=elapsed_ms(started),
    )
