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
from typing import Any

from . import api, http, log, tasks
from . import db as dbmod
from .config import Settings
from .errors import ConfigError, ValidationError

SCHEDULE_SOURCES = ("aws.events", "aws.scheduler")
ACTIONS = ("submit", "status", "process", "stats", "queues", "configure_queue", "migrate")

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
    if isinstance(event, dict):
        ctx = event.get("requestContext")
        if isinstance(ctx, dict) and ("httpMethod" in event or "http" in ctx):
            return http.handle(event, context, config)
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            if records[0].get("eventSource") == "aws:sqs":
                return sqs(records, context, config)
        if event.get("source") in SCHEDULE_SOURCES:
            return scheduled(event, context, config)
        if "action" in event:
            return direct(event, context, config)
    return unknown(event, context)


def scheduled(event: Mapping[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    """Drain within the invocation's time. A rule's constant input may sit in
    ``detail``, as drain options or as a whole direct invocation.

    Failures raise, so that the Errors metric and the retry policy see them.
    """
    started = time.perf_counter()
    request_id = http.request_id_of(event, context)
    if config.error is not None:
        raise ConfigError(config.error)
    detail = event.get("detail") or {}
    if isinstance(detail, Mapping) and "action" in detail:
        body = direct(detail, context, config)
        if body.get("status") != "ok":
            raise RuntimeError(f"scheduled action failed: {body.get('message')}")
        return body
    try:
        body = api.process(
            dbmod.default(), detail, budget_seconds=http.remaining_seconds(context), settings=config.settings
        )
    except Exception as exc:
        http.problem(exc, request_id)  # logs what went wrong, the one way errors are described
        raise
    log.info(
        "schedule",
        request_id=request_id,
        source=event.get("source"),
        **body["drain"],
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return body


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
    return api.process(dbmod.default(), args, budget_seconds=http.remaining_seconds(context), settings=config.settings)


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
}


def direct(event: Mapping[str, Any], context: Any, config: http.Config) -> dict[str, Any]:
    """``{"action": ...}``: the HTTP API's bodies, unwrapped, errors included."""
    started = time.perf_counter()
    request_id = http.request_id_of(event, context)
    action = event.get("action")
    try:
        if config.error is not None:
            raise ConfigError(config.error)
        if not isinstance(action, str) or action not in _ACTIONS:
            raise ValidationError(
                f"unknown action {str(action)[:100]!r}; expected one of {', '.join(ACTIONS)}", field="action"
            )
        body = _ACTIONS[action]({k: v for k, v in event.items() if k != "action"}, context, config)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the standard error body
        _, body, _ = http.problem(exc, request_id)
    log.info(
        "invocation",
        request_id=request_id,
        action=str(action)[:100],
        status=body["status"],
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return body


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
