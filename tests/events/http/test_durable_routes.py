"""Durable jobs over HTTP: POST /jobs/{id}/signals/{name} resumes a waiting
job with its value, and POST /jobs/{id}/cancel cancels a waiting job at once
(200) and asks a running one to stop (202). Every answer is checked against
the API document's schemas too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.store import claims
from tests.support.apigw import AUTH, assert_error, call, function_url, v1, v2
from tests.support.openapi import schema_validator

pytestmark = pytest.mark.usefixtures("database", "settings_env")

FAST = Settings(concurrency=4, drain_safety_ms=0)
UNKNOWN = "01890000-0000-7000-8000-000000000000"


def submit(task: str, **payload: Any) -> dict[str, Any]:
    status, _, body = call(v2("POST", "/jobs", {"task": task, "payload": payload}, AUTH))
    assert status == 202, body
    return body["job"]


def drain_once(database: Any) -> Any:
    return drain.run(database, settings=FAST, budget_seconds=None)


def get(job_id: str) -> dict[str, Any]:
    status, _, body = call(v2("GET", f"/jobs/{job_id}", headers=AUTH))
    assert status == 200, body
    schema_validator("JobBody").validate(body)
    return body["job"]


def signal(job_id: str, name: str, body: Any = None, make: Any = v2) -> tuple[int, Any]:
    """POST a signal; ``body`` is sent as JSON, or as it is when it is text."""
    status, _, answer = call(make("POST", f"/jobs/{job_id}/signals/{name}", body, AUTH))
    schema_validator("JobBody" if status < 300 else "Error").validate(answer)
    return status, answer


def waiting_job(database: Any, name: str = "shipped", timeout: float | None = None) -> dict[str, Any]:
    """A tests.durable_wait job, run until it waits for the signal ``name``."""
    job = submit("tests.durable_wait", name=name, **({} if timeout is None else {"timeout": timeout}))
    assert drain_once(database).suspended == 1
    waiting = get(job["id"])
    assert waiting["state"] == "waiting" and waiting["waiting_for"]["signal"] == name
    return waiting


# --- signals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [v1, v2, function_url], ids=["v1", "v2", "url"])
def test_a_signal_resumes_a_waiting_job_with_its_value(database: Any, make: Any) -> None:
    job = waiting_job(database, timeout=3600)
    assert job["run_at"] == job["waiting_for"]["timeout_at"]  # it wakes at the timeout if nothing comes
    assert [step["name"] for step in job["steps"]] == ["shipped"]
    status, body = signal(job["id"], "shipped", {"tracking": "1Z999", "items": [1, 2]}, make)
    assert status == 202 and body["status"] == "ok"
    assert body["job"]["id"] == job["id"]
    assert (body["job"]["state"], body["job"]["waiting_for"]) == ("pending", None)  # due at once
    drain_once(database)
    done = get(job["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 1  # the wait cost no attempt
    assert done["result"] == {"got": {"tracking": "1Z999", "items": [1, 2]}}


def test_a_signal_without_a_body_delivers_null(database: Any) -> None:
    job = waiting_job(database)
    assert job["run_at"] is None  # a wait without a timeout has no time to run at
    assert signal(job["id"], "shipped")[0] == 202
    drain_once(database)
    assert get(job["id"])["result"] == {"got": None}


def test_a_signal_for_a_name_not_awaited_is_kept_and_leaves_the_job_waiting(database: Any) -> None:
    job = waiting_job(database, name="approved")
    status, body = signal(job["id"], "early", '"kept"')
    assert status == 202 and body["job"]["state"] == "waiting"
    assert body["job"]["waiting_for"] == {"signal": "approved", "timeout_at": None}


def test_a_signal_sent_before_the_wait_is_taken_by_it(database: Any) -> None:
    job = submit("tests.durable_wait", name="early")
    status, body = signal(job["id"], "early", [1, 2, 3])
    assert status == 202 and body["job"]["state"] == "pending"
    drain_once(database)
    assert get(job["id"])["result"] == {"got": [1, 2, 3]}


def test_a_signal_name_may_be_any_printable_text(database: Any) -> None:
    job = waiting_job(database, name="order shipped/ü")
    assert signal(job["id"], "order%20shipped%2F%C3%BC", True)[0] == 202
    drain_once(database)
    assert get(job["id"])["result"] == {"got": True}


def test_a_finished_job_takes_no_signal(database: Any) -> None:
    job = submit("echo")
    drain_once(database)
    status, body = signal(job["id"], "late", 1)
    assert status == 409
    assert_error(body)
    assert body["details"]["state"] == "succeeded"


def test_a_signal_to_an_unknown_job_is_a_404(database: Any) -> None:
    status, body = signal(UNKNOWN, "shipped", 1)
    assert status == 404
    assert_error(body)


@pytest.mark.parametrize(
    ("name", "field"),
    [("x" * 201, "name"), ("tab%09here", "name"), ("zero%E2%80%8Bwidth", "name")],
    ids=["too long", "control character", "format character"],
)
def test_a_bad_signal_name_is_a_422(database: Any, name: str, field: str) -> None:
    job = submit("tests.durable_wait")
    status, body = signal(job["id"], name, 1)
    assert status == 422
    assert_error(body, field=field)
    assert signal(job["id"], "x" * 200, 1)[0] == 202  # 200 characters is the most


def test_a_signal_value_over_the_limit_is_refused_not_truncated(database: Any, raw: Any, settings_env: Any) -> None:
    settings_env(JOBQUEUE_MAX_BODY_BYTES="1024")
    job = submit("tests.durable_wait")
    # 5 bytes of body each, 18 as the value's JSON (1000000000000000.0): the
    # body fits, the value it makes does not.
    status, body = signal(job["id"], "go", f"[{','.join(['1e15'] * 150)}]")
    assert status == 422
    assert_error(body, field="value")
    assert "not truncated" in body["message"]
    status, body = signal(job["id"], "go", json.dumps("x" * 2000))  # a body over the limit is refused before it is read
    assert status == 413
    assert raw.run("SELECT signals FROM jobs WHERE id = CAST(:id AS uuid)", id=job["id"]) == [[None]]
    assert signal(job["id"], "go", json.dumps("x" * 900))[0] == 202  # under it is taken whole


def test_a_signal_body_that_is_not_json_is_a_400(database: Any) -> None:
    job = submit("tests.durable_wait")
    status, body = signal(job["id"], "go", "{not json")
    assert status == 400
    assert_error(body)


# --- cancel -----------------------------------------------------------------------------------


def test_cancel_of_a_waiting_job_is_immediate(database: Any) -> None:
    job = waiting_job(database)
    status, _, body = call(v2("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))
    assert status == 200
    schema_validator("JobBody").validate(body)
    cancelled = body["job"]
    assert cancelled["state"] == "cancelled" and cancelled["waiting_for"] is None
    assert cancelled["finished_at"] is not None and cancelled["cancel_requested"] is False
    status, answer = signal(job["id"], "shipped", 1)  # what it waited for has ended
    assert status == 409 and answer["details"]["state"] == "cancelled"


def test_cancel_of_a_running_job_asks_it_to_stop(database: Any) -> None:
    job = submit("tests.durable_wait")
    claimed = claims.claim(database, worker="test-worker", limit=1, grace=10, fits=60)
    assert [str(row[0]) for row in claimed.rows] == [job["id"]]
    assert get(job["id"])["state"] == "running"
    status, _, body = call(v2("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))
    assert status == 202
    schema_validator("JobBody").validate(body)
    assert (body["job"]["state"], body["job"]["cancel_requested"]) == ("running", True)
    assert body["job"]["finished_at"] is None
    again = call(v2("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))
    assert again[0] == 202 and again[2]["job"]["cancel_requested"] is True  # asking twice asks once
    shown = get(job["id"])
    assert (shown["state"], shown["cancel_requested"]) == ("running", True)


def test_cancel_of_a_finished_job_is_a_409(database: Any) -> None:
    job = submit("echo")
    drain_once(database)
    status, _, body = call(v2("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))
    assert status == 409
    assert_error(body)
    assert body["details"]["state"] == "succeeded"


def test_the_job_object_shows_the_durable_fields_for_every_job(database: Any) -> None:
    plain = get(submit("echo")["id"])
    assert (plain["progress"], plain["steps"], plain["waiting_for"], plain["cancel_requested"]) == (
        None,
        None,
        None,
        False,
    )
    sleeping = submit("tests.durable_sleeps", seconds=3600)
    drain_once(database)
    job = get(sleeping["id"])
    assert job["state"] == "waiting" and set(job["waiting_for"]) == {"sleep_until"}
    assert [(step["name"], step["until"]) for step in job["steps"]] == [("sleep-0", job["waiting_for"]["sleep_until"])]
    status, _, listed = call(v2("GET", "/jobs", headers=AUTH, query={"state": "waiting"}))
    assert status == 200 and [entry["id"] for entry in listed["jobs"]] == [job["id"]]
    schema_validator("JobList").validate(listed)
