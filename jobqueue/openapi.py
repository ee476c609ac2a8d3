"""The OpenAPI 3.1 document served at GET /openapi.json.

Written out by hand rather than generated from the route table, so that the
test comparing the two catches a route added to one and forgotten in the
other. Its schemas are plain JSON Schema (2020-12), which the tests also use
to validate real responses. Imported only when the document is asked for.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .api import MAX_QUEUE_CONCURRENCY, MAX_RATE_LIMIT, MAX_RATE_SECONDS, MIN_RATE_SECONDS
from .spec import MAX_ATTEMPTS, MAX_DELAY_SECONDS, MAX_KEY_LENGTH, MAX_PRIORITY, MAX_TIMEOUT_SECONDS
from .states import ALL as STATES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The job's id.",
    "schema": {"type": "string", "format": "uuid"},
}
_AUTH_ERRORS = {"401": _error("Missing or invalid bearer token.")}
_COMMON_ERRORS = {
    "500": _error("Unexpected failure; details.request_id identifies it in the logs."),
    "503": _error("The database is unreachable."),
}

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
                "properties": {"field": {"type": "string"}, "request_id": {"type": "string"}},
            },
        },
    },
    "JobSubmission": {
        "type": "object",
        "additionalProperties": False,
        "required": ["task"],
        "properties": {
            "task": {"type": "string", "minLength": 1, "maxLength": 200, "description": "A registered task's name."},
            "payload": {"type": "object", "description": "The task's keyword arguments.", "default": {}},
            "queue": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,100}$"},
            "priority": {
                "type": "integer",
                "minimum": -MAX_PRIORITY,
                "maximum": MAX_PRIORITY,
                "description": "Lower runs first.",
            },
            "run_at": {"type": "string", "format": "date-time", "description": "Not before this time."},
            "delay_seconds": {"type": "number", "minimum": 0, "maximum": MAX_DELAY_SECONDS},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT_SECONDS},
            "idempotency_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "description": "A repeated key returns the existing job instead of a new one.",
            },
        },
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
            "queues": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string"}},
            "max_jobs": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
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
                        "description": "Due jobs whose timeout is longer than this drain's time budget.",
                    },
                    "stopped": {
                        "enum": ["idle", "budget", "max_jobs", "limited"],
                        "description": "Why the drain ended; limited: the due work left is held back by queue "
                        "limits that other drains' jobs fill.",
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
                    "description": "Same as the body's idempotency_key.",
                    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
                }
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("JobSubmission")}}},
            "responses": {
                "202": _json(_ref("JobBody"), "Accepted: a new job."),
                "200": _json(_ref("JobBody"), "The job this idempotency key already created."),
                "400": _error("The body is not JSON."),
                "413": _error("The body is over the size limit."),
                "422": _error("A field is missing, unknown, of the wrong type or out of range (details.field)."),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
        },
        "get": {
            "operationId": "listJobs",
            "summary": "List jobs, newest first, filtered and keyset-paginated",
            "parameters": [
                {"name": "state", "in": "query", "schema": {"enum": list(STATES)}},
                {"name": "queue", "in": "query", "schema": {"type": "string"}},
                {"name": "task", "in": "query", "schema": {"type": "string"}},
                {"name": "cursor", "in": "query", "schema": {"type": "string", "format": "uuid"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            ],
            "responses": {
                "200": _json(_ref("JobList"), "A page of jobs."),
                "422": _error("An unknown or invalid query parameter."),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
        },
    },
    "/jobs/batch": {
        "post": {
            "operationId": "submitBatch",
            "summary": "Submit up to 1,000 jobs, all or nothing",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("BatchSubmission")}}},
            "responses": {
                "202": _json(_ref("BatchBody"), "Accepted: the jobs, in the order sent."),
                "400": _error("The body is not JSON."),
                "413": _error("The body is over the size limit."),
                "422": _error("One job is invalid (details.field, e.g. jobs[3].task); nothing was enqueued."),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
        },
    },
    "/jobs/{id}": {
        "get": {
            "operationId": "getJob",
            "summary": "One job's state, attempts, result and errors",
            "parameters": [_ID],
            "responses": {
                "200": _json(_ref("JobBody"), "The job."),
                "404": _error("No job has this id."),
                "422": _error("The id is not a UUID."),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
        },
    },
    "/jobs/{id}/cancel": {
        "post": {
            "operationId": "cancelJob",
            "summary": "Cancel a pending job",
            "parameters": [_ID],
            "responses": {
                "200": _json(_ref("JobBody"), "The cancelled job."),
                "404": _error("No job has this id."),
                "409": _error("The job is not pending (details.state)."),
                "422": _error("The id is not a UUID."),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
        },
    },
    "/jobs/{id}/retry": {
        "post": {
            "operationId": "retryJob",
            "summary": "Put a failed or cancelled job back to pending",
            "parameters": [_ID],
            "responses": {
                "200": _json(_ref("JobBody"), "The job, pending again."),
                "404": _error("No job has this id."),
                "409": _error("The job is neither failed nor cancelled (details.state)."),
                "422": _error("The id is not a UUID."),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
        },
    },
    "/process": {
        "post": {
            "operationId": "process",
            "summary": "Drain due jobs within this invocation's remaining time",
            "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("ProcessOptions")}}},
            "responses": {
                "200": _json(_ref("DrainBody"), "What the drain did and why it stopped."),
                "400": _error("The body is not JSON."),
                "422": _error("Invalid options."),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
        },
    },
    "/stats": {
        "get": {
            "operationId": "stats",
            "summary": "Counts per queue and state, age of the oldest due job",
            "responses": {"200": _json(_ref("StatsBody"), "The counts."), **_AUTH_ERRORS, **_COMMON_ERRORS},
        },
    },
    "/queues": {
        "get": {
            "operationId": "listQueues",
            "summary": "Every queue: its settings and counts",
            "responses": {
                "200": _json(_ref("QueueList"), "Queues with jobs or settings, sorted by name."),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
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
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,100}$"},
                }
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("QueueSettings")}}},
            "responses": {
                "200": _json(_ref("QueueBody"), "The queue with its settings now."),
                "400": _error("The body is not JSON."),
                "413": _error("The body is over the size limit."),
                "422": _error(
                    "An empty body, an unknown field, a wrong type or a value out of range (details.field, "
                    "e.g. rate.per_seconds), or a bad queue name (details.field name)."
                ),
                **_AUTH_ERRORS,
                **_COMMON_ERRORS,
            },
        },
    },
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Database reachable and schema migrated; needs no token",
            "security": [],
            "responses": {
                "200": _json(_ref("HealthBody"), "Healthy."),
                "503": _error("The database is unreachable or its schema is not migrated."),
                "500": _COMMON_ERRORS["500"],
            },
        },
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {
                "200": {"description": "An OpenAPI 3.1 document.", "content": {"application/json": {}}},
                **_AUTH_ERRORS,
            },
        },
    },
}


@cache
def _document() -> dict[str, Any]:
    from . import __version__

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobqueue",
            "version": __version__,
            "description": "Background jobs on AWS Lambda and PostgreSQL. Every error has the body "
            '{"status": "error", "message": ..., "details": {...}}.',
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
            "schemas": _SCHEMAS,
        },
    }


def document(server_url: str | None = None) -> dict[str, Any]:
    """The document, naming the server it was fetched from when that is known."""
    doc = _document()
    if server_url is None:
        return doc
    return {**doc, "servers": [{"url": server_url}]}
