"""EventBridge schedules (rules: source aws.events; Scheduler: aws.scheduler):
write the queues' gauges, enqueue the periodic jobs that came due, then drain
within the invocation's time.

A schedule's constant input sits in ``detail``: drain options, or a whole
direct invocation. A rule sends it as an object, EventBridge Scheduler as a
JSON-encoded string (``"{}"`` when the schedule sets none); both are read.
Input no retry can fix is answered with the error body and logged once; any
other failure raises, so that Lambda retries the invocation and its Errors
metric counts it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .. import log
from ..actions import drains
from ..actions.table import Call, direct, perform
from ..engine import metrics
from ..errors import DatabaseUnavailable, ValidationError
from .cold_start import Container
from .problems import problem
from .replies import INPUT_ERRORS, done, rejected, request_id_of
from .strict_json import parse_json


def handle(event: Mapping[str, Any], context: Any, container: Container) -> dict[str, Any]:
    if container.error is None:
        metrics.tick(container.settings)  # before the drain, so a failing drain still reports its backlog
    started = time.perf_counter()
    request_id = request_id_of(event, context)
    try:
        call = container.call(context)
        enqueue_periodic(request_id, call)
        detail = schedule_input(event.get("detail"))
        body = direct(detail, call) if "action" in detail else perform("process", detail, call)
    except INPUT_ERRORS as exc:
        return rejected("schedule", exc, request_id, started, source=event.get("source"))
    except Exception as exc:
        problem(exc, request_id)  # logs what went wrong, the one way errors are described
        raise
    done("schedule", body, request_id, started, source=event.get("source"), action=detail.get("action"))
    return body


def schedule_input(detail: Any) -> dict[str, Any]:
    """A schedule's constant input as an object, whichever way it was sent."""
    if detail is None:
        return {}
    if isinstance(detail, str):
        detail = parse_json(detail, field="detail")
    if not isinstance(detail, dict):
        raise ValidationError("a schedule's detail must be a JSON object (or a string holding one)", field="detail")
    return detail


def enqueue_periodic(request_id: str, call: Call | None = None, now: datetime | None = None) -> None:
    """Enqueue the periodic jobs that came due, before the drain runs them.

    Only an unavailable database stops the invocation, as it would stop the
    drain; any other failure is logged and the drain goes ahead.
    """
    try:
        drains.enqueue_periodic((call or Call()).db, now=now)
    except DatabaseUnavailable as exc:
        problem(exc, request_id)
        raise
    except Exception as exc:  # noqa: BLE001 - the drain matters more than one tick's schedules
        log.error("periodic_failed", request_id=request_id, error=f"{type(exc).__name__}: {exc}"[:1000])
