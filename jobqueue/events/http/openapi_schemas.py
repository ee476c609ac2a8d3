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

from ...actions.signals import MAX_NAME as MAX_SIGNAL_NAME
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
from ...store.jobs import MAX_CHILDREN_SHOWN
from ...store.workflows import MAX_PARENTS
from ...tasks.graph import MAX_KEY as MAX_BATCH_KEY

# The queue-name rule, anchored as JSON Schema patterns are not.
QUEUE_PATTERN = "^" + QUEUE_NAME.pattern + "$"
# Text PostgreSQL can store: no NUL character anywhere.
NO_NUL = "^[^\\u0000]*$"
# A signal's name (the path parameter): 1 to 200 printable characters. The
# pattern shows the ASCII ones; any printable Unicode text is taken too (no
# control or format character, no unassigned code point).
SIGNAL_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_SIGNAL_NAME,
    "pattern": "^[ -~]+$",
    "description": "What the job's job.wait_for(name) waits for.",
}
# A batch job's key: 1 to 200 printable characters. The pattern leaves out the
# control characters; the server refuses every other unprintable one too
# (format characters, separators other than the space, unassigned code points).
BATCH_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_BATCH_KEY,
    "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
}
# Job ids, as a job object lists its parents and children.
JOB_IDS = {"type": "array", "items": {"type": "string", "format": "uuid"}}
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
        "description": "A job as submitted, alone (JobInput) or in a batch. Give run_at or delay_seconds, not "
        "both. An optional field that is null is left out. key and after are for the jobs of a batch only.",
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
                "description": "The task's when left out. When neither names one, the job runs for 30 s, "
                "or for a drain's whole budget when the function's timeout leaves less.",
            },
            "idempotency_key": {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": NO_NUL,
                "description": "A repeated key returns the existing job instead of a new one.",
            },
            "depends_on": {
                "type": ["array", "null"],
                "minItems": 1,
                "maxItems": MAX_PARENTS,
                "uniqueItems": True,
                "items": {"type": "string", "format": "uuid"},
                "description": "Parents: ids of existing jobs, none twice (an id no job has refuses the submit: "
                "422, details.field depends_on). The job is blocked until every parent has succeeded, then "
                "pending; parents that ended already count at once. Its task reads their results from "
                "job.parents, by id.",
            },
            "on_parent_failure": {
                "enum": ["cancel", "run", None],
                "description": "What a parent that ends failed or cancelled does to this job. cancel (the "
                "default): it ends cancelled with an error of type ParentFailed naming that parent, and its own "
                "children after it. run: it runs anyway once no parent is left to end; job.parents gives the "
                "failed parent as {state, error}.",
            },
            "key": {
                "anyOf": [BATCH_KEY, {"type": "null"}],
                "description": "In a batch only: the job's name, unique within the batch, which other jobs of "
                "the batch name in after, and by which its children's job.parents holds its result. 1 to "
                f"{MAX_BATCH_KEY} printable characters.",
            },
            "after": {
                "type": ["array", "null"],
                "minItems": 1,
                "uniqueItems": True,
                "items": BATCH_KEY,
                "description": "In a batch only: the keys of jobs of the same batch this one waits for, as "
                "depends_on waits for ids (both may be given). A key no job of the batch has, a key two jobs "
                "have, or jobs waiting for each other in a circle refuse the whole batch: 422, details.field "
                "jobs, the message naming them.",
            },
        },
    },
    "JobInput": {
        "description": "The body of POST /jobs: one job (key and after belong to a batch's jobs).",
        "allOf": [ref("JobSubmission")],
        "properties": {"key": False, "after": False},
    },
    "ThenJob": {
        "description": "A batch's then job: one more job, blocked until every job of the batch has ended, in any "
        "final state, then run once; its job.parents holds each job's result, or {state, error} for one that "
        "did not succeed, by key (by id for a job without one). It takes no key, after, depends_on or "
        "on_parent_failure.",
        "allOf": [ref("JobSubmission")],
        "properties": {"key": False, "after": False, "depends_on": False, "on_parent_failure": False},
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
            "state": {
                "enum": list(STATES),
                "description": "pending (due now or later: run_at says when), running, succeeded, failed, "
                "cancelled; waiting: a durable job suspended itself in job.sleep or job.wait_for (no drain "
                "holds it, waiting_for says until what); blocked: a job of a workflow whose parents have not "
                "all succeeded (a batch's then job: whose batch has not ended), depends_on names them.",
            },
            "priority": {"type": "integer"},
            "payload": {"type": "object"},
            "attempts": {
                "type": "integer",
                "minimum": 0,
                "description": "How many times the job was claimed; a run that ended in a sleep, a wait or a "
                "snooze is not counted.",
            },
            "max_attempts": {"type": "integer", "minimum": 1},
            "timeout_seconds": {
                "type": ["number", "null"],
                "description": "null when neither the submit nor the task named one: the job then runs for 30 s, "
                "or for a drain's whole budget when the function's timeout leaves less.",
            },
            "idempotency_key": {"type": ["string", "null"]},
            "run_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "Not before this time. null for a job that waits for a signal with no timeout "
                "(it has no time to run at until the signal comes), and for one cancelled while it so waited.",
            },
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
            "progress": {
                "oneOf": [{"type": "null"}, ref("Progress")],
                "description": "The last job.progress a durable job reported; null if none.",
            },
            "steps": {
                "type": ["array", "null"],
                "items": ref("Step"),
                "description": "A durable job's checkpoints, oldest first: completed steps, sleeps, waits and "
                "the signals they took (their results are not shown); null for a job that made none.",
            },
            "waiting_for": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["sleep_until"],
                        "description": "A job.sleep: it wakes at this time.",
                        "properties": {"sleep_until": {"type": "string", "format": "date-time"}},
                    },
                    {
                        "type": "object",
                        "required": ["signal", "timeout_at"],
                        "description": "A job.wait_for: the signal's name, and when the wait times out (null: never).",
                        "properties": {
                            "signal": {"type": "string"},
                            "timeout_at": {"type": ["string", "null"], "format": "date-time"},
                        },
                    },
                ],
                "description": "What a waiting job waits for; null otherwise (a blocked job's parents are in "
                "depends_on).",
            },
            "cancel_requested": {
                "type": "boolean",
                "description": "A cancel reached the job while it ran: it stops at its next step or await "
                "and ends cancelled.",
            },
            "depends_on": {
                **JOB_IDS,
                "description": "A job of a workflow: the ids of its parents (depends_on, a batch's after, every "
                "job of the batch for its then job). In GET /jobs/{id} of a job with parents or children, and in "
                "the answer to a submit that used depends_on, after or then (where it may be empty); not in lists.",
            },
            "children": {
                **JOB_IDS,
                "maxItems": MAX_CHILDREN_SHOWN,
                "description": f"GET /jobs/{{id}} of a job of a workflow: the ids of the jobs that wait for it, "
                f"the first {MAX_CHILDREN_SHOWN:,} by id.",
            },
            "children_count": {
                "type": "integer",
                "minimum": 0,
                "description": "Beside children: how many jobs wait for it in all.",
            },
        },
    },
    "Progress": {
        "type": "object",
        "required": ["value", "message", "at"],
        "properties": {
            "value": {"type": "number", "description": "Any number; from 0 to 1 the dashboard draws a bar."},
            "message": {"type": ["string", "null"]},
            "at": {"type": "string", "format": "date-time", "description": "When it was written."},
        },
    },
    "Step": {
        "type": "object",
        "required": ["name", "at"],
        "description": "One checkpoint of a durable job, by its name (unique within the job).",
        "properties": {
            "name": {"type": "string"},
            "at": {
                "type": "string",
                "format": "date-time",
                "description": "When the step completed, or the sleep or wait began.",
            },
            "until": {"type": "string", "format": "date-time", "description": "A sleep: when it ends."},
            "timeout_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "A wait: when it times out (null: never).",
            },
            "timed_out": {"type": "boolean", "description": "A wait that ended in its timeout (WaitTimeout)."},
        },
    },
    "Signal": {
        "description": "A signal's value: any JSON, null when the body is empty. At most JOBQUEUE_MAX_BODY_BYTES "
        f"of JSON; no NUL character in any string or key, nested at most {MAX_JSON_DEPTH} levels deep.",
        "anyOf": [ref("JsonValue")],
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
                "returned more than JOBQUEUE_MAX_RESULT_BYTES of JSON; never retried), Cancelled (it raised Cancelled, "
                "or a cancel reached it while it ran; the job ends cancelled, not retried), DurableError (a "
                "durable job misused its handle: a step name used twice in one run, a step result over the "
                "limit; never retried), WaitTimeout (a job.wait_for timed out and the task let it through), "
                "ParentFailed (a parent, named by parent, ended failed or cancelled: the job is cancelled without "
                "running; retrying that parent blocks it again).",
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
            "parent": {
                "type": "string",
                "format": "uuid",
                "description": "ParentFailed only: the id of the parent that ended failed or cancelled.",
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
        "description": "The whole batch is checked before anything is written: keys, after (no unknown or "
        "repeated key, no circle) and every job's fields. With then (even null), jobs must not be empty.",
        "dependentSchemas": {"then": {"properties": {"jobs": {"minItems": 1}}}},
        "properties": {
            "jobs": {"type": "array", "maxItems": MAX_BATCH, "items": ref("JobSubmission")},
            "then": {"anyOf": [ref("ThenJob"), {"type": "null"}]},
        },
    },
    "BatchBody": {
        "type": "object",
        "required": ["status", "jobs"],
        "properties": {
            "status": {"const": "ok"},
            "jobs": {"type": "array", "items": ref("Job")},
            "then": {**ref("Job"), "description": "The batch's then job, when the batch has one."},
        },
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
                    "suspended": {
                        "type": "integer",
                        "description": "Durable jobs whose run ended in job.sleep or job.wait_for: they wait, "
                        "holding no slot.",
                    },
                    "snoozed": {
                        "type": "integer",
                        "description": "Jobs that raised Snooze: pending again later, the run not counted.",
                    },
                    "cancelled": {
                        "type": "integer",
                        "description": "Jobs that raised Cancelled, or that a cancel reached while they ran.",
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
        "oneOf": [
            {
                "type": "object",
                "description": "With a valid token (or JOBQUEUE_AUTH=none): the database answered and its schema "
                "is the one this code needs (checked at most every 5 s per container).",
                "required": ["status", "database", "schema_version"],
                "properties": {
                    "status": {"const": "ok"},
                    "database": {"const": "ok"},
                    "schema_version": {"type": "integer"},
                },
            },
            {
                "type": "object",
                "description": "Without an Authorization header: the function runs and its configuration is sound; "
                "the database was not asked.",
                "required": ["status", "database", "hint"],
                "properties": {
                    "status": {"const": "ok"},
                    "database": {"const": "unchecked"},
                    "hint": {"type": "string"},
                },
            },
        ],
    },
}
