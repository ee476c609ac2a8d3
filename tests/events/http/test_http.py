"""The HTTP API through app.lambda_handler, against a real PostgreSQL: every route
from every event format, auth, CORS, stage prefixes, base64, errors and logs."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from typing import Any

import pytest

from jobqueue import log
from jobqueue.actions import admin
from jobqueue.errors import DatabaseUnavailable, SecretUnavailable
from jobqueue.events.http import request
from jobqueue.events.http.router import Route
from jobqueue.events.http.routes import ROUTES
from jobqueue.store import connection, jobs, queues, schema
from tests.support.apigw import AUTH, TOKEN, assert_error, call, function_url, v1, v2
from tests.support.aws import make_context

pytestmark = pytest.mark.usefixtures("database", "settings_env")


FORMATS = {"v1": v1, "v2": v2, "url": function_url}


def count(raw: Any) -> int:
    return raw.run("SELECT count(*) FROM jobs")[0][0]


def submit(make: Any = v2, **fields: Any) -> dict[str, Any]:
    status, _, body = call(make("POST", "/jobs", {"task": "echo", **fields}, AUTH))
    assert status == 202, body
    return body["job"]


@pytest.fixture
def routes_seen(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The request log lines, whatever the log level."""
    seen: list[dict[str, Any]] = []
    original = log.info

    def capture(event: str, **fields: Any) -> None:
        if event == "request":
            seen.append(fields)
        original(event, **fields)

    monkeypatch.setattr(log, "info", capture)
    return seen


# --- every route, from each sample event format ---------------------------------------


def _exercise(route: Route, make: Any, raw: Any) -> tuple[int, Any]:
    """Send a request that the route should answer successfully."""
    job = submit(make, payload={"n": 1})
    path = route.path.replace("{id}", job["id"]).replace("{asset}", "app.js").replace("{name}", "emails")
    body = None
    if route.name == "submitJob":
        body = {"task": "echo", "payload": {"route": True}}
    elif route.name == "submitBatch":
        body = {"jobs": [{"task": "echo"}, {"task": "noop"}]}
    elif route.name == "retryJob":
        raw.run("UPDATE jobs SET state = 'failed', finished_at = now() WHERE id = CAST(:id AS uuid)", id=job["id"])
    elif route.name == "process":
        body = {"max_jobs": 5}
    elif route.name == "configureQueue":
        body = {"concurrency": 3}
    elif route.name == "signalJob":
        body = {"approved": True}
    status, _, answer = call(make(route.method, path, body, AUTH))
    return status, answer


EXPECTED = {
    "submitJob": (202, "job"),
    "submitBatch": (202, "jobs"),
    "listJobs": (200, "jobs"),
    "getJob": (200, "job"),
    "cancelJob": (200, "job"),
    "signalJob": (202, "job"),
    "retryJob": (200, "job"),
    "process": (200, "drain"),
    "stats": (200, "stats"),
    "listQueues": (200, "queues"),
    "configureQueue": (200, "queue"),
    "listSchedules": (200, "schedules"),
    "health": (200, "schema_version"),
    "openapi": (200, "openapi"),
    "dashboard": (200, "<!doctype html>"),
    "dashboardAsset": (200, "'use strict';"),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_event_format_reaches_each_route(fmt: str, route: Route, raw: Any, routes_seen: list) -> None:
    status, body = _exercise(route, FORMATS[fmt], raw)
    assert (status, EXPECTED[route.name][1] in body) == (EXPECTED[route.name][0], True), body
    assert routes_seen[-1]["route"] == route.path
    assert routes_seen[-1]["method"] == route.method


def test_route_specific_outcomes(raw: Any) -> None:
    job = submit(payload={"n": 1})
    _, _, got = call(v2("GET", f"/jobs/{job['id']}", headers=AUTH))
    assert got["job"]["id"] == job["id"] and got["job"]["payload"] == {"n": 1}
    _, _, cancelled = call(v1("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))
    assert cancelled["job"]["state"] == "cancelled"
    _, _, retried = call(v1("POST", f"/jobs/{job['id']}/retry", headers=AUTH))
    assert retried["job"]["state"] == "pending"
    _, _, drained = call(v2("POST", "/process", headers=AUTH))
    assert drained["drain"]["succeeded"] == 1 and drained["drain"]["stopped"] == "idle"
    _, _, done = call(v2("GET", f"/jobs/{job['id']}", headers=AUTH))
    assert (done["job"]["state"], done["job"]["result"], done["job"]["attempts"]) == ("succeeded", {"n": 1}, 1)
    _, _, stats = call(v2("GET", "/stats", headers=AUTH))
    assert stats["stats"]["totals"]["succeeded"] == 1


# --- v1 and v2 answer alike -------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z")


def _scenario(make: Any, raw: Any) -> list[Any]:
    """A client session; ids, times and durations are replaced by placeholders."""
    raw.run("TRUNCATE jobs")
    ids: dict[str, str] = {}
    out = []

    def send(method: str, template: str, body: Any = None, headers: Any = None, **kw: Any) -> dict[str, Any]:
        path = template
        for name, value in ids.items():
            path = path.replace(f"<{name}>", value)
        status, response_headers, answer = call(make(method, path, body, {**AUTH, **(headers or {})}, **kw))
        text = json.dumps(answer, sort_keys=True)
        for name, value in ids.items():
            text = text.replace(value, f"<{name}>")
        text = _TIME.sub("<time>", _UUID.sub("<uuid>", text))
        text = re.sub(r'"seconds": [0-9.e-]+', '"seconds": 0', text)
        text = re.sub(r'"oldest_pending_age_seconds": [0-9.e-]+', '"oldest_pending_age_seconds": 0', text)
        keep = {k: v for k, v in response_headers.items() if k not in ("X-Request-Id",)}
        normal = json.loads(text)
        if isinstance(normal, dict) and "jobs" in normal:  # ids made in the same millisecond sort randomly
            normal["jobs"].sort(key=lambda job: json.dumps(job, sort_keys=True))
        out.append((method, template, status, keep, normal))
        return answer or {}

    first = send("POST", "/jobs", {"task": "echo", "payload": {"a": 1}}, {"Idempotency-Key": "k1"})["job"]["id"]
    ids["first"] = first
    send("POST", "/jobs", {"task": "echo", "payload": {"a": 1}}, {"Idempotency-Key": "k1"})
    send("POST", "/jobs", {"task": "echo", "queue": "other", "payload": {"b": [1, 2]}}, b64=True)
    send("POST", "/jobs/batch", {"jobs": [{"task": "noop"}, {"task": "echo", "priority": -5}]})
    send("GET", "/jobs/<first>")
    send("GET", "/jobs", query={"queue": "default", "limit": "10"})
    send("GET", "/jobs", query={"state": ["pending", "failed"]})
    send("POST", "/jobs/<first>/cancel")
    send("POST", "/jobs/<first>/cancel")
    send("POST", "/jobs/<first>/retry")
    send("POST", "/process", {"queues": ["other"]})
    send("GET", "/stats")
    send("POST", "/jobs", {"task": "nope"})
    send("POST", "/jobs", "{not json")
    send("DELETE", "/jobs/<first>")
    send("GET", "/nowhere")
    send("GET", "/health")
    return out


def test_v1_and_v2_give_identical_results(raw: Any) -> None:
    from_v1 = _scenario(v1, raw)
    from_v2 = _scenario(v2, raw)
    assert len(from_v1) == 17
    for a, b in zip(from_v1, from_v2, strict=True):
        assert a == b


# --- paths: stages, trailing slashes, HEAD ----------------------------------------------


def test_v2_non_default_stage_prefix_is_stripped() -> None:
    status, _, body = call(v2("GET", "/health", stage="prod"))
    assert (status, body["status"]) == (200, "ok")
    job = submit(lambda *a, **k: v2(*a, **k, stage="prod"))
    status, _, body = call(v2("GET", f"/jobs/{job['id']}", headers=AUTH, stage="prod"))
    assert (status, body["job"]["id"]) == (200, job["id"])


def test_v1_stage_in_path_or_only_in_context() -> None:
    # REST APIs on their execute-api domain leave the stage out of `path`...
    assert call(v1("GET", "/health", stage="prod"))[0] == 200
    # ...while some set-ups (custom domains with a base path) put it in.
    event = v1("GET", "/prod/health", stage="prod")
    assert call(event)[0] == 200


def test_a_stage_named_like_a_route_still_routes() -> None:
    status, _, body = call(v2("POST", "/jobs", {"task": "echo"}, AUTH, stage="jobs"))
    assert (status, body["job"]["task"]) == (202, "echo")
    assert call(v2("GET", "/jobs", headers=AUTH, stage="jobs"))[0] == 200
    # A custom domain: rawPath without the stage, the stage only in the context.
    event = v2("GET", "/health")
    event["requestContext"]["stage"] = "jobs"
    assert call(event)[0] == 200


def test_trailing_slash_and_head() -> None:
    assert call(v2("GET", "/health/"))[0] == 200
    status, headers, body = call(v2("HEAD", "/health"))
    assert (status, body, headers["Content-Type"]) == (200, None, "application/json")


def test_responses_are_json_with_content_type_and_request_id() -> None:
    context = make_context(request_id="req-123")
    import app

    for event in (v2("GET", "/health"), v2("GET", "/missing"), v1("POST", "/jobs", "[", AUTH)):
        response = app.lambda_handler(event, context)
        assert response["headers"]["Content-Type"] == "application/json"
        assert response["headers"]["X-Request-Id"] == "req-123"
        json.loads(response["body"])


# --- base64 ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [v1, v2])
def test_base64_bodies_are_decoded(make: Any, raw: Any) -> None:
    status, _, body = call(make("POST", "/jobs", {"task": "echo", "payload": {"é": "ü"}}, AUTH, b64=True))
    assert status == 202 and body["job"]["payload"] == {"é": "ü"}
    event = make("POST", "/jobs", None, AUTH)
    event["body"], event["isBase64Encoded"] = "not base64!!", True
    status, _, body = call(event)
    assert status == 400
    assert_error(body, field="body")
    assert count(raw) == 1


# --- idempotency ----------------------------------------------------------------------


def test_idempotency_key_header_returns_the_existing_job(raw: Any) -> None:
    first = call(v2("POST", "/jobs", {"task": "echo"}, {**AUTH, "Idempotency-Key": "order-17"}))
    again = call(v1("POST", "/jobs", {"task": "echo"}, {**AUTH, "Idempotency-Key": "order-17"}))
    assert (first[0], again[0]) == (202, 200)
    assert first[2]["job"]["id"] == again[2]["job"]["id"]
    assert first[2]["job"]["idempotency_key"] == "order-17"
    in_body = call(v2("POST", "/jobs", {"task": "echo", "idempotency_key": "order-17"}, AUTH))
    assert (in_body[0], in_body[2]["job"]["id"]) == (200, first[2]["job"]["id"])
    assert count(raw) == 1


def test_the_body_idempotency_key_wins_over_the_header(raw: Any) -> None:
    """As over an SQS message id: the body's key names the job; a header (often
    added per request by a client's retry layer) keys it only when the body has none."""
    status, _, body = call(
        v2("POST", "/jobs", {"task": "echo", "idempotency_key": "order-17"}, {**AUTH, "Idempotency-Key": "req-1"})
    )
    assert (status, body["job"]["idempotency_key"]) == (202, "order-17")
    status, _, again = call(
        v2("POST", "/jobs", {"task": "echo", "idempotency_key": "order-17"}, {**AUTH, "Idempotency-Key": "req-2"})
    )
    assert (status, again["job"]["id"]) == (200, body["job"]["id"])
    status, _, other = call(
        v2("POST", "/jobs", {"task": "echo", "idempotency_key": None}, {**AUTH, "Idempotency-Key": "req-1"})
    )
    assert (status, other["job"]["idempotency_key"]) == (202, "req-1")
    assert count(raw) == 2


# --- list: filters and keyset pagination -------------------------------------------------


def test_list_filters_and_pages_through_everything() -> None:
    made = [submit(queue="a" if i % 2 else "b", payload={"i": i})["id"] for i in range(7)]
    submit(queue="a", task="noop")
    seen, cursor = [], None
    while True:
        query = {"queue": "a", "task": "echo", "limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, _, page = call(v2("GET", "/jobs", headers=AUTH, query=query))
        assert status == 200 and len(page["jobs"]) <= 2
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Each once, in descending id order (ids are time-ordered, so newest first).
    assert sorted(seen) == sorted(job_id for i, job_id in enumerate(made) if i % 2)
    assert seen == sorted(seen, reverse=True)
    _, _, pending = call(v2("GET", "/jobs", headers=AUTH, query={"state": "pending", "limit": "500"}))
    assert len(pending["jobs"]) == 8
    _, _, none = call(v2("GET", "/jobs", headers=AUTH, query={"state": "succeeded"}))
    assert none == {"status": "ok", "jobs": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"state": "done"}, "state"),
        ({"cursor": "nope"}, "cursor"),
        ({"queue": "no spaces"}, "queue"),
        ({"status": "failed"}, "status"),
        # An empty value is a value the document does not allow, not "no filter".
        ({"cursor": ""}, "cursor"),
        ({"state": ""}, "state"),
        ({"queue": ""}, "queue"),
        ({"task": ""}, "task"),
        ({"limit": ""}, "limit"),
        # The document's uuid, not every spelling uuid.UUID takes.
        ({"cursor": "{01890000-0000-7000-8000-000000000000}"}, "cursor"),
        ({"cursor": "018900000000700080000000000000000"}, "cursor"),
        ({"cursor": "urn:uuid:01890000-0000-7000-8000-000000000000"}, "cursor"),
    ],
)
def test_list_rejects_bad_parameters(query: dict[str, str], field: str) -> None:
    status, _, body = call(v2("GET", "/jobs", headers=AUTH, query=query))
    assert status == 422
    assert_error(body, field=field)


def test_a_page_too_large_for_lambda_is_shortened_and_continues(monkeypatch: pytest.MonkeyPatch) -> None:
    made = [submit(payload={"pad": "x" * 400, "i": i})["id"] for i in range(6)]
    monkeypatch.setattr(request, "MAX_RESPONSE_BYTES", 2500)
    seen, cursor = [], None
    for _ in range(10):
        query = {"limit": "6"} | ({"cursor": cursor} if cursor else {})
        status, _, page = call(v2("GET", "/jobs", headers=AUTH, query=query))
        assert status == 200 and 1 <= len(page["jobs"]) < 6
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and seen == sorted(seen, reverse=True)


def test_a_single_response_over_the_lambda_limit_is_a_clean_500(monkeypatch: pytest.MonkeyPatch) -> None:
    job = submit(payload={"pad": "x" * 5000})
    monkeypatch.setattr(request, "MAX_RESPONSE_BYTES", 1000)
    status, _, body = call(v2("GET", f"/jobs/{job['id']}", headers=AUTH))
    assert status == 500
    assert_error(body)
    assert "limit" in body["message"]


# --- cancel, retry, status codes ------------------------------------------------------------


def test_what_the_document_allows_is_accepted(raw: Any) -> None:
    """JSON Schema's integers include 8923.0, an optional field may be null, and
    run_at's range is judged in UTC."""
    accepted = [
        {"task": "echo", "priority": 5.0, "max_attempts": 3.0},
        {"task": "echo", "queue": None, "priority": None, "run_at": None, "delay_seconds": None, "payload": None},
        {"task": "echo", "max_attempts": None, "timeout_seconds": None, "idempotency_key": None},
        {"task": "echo", "run_at": "1970-01-01T00:00:00-01:00"},  # 01:00 in UTC
        {"task": "echo", "run_at": "9999-12-31T23:00:00+01:00"},
        {"task": "echo", "run_at": "2030-01-01T00:00:00Z", "delay_seconds": None},
        {"task": "echo", "timeout_seconds": 0.001},
    ]
    for body in accepted:
        status, _, answer = call(v2("POST", "/jobs", body, AUTH))
        assert status == 202, (body, answer)
    job = answer["job"]
    assert (job["priority"], job["max_attempts"], job["timeout_seconds"]) == (0, 3, 0.001)
    status, _, answer = call(v2("POST", "/jobs/batch", {"jobs": accepted}, AUTH))
    assert status == 202, answer
    status, _, answer = call(v2("POST", "/process", {"max_jobs": 8923.0, "queues": None}, AUTH))
    assert (status, answer["status"]) == (200, "ok"), answer
    assert count(raw) == 2 * len(accepted)


@pytest.mark.parametrize(
    "run_at", ["9999-12-31T23:00:00-01:00", "1970-01-01T00:00:00+01:00", "0001-01-01T00:00:00+01:00"]
)
def test_run_at_out_of_range_in_utc_is_422_not_500(run_at: str, raw: Any) -> None:
    """9999-12-31T23:00-01:00 is in the year 10000 in UTC (it overflowed, a 500);
    1970-01-01T00:00+01:00 is in 1969 (it slipped through)."""
    status, _, body = call(v2("POST", "/jobs", {"task": "echo", "run_at": run_at}, AUTH))
    assert status == 422
    assert_error(body, field="run_at")
    status, _, body = call(
        v2("POST", "/jobs/batch", {"jobs": [{"task": "echo"}, {"task": "echo", "run_at": run_at}]}, AUTH)
    )
    assert status == 422
    assert_error(body, field="jobs[1].run_at")
    assert count(raw) == 0


@pytest.mark.parametrize("route", ["/jobs", "/jobs/batch", "/process"])
def test_a_body_declared_as_not_json_is_415(route: str, raw: Any) -> None:
    body = {"task": "echo"} if route == "/jobs" else {"jobs": [{"task": "echo"}]} if route == "/jobs/batch" else {}
    for declared in ("application/xml", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, _, answer = call(v2("POST", route, body, {**AUTH, "Content-Type": declared}))
        assert status == 415, (declared, answer)
        assert_error(answer, field="Content-Type")
    for declared in (
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
    ):
        status, _, answer = call(v2("POST", route, body, {**AUTH, "Content-Type": declared}))
        assert status in (200, 202), (declared, answer)
    status, _, answer = call(v2("POST", route, body, AUTH))  # no Content-Type: JSON, as curl users expect
    assert status in (200, 202), answer
    assert count(raw) == (0 if route == "/process" else 5)


@pytest.mark.parametrize("path", ["/jobs/{id}/cancel", "/jobs/{id}/retry", "/process"])
def test_a_cross_site_form_post_without_a_body_is_415_and_changes_nothing(path: str, raw: Any) -> None:
    """What a web page can send anywhere without asking first (a "simple"
    request: a form or text/plain POST, with or without a body) is refused,
    so a deployment without a token is not driven from a browser."""
    job = submit()
    target = path.format(id=job["id"])
    for declared in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, _, answer = call(v2("POST", target, None, {**AUTH, "Content-Type": declared}))
        assert status == 415, (declared, answer)
        assert_error(answer, field="Content-Type")
    assert raw.run("SELECT state FROM jobs WHERE id = CAST(:id AS uuid)", id=job["id"]) == [["pending"]]
    status, _, _ = call(v2("POST", target, None, AUTH))  # no Content-Type, as curl -X POST sends
    assert status != 415


def test_routes_without_a_body_ignore_one() -> None:
    """GET /stats with a body (of any type or size) answers as without one."""
    big = "x" * 300_000
    status, _, body = call(v2("GET", "/stats", big, {**AUTH, "Content-Type": "application/xml"}))
    assert (status, body["status"]) == (200, "ok")


def test_cancel_retry_conflicts_and_unknown_jobs() -> None:
    job = submit()
    assert call(v2("POST", f"/jobs/{job['id']}/retry", headers=AUTH))[0] == 409
    assert call(v2("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))[0] == 200
    status, _, body = call(v2("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))
    assert status == 409 and body["details"] == {"state": "cancelled"}
    missing = "01890000-0000-7000-8000-000000000000"
    for method, path in (("GET", ""), ("POST", "/cancel"), ("POST", "/retry")):
        status, _, body = call(v2(method, f"/jobs/{missing}{path}", headers=AUTH))
        assert status == 404
        assert_error(body)
    status, _, body = call(v2("GET", "/jobs/not-a-uuid", headers=AUTH))
    assert status == 422
    assert_error(body, field="id")


def test_unknown_route_404_and_wrong_method_405_with_allow() -> None:
    status, _, body = call(v2("GET", "/nope", headers=AUTH))
    assert status == 404
    assert_error(body)
    status, headers, body = call(v2("DELETE", "/jobs", headers=AUTH))
    assert status == 405
    assert_error(body)
    assert set(headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    # /jobs/batch is a resource of its own, not a job called "batch": only POST lives there.
    for method in ("PUT", "GET", "TRACE"):
        status, headers, body = call(v1(method, "/jobs/batch", headers=AUTH))
        assert (status, headers["Allow"]) == (405, "OPTIONS, POST"), body
    status, headers, _ = call(v2("OPTIONS", "/jobs/batch"))
    assert (status, headers["Allow"]) == (204, "OPTIONS, POST")
    status, headers, _ = call(v2("GET", "/process", headers=AUTH))
    assert status == 405 and headers["Allow"] == "OPTIONS, POST"


# --- process uses the invocation's time ---------------------------------------------------


def test_process_uses_the_remaining_time_and_options() -> None:
    for _ in range(3):
        submit(queue="q1")
    submit(queue="q2")
    # Less time left than the drain's safety margin: nothing may be claimed.
    status, _, body = call(v2("POST", "/process", headers=AUTH), make_context(remaining_ms=1500))
    assert (status, body["drain"]["processed"], body["drain"]["stopped"]) == (200, 0, "budget")
    _, _, body = call(v2("POST", "/process", {"queues": ["q1"], "max_jobs": 2}, AUTH))
    assert (body["drain"]["processed"], body["drain"]["stopped"]) == (2, "max_jobs")
    _, _, body = call(v2("POST", "/process", {"queues": ["q1"]}, AUTH))
    assert (body["drain"]["processed"], body["drain"]["stopped"]) == (1, "idle")
    status, _, body = call(v2("POST", "/process", {"max_jobs": 0}, AUTH))
    assert status == 422
    assert_error(body, field="max_jobs")


# --- health ------------------------------------------------------------------------------


def _unreachable(db_settings: Any) -> connection.Database:
    database = connection.Database(dataclasses.replace(db_settings, host="127.0.0.1", port=1, connect_timeout=1))
    connection.set_default(database)
    return database


@pytest.fixture
def health_queries(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The databases the deep health check asked, one entry a query."""
    asked: list[Any] = []
    original = schema.schema_version

    def counted(db: Any) -> Any:
        asked.append(db)
        return original(db)

    monkeypatch.setattr(schema, "schema_version", counted)
    return asked


@pytest.mark.parametrize("tokens", ["configured", "none configured"])
def test_health_without_a_token_is_shallow_and_asks_no_database(
    settings_env: Any, db_settings: Any, health_queries: list[Any], tokens: str
) -> None:
    if tokens == "none configured":
        settings_env(JOBQUEUE_API_TOKEN="")
    _unreachable(db_settings)  # it would be a 503 if anything asked
    for _ in range(3):
        status, _, body = call(v2("GET", "/health"))
        assert status == 200
        assert (body["status"], body["database"]) == ("ok", "unchecked")
        assert "token" in body["hint"]  # how to get the deep check
    assert health_queries == []


def test_health_with_a_token_is_the_deep_check(health_queries: list[Any]) -> None:
    status, _, body = call(v2("GET", "/health", headers=AUTH))
    assert status == 200
    assert body == {"status": "ok", "database": "ok", "schema_version": schema.latest_version()}
    assert len(health_queries) == 1


def test_health_with_auth_off_is_the_deep_check_without_a_token(settings_env: Any) -> None:
    settings_env(JOBQUEUE_AUTH="none", JOBQUEUE_API_TOKEN="")
    status, _, body = call(v2("GET", "/health"))
    assert (status, body["database"]) == (200, "ok")


@pytest.mark.parametrize(
    "header", ["Bearer wrong-token-0123456789abcdefghijklmnop", f"Basic {TOKEN}", "Bearer", f"bearer {TOKEN}x"]
)
def test_health_with_a_wrong_token_is_a_401(header: str, health_queries: list[Any]) -> None:
    status, headers, body = call(v2("GET", "/health", headers={"Authorization": header}))
    assert status == 401
    assert_error(body)
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert health_queries == []


def test_deep_health_is_asked_once_per_container_and_ttl(
    health_queries: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin, "HEALTH_TTL_SECONDS", 0.5)
    for _ in range(20):
        assert call(v2("GET", "/health", headers=AUTH))[0] == 200
    assert len(health_queries) == 1  # a flood costs one query
    time.sleep(0.6)
    assert call(v2("GET", "/health", headers=AUTH))[0] == 200
    assert len(health_queries) == 2  # then the container asks again


def test_deep_health_failures_are_cached_too(db_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[Any] = []
    original = connection.connect

    def counted(*args: Any, **kwargs: Any) -> Any:
        connects.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(connection, "connect", counted)
    monkeypatch.setattr(admin, "HEALTH_TTL_SECONDS", 0.5)
    _unreachable(db_settings)
    answers = [call(v2("GET", "/health", headers=AUTH)) for _ in range(5)]
    assert [status for status, _, _ in answers] == [503] * 5
    assert len(connects) == 1  # four of them never tried the database
    time.sleep(0.6)
    assert call(v2("GET", "/health", headers=AUTH))[0] == 503
    assert len(connects) == 2


def test_health_503_when_the_database_is_unreachable(db_settings: Any) -> None:
    _unreachable(db_settings)
    status, headers, body = call(v2("GET", "/health", headers=AUTH))
    assert status == 503
    assert_error(body)
    assert "127.0.0.1" not in json.dumps(body) and "port" not in body["message"]
    assert headers["Retry-After"]


def test_health_503_when_the_schema_is_missing(db_settings: Any) -> None:
    connection.set_default(connection.Database(dataclasses.replace(db_settings, name="postgres")))
    status, _, body = call(v2("GET", "/health", headers=AUTH))
    assert status == 503
    assert_error(body)
    assert "migrate" in body["message"]


# --- errors ------------------------------------------------------------------------------


def test_unexpected_exception_is_a_500_with_request_id_and_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(db: Any) -> None:
        raise RuntimeError("secret internals at /srv/app.py line 3")

    monkeypatch.setattr(queues, "stats", boom)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    status, _, body = call(v2("GET", "/stats", headers=AUTH), make_context(request_id="req-500"))
    assert status == 500
    assert_error(body)
    assert body["details"] == {"request_id": "req-500"}
    assert "secret" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(e["event"] == "unhandled_exception" and "secret internals" in e["error"] for e in logged)


def test_database_unavailable_mid_request_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(db: Any, *a: Any, **k: Any) -> None:
        raise DatabaseUnavailable("cannot connect to PostgreSQL at db.internal:5432")

    monkeypatch.setattr(jobs, "enqueue", down)
    status, _, body = call(v2("POST", "/jobs", {"task": "echo"}, AUTH))
    assert status == 503
    assert_error(body)
    assert "db.internal" not in json.dumps(body)


def test_misconfiguration_fails_every_request_naming_the_variable_only_in_the_log(
    settings_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_env(JOBQUEUE_MAX_BODY_BYTES="lots")
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    events = [
        v2("GET", "/health"),
        v2("GET", "/health", headers=AUTH),
        v2("POST", "/jobs", {"task": "echo"}, AUTH),
        v1("GET", "/stats"),
        v2("GET", "/ui"),
        v2("OPTIONS", "/jobs"),
    ]
    for n, event in enumerate(events):
        status, _, body = call(event, make_context(request_id=f"req-config-{n}"))
        assert status == 500
        assert_error(body)
        assert body == {
            "status": "error",
            "message": "the service is misconfigured; its log has the detail",
            "details": {"request_id": f"req-config-{n}"},
        }
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    for n in range(len(events)):
        (line,) = [e for e in logged if e["event"] == "config_error" and e.get("request_id") == f"req-config-{n}"]
        assert "JOBQUEUE_MAX_BODY_BYTES" in line["error"]


def test_a_secret_that_cannot_be_read_mid_request_stays_in_the_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An AWS error code (here from the database secret, read on first use) is detail
    for the operator: the HTTP caller gets the general message and the request id."""
    detail = "DB_SECRET_ARN arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf: cannot read the secret"

    def refused(db: Any) -> None:
        raise SecretUnavailable(f"{detail} (AccessDeniedException)")

    monkeypatch.setattr(queues, "stats", refused)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    status, _, body = call(v2("GET", "/stats", headers=AUTH), make_context(request_id="req-secret"))
    assert status == 500
    assert body["message"] == "the service is misconfigured; its log has the detail"
    text = json.dumps(body)
    assert "AccessDenied" not in text and "arn:" not in text and "DB_SECRET_ARN" not in text
    assert "AccessDeniedException" in stream.getvalue() and "req-secret" in stream.getvalue()


# --- auth --------------------------------------------------------------------------------


def test_protected_routes_need_a_token_and_health_does_not(raw: Any) -> None:
    for route in ROUTES:
        path = route.path.replace("{id}", "x").replace("{asset}", "app.js")
        status, headers, body = call(v2(route.method, path, {"task": "echo"}))
        if route.auth:
            assert status == 401, route
            assert_error(body)
            assert headers["WWW-Authenticate"].startswith("Bearer")
        else:
            assert status == 200
    assert count(raw) == 0


def test_several_tokens_for_rotation(settings_env: Any) -> None:
    old, new = "old-token-0123456789abcdefghijklmnop", "new-token-0123456789abcdefghijklmnop"
    settings_env(JOBQUEUE_API_TOKEN=f"{old}, {new}")
    for token in (old, new):
        assert call(v2("GET", "/stats", headers={"Authorization": f"Bearer {token}"}))[0] == 200
    assert call(v2("GET", "/stats", headers={"Authorization": f"Bearer {TOKEN}"}))[0] == 401
    assert call(v2("GET", "/stats", headers={"Authorization": f"bearer {new}"}))[0] == 200


def test_auth_none_turns_auth_off(settings_env: Any) -> None:
    settings_env(JOBQUEUE_AUTH="none", JOBQUEUE_API_TOKEN="")
    assert call(v2("GET", "/stats"))[0] == 200


def test_no_token_configured_refuses_and_says_why(settings_env: Any) -> None:
    settings_env(JOBQUEUE_API_TOKEN="")
    status, _, body = call(v2("GET", "/stats", headers=AUTH))
    assert status == 401
    assert "JOBQUEUE_API_TOKEN" in body["message"]


def test_tokens_and_authorization_headers_never_reach_the_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    log.set_level("DEBUG")
    try:
        for header in (f"Bearer {TOKEN}", "Bearer wrong-secret-value", f"Basic {TOKEN}"):
            call(v2("POST", "/jobs", {"task": "echo"}, {"Authorization": header}))
            call(v2("GET", "/nowhere", headers={"Authorization": header}))
    finally:
        log.set_level("ERROR")
    text = stream.getvalue()
    assert text.count('"event":"request"') == 6
    assert TOKEN not in text and "wrong-secret-value" not in text and "Authorization" not in text


# --- CORS --------------------------------------------------------------------------------


def test_cors_allows_configured_origins_only(settings_env: Any) -> None:
    settings_env(JOBQUEUE_CORS_ORIGINS="https://app.example.com, https://admin.example.com")
    _, headers, _ = call(v2("GET", "/health", headers={"Origin": "https://app.example.com"}))
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert headers["Vary"] == "Origin"
    _, headers, _ = call(v2("GET", "/health", headers={"Origin": "https://evil.example.com"}))
    assert "Access-Control-Allow-Origin" not in headers
    # Errors carry the header too, or the browser hides them from the page.
    status, headers, _ = call(v1("GET", "/stats", headers={"Origin": "https://admin.example.com"}))
    assert status == 401 and headers["Access-Control-Allow-Origin"] == "https://admin.example.com"


def test_cors_preflight_needs_no_token(settings_env: Any) -> None:
    settings_env(JOBQUEUE_CORS_ORIGINS="*")
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    status, headers, body = call(v2("OPTIONS", "/jobs", headers=preflight))
    assert (status, body) == (204, None)
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"]
    status, _, body = call(v1("OPTIONS", "/nowhere", headers=preflight))
    assert status == 404
    assert_error(body)


def test_no_cors_headers_unless_configured() -> None:
    _, headers, _ = call(v2("GET", "/health", headers={"Origin": "https://app.example.com"}))
    assert not [name for name in headers if name.startswith("Access-Control")]


# --- size limit --------------------------------------------------------------------------


def test_body_limit_is_configurable(settings_env: Any, raw: Any) -> None:
    settings_env(JOBQUEUE_MAX_BODY_BYTES="2048")
    small = {"task": "echo", "payload": {"pad": "x" * 1500}}
    big = {"task": "echo", "payload": {"pad": "x" * 2100}}
    assert call(v2("POST", "/jobs", small, AUTH))[0] == 202
    for b64 in (False, True):
        status, _, body = call(v2("POST", "/jobs", big, AUTH, b64=b64))
        assert status == 413
        assert_error(body)
        assert body["details"]["limit_bytes"] == 2048
    # Multi-byte characters count as bytes, not characters.
    status, _, _ = call(v2("POST", "/jobs", {"task": "echo", "payload": {"pad": "é" * 1100}}, AUTH))
    assert status == 413
    assert count(raw) == 1


# --- logs --------------------------------------------------------------------------------


def test_one_json_log_line_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    log.set_level("INFO")
    try:
        call(v2("POST", "/jobs", {"task": "echo"}, AUTH), make_context(request_id="req-a"))
        call(v2("GET", "/nowhere", headers=AUTH), make_context(request_id="req-b"))
    finally:
        log.set_level("ERROR")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["request_id"], e["route"], e["method"], e["status"]) for e in lines] == [
        ("req-a", "/jobs", "POST", 202),
        ("req-b", None, "GET", 404),
    ]
    assert all(e["event"] == "request" and e["latency_ms"] >= 0 for e in lines)
