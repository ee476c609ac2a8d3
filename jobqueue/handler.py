"""The Lambda entry point: which kind of event is this, and who answers it.

One function serves API Gateway and Function URL requests, EventBridge
schedules, SQS batches and direct invocations. Settings are read and task
modules imported once per container (``configure``, run when ``app`` is
imported); a configuration error is logged then, naming the variable, and
every invocation after it fails with the same message rather than half-working.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from . import api, http, invocation, log, metrics, tasks
from . import db as dbmod
from .config import Settings
from .errors import ConfigError, DatabaseUnavailable, InvalidTransition, JobNotFound, ValidationError

SCHEDULE_SOURCES = ("aws.events", "aws.scheduler")
ACTIONS = ("submit", "status", "process", "stats", "queues", "configure_queue", "migrate", "schedules")

_config: http.Config | None = None


def configure(env: Mapping[str, str] | None = None) -> http.Config:
    """Read settings (from ``env`` or the process environment) and load task modules.

    Runs at cold start; tests and the local stack call it again to change settings.
    """
    global _config
    error = None
    try:
        settings = Settings.from_env(env)
        log.set_level(settings.log_level)
        tasks.load_modules(settings.task_modules)
    except ConfigError as exc:
        settings, error = Settings(), str(exc)
        log.error("config_error", error=error)
    if error is None and settings.auth == "token" and not settings.api_tokens:
        log.warning(
            "auth_not_configured",
            message="JOBQUEUE_API_TOKEN is empty and JOBQUEUE_AUTH is not 'none': "
            "every route but GET /health answers 401",
        )
    _config = http.Config.from_settings(settings, error)
    return _config


def dispatch(event: Any, context: Any = None) -> Any:
    """``app.lambda_handler``: route the event by its shape."""
    config = _config or configure()
    invocation.begin(context, config.settings)
    if isinstance(event, dict):
        ctx = event.get("requestContext")
        if isinstance(ctx, dict) and ("httpMethod" in event or "http" in ctx):
            return http.handle(event, context, config)
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            if records[0].get("eventSource") == "aws:sqs":
                return sqs(records, context, config)
        if event.get("source") in SCHEDULE_SOURCES:
            if config.error is None:
                metrics.tick(config.settings)  # before the drain, so a failing drain still reports its backlog
            return scheduled(event, context, config)
        if "action" in event:
            return direct(event, context, config)
    return unknown(event, context)


def scheduled(event: Mapping[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    """Drain within the invocation's time. A schedule's constant input sits in
    ``detail``: drain options, or a whole direct invocation. A rule sends it as
    an object, EventBridge Scheduler as a JSON-encoded string (``"{}"`` when the
    schedule sets none); both are read.

    Input no retry can fix is answered with the error body and logged once; any
    other failure raises, so that Lambda retries the invocation and its Errors
    metric counts it.
    """
    started = time.perf_counter()
    request_id = http.request_id_of(event, context)
    try:
        if config.error is not None:
            raise ConfigError(config.error)
        enqueue_periodic(request_id)
        detail = schedule_input(event.get("detail"))
        if "action" in detail:
            body = _act(detail, context, config)
        else:
            body = _process(detail, context, config)
    except INPUT_ERRORS as exc:
        return _rejected("schedule", exc, request_id, started, source=event.get("source"))
    except Exception as exc:
        http.problem(exc, request_id)  # logs what went wrong, the one way errors are described
        raise
    _log_done("schedule", body, request_id, started, source=event.get("source"), action=detail.get("action"))
    return body


def schedule_input(detail: Any) -> dict[str, Any]:
    """A schedule's constant input as an object, whichever way it was sent."""
    if detail is None:
        return {}
    if isinstance(detail, str):
        detail = http.parse_json(detail, field="detail")
    if not isinstance(detail, dict):
        raise ValidationError("a schedule's detail must be a JSON object (or a string holding one)", field="detail")
    return detail


def enqueue_periodic(request_id: str, now: datetime | None = None) -> None:
    """Enqueue the periodic jobs that came due, before the drain runs them.

    Only an unavailable database stops the invocation, as it would stop the
    drain; any other failure is logged and the drain goes ahead.
    """
    try:
        api.enqueue_periodic(dbmod.default(), now=now)
    except DatabaseUnavailable as exc:
        http.problem(exc, request_id)
        raise
    except Exception as exc:  # noqa: BLE001 - the drain matters more than one tick's schedules
        log.error("periodic_failed", request_id=request_id, error=f"{type(exc).__name__}: {exc}"[:1000])


def sqs(records: list[Any], context: Any, config: http.Config) -> dict[str, Any]:
    """Enqueue each message's body as a POST /jobs submission; report the ones
    that could not be, so SQS retries them and finally moves them to the DLQ."""
    started = time.perf_counter()
    if config.error is not None:
        raise ConfigError(config.error)
    messages: list[tuple[str, Any]] = []
    unreadable: list[str] = []
    for record in records:
        message_id = record.get("messageId") if isinstance(record, dict) else None
        if not isinstance(message_id, str) or not message_id:
            # Without an id SQS cannot be told which one failed: an empty
            # identifier makes it treat the whole batch as failed, which is safe.
            unreadable.append("")
            continue
        try:
            body = record.get("body")
            messages.append((message_id, http.parse_json(body if isinstance(body, str) else "", field="body")))
        except ValidationError as exc:
            log.warning("sqs_rejected", message_id=message_id, error=exc.message[:500], field=exc.field)
            unreadable.append(message_id)
    result = api.ingest(dbmod.default(), messages)
    failed = unreadable + result.failed
    log.info(
        "sqs",
        request_id=http.request_id_of({}, context),
        records=len(records),
        enqueued=result.enqueued,
        failed=len(failed),
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _submit(args: dict[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    return api.submit(dbmod.default(), args)[0]


def _status(args: dict[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    _allow(args, {"job_id"})
    if "job_id" not in args:
        raise ValidationError("job_id is required", field="job_id")
    return api.status(dbmod.default(), args["job_id"])


def _process(args: dict[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    return api.process(
        dbmod.default(), args, budget_seconds=invocation.remaining_seconds(context), settings=config.settings
    )


def _stats(args: dict[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    _allow(args, set())
    return api.stats(dbmod.default())


def _queues(args: dict[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    _allow(args, set())
    return api.queues(dbmod.default())


def _configure_queue(args: dict[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    """``{"action": "configure_queue", "name": ..., <the PATCH /queues/{name} body's fields>}``."""
    if "name" not in args:
        raise ValidationError("name is required: the queue to configure", field="name")
    settings = {k: v for k, v in args.items() if k != "name"}
    return api.configure_queue(dbmod.default(), args["name"], settings)


def _migrate(args: dict[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    _allow(args, set())
    return api.migrate(dbmod.default())


def _schedules(args: dict[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    _allow(args, set())
    return api.list_schedules(dbmod.default())


def _allow(args: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(str(key) for key in args if key not in allowed)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0][:100]!r}", field=unknown[0][:100])


_ACTIONS: dict[str, Callable[[dict[str, Any], Any, http.Config], dict[str, Any]]] = {
    "submit": _submit,
    "status": _status,
    "process": _process,
    "stats": _stats,
    "queues": _queues,
    "configure_queue": _configure_queue,
    "migrate": _migrate,
    "schedules": _schedules,
}

# What is wrong with the input itself: the same event would fail the same way
# however often it is retried, so it is answered, not raised.
INPUT_ERRORS = (ValidationError, JobNotFound, InvalidTransition)


def _act(event: Mapping[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    action = event.get("action")
    if not isinstance(action, str) or action not in _ACTIONS:
        raise ValidationError(
            f"unknown action {str(action)[:100]!r}; expected one of {', '.join(ACTIONS)}", field="action"
        )
    return _ACTIONS[action]({k: v for k, v in event.items() if k != "action"}, context, config)


def direct(event: Mapping[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    """``{"action": ...}``: the HTTP API's bodies, unwrapped.

    Bad input gets the error body. Any other failure (database down,
    configuration) raises: the synchronous caller sees a failed invocation
    naming it, and an asynchronous one (an EventBridge target with constant
    input arrives as exactly this event) is retried and counted in Errors.
    """
    started = time.perf_counter()
    request_id = http.request_id_of(event, context)
    try:
        if config.error is not None:
            raise ConfigError(config.error)
        body = _act(event, context, config)
    except INPUT_ERRORS as exc:
        return _rejected("invocation", exc, request_id, started, action=str(event.get("action"))[:100])
    except Exception as exc:
        http.problem(exc, request_id)
        raise
    _log_done("invocation", body, request_id, started, action=str(event.get("action"))[:100])
    return body


def _rejected(kind: str, exc: Exception, request_id: str, started: float, **fields: Any) -> dict[str, Any]:
    """The error body for bad input, and its one log line."""
    _, body, _ = http.problem(exc, request_id)
    log.warning(
        kind,
        request_id=request_id,
        **fields,
        status="error",
        error=body["message"][:500],
        field=body["details"].get("field"),
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return body


def _log_done(kind: str, body: dict[str, Any], request_id: str, started: float, **fields: Any) -> None:
    """One line per invocation; at DEBUG for a drain that found nothing to do,
    so an idle schedule writes nothing at INFO (1,440 ticks a day)."""
    drain = body.get("drain")
    idle = isinstance(drain, dict) and not any(drain.get(k) for k in ("processed", "rescued", "released", "pruned"))
    log.emit(
        "DEBUG" if idle else "INFO",
        kind,
        request_id=request_id,
        **{k: v for k, v in fields.items() if v is not None},
        status=body.get("status"),
        **(drain if isinstance(drain, dict) else {}),
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def unknown(event: Any, context: Any) -> dict[str, Any]:
    """An event of no kind this function serves: say so plainly instead of crashing."""
    keys = sorted(str(key)[:50] for key in event)[:20] if isinstance(event, dict) else []
    error = ValidationError(
        "unrecognised event: expected an API Gateway or Function URL request, an EventBridge schedule, "
        'an SQS batch, or a direct invocation {"action": "' + '" | "'.join(ACTIONS) + '"}',
        type=type(event).__name__,
        keys=keys,
    )
    request_id = http.request_id_of({}, context)
    log.warning("unknown_event", request_id=request_id, type=type(event).__name__, keys=keys)
    return http.problem(error, request_id)[1]
