"""A hostile client: malformed and oversized bodies, wrong types, unknown tasks,
routes and methods, bad tokens, injection strings in every field, and random
input from hypothesis. Every answer is the right 4xx in the standard shape,
nothing a rejected request sent is enqueued, and nothing already queued is lost."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jobqueue.tasks.spec import FIELDS
from tests.support.apigw import AUTH, TOKEN, assert_error, call, v1, v2

pytestmark = pytest.mark.usefixtures("database", "settings_env")


INJECTIONS = [
    "'; DROP TABLE jobs; --",
    '" OR 1=1 --',
    "x' UNION SELECT id, task FROM jobs --",
    "$1; TRUNCATE jobs",
    "') ON CONFLICT DO NOTHING; DELETE FROM jobs; --",
    ":id) --",
    "%(task)s",
    "\\x27; SELECT pg_sleep(10); --",
]


@pytest.fixture
def bystander(raw: Any) -> str:
    """A job queued before the attack, which must survive it unchanged."""
    status, _, body = call(v2("POST", "/jobs", {"task": "echo", "payload": {"keep": True}}, AUTH))
    assert status == 202
    return body["job"]["id"]


def snapshot(raw: Any) -> list[list[Any]]:
    return raw.run("SELECT id::text, state, payload FROM jobs ORDER BY id")


def rejected(raw: Any, before: list[list[Any]], event: dict[str, Any], code: int, field: str | None = None) -> Any:
    status, _, body = call(event)
    assert status == code, body
    assert_error(body, field=field)
    assert snapshot(raw) == before
    return body


# --- malformed bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "not json",
        "{'task': 'echo'}",
        '{"task": "echo",}',
        '{"task": "echo"} trailing',
        '{"task": "echo", "payload": {"x": NaN}}',
        '{"task": "echo", "payload": {"x": Infinity}}',
        '{"task": "echo", "priority": 1' + "0" * 5000 + "}",
        "[" * 100_000 + "]" * 100_000,
        '{"task": "echo", "payload": ' + '{"a": ' * 200 + "1" + "}" * 200 + "}",
        "\ufeff{}",
        "",
    ],
    ids=lambda t: t[:30],
)
def test_malformed_json_is_400_naming_the_body(text: str, raw: Any, bystander: str) -> None:
    rejected(raw, snapshot(raw), v2("POST", "/jobs", text, AUTH), 400, "body")


def test_body_that_is_not_utf8_is_400(raw: Any, bystander: str) -> None:
    event = v2("POST", "/jobs", None, AUTH)
    event["body"], event["isBase64Encoded"] = base64.b64encode(b'{"task": "\xff\xfe"}').decode(), True
    rejected(raw, snapshot(raw), event, 400, "body")


# --- wrong fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "task"),
        ([], "body"),
        ("echo", "body"),
        (None, "body"),
        ({"task": None}, "task"),
        ({"task": 5}, "task"),
        ({"task": ""}, "task"),
        ({"task": "x" * 201}, "task"),
        ({"task": "no.such.task"}, "task"),
        ({"task": "echo", "payload": []}, "payload"),
        ({"task": "echo", "payload": "x"}, "payload"),
        ({"task": "echo", "payload": {"nul": "a\u0000b"}}, "payload"),
        ({"task": "echo", "payload": {"lone": "\ud800"}}, "payload"),
        ({"task": "echo", "queue": ""}, "queue"),
        ({"task": "echo", "queue": "a b"}, "queue"),
        ({"task": "echo", "queue": 7}, "queue"),
        ({"task": "echo", "priority": "1"}, "priority"),
        ({"task": "echo", "priority": 1.5}, "priority"),
        ({"task": "echo", "priority": True}, "priority"),
        ({"task": "echo", "priority": 40000}, "priority"),
        ({"task": "echo", "run_at": "tomorrow"}, "run_at"),
        ({"task": "echo", "run_at": 12}, "run_at"),
        ({"task": "echo", "run_at": "0001-01-01T00:00:00"}, "run_at"),
        ({"task": "echo", "run_at": "9999-12-31T23:00:00-01:00"}, "run_at"),
        ({"task": "echo", "run_at": "1970-01-01T00:00:00+01:00"}, "run_at"),
        ({"task": "echo", "max_attempts": 2.5}, "max_attempts"),
        ({"task": "echo", "timeout_seconds": 0.0009}, "timeout_seconds"),
        ({"task": "echo", "delay_seconds": -1}, "delay_seconds"),
        ({"task": "echo", "delay_seconds": "5"}, "delay_seconds"),
        ({"task": "echo", "delay_seconds": 1e300}, "delay_seconds"),
        ({"task": "echo", "delay_seconds": 1, "run_at": "2030-01-01T00:00:00Z"}, "delay_seconds"),
        ({"task": "echo", "max_attempts": 0}, "max_attempts"),
        ({"task": "echo", "max_attempts": 1000}, "max_attempts"),
        ({"task": "echo", "timeout_seconds": 0}, "timeout_seconds"),
        ({"task": "echo", "timeout_seconds": 901}, "timeout_seconds"),
        ({"task": "echo", "idempotency_key": ""}, "idempotency_key"),
        ({"task": "echo", "idempotency_key": 5}, "idempotency_key"),
        ({"task": "echo", "idempotency_key": "k" * 256}, "idempotency_key"),
        ({"task": "echo", "idempotency_key": "a\u0000"}, "idempotency_key"),
        ({"task": "echo", "idempotency_key": "\udfff"}, "idempotency_key"),
        ({"task": "echo", "colour": "red"}, "colour"),
    ],
)
def test_bad_fields_are_422_naming_the_field(body: Any, field: str, raw: Any, bystander: str) -> None:
    before = snapshot(raw)
    rejected(raw, before, v2("POST", "/jobs", json.dumps(body), AUTH), 422, field)
    rejected(raw, before, v1("POST", "/jobs", json.dumps(body), AUTH), 422, field)


def test_the_connection_survives_unstorable_text(raw: Any) -> None:
    """Lone surrogates must be refused before the driver, which would otherwise
    fail mid-message and leave the connection unusable for the next request."""
    for bad in ({"task": "echo", "idempotency_key": "\ud800"}, {"task": "echo", "payload": {"k": "\udc00"}}):
        assert call(v2("POST", "/jobs", json.dumps(bad), AUTH))[0] == 422
        assert call(v2("POST", "/jobs", {"task": "echo"}, AUTH))[0] == 202
    for query in ({"task": "\ud800"}, {"task": "a\u0000"}, {"queue": "\ud800"}, {"state": "\x00"}):
        status, _, body = call(v2("GET", "/jobs", headers=AUTH, query=query))
        assert status == 422, query
        assert_error(body, field=next(iter(query)))
        assert call(v2("GET", "/jobs", headers=AUTH))[0] == 200
    status, _, _ = call(v2("POST", "/jobs", {"task": "echo"}, {**AUTH, "Idempotency-Key": "\ud800"}))
    assert status == 422
    assert call(v2("GET", "/health"))[0] == 200


def test_a_batch_with_one_bad_job_is_rejected_whole(raw: Any, bystander: str) -> None:
    before = snapshot(raw)
    jobs = [{"task": "echo", "payload": {"i": i}} for i in range(5)]
    rejected(raw, before, v2("POST", "/jobs/batch", {"jobs": [*jobs, {"task": "nope"}]}, AUTH), 422, "jobs[5].task")
    rejected(
        raw, before, v2("POST", "/jobs/batch", {"jobs": [*jobs, {"task": "echo", "x": 1}]}, AUTH), 422, "jobs[5].x"
    )
    rejected(raw, before, v2("POST", "/jobs/batch", {"jobs": [{"task": "noop"}] * 1001}, AUTH), 422, "jobs")
    rejected(raw, before, v2("POST", "/jobs/batch", {"jobs": {"task": "echo"}}, AUTH), 422, "jobs")
    rejected(raw, before, v2("POST", "/jobs/batch", {"jobs": jobs, "extra": 1}, AUTH), 422, "extra")
    rejected(raw, before, v2("POST", "/jobs/batch", [jobs], AUTH), 422, "body")


# --- size --------------------------------------------------------------------------------


def test_huge_bodies_are_413(raw: Any, bystander: str) -> None:
    before = snapshot(raw)
    huge = json.dumps({"task": "echo", "payload": {"pad": "x" * (256 * 1024)}})
    body = rejected(raw, before, v2("POST", "/jobs", huge, AUTH), 413)
    assert body["details"]["limit_bytes"] == 256 * 1024
    rejected(raw, before, v1("POST", "/jobs", huge, AUTH, b64=True), 413)
    rejected(raw, before, v2("POST", "/jobs/batch", "[" + " " * (300 * 1024) + "]", AUTH), 413)
    # Just under the limit is fine.
    fits = json.dumps({"task": "echo", "payload": {"pad": "x" * (250 * 1024)}})
    assert call(v2("POST", "/jobs", fits, AUTH))[0] == 202


# --- routes, methods and tokens -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/", 404),
        ("GET", "/admin", 404),
        ("GET", "/jobs/../etc/passwd", 404),
        ("GET", "/jobs/x/y/z", 404),
        ("POST", "/jobs/batch/extra", 404),
        ("GET", "/" + "a" * 5000, 404),
        ("DELETE", "/jobs", 405),
        ("PATCH", "/jobs/01890000-0000-7000-8000-000000000000", 405),
        ("PUT", "/process", 405),
        ("GET", "/jobs/01890000-0000-7000-8000-000000000000/cancel", 405),
        ("POST", "/stats", 405),
        ("BREW", "/health", 405),
    ],
)
def test_unknown_routes_and_methods(method: str, path: str, code: int, raw: Any, bystander: str) -> None:
    body = rejected(raw, snapshot(raw), v2(method, path, {"task": "echo"}, AUTH), code)
    assert len(body["message"]) < 300


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN.upper()}"},
        {"Authorization": "Bearer tökén"},
        {"Authorization": "Bearer \ud800"},
        {"X-Api-Key": TOKEN},
    ],
)
def test_bad_or_missing_tokens_are_401(headers: dict[str, str], raw: Any, bystander: str) -> None:
    rejected(raw, snapshot(raw), v2("POST", "/jobs", {"task": "echo"}, headers), 401)
    rejected(raw, snapshot(raw), v1("POST", "/jobs/batch", {"jobs": [{"task": "echo"}]}, headers), 401)


# --- injection strings in every field ----------------------------------------------------


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_in_every_field(evil: str, raw: Any, bystander: str) -> None:
    before = snapshot(raw)
    # Fields with a grammar refuse them...
    for name in ("task", "queue", "priority", "run_at", "delay_seconds", "max_attempts", "timeout_seconds"):
        rejected(raw, before, v2("POST", "/jobs", {"task": "echo", name: evil}, AUTH), 422, name)
    rejected(raw, before, v2("POST", "/jobs", {"task": "echo", evil: 1}, AUTH), 422, evil)
    rejected(raw, before, v2("POST", "/process", {"queues": [evil]}, AUTH), 422, "queues[0]")
    for query in ({"state": evil}, {"queue": evil}, {"cursor": evil}, {"limit": evil}, {evil: "1"}):
        rejected(raw, before, v2("GET", "/jobs", headers=AUTH, query=query), 422, next(iter(query)))
    for path in (f"/jobs/{evil}", f"/jobs/{evil}/cancel", f"/jobs/{evil}/retry"):
        status, _, body = call(v2("POST" if path.endswith(("cancel", "retry")) else "GET", path, headers=AUTH))
        assert status in (404, 422)
        assert_error(body)
    # ...free text is data: stored and returned exactly, harming nothing.
    status, _, body = call(v2("GET", "/jobs", headers=AUTH, query={"task": evil}))
    assert (status, body["jobs"]) == (200, [])
    assert snapshot(raw) == before
    payload = {evil: evil, "nested": [evil, {"k": evil}]}
    status, _, body = call(v2("POST", "/jobs", {"task": "echo", "payload": payload, "idempotency_key": evil}, AUTH))
    assert status == 202
    status, _, again = call(v2("POST", "/jobs", {"task": "echo"}, {**AUTH, "Idempotency-Key": evil}))
    assert (status, again["job"]["id"]) == (200, body["job"]["id"])
    stored = raw.run("SELECT payload, idempotency_key FROM jobs WHERE id = CAST(:id AS uuid)", id=body["job"]["id"])
    assert stored == [[payload, evil]]
    assert len(snapshot(raw)) == len(before) + 1
    assert [row for row in snapshot(raw) if row[0] == bystander] == [r for r in before if r[0] == bystander]


# --- random input --------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_field_values = {
    name: _json | st.sampled_from(["echo", "noop", "fail", "default", "2030-01-01T00:00:00Z", 1, 0, -1, 10**6])
    for name in FIELDS
}
_submissions = st.fixed_dictionaries({}, optional={name: values for name, values in _field_values.items()}) | _json
# Valid submissions with random payloads and keys: random text must be stored, not crash.
_valid = st.fixed_dictionaries(
    {"task": st.sampled_from(["echo", "noop"]), "payload": st.dictionaries(st.text(max_size=10), _json, max_size=4)},
    optional={
        "idempotency_key": st.text(min_size=1, max_size=20),
        "queue": st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    },
)
_bodies = st.one_of(
    _valid.map(json.dumps),
    _valid.map(json.dumps),
    _submissions.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
    st.none(),
)
_headers = st.dictionaries(
    st.sampled_from(["Authorization", "Idempotency-Key", "Content-Type", "Origin", "X-Other"]) | st.text(max_size=10),
    st.text(max_size=40) | st.sampled_from([f"Bearer {TOKEN}", "Bearer nope", "application/json"]),
    max_size=4,
)
_JOB = "/jobs/01890000-0000-7000-8000-000000000000"
# Mostly real routes, so that most examples get past routing into validation.
_real = st.sampled_from(
    [("POST", "/jobs")] * 6
    + [("POST", "/jobs/batch")] * 3
    + [("GET", "/jobs"), ("GET", _JOB), ("POST", _JOB + "/cancel"), ("POST", _JOB + "/retry"), ("GET", "/jobs/x")]
    + [("GET", "/stats"), ("GET", "/health"), ("GET", "/openapi.json"), ("POST", "/process")]
)
_odd_paths = st.sampled_from(["/jobs", "/jobs/batch", "/", _JOB]) | st.text(max_size=30).map(lambda s: "/" + s)
_odd = st.tuples(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]), _odd_paths)
_routes = st.one_of(_real, _real, _real, _odd)
_queries = st.dictionaries(
    st.sampled_from(["state", "queue", "task", "cursor", "limit"]) | st.text(max_size=8),
    st.text(max_size=20),
    max_size=3,
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=_routes,
    body=_bodies,
    headers=_headers,
    query=_queries,
    version=st.sampled_from([v1, v2]),
    b64=st.booleans(),
    authorised=st.sampled_from([True, True, True, False]),
)
def test_random_requests_never_500_and_always_the_shape(
    raw: Any, route: tuple[str, str], body: Any, headers: dict, query: dict, version: Any, b64: bool, authorised: bool
) -> None:
    method, path = route
    if authorised:
        headers = {**headers, **AUTH}
    if path == "/process":
        body = None  # a drain would run the random jobs other examples queued; its shape is tested elsewhere
    before = raw.run("SELECT count(*) FROM jobs")[0][0]
    status, response_headers, answer = call(version(method, path, body, headers, query or None, b64=b64))
    assert status < 500, answer
    event(f"status {status}")
    after = raw.run("SELECT count(*) FROM jobs")[0][0]
    if status >= 400:
        assert after == before
    if method == "HEAD" or status == 204:
        assert answer is None  # HEAD answers carry the headers only
    elif status >= 400:
        assert_error(answer)
    else:
        assert answer.get("status") == "ok" or path == "/openapi.json"
        assert response_headers["Content-Type"] == "application/json"
