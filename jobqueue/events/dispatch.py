"""The Lambda entry point, ``app.lambda_handler``: which kind of event is this,
and who answers it.

One function serves API Gateway and Function URL requests, EventBridge
schedules, SQS batches and direct invocations; each has a module of its own.
Settings are read and task modules imported once per container (cold_start,
run when ``app`` is imported). The HTTP path is loaded then too, since a
request waits on it; the other sources load with their first event.
"""

from __future__ import annotations

from typing import Any

from .. import log
from ..actions.table import DIRECT
from ..engine import invocation
from ..errors import ValidationError
from . import cold_start
from .http import pipeline
from .problems import problem
from .replies import request_id_of

SCHEDULE_SOURCES = ("aws.events", "aws.scheduler")  # EventBridge rules, EventBridge Scheduler


def dispatch(event: Any, context: Any = None) -> Any:
    """``app.lambda_handler``: route the event by its shape."""
    container = cold_start.current()
    invocation.begin(context, container.settings)
    if isinstance(event, dict):
        ctx = event.get("requestContext")
        if isinstance(ctx, dict) and ("httpMethod" in event or "http" in ctx):
            return pipeline.handle(event, context, container)
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            if records[0].get("eventSource") == "aws:sqs":
                from . import sqs

                return sqs.handle(records, context, container)
        if event.get("source") in SCHEDULE_SOURCES:
            from . import schedule

            return schedule.handle(event, context, container)
        if "action" in event:
            from . import direct

            return direct.handle(event, context, container)
    return unknown(event, context)


def unknown(event: Any, context: Any) -> dict[str, Any]:
    """An event of no kind this function serves: say so plainly instead of crashing."""
    keys = sorted(str(key)[:50] for key in event)[:20] if isinstance(event, dict) else []
    error = ValidationError(
        "unrecognised event: expected an API Gateway or Function URL request, an EventBridge schedule, "
        'an SQS batch, or a direct invocation {"action": "' + '" | "'.join(DIRECT) + '"}',
        type=type(event).__name__,
        keys=keys,
    )
    request_id = request_id_of({}, context)
    log.warning("unknown_event", request_id=request_id, type=type(event).__name__, keys=keys)
    return problem(error, request_id)[1]
