"""Event dispatch: each kind of event the function receives reaches the code that
serves it, the samples in tests/support/samples as they are, and an event of no known
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
from jobqueue import task
from jobqueue.engine import invocation, pace
from jobqueue.errors import ConfigError, DatabaseUnavailable
from jobqueue.events import dispatch
from jobqueue.store import connection
from jobqueue.tasks import registry
from tests.support.apigw import AUTH, TOKEN, assert_error, call, v2
from tests.support.aws import ROOT, make_context, sample

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
    result = app.lambda_handler(sample("eventbridge-scheduled.json"), make_context())
    assert result["status"] == "ok"
    assert (result["drain"]["processed"], result["drain"]["succeeded"]) == (1, 1)
    assert states(raw) == {job["id"]: "succeeded"}


def test_sqs_sample_enqueues_the_job_and_reports_the_malformed_record(raw: Any) -> None:
    event = sample("sqs.json")
    result = app.lambda_handler(event, make_context())
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
    result = app.lambda_handler(event, make_context())
    assert (result["drain"]["processed"], result["drain"]["stopped"]) == (2, "max_jobs")
    # A rule's constant input can also be a whole process action.
    event["detail"] = {"action": "process", "queues": ["emails"]}
    assert app.lambda_handler(event, make_context())["drain"]["processed"] == 1
    assert states(raw) == {**{job_id: "succeeded" for job_id in emails}, other: "pending"}


def test_constant_input_process_action_is_how_a_target_with_input_arrives(raw: Any) -> None:
    submit(queue="emails")
    submit(queue="default")
    body = app.lambda_handler({"action": "process", "queues": ["emails"], "max_jobs": 500}, make_context())
    assert body["status"] == "ok"
    assert (body["drain"]["processed"], body["drain"]["stopped"]) == (1, "idle")
    assert sorted(states(raw).values()) == ["pending", "succeeded"]


def test_a_scheduled_drain_on_a_30_s_function_runs_a_job_submitted_with_defaults(raw: Any) -> None:
    """The smallest function timeout the README recommends, a fresh container,
    a job with every default: it runs on the first tick, not set aside."""
    job = submit()
    invocation.reset()  # a fresh container on a 30 s function: it has seen no longer invocation
    result = app.lambda_handler(sample("eventbridge-scheduled.json"), make_context(remaining_ms=30_000))
    assert (result["drain"]["succeeded"], result["drain"]["unfit"]) == (1, 0)
    assert states(raw) == {job["id"]: "succeeded"}


def test_a_task_longer_than_the_function_is_named_once_at_the_first_invocation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    invocation.reset()
    task(name="tests.too_long", timeout=120)(lambda: None)
    try:
        app.lambda_handler(sample("eventbridge-scheduled.json"), make_context(remaining_ms=60_000))
        app.lambda_handler(sample("eventbridge-scheduled.json"), make_context(remaining_ms=60_000))
    finally:
        registry._registry.pop("tests.too_long")
    said = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "task_timeout_exceeds" in line]
    assert len(said) == 1
    assert (said[0]["task"], said[0]["needs_function_timeout_seconds"]) == ("tests.too_long", 123)


def test_schedule_uses_the_remaining_time() -> None:
    submit()
    result = app.lambda_handler(sample("eventbridge-scheduled.json"), make_context(remaining_ms=1000))
    assert (result["drain"]["processed"], result["drain"]["stopped"]) == (0, "budget")


def test_a_drain_stops_in_time_and_hands_back_what_it_did_not_start(
    raw: Any, settings_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of slow jobs several times the invocation's time: the drain
    returns before the deadline less JOBQUEUE_SAFETY_MS, says it stopped for the
    budget, and the claimed jobs it never started are pending again, uncounted."""
    safety_ms = 500
    settings_env(JOBQUEUE_SAFETY_MS=str(safety_ms), JOBQUEUE_CONCURRENCY="2")
    # A container that has seen fast jobs: its first claim takes the whole
    # backlog, more than fits, whatever earlier tests taught this process.
    monkeypatch.setattr(pace, "_mean_job_seconds", 0.001)
    backlog = [{"task": "sleep", "payload": {"seconds": 0.4}, "timeout_seconds": 1} for _ in range(16)]
    status, _, body = call(v2("POST", "/jobs/batch", {"jobs": backlog}, AUTH))
    assert status == 202, body
    context = make_context(remaining_ms=3000)  # 16 x 0.4 s of work, 2 at a time, in a 3 s invocation

    result = app.lambda_handler(sample("eventbridge-scheduled.json"), context)

    assert context.get_remaining_time_in_millis() >= safety_ms
    drain = result["drain"]
    assert drain["stopped"] == "budget", drain
    assert 1 <= drain["processed"] < len(backlog) and drain["released"] >= 1, drain
    rows = raw.run("SELECT state, attempts, started_at IS NULL FROM jobs")
    assert sorted(tuple(row) for row in rows) == sorted(
        [("succeeded", 1, False)] * drain["processed"] + [("pending", 0, True)] * (len(backlog) - drain["processed"])
    )


def test_a_failing_schedule_raises_so_lambda_counts_and_retries_it(db_settings: Any) -> None:
    connection.set_default(
        connection.Database(dataclasses.replace(db_settings, host="127.0.0.1", port=1, connect_timeout=1))
    )
    with pytest.raises(DatabaseUnavailable):
        app.lambda_handler(sample("eventbridge-scheduled.json"), make_context())
    # Also when the schedule carries an action, as a Scheduler string: a periodic
    # submit that could not be stored must be retried, not answered.
    event = sample("eventbridge-scheduler.json")
    event["detail"] = json.dumps({"action": "submit", "task": "echo"})
    with pytest.raises(DatabaseUnavailable):
        app.lambda_handler(event, make_context())


def test_a_misconfigured_schedule_raises_naming_the_variable(settings_env: Any) -> None:
    settings_env(JOBQUEUE_AUTH="sometimes")
    for name in ("eventbridge-scheduled.json", "eventbridge-scheduler.json"):
        with pytest.raises(ConfigError, match="JOBQUEUE_AUTH"):
            app.lambda_handler(sample(name), make_context())


def test_the_scheduler_sample_with_its_string_detail_drains(raw: Any) -> None:
    job = submit()
    result = app.lambda_handler(sample("eventbridge-scheduler.json"), make_context())
    assert (result["status"], result["drain"]["succeeded"]) == ("ok", 1)
    assert states(raw) == {job["id"]: "succeeded"}


def test_a_scheduler_string_detail_narrows_or_holds_an_action(raw: Any) -> None:
    emails = [submit(queue="emails")["id"] for _ in range(3)]
    other = submit(queue="other")["id"]
    event = sample("eventbridge-scheduler.json")
    event["detail"] = json.dumps({"queues": ["emails"], "max_jobs": 2})
    result = app.lambda_handler(event, make_context())
    assert (result["drain"]["processed"], result["drain"]["stopped"]) == (2, "max_jobs")
    event["detail"] = json.dumps({"action": "process", "queues": ["emails"]})
    assert app.lambda_handler(event, make_context())["drain"]["processed"] == 1
    event["detail"] = json.dumps({"action": "submit", "task": "echo", "queue": "other", "idempotency_key": "tick-1"})
    submitted = app.lambda_handler(event, make_context())
    assert submitted["job"]["queue"] == "other"
    assert states(raw) == {**dict.fromkeys(emails, "succeeded"), other: "pending", submitted["job"]["id"]: "pending"}


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("source", ["eventbridge-scheduled.json", "eventbridge-scheduler.json"])
@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"queues": "emails"}, "queues"),
        ('{"queues": "emails"}', "queues"),
        ({"max_jobs": 0}, "max_jobs"),
        ({"max_jobs": 1.5}, "max_jobs"),
        ({"colour": "red"}, "colour"),
        ("not json", "detail"),
        ("", "detail"),
        ("[1, 2]", "detail"),
        ('"{}"', "detail"),  # a string holding a string holding an object: one level only
        ('{"a": NaN}', "detail"),
        ([], "detail"),
        (42, "detail"),
        ({"action": "fly"}, "action"),
        ('{"action": "submit", "task": "nope"}', "task"),
        ({"action": "submit", "task": "echo", "run_at": "9999-12-31T23:00:00-01:00"}, "run_at"),
        ({"action": "status", "job_id": "01890000-0000-7000-8000-000000000000"}, None),
    ],
)
def test_bad_schedule_input_is_answered_and_logged_once_not_raised(
    source: str, detail: Any, field: str | None, raw: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    event = sample(source)
    event["detail"] = detail
    capsys.readouterr()
    body = app.lambda_handler(event, make_context())
    assert_error(body, field=field)
    lines = logged(capsys)
    assert [(line["event"], line["level"]) for line in lines] == [("schedule", "WARNING")], lines
    assert lines[0]["error"] == body["message"] and lines[0]["field"] == field
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 0


def test_an_idle_tick_writes_nothing_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("eventbridge-scheduled.json", "eventbridge-scheduler.json"):
        capsys.readouterr()
        assert app.lambda_handler(sample(name), make_context())["drain"]["processed"] == 0
        assert logged(capsys) == []
    assert app.lambda_handler({"action": "process"}, make_context())["drain"]["processed"] == 0
    assert logged(capsys) == []
    submit()
    capsys.readouterr()
    app.lambda_handler(sample("eventbridge-scheduler.json"), make_context())
    ticks = [line for line in logged(capsys) if line["event"] == "schedule"]
    assert [(t["level"], t["processed"], t["source"]) for t in ticks] == [("INFO", 1, "aws.scheduler")]


# --- direct invocation ----------------------------------------------------------------


def test_direct_actions_return_the_http_bodies_unwrapped(raw: Any) -> None:
    submitted = app.lambda_handler({"action": "submit", "task": "echo", "payload": {"n": 7}}, make_context())
    job_id = submitted["job"]["id"]
    assert submitted["status"] == "ok" and submitted["job"]["payload"] == {"n": 7}
    status = app.lambda_handler({"action": "status", "job_id": job_id}, make_context())
    assert status == call(v2("GET", f"/jobs/{job_id}", headers=AUTH))[2]
    stats = app.lambda_handler({"action": "stats"}, make_context())["stats"]
    over_http = call(v2("GET", "/stats", headers=AUTH))[2]["stats"]
    assert (stats["totals"], list(stats["queues"])) == (over_http["totals"], list(over_http["queues"]))
    processed = app.lambda_handler({"action": "process"}, make_context())
    assert processed["drain"]["succeeded"] == 1
    assert app.lambda_handler({"action": "status", "job_id": job_id}, make_context())["job"]["result"] == {"n": 7}
    migrated = app.lambda_handler({"action": "migrate"}, make_context())
    assert migrated == {"status": "ok", "applied": [], "schema_version": migrated["schema_version"]}
    again = app.lambda_handler({"action": "submit", "task": "echo", "idempotency_key": "once"}, make_context())
    same = app.lambda_handler({"action": "submit", "task": "echo", "idempotency_key": "once"}, make_context())
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
def test_bad_direct_invocations_get_the_error_body(
    event: dict[str, Any], field: str, raw: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    body = app.lambda_handler(event, make_context())
    assert_error(body, field=field)
    lines = logged(capsys)
    assert [(line["event"], line["level"], line["field"]) for line in lines] == [("invocation", "WARNING", field)]
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 0


@pytest.mark.parametrize("action", ["submit", "status", "process", "stats", "migrate"])
def test_a_direct_invocation_the_database_cannot_serve_raises(action: str, db_settings: Any) -> None:
    """Not the input's fault: the caller sees a failed invocation, and an
    asynchronous one (a rule's constant input) is retried and counted."""
    args = {"submit": {"task": "echo"}, "status": {"job_id": "01890000-0000-7000-8000-000000000000"}}
    connection.set_default(
        connection.Database(dataclasses.replace(db_settings, host="127.0.0.1", port=1, connect_timeout=1))
    )
    with pytest.raises(DatabaseUnavailable):
        app.lambda_handler({"action": action, **args.get(action, {})}, make_context())


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
    body = app.lambda_handler(event, make_context())
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
        {"JOBQUEUE_TASK_MODULES": "tests.support.tasks", "JOBQUEUE_API_TOKEN": TOKEN, "JOBQUEUE_BUILTIN_TASKS": "on"},
        "from jobqueue.tasks import registry\nprint(sorted(registry.registered()))",
    )
    assert done.returncode == 0, done.stderr
    assert "tests.record" in done.stdout and "echo" in done.stdout


SUBMIT_ECHO = (
    "print(json.dumps(app.lambda_handler({'version': '2.0', 'rawPath': '/jobs', 'body': '{\"task\": \"echo\"}',"
    " 'headers': {'authorization': 'Bearer " + TOKEN + "', 'content-type': 'application/json'},"
    " 'requestContext': {'http': {'method': 'POST'}}}, None)))"
)


@pytest.mark.parametrize("setting", [None, "off"])
def test_the_builtin_tasks_are_off_unless_asked_for(setting: str | None) -> None:
    """A deployment accepts only its own tasks: a submit of ``echo`` is the usual
    unknown-task error (before any database is reached) when the built-ins are off."""
    env = {"JOBQUEUE_TASK_MODULES": "tests.support.tasks", "JOBQUEUE_API_TOKEN": TOKEN}
    if setting is not None:
        env["JOBQUEUE_BUILTIN_TASKS"] = setting
    done = _cold_start(
        env,
        "from jobqueue.tasks import registry\n"
        "print(json.dumps(sorted(registry.registered())))\n"
        "print(json.dumps(sorted(m for m in __import__('sys').modules if m.endswith('.builtin'))))\n" + SUBMIT_ECHO,
    )
    assert done.returncode == 0, done.stderr
    registered, builtin_modules, response = (json.loads(line) for line in done.stdout.splitlines())
    assert "tests.record" in registered and not {"echo", "noop", "sleep", "fail"} & set(registered)
    assert builtin_modules == []  # not even imported
    body = json.loads(response["body"])
    assert response["statusCode"] == 422
    assert body["message"] == "unknown task 'echo'" and body["details"] == {"field": "task"}


def test_cold_start_with_bad_config_logs_the_variable_and_fails_each_invocation() -> None:
    done = _cold_start(
        {"JOBQUEUE_TASK_MODULES": "no_such_module_here", "JOBQUEUE_API_TOKEN": TOKEN},
        "try:\n"
        "    app.lambda_handler({'action': 'stats'}, None)\n"
        "except Exception as exc:\n"
        "    print(json.dumps({'raised': type(exc).__name__, 'message': str(exc)}))\n"
        "print(json.dumps(app.lambda_handler({'version': '2.0', 'rawPath': '/health',"
        " 'requestContext': {'http': {'method': 'GET'}}}, None)))",
    )
    assert done.returncode == 0, done.stderr
    direct, http_response = (json.loads(line) for line in done.stdout.splitlines())
    # The direct caller (IAM-authorised) is told what is wrong; an HTTP caller, who may be
    # anyone, only that something is, with the request id that finds the detail in the log.
    assert direct["raised"] == "ConfigError" and "JOBQUEUE_TASK_MODULES" in direct["message"]
    assert http_response["statusCode"] == 500 and "JOBQUEUE_TASK_MODULES" not in http_response["body"]
    body = json.loads(http_response["body"])
    assert body["message"] == "the service is misconfigured; its log has the detail"
    assert list(body["details"]) == ["request_id"]
    first = json.loads(done.stderr.splitlines()[0])
    assert first["event"] == "config_error" and "JOBQUEUE_TASK_MODULES" in first["error"]
    logged = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(
        line.get("request_id") == body["details"]["request_id"] and "JOBQUEUE_TASK_MODULES" in line.get("error", "")
        for line in logged
    )


def test_a_short_token_fails_the_cold_start_without_showing_it() -> None:
    short = "s3cr3t-but-too-short"
    done = _cold_start(
        {"JOBQUEUE_API_TOKEN": f"{TOKEN},{short}"},
        "try:\n"
        "    app.lambda_handler({'action': 'stats'}, None)\n"
        "except Exception as exc:\n"
        "    print(json.dumps({'raised': type(exc).__name__, 'message': str(exc)}))",
    )
    assert done.returncode == 0, done.stderr
    direct = json.loads(done.stdout)
    assert direct["raised"] == "ConfigError"
    assert "JOBQUEUE_API_TOKEN" in direct["message"] and "32 characters" in direct["message"]
    assert "entry 2 of 2" in direct["message"]
    assert short not in done.stdout + done.stderr and TOKEN not in done.stdout + done.stderr


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
        app.lambda_handler(sample("sqs.json"), make_context())
    with pytest.raises(ConfigError, match="JOBQUEUE_AUTH"):
        dispatch.dispatch({"action": "stats"})


# --- direct invocation: signals to durable jobs ---------------------------------------------


def _waiting(name: str) -> str:
    """A tests.durable_wait job, submitted and drained directly, waiting for ``name``."""
    job_id = app.lambda_handler(
        {"action": "submit", "task": "tests.durable_wait", "payload": {"name": name}}, make_context()
    )["job"]["id"]
    assert app.lambda_handler({"action": "process"}, make_context())["drain"]["suspended"] == 1
    status = app.lambda_handler({"action": "status", "job_id": job_id}, make_context())
    assert status["job"]["state"] == "waiting"
    return job_id


def test_a_direct_signal_resumes_a_waiting_job() -> None:
    job_id = _waiting("approved")
    event = {"action": "signal", "job_id": job_id, "name": "approved", "value": {"by": "ana"}}
    body = app.lambda_handler(event, make_context())
    assert body["status"] == "ok" and body["job"]["id"] == job_id
    assert (body["job"]["state"], body["job"]["waiting_for"]) == ("pending", None)
    assert body["job"] == call(v2("GET", f"/jobs/{job_id}", headers=AUTH))[2]["job"]  # the job as HTTP shows it
    assert app.lambda_handler({"action": "process"}, make_context())["drain"]["succeeded"] == 1
    done = app.lambda_handler({"action": "status", "job_id": job_id}, make_context())["job"]
    assert done["state"] == "succeeded" and done["result"] == {"got": {"by": "ana"}}


def test_a_direct_signal_without_a_value_delivers_null() -> None:
    job_id = _waiting("go")
    assert app.lambda_handler({"action": "signal", "job_id": job_id, "name": "go"}, make_context())["status"] == "ok"
    app.lambda_handler({"action": "process"}, make_context())
    assert app.lambda_handler({"action": "status", "job_id": job_id}, make_context())["job"]["result"] == {"got": None}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "go"}, "job_id"),
        ({"job_id": "{id}"}, "name"),
        ({"job_id": "{id}", "name": ""}, "name"),
        ({"job_id": "{id}", "name": "x" * 201}, "name"),
        ({"job_id": "{id}", "name": 5}, "name"),
        ({"job_id": "{id}", "name": "go", "value": "x" * 300_000}, "value"),
        ({"job_id": "{id}", "name": "go", "colour": "red"}, "colour"),
        ({"job_id": "nope", "name": "go"}, "id"),
    ],
)
def test_bad_direct_signals_get_the_error_body(fields: dict[str, Any], field: str, raw: Any) -> None:
    job_id = submit()["id"]
    event = {"action": "signal", **{k: job_id if v == "{id}" else v for k, v in fields.items()}}
    body = app.lambda_handler(event, make_context())
    assert_error(body, field=field)
    assert raw.run("SELECT signals FROM jobs WHERE id = CAST(:id AS uuid)", id=job_id) == [[None]]


def test_a_direct_signal_to_an_unknown_or_finished_job_gets_the_error_body() -> None:
    unknown = {"action": "signal", "job_id": "01890000-0000-7000-8000-000000000000", "name": "go", "value": 1}
    body = app.lambda_handler(unknown, make_context())
    assert_error(body)
    assert "no job" in body["message"]
    job_id = submit()["id"]
    app.lambda_handler({"action": "process"}, make_context())
    body = app.lambda_handler({"action": "signal", "job_id": job_id, "name": "go", "value": 1}, make_context())
    assert_error(body)
    assert body["details"]["state"] == "succeeded"
