"""The OpenAPI 3.1 document served at GET /openapi.json: the API's contract.

Written out by hand rather than generated from the route table, so that the
test comparing the two catches a route added to one and forgotten in the
other. It states every rule the validation enforces (lengths, patterns,
ranges, required and unknown fields, every status a route can answer), so
that Schemathesis, run against it in the test suite, can hold the API to it.
Its schemas are plain JSON Schema (2020-12), which the tests also use to
validate real responses. Imported only when the document is asked for.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from . import tasks
from .api import MAX_QUEUE_CONCURRENCY, MAX_RATE_LIMIT, MAX_RATE_SECONDS, MIN_RATE_SECONDS
from .dashboard import asset_names
from .fanout import MAX_HOPS
from .http import MAX_JSON_DEPTH
from .spec import (
    MAX_ATTEMPTS,
    MAX_DELAY_SECONDS,
    MAX_KEY_LENGTH,
    MAX_PRIORITY,
    MAX_TASK_LENGTH,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
)
from .states import ALL as STATES

# The queue-name rule of tasks.QUEUE_NAME, anchored as JSON Schema patterns are not.
QUEUE_PATTERN = "^" + tasks.QUEUE_NAME.pattern + "$"
# Text PostgreSQL can store: no NUL character anywhere.
NO_NUL = "^[^\\u0000]*$"
# run_at is stored in UTC between 1970 and 9999: no year outside that may be sent.
# (A time on 1970-01-01 or 9999-12-31 whose offset takes it out of range in UTC
# is refused too; the description says so, as a pattern cannot.)
RUN_AT_YEARS = "^(19[7-9][0-9]|[2-9][0-9]{3})-"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _json(_ref("Error"), description, headers)


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": {"type": "string"}}


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The job's id.",
    "schema": {"type": "string", "format": "uuid"},
}

# Every status a route can answer besides its successes, described once.
_ERRORS: dict[str, dict[str, Any]] = {
    "400": _error("The body is not JSON, is not UTF-8, is nested over 64 levels, or is marked base64 but is not."),
    "401": _error(
        "Missing or invalid bearer token.",
        {"WWW-Authenticate": _header('Bearer realm="jobqueue"')},
    ),
    "404": _error("No job has this id."),
    "409": _error("The job's state does not allow this (details.state)."),
    "413": _error("The body is over the size limit (JOBQUEUE_MAX_BODY_BYTES, 256 KiB by default)."),
    "415": _error("The body was declared (Content-Type) as something other than JSON."),
    "422": _error("A field or parameter is missing, unknown, of the wrong type or out of range (details.field)."),
    "500": _error("Unexpected failure, or a misconfigured service; details.request_id identifies it in the logs."),
    "503": _error(
        "The database is unreachable.",
        {"Retry-After": _header("Seconds to wait before trying again.")},
    ),
}


def _responses(success: dict[str, Any], *codes: str, **described: dict[str, Any]) -> dict[str, Any]:
    """A route's responses: its successes, the listed error codes, and 500."""
    errors = {code: described.get(f"e{code}", _ERRORS[code]) for code in (*codes, "500")}
    return {**success, **dict(sorted(errors.items()))}


# What every dashboard file is sent with.
_FILE_HEADERS = {
    "ETag": _header("The content's hash; send it back as If-None-Match."),
    "Cache-Control": _header("no-cache, or for good when asked with the current ?v=."),
    "X-Content-Type-Options": _header("nosniff"),
}

_BODY_ERRORS = ("400", "401", "413", "415", "422", "503")
_ID_ERRORS = ("401", "404", "422", "503")
_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["status", "message", "details"],
        "properties": {
            "status": {"const": "error"},
            "message": {"type": "string"},
            "details": {
                "type": "object",
                "description": "Context: `field` names the bad input, `request_id` identifies a server failure.",
                "properties": {
                    "field": {"type": "string"},
                    "request_id": {"type": "string"},
                    "state": {"enum": list(STATES)},
                    "limit_bytes": {"type": "integer"},
                },
            },
        },
    },
    "JobSubmission": {
        "type": "object",
        "additionalProperties": False,
        "required": ["task"],
        "description": "Give run_at or delay_seconds, not both. An optional field that is null is left out.",
        "not": {
            "required": ["run_at", "delay_seconds"],
            "properties": {"run_at": {"type": "string"}, "delay_seconds": {"type": "number"}},
        },
        "properties": {
            "task": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TASK_LENGTH,
                "description": "A registered task's name.",
            },
            "payload": {
                "anyOf": [_ref("Payload"), {"type": "null"}],
                "description": "The task's keyword arguments.",
                "default": {},
            },
            "queue": {
                "type": ["string", "null"],
                "pattern": QUEUE_PATTERN,
                "description": "Letters, digits and _ . : - (1 to 100); the task's queue when left out.",
            },
            "priority": {
                "type": ["integer", "null"],
                "minimum": -MAX_PRIORITY,
                "maximum": MAX_PRIORITY,
                "description": "Lower runs first; the task's priority (0 unless it says) when left out.",
            },
            "run_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "pattern": RUN_AT_YEARS,
                "description": "Not before this time: from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z once "
                "converted to UTC. An ISO 8601 date-time without an offset is taken as UTC.",
            },
            "delay_seconds": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": MAX_DELAY_SECONDS,
                "description": "Not before this many seconds from now.",
            },
            "max_attempts": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_ATTEMPTS,
                "description": "The task's (3 unless it says) when left out.",
            },
            "timeout_seconds": {
                "type": ["number", "null"],
                "minimum": MIN_TIMEOUT_SECONDS,
                "maximum": MAX_TIMEOUT_SECONDS,
                "description": "The task's (30 unless it says) when left out.",
            },
            "idempotency_key": {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": NO_NUL,
                "description": "A repeated key returns the existing job instead of a new one.",
            },
        },
    },
    "Payload": {
        "type": "object",
        "description": f"Any JSON object PostgreSQL can store: no NUL character in any string or key, "
        f"nested at most {MAX_JSON_DEPTH} levels deep (the whole body counts).",
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": _ref("JsonValue"),
    },
    "JsonValue": {
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": _ref("JsonValue")},
            _ref("Payload"),
        ],
    },
    "Job": {
        "type": "object",
        "required": [
            "id",
            "task",
            "queue",
            "state",
            "priority",
            "payload",
            "attempts",
            "max_attempts",
            "run_at",
            "created_at",
            "started_at",
            "finished_at",
            "result",
            "error",
        ],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "task": {"type": "string"},
            "queue": {"type": "string"},
            "state": {"enum": list(STATES)},
            "priority": {"type": "integer"},
            "payload": {"type": "object"},
            "attempts": {"type": "integer", "minimum": 0, "description": "How many times the job was claimed."},
            "max_attempts": {"type": "integer", "minimum": 1},
            "timeout_seconds": {"type": "number"},
            "idempotency_key": {"type": ["string", "null"]},
            "run_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "result": {"description": "The task's return value, once it succeeded."},
            "error": {
                "oneOf": [{"type": "null"}, _ref("AttemptError")],
                "description": "The last attempt's error.",
            },
            "errors": {"type": "array", "items": _ref("AttemptError"), "description": "Every attempt's error."},
        },
    },
    "AttemptError": {
        "type": "object",
        "required": ["attempt", "type", "message"],
        "properties": {
            "attempt": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "type": {"type": "string"},
            "message": {"type": "string"},
            "traceback": {"type": "string"},
        },
    },
    "JobBody": {
        "type": "object",
        "required": ["status", "job"],
        "properties": {"status": {"const": "ok"}, "job": _ref("Job")},
    },
    "JobList": {
        "type": "object",
        "required": ["status", "jobs", "next_cursor"],
        "properties": {
            "status": {"const": "ok"},
            "jobs": {"type": "array", "items": _ref("Job")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
    },
    "BatchSubmission": {
        "type": "object",
        "additionalProperties": False,
        "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "maxItems": 1000, "items": _ref("JobSubmission")}},
    },
    "BatchBody": {
        "type": "object",
        "required": ["status", "jobs"],
        "properties": {"status": {"const": "ok"}, "jobs": {"type": "array", "items": _ref("Job")}},
    },
    "ProcessOptions": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "queues": {
                "type": ["array", "null"],
                "minItems": 1,
                "maxItems": 100,
                "items": {"type": "string", "pattern": QUEUE_PATTERN},
                "description": "Drain only these queues (all when left out or null).",
            },
            "max_jobs": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": 1_000_000,
                "description": "Stop after this many jobs (null: no limit).",
            },
            "hop": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_HOPS,
                "default": 0,
                "description": "How many drains started one another to reach this one: jobqueue's own "
                "fan-out sets it; leave it out.",
            },
        },
    },
    "DrainBody": {
        "type": "object",
        "required": ["status", "drain"],
        "properties": {
            "status": {"const": "ok"},
            "drain": {
                "type": "object",
                "required": ["processed", "succeeded", "retried", "failed", "rescued", "stopped", "seconds"],
                "properties": {
                    "processed": {"type": "integer"},
                    "succeeded": {"type": "integer"},
                    "retried": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "rescued": {"type": "integer", "description": "Jobs whose lease had expired, put back or failed."},
                    "released": {"type": "integer", "description": "Claimed jobs handed back for lack of time."},
                    "pruned": {"type": "integer"},
                    "unfit": {
                        "type": "integer",
                        "description": "Jobs set aside (for 10 minutes) because their timeout is longer than any "
                        "drain's whole budget (the function's timeout).",
                    },
                    "abandoned": {
                        "type": "integer",
                        "description": "Jobs on threads that outlived their timeout: recorded as timed out, "
                        "their threads left to end by themselves.",
                    },
                    "stopped": {
                        "enum": ["idle", "budget", "max_jobs", "limited", "max_drains"],
                        "description": "Why the drain ended. idle: nothing due; budget: what is left needs more "
                        "time than this invocation has (a fresh drain takes it over); max_jobs: as asked; "
                        "limited: the due work left is held back by queue limits that other drains' jobs fill; "
                        "max_drains: JOBQUEUE_MAX_DRAINS drains were running already, so this one did nothing.",
                    },
                    "seconds": {"type": "number"},
                },
            },
        },
    },
    "StatsBody": {
        "type": "object",
        "required": ["status", "stats"],
        "properties": {
            "status": {"const": "ok"},
            "stats": {
                "type": "object",
                "required": ["queues", "totals", "oldest_pending_age_seconds"],
                "properties": {
                    "queues": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["counts", "oldest_pending_age_seconds"],
                            "properties": {
                                "counts": _ref("StateCounts"),
                                "oldest_pending_age_seconds": {"type": ["number", "null"]},
                            },
                        },
                    },
                    "totals": _ref("StateCounts"),
                    "oldest_pending_age_seconds": {"type": ["number", "null"]},
                },
            },
        },
    },
    "StateCounts": {
        "type": "object",
        "required": list(STATES),
        "properties": {state: {"type": "integer", "minimum": 0} for state in STATES},
    },
    "QueueSettings": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "Any of the settings; those left out stay as they are. They apply from the next claim on, "
        "across every drain.",
        "properties": {
            "paused": {"type": "boolean", "description": "A paused queue is never claimed; submits to it are kept."},
            "concurrency": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": MAX_QUEUE_CONCURRENCY,
                "description": "At most this many of its jobs running at once across all drains; 0: none start; "
                "null: no limit.",
            },
            "rate": {
                "oneOf": [{"type": "null"}, _ref("Rate")],
                "description": "At most `limit` starts in any `per_seconds` seconds across all drains; null: no limit.",
            },
        },
    },
    "Rate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["limit", "per_seconds"],
        "properties": {
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RATE_LIMIT},
            "per_seconds": {"type": "number", "minimum": MIN_RATE_SECONDS, "maximum": MAX_RATE_SECONDS},
        },
    },
    "Queue": {
        "type": "object",
        "required": ["name", "paused", "concurrency", "rate", "counts", "oldest_pending_age_seconds"],
        "properties": {
            "name": {"type": "string"},
            "paused": {"type": "boolean"},
            "concurrency": {"type": ["integer", "null"], "minimum": 0},
            "rate": {"oneOf": [{"type": "null"}, _ref("Rate")]},
            "counts": _ref("StateCounts"),
            "oldest_pending_age_seconds": {
                "type": ["number", "null"],
                "description": "Seconds since its oldest due job became due; null when none is due.",
            },
        },
    },
    "QueueList": {
        "type": "object",
        "required": ["status", "queues"],
        "properties": {
            "status": {"const": "ok"},
            "queues": {
                "type": "array",
                "items": _ref("Queue"),
                "description": "Every queue that has jobs or settings, by name.",
            },
        },
    },
    "QueueBody": {
        "type": "object",
        "required": ["status", "queue"],
        "properties": {"status": {"const": "ok"}, "queue": _ref("Queue")},
    },
    "Schedule": {
        "type": "object",
        "required": ["name", "task", "expression", "timezone", "queue", "catch_up", "payload", "last_run", "next_run"],
        "properties": {
            "name": {"type": "string", "description": "Identifies the schedule (default: its task's name)."},
            "task": {"type": "string"},
            "expression": {"type": "string", "description": "Five-field cron, or a macro like @daily."},
            "timezone": {"type": "string", "description": "The IANA time zone the expression is read in."},
            "queue": {"type": "string"},
            "catch_up": {
                "enum": ["latest", "all"],
                "description": "After missed ticks: enqueue only the latest missed slot, or every one.",
            },
            "payload": {"type": "object"},
            "last_run": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "The last slot enqueued; null if none yet.",
            },
            "next_run": {
                "type": "string",
                "format": "date-time",
                "description": "The slot the next tick enqueues if one is due already, else the first after now.",
            },
        },
    },
    "ScheduleList": {
        "type": "object",
        "required": ["status", "schedules"],
        "properties": {"status": {"const": "ok"}, "schedules": {"type": "array", "items": _ref("Schedule")}},
    },
    "HealthBody": {
        "type": "object",
        "required": ["status", "database", "schema_version"],
        "properties": {
            "status": {"const": "ok"},
            "database": {"const": "ok"},
            "schema_version": {"type": "integer"},
        },
    },
}


def _links(pointer: str, *operations: str) -> dict[str, Any]:
    """Links from a response holding a job (at ``pointer``) to the routes that take
    its id: clients and stateful testing follow them with real ids."""
    return {
        op[0].upper() + op[1:]: {
            "operationId": op,
            "parameters": {"id": f"$response.body#{pointer}"},
            "description": f"{op} for the job this response holds.",
        }
        for op in operations
    }


_BY_ID = ("getJob", "cancelJob", "retryJob")


def _with_links(response: dict[str, Any], links: dict[str, Any]) -> dict[str, Any]:
    return {**response, "links": links}


_PATHS: dict[str, Any] = {
    "/jobs": {
        "post": {
            "operationId": "submitJob",
            "summary": "Submit one job",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "The same as the body's idempotency_key, which it must equal when both are given.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": NO_NUL},
                }
            ],
            "requestBody": {
                "required": True,
                "description": "JSON; a body without a Content-Type is read as JSON too.",
                "content": {"application/json": {"schema": _ref("JobSubmission")}},
            },
            "responses": _responses(
                {
                    "202": _with_links(_json(_ref("JobBody"), "Accepted: a new job."), _links("/job/id", *_BY_ID)),
                    "200": _with_links(
                        _json(_ref("JobBody"), "The job this idempotency key already created."),
                        _links("/job/id", *_BY_ID),
                    ),
                },
                *_BODY_ERRORS,
            ),
        },
        "get": {
            "operationId": "listJobs",
            "summary": "List jobs, newest first, filtered and keyset-paginated",
            "description": "A query parameter not listed here is refused (422), as is an empty value.",
            "parameters": [
                {"name": "state", "in": "query", "schema": {"enum": list(STATES)}},
                {"name": "queue", "in": "query", "schema": {"type": "string", "pattern": QUEUE_PATTERN}},
                {
                    "name": "task",
                    "in": "query",
                    "description": "A task's name (it need not be registered any more).",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "description": "The next_cursor of the page before.",
                    "schema": {"type": "string", "format": "uuid"},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "description": "Jobs per page (50 when left out).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                },
            ],
            "responses": _responses(
                {"200": _json(_ref("JobList"), "A page of jobs.")},
                "401",
                "422",
                "503",
            ),
        },
    },
    "/jobs/batch": {
        "post": {
            "operationId": "submitBatch",
            "summary": "Submit up to 1,000 jobs, all or nothing",
            "requestBody": {
                "required": True,
                "description": "JSON; a body without a Content-Type is read as JSON too.",
                "content": {"application/json": {"schema": _ref("BatchSubmission")}},
            },
            "responses": _responses(
                {"202": _json(_ref("BatchBody"), "Accepted: the jobs, in the order sent.")},
                *_BODY_ERRORS,
                e422=_error("One job is invalid (details.field, e.g. jobs[3].task); nothing was enqueued."),
            ),
        },
    },
    "/jobs/{id}": {
        "get": {
            "operationId": "getJob",
            "summary": "One job's state, attempts, result and errors",
            "parameters": [_ID],
            "responses": _responses({"200": _json(_ref("JobBody"), "The job.")}, *_ID_ERRORS),
        },
    },
    "/jobs/{id}/cancel": {
        "post": {
            "operationId": "cancelJob",
            "summary": "Cancel a pending job",
            "parameters": [_ID],
            "responses": _responses(
                {"200": _with_links(_json(_ref("JobBody"), "The cancelled job."), _links("/job/id", "retryJob"))},
                *_ID_ERRORS,
                "409",
                e409=_error("The job is not pending (details.state)."),
            ),
        },
    },
    "/jobs/{id}/retry": {
        "post": {
            "operationId": "retryJob",
            "summary": "Put a failed or cancelled job back to pending",
            "parameters": [_ID],
            "responses": _responses(
                {"200": _with_links(_json(_ref("JobBody"), "The job, pending again."), _links("/job/id", "cancelJob"))},
                *_ID_ERRORS,
                "409",
                e409=_error("The job is neither failed nor cancelled (details.state)."),
            ),
        },
    },
    "/process": {
        "post": {
            "operationId": "process",
            "summary": "Drain due jobs within this invocation's remaining time",
            "requestBody": {
                "required": False,
                "description": "JSON; a body without a Content-Type is read as JSON too.",
                "content": {"application/json": {"schema": _ref("ProcessOptions")}},
            },
            "responses": _responses(
                {"200": _json(_ref("DrainBody"), "What the drain did and why it stopped.")},
                *_BODY_ERRORS,
                e422=_error("Invalid options (details.field)."),
            ),
        },
    },
    "/stats": {
        "get": {
            "operationId": "stats",
            "summary": "Counts per queue and state, age of the oldest due job",
            "responses": _responses({"200": _json(_ref("StatsBody"), "The counts.")}, "401", "503"),
        },
    },
    "/queues": {
        "get": {
            "operationId": "listQueues",
            "summary": "Every queue: its settings and counts",
            "responses": _responses(
                {"200": _json(_ref("QueueList"), "Queues with jobs or settings, sorted by name.")}, "401", "503"
            ),
        },
    },
    "/queues/{name}": {
        "patch": {
            "operationId": "configureQueue",
            "summary": "Pause, resume or limit a queue (it need not have jobs yet)",
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "The queue's name.",
                    "schema": {"type": "string", "pattern": QUEUE_PATTERN},
                }
            ],
            "requestBody": {
                "required": True,
                "description": "JSON; a body without a Content-Type is read as JSON too.",
                "content": {"application/json": {"schema": _ref("QueueSettings")}},
            },
            "responses": _responses(
                {"200": _json(_ref("QueueBody"), "The queue with its settings now.")},
                *_BODY_ERRORS,
                e422=_error(
                    "An empty body, an unknown field, a wrong type or a value out of range (details.field, "
                    "e.g. rate.per_seconds), or a bad queue name (details.field name); nothing was changed."
                ),
            ),
        },
    },
    "/schedules": {
        "get": {
            "operationId": "listSchedules",
            "summary": "Periodic jobs with their last and next run",
            "responses": _responses(
                {"200": _json(_ref("ScheduleList"), "Every schedule this deployment declares, by name.")}, "401", "503"
            ),
        },
    },
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Database reachable and schema migrated; needs no token",
            "security": [],
            "responses": _responses(
                {"200": _json(_ref("HealthBody"), "Healthy.")},
                "503",
                e503=_error(
                    "The database is unreachable or its schema is not migrated.",
                    {"Retry-After": _header("Seconds to wait before trying again.")},
                ),
            ),
        },
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": _responses(
                {"200": {"description": "An OpenAPI 3.1 document.", "content": {"application/json": {}}}},
                "401",
            ),
        },
    },
    "/ui": {
        "get": {
            "operationId": "dashboard",
            "summary": "The dashboard page; needs no token (it asks for one and sends it to the routes above)",
            "security": [],
            "responses": _responses(
                {
                    "200": {
                        "description": "The page. Revalidate it: If-None-Match with its ETag is answered 304.",
                        "headers": _FILE_HEADERS
                        | {
                            name: _header(description)
                            for name, description in (
                                ("Content-Security-Policy", "Scripts, styles and data from this origin only."),
                                ("X-Frame-Options", "DENY"),
                            )
                        },
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Not modified: If-None-Match holds the page's ETag."},
                },
            ),
        },
    },
    "/ui/{asset}": {
        "get": {
            "operationId": "dashboardAsset",
            "summary": "A file of the dashboard page; needs no token",
            "security": [],
            "parameters": [
                {
                    "name": "asset",
                    "in": "path",
                    "required": True,
                    "description": "The file's name; any other name is a 404.",
                    "schema": {"enum": asset_names()},
                },
                {
                    "name": "v",
                    "in": "query",
                    "required": False,
                    "description": "The file's content hash, as the page links it: the answer may then be cached "
                    "for good.",
                    "schema": {"type": "string"},
                },
            ],
            "responses": _responses(
                {
                    "200": {
                        "description": "The file.",
                        "headers": _FILE_HEADERS,
                        "content": {
                            media: {"schema": {"type": "string"}}
                            for media in ("text/css", "text/javascript", "image/svg+xml")
                        },
                    },
                    "304": {"description": "Not modified: If-None-Match holds the file's ETag."},
                },
                "404",
                e404=_error("No dashboard file has this name."),
            ),
        },
    },
}


@cache
def _document(task_names: tuple[str, ...]) -> dict[str, Any]:
    from . import __version__

    schemas = dict(_SCHEMAS)
    submission = schemas["JobSubmission"]
    task = {**submission["properties"]["task"], "enum": list(task_names)}
    schemas["JobSubmission"] = {**submission, "properties": {**submission["properties"], "task": task}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobqueue",
            "version": __version__,
            "description": "Background jobs on AWS Lambda and PostgreSQL. Every error has the body "
            '{"status": "error", "message": ..., "details": {...}}. A method a path does not list '
            "is answered 405 with an Allow header; OPTIONS (CORS preflight) needs no token.",
        },
        "security": [{"bearer": []}],
        "paths": _PATHS,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of the tokens in JOBQUEUE_API_TOKEN (unless JOBQUEUE_AUTH=none).",
                }
            },
            "schemas": schemas,
        },
    }


def document(server_url: str | None = None) -> dict[str, Any]:
    """The document, its task names those registered in this deployment now, naming
    the server it was fetched from when that is known."""
    doc = _document(tuple(sorted(tasks.registered())))
    if server_url is None:
        return doc
    return {**doc, "servers": [{"url": server_url}]}
