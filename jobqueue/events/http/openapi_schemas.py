"""The schemas of the OpenAPI document (GET /openapi.json): every body the API
takes or gives, as plain JSON Schema (2020-12), which the tests also use to
validate real responses.

They state every rule the validation enforces (lengths, patterns, ranges,
required and unknown fields), from the same bounds (``rules``), so that
Schemathesis, run against the document in the test suite, can hold the API
to it. One value, SCHEMAS: splitting it would only scatter the API's shapes.
"""

from __future__ import annotations

from typing import Any

from ...rules import (
    MAX_ATTEMPTS,
    MAX_BATCH,
    MAX_DELAY_SECONDS,
    MAX_DRAIN_JOBS,
    MAX_DRAIN_QUEUES,
    MAX_ERROR_MESSAGE_BYTES,
    MAX_HOPS,
    MAX_JSON_DEPTH,
    MAX_KEY_LENGTH,
    MAX_PRIORITY,
    MAX_QUEUE_CONCURRENCY,
    MAX_RATE_LIMIT,
    MAX_RATE_SECONDS,
    MAX_TASK_LENGTH,
    MAX_TIMEOUT_SECONDS,
    MAX_TRACEBACK_BYTES,
    MIN_RATE_SECONDS,
    MIN_TIMEOUT_SECONDS,
    QUEUE_NAME,
)
from ...states import ALL as STATES

# The queue-name rule, anchored as JSON Schema patterns are not.
QUEUE_PATTERN = "^" + QUEUE_NAME.pattern + "$"
# Text PostgreSQL can store: no NUL character anywhere.
NO_NUL = "^[^\\u0000]*$"
# run_at is stored in UTC between 1970 and 9999: no year outside that may be sent.
# (A time on 1970-01-01 or 9999-12-31 whose offset takes it out of range in UTC
# is refused too; the description says so, as a pattern cannot.)
RUN_AT_YEARS = "^(19[7-9][0-9]|[2-9][0-9]{3})-"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
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
                "anyOf": [ref("Payload"), {"type": "null"}],
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
        "additionalProperties": ref("JsonValue"),
    },
    "JsonValue": {
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": ref("JsonValue")},
            ref("Payload"),
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
            "result": {
                "description": "The task's return value, once it succeeded: at most JOBQUEUE_MAX_RESULT_BYTES "
                "(256 KiB by default) of JSON; a larger one fails the job with ResultTooLarge."
            },
            "error": {
                "oneOf": [{"type": "null"}, ref("AttemptError")],
                "description": "The last attempt's error.",
            },
            "errors": {"type": "array", "items": ref("AttemptError"), "description": "Every attempt's error."},
        },
    },
    "AttemptError": {
        "type": "object",
        "required": ["attempt", "type", "message"],
        "properties": {
            "attempt": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "type": {
                "type": "string",
                "description": "The exception's class name, or one of jobqueue's own: JobTimeout (the job "
                "outlived its timeout), ProcessCrashed (the process running it died: killed, out of memory or "
                "time), TimeoutExceedsBudget (its timeout is longer than any drain's budget), ResultTooLarge (it "
                "returned more than JOBQUEUE_MAX_RESULT_BYTES of JSON; never retried).",
            },
            "message": {
                "type": "string",
                "description": f"At most {MAX_ERROR_MESSAGE_BYTES // 1024} KiB (UTF-8); a longer one is cut, "
                "ending with a marker that says how many bytes were cut.",
            },
            "traceback": {
                "type": "string",
                "description": f"At most {MAX_TRACEBACK_BYTES // 1024} KiB (UTF-8); a longer one loses frames "
                "from its middle, where a marker says how many bytes were cut.",
            },
            "counted": {
                "type": "boolean",
                "description": "ProcessCrashed only: false when the job was running beside others, so the "
                "death was not counted against its attempts (it then runs alone).",
            },
        },
    },
    "JobBody": {
        "type": "object",
        "required": ["status", "job"],
        "properties": {"status": {"const": "ok"}, "job": ref("Job")},
    },
    "JobList": {
        "type": "object",
        "required": ["status", "jobs", "next_cursor"],
        "properties": {
            "status": {"const": "ok"},
            "jobs": {"type": "array", "items": ref("Job")},
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
        "properties": {"jobs": {"type": "array", "maxItems": MAX_BATCH, "items": ref("JobSubmission")}},
    },
    "BatchBody": {
        "type": "object",
        "required": ["status", "jobs"],
        "properties": {"status": {"const": "ok"}, "jobs": {"type": "array", "items": ref("Job")}},
    },
    "ProcessOptions": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "queues": {
                "type": ["array", "null"],
                "minItems": 1,
                "maxItems": MAX_DRAIN_QUEUES,
                "items": {"type": "string", "pattern": QUEUE_PATTERN},
                "description": "Drain only these queues (all when left out or null).",
            },
            "max_jobs": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_DRAIN_JOBS,
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
                    "rescued": {
                        "type": "integer",
                        "description": "Jobs of drains that died (their lease had expired): put back, set to run "
                        "alone, or failed.",
                    },
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
                    "alone": {
                        "type": "integer",
                        "description": "Suspects this drain ran with nothing beside them: jobs that were running "
                        "when a drain's process died.",
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
                                "counts": ref("StateCounts"),
                                "oldest_pending_age_seconds": {"type": ["number", "null"]},
                            },
                        },
                    },
                    "totals": ref("StateCounts"),
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
                "oneOf": [{"type": "null"}, ref("Rate")],
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
            "rate": {"oneOf": [{"type": "null"}, ref("Rate")]},
            "counts": ref("StateCounts"),
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
                "items": ref("Queue"),
                "description": "Every queue that has jobs or settings, by name.",
            },
        },
    },
    "QueueBody": {
        "type": "object",
        "required": ["status", "queue"],
        "properties": {"status": {"const": "ok"}, "queue": ref("Queue")},
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
        "properties": {"status": {"const": "ok"}, "schedules": {"type": "array", "items": ref("Schedule")}},
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
