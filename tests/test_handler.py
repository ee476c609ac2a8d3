"""Event dispatch: each kind of event the function receives reaches the code that
serves it, the samples in shared/events as they are, and an event of no known
kind gets a clear answer instead of a crash."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import pytest

import app
from jobqueue import db as dbmod
from jobqueue import handler
from jobqueue.errors import ConfigError, DatabaseUnavailable

from .apigw import AUTH, assert_error, call, sample, settings_env_fixture, v2  # noqa: F401
from .conftest import ROOT, FakeContext

pytestmark = pytest.mark.usefixtures("database", "settings_env")


def submit(**fields: Any) -> dict[str, Any]:
    status, _, body = call(v2("POST", "/jobs", {"task": "echo", **fields}, AUTH))
    assert status == 202, body
    return body["job"]


def states(raw: Any) -> dict[str, str]:
    return {str(job_id): state for job_id, state in raw.run("SELECT id, state FROM jobs")}


# --- the samples, unchanged -----------------------------------------------------------


@pytest.mark.parametrize("name", ["apigw-rest-v1.json", "apigw-http-v2.json"])
def test_http_samples_reach_the_http_layer(name: str) -> None:
    """/my/path is no route of ours: a JSON 404 proves the event was read as HTTP."""
    status, headers, body = call(sample(name))
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert_error(body)
    assert body["details"]["path"] == "/my/path"


def test_scheduled_sample_drains(raw: Any) -> None:
    job = submit(payload={"x": 1})
    result = app.lambda_handler(sample("eventbridge-scheduled.json"), FakeContext())
    assert result["status"] == "ok"
    assert (result["drain"]["processed"], result["drain"]["succeeded"]) == (1, 1)
    assert states(raw) == {job["id"]: "succeeded"}


def test_sqs_sample_enqueues_the_job_and_reports_the_malformed_record(raw: Any) -> None:
    event = sample("sqs.json")
    result = app.lambda_handler(event, FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    rows = raw.run("SELECT task, payload, idempotency_key FROM jobs")
    assert rows == [["echo", {"message": "hello"}, f"sqs:{event['Records'][0]['messageId']}"]]


# --- schedules ------------------------------------------------------------------------


def test_scheduler_events_drain_and_constant_input_narrows(raw: Any) -> None:
    emails = [submit(queue="emails")["id"] for _ in range(3)]
    other = submit(queue="other")["id"]
    event = sample("eventbridge-scheduled.json")
    event["source"] = "aws.scheduler"
    event["detail"] = {"queues": ["emails"], "max_jobs": 2}
    result = app.lambda_handler(event, FakeContext())
    assert (result["drain"]["processed"], result["drain"]["stopped"]) == (2, "max_jobs")
    # A rule's constant input can also be a whole process action.
    event["detail"] = {"action": "process", "queues": ["emails"]}
    assert app.lambda_handler(event, FakeContext())["drain"]["processed"] == 1
    assert states(raw) == {**{job_id: "succeeded" for job_id in emails}, other: "pending"}


def test_constant_input_process_action_is_how_a_target_with_input_arrives(raw: Any) -> None:
    submit(queue="emails")
    submit(queue="default")
    body = app.lambda_handler({"action": "process", "queues": ["emails"], "max_jobs": 500}, FakeContext())
    assert body["status"] == "ok"
    assert (body["drain"]["processed"], body["drain"]["stopped"]) == (1, "idle")
    assert sorted(states(raw).values()) == ["pending", "succeeded"]


def test_schedule_uses_the_remaining_time() -> None:
    submit()
    result = app.lambda_handler(sample("eventbridge-scheduled.json"), FakeContext(remaining_ms=1000))
    assert (result["drain"]["processed"], result["drain"]["stopped"]) == (0, "budget")


def test_a_failing_schedule_raises_so_lambda_counts_and_retries_it(db_settings: Any) -> None:
    dbmod.set_default(dbmod.Database(dataclasses.replace(db_settings, host="127.0.0.1", port=1, connect_timeout=1)))
    with pytest.raises(DatabaseUnavailable):
        app.lambda_handler(sample("eventbridge-scheduled.json"), FakeContext())


def test_a_bad_schedule_input_raises_naming_the_field() -> None:
    event = sample("eventbridge-scheduled.json")
    event["detail"] = {"queues": "emails"}
    with pytest.raises(Exception, match="queues"):
        app.lambda_handler(event, FakeContext())


# --- direct invocation ----------------------------------------------------------------


def test_direct_actions_return_the_http_bodies_unwrapped(raw: Any) -> None:
    submitted = app.lambda_handler({"action": "submit", "task": "echo", "payload": {"n": 7}}, FakeContext())
    job_id = submitted["job"]["id"]
    assert submitted["status"] == "ok" and submitted["job"]["payload"] == {"n": 7}
    status = app.lambda_handler({"action": "status", "job_id": job_id}, FakeContext())
    assert status == call(v2("GET", f"/jobs/{job_id}", headers=AUTH))[2]
    stats = app.lambda_handler({"action": "stats"}, FakeContext())["stats"]
    over_http = call(v2("GET", "/stats", headers=AUTH))[2]["stats"]
    assert (stats["totals"], list(stats["queues"])) == (over_http["totals"], list(over_http["queues"]))
    processed = app.lambda_handler({"action": "process"}, FakeContext())
    assert processed["drain"]["succeeded"] == 1
    assert app.lambda_handler({"action": "status", "job_id": job_id}, FakeContext())["job"]["result"] == {"n": 7}
    migrated = app.lambda_handler({"action": "migrate"}, FakeContext())
    assert migrated == {"status": "ok", "applied": [], "schema_version": migrated["schema_version"]}
    again = app.lambda_handler({"action": "submit", "task": "echo", "idempotency_key": "once"}, FakeContext())
    same = app.lambda_handler({"action": "submit", "task": "echo", "idempotency_key": "once"}, FakeContext())
    assert again["job"]["id"] == same["job"]["id"]
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 2


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"action": "fly"}, "action"),
        ({"action": None}, "action"),
        ({"action": "submit"}, "task"),
        ({"action": "submit", "task": "nope"}, "task"),
        ({"action": "submit", "task": "echo", "colour": "red"}, "colour"),
        ({"action": "status"}, "job_id"),
        ({"action": "status", "job_id": 5}, "job_id"),
        ({"action": "status", "job_id": "nope"}, "id"),
        ({"action": "stats", "verbose": True}, "verbose"),
        ({"action": "process", "max_jobs": "all"}, "max_jobs"),
    ],
)
def test_bad_direct_invocations_get_the_error_body(event: dict[str, Any], field: str, raw: Any) -> None:
    body = app.lambda_handler(event, FakeContext())
    assert_error(body, field=field)
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 0


def test_direct_status_of_an_unknown_job() -> None:
    body = app.lambda_handler({"action": "status", "job_id": "01890000-0000-7000-8000-000000000000"}, None)
    assert_error(body)
    assert "no job" in body["message"]


# --- unknown events -------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"hello": "world"},
        [],
        "a string",
        None,
        42,
        {"Records": [{"eventSource": "aws:s3", "s3": {}}]},
        {"Records": []},
        {"requestContext": "not a dict"},
        {"source": "aws.s3"},
    ],
)
def test_unknown_events_get_a_clear_error_not_a_crash(event: Any) -> None:
    body = app.lambda_handler(event, FakeContext())
    assert_error(body)
    assert "unrecognised event" in body["message"]


def test_malformed_http_events_are_a_400() -> None:
    event = v2("GET", "/health")
    event["requestContext"]["http"] = {"path": "/health"}  # no method
    status, _, body = call(event)
    assert status == 400
    assert_error(body)


# --- cold start -------------------------------------------------------------------------


def _cold_start(env: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    return subprocess.run(
        [sys.executable, "-c", "import app, json\n" + script],
        cwd=ROOT,
        env={**clean, "JOBQUEUE_LOG_LEVEL": "INFO", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cold_start_loads_task_modules() -> None:
    done = _cold_start(
        {"JOBQUEUE_TASK_MODULES": "tests.tasks", "JOBQUEUE_API_TOKEN": "t"},
        "from jobqueue import tasks\nprint(sorted(tasks.registered()))",
    )
    assert done.returncode == 0, done.stderr
    assert "tests.record" in done.stdout and "echo" in done.stdout


def test_cold_start_with_bad_config_logs_the_variable_and_fails_each_invocation() -> None:
    done = _cold_start(
        {"JOBQUEUE_TASK_MODULES": "no_such_module_here", "JOBQUEUE_API_TOKEN": "t"},
        "print(json.dumps(app.lambda_handler({'action': 'stats'}, None)))\n"
        "print(json.dumps(app.lambda_handler({'version': '2.0', 'rawPath': '/health',"
        " 'requestContext': {'http': {'method': 'GET'}}}, None)))",
    )
    assert done.returncode == 0, done.stderr
    direct, http_response = (json.loads(line) for line in done.stdout.splitlines())
    assert direct["status"] == "error" and "JOBQUEUE_TASK_MODULES" in direct["message"]
    assert http_response["statusCode"] == 500 and "JOBQUEUE_TASK_MODULES" in http_response["body"]
    first = json.loads(done.stderr.splitlines()[0])
    assert first["event"] == "config_error" and "JOBQUEUE_TASK_MODULES" in first["error"]


def test_cold_start_without_auth_settings_logs_why_once() -> None:
    done = _cold_start(
        {},
        "for _ in range(3):\n"
        "    r = app.lambda_handler({'version': '2.0', 'rawPath': '/stats',"
        " 'requestContext': {'http': {'method': 'GET'}}}, None)\n"
        "    print(r['statusCode'])",
    )
    assert done.stdout.split() == ["401", "401", "401"], done.stderr
    warnings = [json.loads(line) for line in done.stderr.splitlines() if "auth_not_configured" in line]
    assert len(warnings) == 1 and "JOBQUEUE_API_TOKEN" in warnings[0]["message"]


def test_cold_start_does_not_import_what_only_some_paths_need() -> None:
    done = _cold_start({}, "import sys\nprint([m for m in ('jobqueue.openapi', 'boto3') if m in sys.modules])")
    assert done.stdout.strip() == "[]", done.stderr


def test_config_errors_raise_for_sqs_so_the_batch_is_retried(settings_env: Any) -> None:
    settings_env(JOBQUEUE_AUTH="sometimes")
    with pytest.raises(ConfigError, match="JOBQUEUE_AUTH"):
        app.lambda_handler(sample("sqs.json"), FakeContext())
    assert handler.dispatch({"action": "stats"})["status"] == "error"
