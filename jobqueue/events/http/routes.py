"""The route table: for each method and path, the action it asks for and what
of the request it passes (path parameters, query, body), or the HTTP-only
answer (the API document, the dashboard).

Per-request work is kept small on purpose (the handler's overhead on a submit
is benchmarked against the bare enqueue): fixed paths are matched by
dictionary, and every route is a plain function of the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import rules
from ...actions import jobs, queues
from ...actions.table import perform
from ...errors import ValidationError
from .auth import authorize
from .request import Request, Response, encode, fits
from .router import Route, Router


def act(action: str, inputs: Callable[[Request], Any] | None = None) -> Callable[[Request], Response]:
    """A route that asks for ``action`` with what ``inputs`` reads of the request (nothing by default)."""

    def respond(request: Request) -> Response:
        return Response(200, perform(action, {} if inputs is None else inputs(request), request.call()))

    return respond


def _job_id(request: Request) -> dict[str, Any]:
    return {"job_id": request.params["id"]}


def submit_job(request: Request) -> Response:
    """202 for a new job, 200 for the one an idempotency key (body or header) already made."""
    body, created = jobs.submit(
        request.call().db, request.json(), idempotency_key=request.headers.get("idempotency-key")
    )
    return Response(202 if created else 200, body)


def cancel_job(request: Request) -> Response:
    """200 for a job cancelled now; 202 for a running one asked to stop (its
    drain learns of it within a second, and it ends cancelled)."""
    body = perform("cancel", _job_id(request), request.call())
    return Response(202 if body["job"]["state"] == "running" else 200, body)


def signal_job(request: Request) -> Response:
    """The body is the signal's value: any JSON (none: null)."""
    value = request.json(required=False)
    args = {"job_id": request.params["id"], "name": request.params["name"], "value": value}
    return Response(202, perform("signal", args, request.call()))


def submit_batch(request: Request) -> Response:
    return Response(202, perform("submit_batch", request.json(), request.call()))


def list_jobs(request: Request) -> Response:
    query = request.query
    rules.only(query, jobs.LIST_FIELDS, noun="query parameter", expected=True)
    filters: dict[str, Any] = dict(query)
    limit = query.get("limit")
    if limit is not None:
        if not (limit.isascii() and limit.isdigit() and len(limit) <= 6):
            raise ValidationError(f"limit must be a whole number between 1 and {rules.MAX_PAGE}", field="limit")
        filters["limit"] = int(limit)
    # An empty value (?cursor=) is a value, checked like any other: not "no filter".
    return Response(200, _fit_page(perform("list_jobs", filters, request.call())))


def _fit_page(body: dict[str, Any]) -> dict[str, Any]:
    """Shorten a page that would not fit in a Lambda response; the cursor then
    continues right after the last job that did fit."""
    page = body["jobs"]
    while len(page) > 1 and not fits(encode(body)):
        page = page[: len(page) // 2]
        body = {**body, "jobs": page, "next_cursor": page[-1]["id"]}
    return body


def _process_options(request: Request) -> Any:
    options = request.json(required=False)
    if options is None and request.body:  # a body of JSON null is not "no options"
        raise ValidationError("the process options must be a JSON object", field="body")
    return options


def configure_queue(request: Request) -> Response:
    # An empty body is refused by the action, naming what the body must hold.
    body = queues.configure_queue(request.call().db, request.params["name"], request.json(required=False))
    return Response(200, body)


# What GET /health answers without a token: the function runs and its
# configuration is sound (a configuration error is a 500 before any route).
SHALLOW_HEALTH = {
    "status": "ok",
    "database": "unchecked",
    "hint": "send Authorization: Bearer <token> for the deep check (database reachable, schema version)",
}


def health(request: Request) -> Response:
    """Without an Authorization header, the shallow answer: no database query, so
    anyone may poll it (a load balancer, an uptime monitor) at no cost to the
    database. With one, or with JOBQUEUE_AUTH=none, the deep check, cached per
    container (actions.admin.health); a wrong token is a 401, as on every route."""
    if request.config.auth != "none" and not request.headers.get("authorization"):
        return Response(200, dict(SHALLOW_HEALTH))
    authorize(request.headers, request.config)
    return Response(200, perform("health", {}, request.call()))


def openapi(request: Request) -> Response:
    from .openapi import document  # only a request for the document loads it

    return Response(200, document(_server_url(request)))


def ui_page(request: Request) -> Response:
    from . import dashboard  # only the dashboard's requests load its files

    return dashboard.page(request)


def ui_asset(request: Request) -> Response:
    from . import dashboard

    return dashboard.asset(request)


def _server_url(request: Request) -> str | None:
    """The API's base URL as the client called it: its domain, and whatever
    came before the matched route in the requested path (a stage, a base path)."""
    ctx = request.request_context
    domain = ctx.get("domainName")
    if not isinstance(domain, str) or not domain:
        return None
    requested = ctx.get("path")  # v1: the path as requested, stage included
    if "http" in ctx or not isinstance(requested, str):  # v2: rawPath has it
        requested = max(request.paths, key=len)
    base = requested[: -len(request.path)] if requested.endswith(request.path) else ""
    # API Gateway and Function URLs serve only HTTPS and say so in X-Forwarded-Proto;
    # the local stack serves plain HTTP and says that.
    scheme = "http" if request.headers.get("x-forwarded-proto") == "http" else "https"
    return f"{scheme}://{domain}{base.rstrip('/')}"


ROUTES: list[Route] = [
    Route("POST", "/jobs", "submitJob", submit_job, "Submit one job", body="required"),
    Route("POST", "/jobs/batch", "submitBatch", submit_batch, "Submit many jobs, all or nothing", body="required"),
    Route("GET", "/jobs", "listJobs", list_jobs, "List jobs, newest first, filtered and keyset-paginated"),
    Route("GET", "/jobs/{id}", "getJob", act("status", _job_id), "One job's state, attempts, result and errors"),
    Route(
        "POST",
        "/jobs/{id}/cancel",
        "cancelJob",
        cancel_job,
        "Cancel a job that has not finished; a running one is asked to stop",
    ),
    Route(
        "POST",
        "/jobs/{id}/signals/{name}",
        "signalJob",
        signal_job,
        "Deliver a signal (the body: any JSON value) to a durable job",
        body="optional",
    ),
    Route(
        "POST", "/jobs/{id}/retry", "retryJob", act("retry", _job_id), "Put a failed or cancelled job back to pending"
    ),
    Route(
        "POST",
        "/process",
        "process",
        act("process", _process_options),
        "Drain due jobs within this invocation's time",
        body="optional",
    ),
    Route("GET", "/stats", "stats", act("stats"), "Counts per queue and state, age of the oldest due job"),
    Route("GET", "/queues", "listQueues", act("queues"), "Every queue: its settings and counts"),
    Route(
        "PATCH", "/queues/{name}", "configureQueue", configure_queue, "Pause, resume or limit a queue", body="required"
    ),
    Route("GET", "/schedules", "listSchedules", act("schedules"), "Periodic jobs with their last and next run"),
    Route(
        "GET",
        "/health",
        "health",
        health,
        "Alive without a token; with one, database reachable and schema version",
        auth=False,  # the route checks a token itself, when one is sent
    ),
    Route("GET", "/openapi.json", "openapi", openapi, "This API as an OpenAPI 3 document"),
    Route("GET", "/ui", "dashboard", ui_page, "The dashboard page", auth=False),
    Route("GET", "/ui/{asset}", "dashboardAsset", ui_asset, "A file of the dashboard page", auth=False),
]
ROUTER = Router(ROUTES)
