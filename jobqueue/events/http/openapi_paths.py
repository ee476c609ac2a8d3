"""The paths of the OpenAPI document: every route with its parameters, bodies
and every status it can answer, written out by hand rather than generated
from the route table, so that the test comparing the two catches a route
added to one and forgotten in the other."""

from __future__ import annotations

from typing import Any

from ...rules import MAX_FILTER_LENGTH, MAX_KEY_LENGTH, MAX_PAGE
from ...states import ALL as STATES
from .dashboard import asset_names
from .openapi_schemas import NO_NUL, QUEUE_PATTERN, SIGNAL_NAME, ref


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _json(ref("Error"), description, headers)


def _body(schema: dict[str, Any], *, required: bool = True, what: str = "JSON") -> dict[str, Any]:
    description = f"{what}; a body without a Content-Type is read as JSON too."
    return {"required": required, "description": description, "content": {"application/json": {"schema": schema}}}


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
    "500": _error(
        "Unexpected failure, or a misconfigured service (said in general terms: the log has the detail); "
        "details.request_id identifies it in the logs."
    ),
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


def _links(pointer: str, *operations: str) -> dict[str, Any]:
    """Links from a response holding a job (at ``pointer``) to the routes that take
    its id: clients and stateful testing follow them with real ids (and signalJob
    with a constant name: what a job waits for is its task's to say)."""
    return {
        op[0].upper() + op[1:]: {
            "operationId": op,
            "parameters": {"id": f"$response.body#{pointer}", **({"name": "go"} if op == "signalJob" else {})},
            "description": f"{op} for the job this response holds.",
        }
        for op in operations
    }


_BY_ID = ("getJob", "cancelJob", "signalJob", "retryJob")


def _with_links(response: dict[str, Any], links: dict[str, Any]) -> dict[str, Any]:
    return {**response, "links": links}


PATHS: dict[str, Any] = {
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
            "requestBody": _body(ref("JobInput")),
            "responses": _responses(
                {
                    "202": _with_links(_json(ref("JobBody"), "Accepted: a new job."), _links("/job/id", *_BY_ID)),
                    "200": _with_links(
                        _json(ref("JobBody"), "The job this idempotency key already created."),
                        _links("/job/id", *_BY_ID),
                    ),
                },
                *_BODY_ERRORS,
                e422=_error("A bad field (details.field), or depends_on names a job that does not exist."),
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
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_FILTER_LENGTH, "pattern": NO_NUL},
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
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                },
            ],
            "responses": _responses(
                {"200": _json(ref("JobList"), "A page of jobs.")},
                "401",
                "422",
                "503",
            ),
        },
    },
    "/jobs/batch": {
        "post": {
            "operationId": "submitBatch",
            "summary": "Submit up to 1,000 jobs, all or nothing, with a then job if asked",
            "requestBody": _body(ref("BatchSubmission")),
            "responses": _responses(
                {"202": _json(ref("BatchBody"), "Accepted: the jobs, in the order sent, and then.")},
                *_BODY_ERRORS,
                e422=_error(
                    "One job is invalid (details.field, e.g. jobs[3].task), or the keys are repeated, "
                    "unknown or in a circle (field jobs, the message naming them); nothing was enqueued."
                ),
            ),
        },
    },
    "/jobs/{id}": {
        "get": {
            "operationId": "getJob",
            "summary": "One job's state, attempts, result and errors",
            "parameters": [_ID],
            "responses": _responses({"200": _json(ref("JobBody"), "The job.")}, *_ID_ERRORS),
        },
    },
    "/jobs/{id}/cancel": {
        "post": {
            "operationId": "cancelJob",
            "summary": "Cancel a job that has not finished; a running one is asked to stop",
            "description": "A pending, waiting or blocked job is cancelled at once (200). A running one is asked to "
            "stop (202): its drain learns of it within a second, job.cancel_requested turns true and its next "
            "job.step raises Cancelled (an async task gets CancelledError at its next await); it ends cancelled, "
            "not retried, and a result it returns after that is dropped.",
            "parameters": [_ID],
            "responses": _responses(
                {
                    "200": _with_links(_json(ref("JobBody"), "The cancelled job."), _links("/job/id", "retryJob")),
                    "202": _json(ref("JobBody"), "The running job, asked to stop (cancel_requested true)."),
                },
                *_ID_ERRORS,
                "409",
                e409=_error("The job has finished: succeeded, failed or cancelled (details.state)."),
            ),
        },
    },
    "/jobs/{id}/signals/{name}": {
        "post": {
            "operationId": "signalJob",
            "summary": "Deliver a signal (the body: any JSON value) to a durable job",
            "description": "A job waiting in job.wait_for(name) becomes due at once and takes the value; one sent "
            "before the wait is kept until the wait takes it (a later one of the same name replaces it).",
            "parameters": [_ID, {"name": "name", "in": "path", "required": True, "schema": SIGNAL_NAME}],
            "requestBody": _body(ref("Signal"), required=False, what="JSON, the signal's value (none: null)"),
            "responses": _responses(
                {"202": _json(ref("JobBody"), "Delivered: the job as it is now (pending if it waited for it).")},
                *_BODY_ERRORS,
                "404",
                "409",
                e409=_error("The job has finished: it takes no more signals (details.state)."),
                e422=_error("A bad id or name, or a value over JOBQUEUE_MAX_BODY_BYTES of JSON (details.field)."),
            ),
        },
    },
    "/jobs/{id}/retry": {
        "post": {
            "operationId": "retryJob",
            "summary": "Put a failed or cancelled job back to pending",
            "parameters": [_ID],
            "responses": _responses(
                {"200": _with_links(_json(ref("JobBody"), "The job, pending again."), _links("/job/id", "cancelJob"))},
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
            "requestBody": _body(ref("ProcessOptions"), required=False),
            "responses": _responses(
                {"200": _json(ref("DrainBody"), "What the drain did and why it stopped.")},
                *_BODY_ERRORS,
                e422=_error("Invalid options (details.field)."),
            ),
        },
    },
    "/stats": {
        "get": {
            "operationId": "stats",
            "summary": "Counts per queue and state, age of the oldest due job",
            "responses": _responses({"200": _json(ref("StatsBody"), "The counts.")}, "401", "503"),
        },
    },
    "/queues": {
        "get": {
            "operationId": "listQueues",
            "summary": "Every queue: its settings and counts",
            "responses": _responses(
                {"200": _json(ref("QueueList"), "Queues with jobs or settings, sorted by name.")}, "401", "503"
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
            "requestBody": _body(ref("QueueSettings")),
            "responses": _responses(
                {"200": _json(ref("QueueBody"), "The queue with its settings now.")},
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
                {"200": _json(ref("ScheduleList"), "Every schedule this deployment declares, by name.")}, "401", "503"
            ),
        },
    },
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Alive without a token; with one, database reachable and schema migrated",
            "description": "Without an Authorization header the answer is shallow: no database query. With a "
            "valid token (or when JOBQUEUE_AUTH=none) it is the deep check, whose answer, good or bad, each "
            "container keeps for 5 s. A wrong token is a 401.",
            "security": [{}, {"bearer": []}],
            "responses": _responses(
                {"200": _json(ref("HealthBody"), "Healthy: shallow without a token, deep with one.")},
                "401",
                "503",
                e401=_error(
                    "An Authorization header was sent, and its token is not valid.",
                    {"WWW-Authenticate": _header('Bearer realm="jobqueue"')},
                ),
                e503=_error(
                    "The deep check: the database is unreachable or its schema is not migrated.",
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
