"""Queue settings read and changed from outside: GET /queues and PATCH
/queues/{name} through app.lambda_handler, direct invocations and the
command line, with the validation each setting gets."""

from __future__ import annotations

from typing import Any

import pytest

import app
from jobqueue import JobSpec
from jobqueue.engine import drain
from jobqueue.rules import MAX_QUEUE_CONCURRENCY, MAX_RATE_LIMIT, MAX_RATE_SECONDS
from jobqueue.store import claims, jobs
from tests.support.apigw import AUTH, assert_error, call, v1, v2
from tests.support.aws import make_context
from tests.support.cli import CLI
from tests.support.openapi import schema_validator

pytestmark = pytest.mark.usefixtures("database", "settings_env")


STATES = ("pending", "running", "succeeded", "failed", "cancelled", "waiting", "blocked")


def patch(name: str, body: Any, make: Any = v2) -> tuple[int, Any]:
    status, _, answer = call(make("PATCH", f"/queues/{name}", body, AUTH))
    return status, answer


def listed() -> dict[str, dict[str, Any]]:
    status, _, body = call(v2("GET", "/queues", headers=AUTH))
    assert status == 200, body
    schema_validator("QueueList").validate(body)
    names = [q["name"] for q in body["queues"]]
    assert names == sorted(names)
    return {q["name"]: q for q in body["queues"]}


def counted(raw: Any) -> dict[str, dict[str, int]]:
    """Counts straight from the rows, to compare the maintained ones with."""
    found: dict[str, dict[str, int]] = {}
    for name, state, n in raw.run("SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"):
        found.setdefault(name, dict.fromkeys(STATES, 0))[state] = n
    return found


def test_queues_lists_configured_queues_without_jobs_and_queues_with_jobs_with_exact_counts(raw: Any) -> None:
    status, body = patch("later", {"concurrency": 2})
    assert status == 200, body
    schema_validator("QueueBody").validate(body)
    assert body["queue"] == {
        "name": "later",
        "paused": False,
        "concurrency": 2,
        "rate": None,
        "counts": dict.fromkeys(STATES, 0),
        "oldest_pending_age_seconds": None,
    }

    jobs.enqueue_many(raw, [JobSpec("echo", {"i": i}, queue="emails") for i in range(4)])
    jobs.enqueue_many(raw, [JobSpec("noop", queue="reports"), JobSpec("noop", queue="reports")])
    jobs.enqueue(raw, JobSpec("tests.permanent", queue="reports"))
    assert drain.run(queues=["reports"]).processed == 3  # two succeed, one fails for good
    cancelled = raw.run("SELECT id FROM jobs WHERE queue = 'emails' ORDER BY id DESC LIMIT 1")[0][0]
    assert call(v2("POST", f"/jobs/{cancelled}/cancel", headers=AUTH))[0] == 200
    claim = claims.claim(raw, worker="held", limit=1, grace=60.0, fits=1e9, queues=["emails"])
    assert len(claim.rows) == 1  # one emails job running

    queues = listed()
    assert list(queues) == ["emails", "later", "reports"]
    truth = counted(raw)
    assert queues["emails"]["counts"] == truth["emails"] == {**dict.fromkeys(STATES, 0), "pending": 2,
                                                              "running": 1, "cancelled": 1}  # fmt: skip
    assert queues["reports"]["counts"] == truth["reports"] == {**dict.fromkeys(STATES, 0), "succeeded": 2,
                                                                "failed": 1}  # fmt: skip
    assert queues["later"]["counts"] == dict.fromkeys(STATES, 0)
    assert queues["emails"]["oldest_pending_age_seconds"] >= 0
    assert queues["reports"]["oldest_pending_age_seconds"] is None
    emails = queues["emails"]
    assert (emails["concurrency"], emails["rate"], emails["paused"]) == (None, None, False)

    # The first job of a queue configured beforehand joins its settings.
    assert call(v1("POST", "/jobs", {"task": "echo", "queue": "later"}, AUTH))[0] == 202
    later = listed()["later"]
    assert (later["counts"]["pending"], later["concurrency"]) == (1, 2)
    assert later["oldest_pending_age_seconds"] is not None


def test_patch_changes_the_settings_it_names_and_keeps_the_rest() -> None:
    assert patch("emails", {"paused": True})[1]["queue"]["paused"] is True
    body = patch("emails", {"concurrency": 5, "rate": {"limit": 20, "per_seconds": 10}}, v1)[1]["queue"]
    assert (body["paused"], body["concurrency"], body["rate"]) == (True, 5, {"limit": 20, "per_seconds": 10})
    body = patch("emails", {"concurrency": None})[1]["queue"]
    assert (body["paused"], body["concurrency"], body["rate"]) == (True, None, {"limit": 20, "per_seconds": 10})
    body = patch("emails", {"rate": None, "paused": False})[1]["queue"]
    assert (body["paused"], body["concurrency"], body["rate"]) == (False, None, None)
    body = patch("emails", {"concurrency": 0, "rate": {"limit": MAX_RATE_LIMIT, "per_seconds": MAX_RATE_SECONDS}})[1]
    assert body["queue"]["concurrency"] == 0
    assert body["queue"]["rate"] == {"limit": MAX_RATE_LIMIT, "per_seconds": MAX_RATE_SECONDS}
    assert listed()["emails"] == body["queue"]
    # JSON has one number type: 3.0 is the whole number 3, as the schema's "integer" says.
    body = patch("emails", {"concurrency": 3.0, "rate": {"limit": 20.0, "per_seconds": 10}})[1]["queue"]
    assert (body["concurrency"], body["rate"]) == (3, {"limit": 20, "per_seconds": 10})
    # Names with every character a queue name may hold, percent-encoded or not.
    assert patch("a.b:c-d_1", {"paused": True})[0] == 200
    assert patch("a%2Eb%3Ac-d_1", {"paused": False})[1]["queue"]["name"] == "a.b:c-d_1"


RATE = {"limit": 20, "per_seconds": 10}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"concurrency": -1}, "concurrency"),
        ({"concurrency": MAX_QUEUE_CONCURRENCY + 1}, "concurrency"),
        ({"concurrency": 1.5}, "concurrency"),
        ({"concurrency": "3"}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"paused": "yes"}, "paused"),
        ({"paused": None}, "paused"),
        ({"paused": 1}, "paused"),
        ({"rate": {**RATE, "limit": 0}}, "rate.limit"),
        ({"rate": {**RATE, "limit": -5}}, "rate.limit"),
        ({"rate": {**RATE, "limit": MAX_RATE_LIMIT + 1}}, "rate.limit"),
        ({"rate": {**RATE, "limit": 2.5}}, "rate.limit"),
        ({"rate": {**RATE, "per_seconds": 0}}, "rate.per_seconds"),
        ({"rate": {**RATE, "per_seconds": 0.0}}, "rate.per_seconds"),
        ({"rate": {**RATE, "per_seconds": -10}}, "rate.per_seconds"),
        ({"rate": {**RATE, "per_seconds": 0.0001}}, "rate.per_seconds"),
        ({"rate": {**RATE, "per_seconds": MAX_RATE_SECONDS + 1}}, "rate.per_seconds"),
        ({"rate": {**RATE, "per_seconds": "10"}}, "rate.per_seconds"),
        ({"rate": {**RATE, "per_seconds": False}}, "rate.per_seconds"),
        ({"rate": {"limit": 20}}, "rate.per_seconds"),
        ({"rate": {"per_seconds": 10}}, "rate.limit"),
        ({"rate": {**RATE, "burst": 5}}, "rate.burst"),
        ({"rate": 10}, "rate"),
        ({"rate": [20, 10]}, "rate"),
        ({"paused": True, "priority": 1}, "priority"),
        ({}, "body"),
        ([], "body"),
        (None, "body"),
    ],
)
def test_bad_settings_get_422_naming_the_field_and_change_nothing(raw: Any, body: Any, field: str) -> None:
    assert patch("emails", {"concurrency": 7})[0] == 200
    status, answer = patch("emails", body)
    assert status == 422, answer
    assert_error(answer, field=field)
    assert raw.run("SELECT name, paused, concurrency, rate_limit FROM queues") == [["emails", False, 7, None]]


@pytest.mark.parametrize("name", ["bad%20name", "x" * 101, "tab%09", "sl%2Fash"])
def test_a_bad_queue_name_gets_422_naming_it(raw: Any, name: str) -> None:
    status, answer = patch(name, {"paused": True})
    assert status == 422, answer
    assert_error(answer, field="name")
    assert raw.run("SELECT count(*) FROM queues")[0][0] == 0


def test_patch_answers_400_to_a_body_that_is_not_json_and_405_to_other_methods() -> None:
    status, answer = patch("emails", "{paused: true")
    assert status == 400
    assert_error(answer, field="body")
    status, headers, answer = call(v2("GET", "/queues/emails", headers=AUTH))
    assert status == 405 and headers["Allow"] == "OPTIONS, PATCH"
    status, headers, _ = call(v2("DELETE", "/queues", headers=AUTH))
    assert status == 405 and headers["Allow"] == "GET, HEAD, OPTIONS"


def test_a_browser_may_send_patch(settings_env: Any) -> None:
    settings_env(JOBQUEUE_CORS_ORIGINS="https://app.example.com")
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PATCH"}
    status, headers, _ = call(v2("OPTIONS", "/queues/emails", headers=preflight))
    assert status == 204
    assert "PATCH" in headers["Access-Control-Allow-Methods"].split(", ")
    status, headers, _ = call(v2("PATCH", "/queues/emails", {"paused": True}, {**AUTH, **preflight}))
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_direct_invocations_list_and_configure_queues(raw: Any) -> None:
    body = app.lambda_handler({"action": "configure_queue", "name": "emails", "paused": True}, make_context())
    assert body["status"] == "ok" and body["queue"]["paused"] is True
    schema_validator("QueueBody").validate(body)
    listing = app.lambda_handler({"action": "queues"}, make_context())
    assert [q["name"] for q in listing["queues"]] == ["emails"]
    for event, field in [
        ({"action": "configure_queue", "paused": True}, "name"),
        ({"action": "configure_queue", "name": "emails", "rate": {"limit": 1, "per_seconds": 0}}, "rate.per_seconds"),
        ({"action": "configure_queue", "name": "emails"}, "body"),
        ({"action": "queues", "verbose": True}, "verbose"),
    ]:
        answer = app.lambda_handler(event, make_context())
        assert_error(answer, field=field)
    assert raw.run("SELECT name, paused, rate_limit FROM queues") == [["emails", True, None]]


def test_command_line_pauses_resumes_limits_and_lists(cli: CLI, raw: Any) -> None:
    assert cli.ok("pause", "emails")["queue"]["paused"] is True
    limited = cli.ok("limit", "emails", "--concurrency", "2", "--rate", "20/10")["queue"]
    assert (limited["paused"], limited["concurrency"], limited["rate"]) == (True, 2, {"limit": 20, "per_seconds": 10})
    assert cli.ok("resume", "emails")["queue"]["paused"] is False
    cleared = cli.ok("limit", "emails", "--no-rate")["queue"]
    assert (cleared["concurrency"], cleared["rate"]) == (2, None)
    cli.ok("submit", "echo", "--queue", "reports")
    listing = cli.ok("queues")["queues"]
    assert [(q["name"], q["concurrency"], q["counts"]["pending"]) for q in listing] == [
        ("emails", 2, 0),
        ("reports", None, 1),
    ]
    assert cli.ok("limit", "emails", "--no-concurrency")["queue"]["concurrency"] is None

    assert "concurrency" in cli.fails(2, "limit", "emails", "--concurrency", "-1")
    assert "rate.per_seconds" in cli.fails(2, "limit", "emails", "--rate", "20/0")
    assert "--concurrency" in cli.fails(2, "limit", "emails")
    assert "name" in cli.fails(2, "pause", "bad name!")
    done = cli.run("limit", "emails", "--rate", "20")
    assert done.returncode == 2 and "LIMIT/SECONDS" in done.stderr
    done = cli.run("limit", "emails", "--concurrency", "2", "--no-concurrency")
    assert done.returncode == 2 and "not allowed with" in done.stderr
    assert raw.run("SELECT name, paused, concurrency, rate_limit FROM queues") == [["emails", False, None, None]]


def test_concurrency_zero_starts_nothing_and_the_drain_says_why(raw: Any) -> None:
    assert patch("emails", {"concurrency": 0})[0] == 200
    assert call(v2("POST", "/jobs", {"task": "echo", "queue": "emails"}, AUTH))[0] == 202
    status, _, body = call(v2("POST", "/process", headers=AUTH))
    assert status == 200
    schema_validator("DrainBody").validate(body)
    assert (body["drain"]["processed"], body["drain"]["stopped"]) == (0, "limited")
    assert raw.run("SELECT state, attempts FROM jobs") == [["pending", 0]]
    assert patch("emails", {"concurrency": 1})[0] == 200
    assert call(v2("POST", "/process", headers=AUTH))[2]["drain"]["succeeded"] == 1
