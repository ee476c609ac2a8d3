"""CloudWatch metrics: real drains and scheduled ticks, through app.lambda_handler,
write Embedded Metric Format lines that AWS's published specification accepts
and that say what the drain did.

Every line is checked twice: against the JSON Schema AWS publishes with the
specification (tests/support/emf_schema.json), and against the rules the specification
states in prose, which that schema cannot express.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import botocore.session
import jsonschema
import pytest
from awslambdaric.lambda_context import LambdaContext

import app
from jobqueue import JobSpec
from jobqueue.config import Settings
from jobqueue.engine import invocation, metrics
from jobqueue.errors import ConfigError
from jobqueue.events import cold_start
from jobqueue.store import claims, jobs
from tests.support.aws import ROOT, SAMPLES

# AWS publishes no draft with it; its fragment-only "$id"s are draft-07 style.
SCHEMA = json.loads((ROOT / "tests" / "support" / "emf_schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
# CloudWatch's units, from its own API model (MetricDatum.Unit).
UNITS = frozenset(botocore.session.get_session().get_service_model("cloudwatch").shape_for("StandardUnit").enum)
NAMESPACE = "jobqueue-test/metrics"
TOKEN = "metrics-test-token-0123456789abcdef"
MAX_LINE_BYTES = 256 * 1024  # the older, smaller CloudWatch Logs event limit (now 1 MB)

pytestmark = pytest.mark.usefixtures("database", "in_lambda")


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The function as Lambda runs it (Lambda sets AWS_LAMBDA_FUNCTION_NAME), with its own namespace.

    Fan-out is off: it would invoke the function through Lambda's API, and
    these drains are about what one invocation writes.
    """
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "jobqueue")
    env = {"JOBQUEUE_API_TOKEN": TOKEN, "JOBQUEUE_METRICS_NAMESPACE": NAMESPACE, "JOBQUEUE_FANOUT": "off"}
    cold_start.configure(env)
    yield
    cold_start.configure()
    invocation.reset()


def context(remaining_ms: int = 120_000) -> LambdaContext:
    """Lambda's own context class, built as the runtime's bootstrap builds it."""
    deadline = int(time.time() * 1000) + remaining_ms
    return LambdaContext("metrics-test", None, None, deadline, "arn:aws:lambda:us-east-1:123456789012:function:jq")


def scheduled_event(detail: dict[str, Any] | None = None) -> dict[str, Any]:
    event = json.loads((SAMPLES / "eventbridge-scheduled.json").read_text())
    if detail is not None:
        event["detail"] = detail
    return event


def http_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) request built from AWS's sample."""
    event = copy.deepcopy(json.loads((SAMPLES / "apigw-http-v2.json").read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"] = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    event.pop("cookies", None)
    event.pop("pathParameters", None)
    event["queryStringParameters"], event["rawQueryString"] = None, ""
    event["body"], event["isBase64Encoded"] = (None if body is None else json.dumps(body)), False
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    return event


# --- what the specification says ---------------------------------------------------------


def check_emf(line: str, earliest_ms: int, latest_ms: int) -> dict[str, Any]:
    """One stdout line as CloudWatch Logs reads it: a whole JSON object that the
    published schema accepts and that keeps the specification's other rules."""
    assert len(line.encode()) <= MAX_LINE_BYTES
    document = json.loads(line)  # the whole line: no data before or after the object
    assert isinstance(document, dict)
    VALIDATOR.validate(document)
    metadata = document["_aws"]
    stamp = metadata["Timestamp"]
    # Milliseconds since the epoch, taken while the invocation ran (seconds would be 1000 times smaller).
    assert type(stamp) is int and earliest_ms <= stamp <= latest_ms, (stamp, earliest_ms, latest_ms)
    assert metadata["CloudWatchMetrics"], "a document naming no metric publishes nothing"
    for directive in metadata["CloudWatchMetrics"]:
        assert directive["Namespace"] == NAMESPACE
        metrics = directive["Metrics"]
        assert 1 <= len(metrics) <= 100
        names = [metric["Name"] for metric in metrics]
        assert len(set(names)) == len(names)
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for key in dimension_set:
                assert key in document, f"dimension {key} has no member in the root"
                value = document[key]
                assert isinstance(value, str) and 1 <= len(value) <= 1024, (key, value)
                assert key not in names
        for metric in metrics:
            assert metric["Name"] in document, f"metric {metric['Name']} has no member in the root"
            value = document[metric["Name"]]
            if isinstance(value, list):
                assert 1 <= len(value) <= 100, (metric["Name"], len(value))
                assert all(_number(v) for v in value), value
            else:
                assert _number(value), (metric["Name"], value)
            assert metric.get("Unit", "None") in UNITS, metric
    return document


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def emf_documents(out: str, earliest_ms: int, latest_ms: int) -> list[dict[str, Any]]:
    """stdout carries only EMF lines (the logs go to stderr): check each one."""
    return [check_emf(line, earliest_ms, latest_ms) for line in out.splitlines()]


def now_ms() -> int:
    return int(time.time() * 1000)


def invoke(event: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[Any, list[dict[str, Any]]]:
    capsys.readouterr()
    earliest = now_ms()
    result = app.lambda_handler(event, context())
    latest = now_ms()
    return result, emf_documents(capsys.readouterr().out, earliest, latest)


def metric_names(document: dict[str, Any]) -> list[str]:
    return [m["Name"] for directive in document["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]]


def units(document: dict[str, Any]) -> dict[str, str]:
    return {m["Name"]: m["Unit"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def dimensions(document: dict[str, Any]) -> list[list[str]]:
    return [s for directive in document["_aws"]["CloudWatchMetrics"] for s in directive["Dimensions"]]


def drain_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if "PendingJobs" not in d]


def gauge_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if "PendingJobs" in d]


def per_queue(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Counts summed and samples joined per queue, across a queue's lines."""
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for document in documents:
        if "Queue" not in document:
            continue
        entry = totals[document["Queue"]]
        entry["lines"] += 1
        for name in metric_names(document):
            value = document[name]
            if isinstance(value, list):
                entry.setdefault(name + "Values", []).extend(value)
            else:
                entry[name] += value
    return totals


# --- the checker catches what the specification forbids ----------------------------------

# The valid example the specification gives, with our namespace.
SPEC_EXAMPLE = {
    "_aws": {
        "Timestamp": 1574109732004,
        "CloudWatchMetrics": [
            {
                "Namespace": NAMESPACE,
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds", "StorageResolution": 60}],
            }
        ],
    },
    "functionVersion": "$LATEST",
    "time": 100,
    "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee",
}


def _broken(change: Any) -> str:
    document = copy.deepcopy(SPEC_EXAMPLE)
    change(document)
    return json.dumps(document)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["_aws"].pop("Timestamp"), id="no-timestamp"),
        pytest.param(lambda d: d["_aws"].update(Timestamp=1574109732.004), id="timestamp-not-integer"),
        pytest.param(lambda d: d["_aws"].update(Timestamp=1574109732), id="timestamp-in-seconds"),
        pytest.param(lambda d: d["_aws"]["CloudWatchMetrics"][0].pop("Namespace"), id="no-namespace"),
        pytest.param(lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[]), id="no-dimension-set"),
        pytest.param(
            lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[[f"d{i}" for i in range(31)]]),
            id="31-dimensions",
        ),
        pytest.param(lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="ms"), id="bad-unit"),
        pytest.param(lambda d: d.pop("time"), id="metric-without-member"),
        pytest.param(lambda d: d.update(time="100"), id="metric-not-a-number"),
        pytest.param(lambda d: d.update(time=list(range(101))), id="101-values"),
        pytest.param(lambda d: d.update(time=[]), id="no-values"),
        pytest.param(lambda d: d.pop("functionVersion"), id="dimension-without-member"),
        pytest.param(lambda d: d.update(functionVersion=7), id="dimension-not-a-string"),
    ],
)
def test_the_checker_rejects_what_the_specification_forbids(change: Any) -> None:
    check_emf(json.dumps(SPEC_EXAMPLE), 1574109732004, 1574109732004)  # the specification's own example passes
    with pytest.raises((AssertionError, jsonschema.ValidationError)):
        check_emf(_broken(change), 1574109732004 - 1000, 1574109732004 + 1000)


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["required"] == ["_aws"]


# --- drains --------------------------------------------------------------------------------


def test_a_scheduled_tick_writes_gauges_then_each_queue_outcomes(database: Any, raw: Any, capsys: Any) -> None:
    mail = [jobs.enqueue(database, JobSpec("echo", queue="mail"))[0] for _ in range(3)]
    jobs.enqueue(database, JobSpec("fail", {"permanent": True}, queue="mail"))
    jobs.enqueue(database, JobSpec("sleep", {"seconds": 0.2}, queue="reports"))
    jobs.enqueue(database, JobSpec("echo", queue="reports"))
    jobs.enqueue(database, JobSpec("fail", queue="reports", max_attempts=2))
    # One job has been due for a minute: its wait shows in the gauges and in its start latency.
    raw.run("UPDATE jobs SET run_at = now() - interval '60 seconds' WHERE id = CAST(:id AS uuid)", id=mail[0]["id"])

    result, documents = invoke(scheduled_event(), capsys)

    assert result["status"] == "ok" and result["drain"]["processed"] == 7
    gauges, drains = gauge_documents(documents), drain_documents(documents)
    assert documents[: len(gauges)] == gauges, "the gauges are sampled before the drain"

    # Gauges: one line per queue, then one overall, in seconds.
    by_queue = {d["Queue"]: d for d in gauges if "Queue" in d}
    assert {q: (d["PendingJobs"], d["RunningJobs"]) for q, d in by_queue.items()} == {
        "mail": (4, 0),
        "reports": (3, 0),
    }
    assert 60 <= by_queue["mail"]["OldestPendingAge"] < 600
    assert 0 <= by_queue["reports"]["OldestPendingAge"] < 60
    (overall,) = [d for d in gauges if "Queue" not in d]
    assert (overall["PendingJobs"], overall["RunningJobs"]) == (7, 0)
    assert overall["OldestPendingAge"] == by_queue["mail"]["OldestPendingAge"]
    assert dimensions(overall) == [[]] and all(dimensions(d) == [["Queue"]] for d in by_queue.values())
    assert units(overall) == {"PendingJobs": "Count", "RunningJobs": "Count", "OldestPendingAge": "Seconds"}

    # The drain: each queue's outcomes, by queue and overall, matching what the database holds.
    totals = per_queue(drains)
    states = dict(raw.run("SELECT queue || ':' || state, count(*) FROM jobs GROUP BY 1"))
    assert states == {"mail:succeeded": 3, "mail:failed": 1, "reports:succeeded": 2, "reports:pending": 1}
    expected = {"mail": (4, 3, 1, 0), "reports": (3, 2, 0, 1)}
    for name, (processed, succeeded, failed, retried) in expected.items():
        entry = totals[name]
        assert (entry["JobsProcessed"], entry["JobsSucceeded"], entry["JobsFailed"], entry["JobsRetried"]) == (
            processed,
            succeeded,
            failed,
            retried,
        )
        assert len(entry["JobDurationValues"]) == len(entry["JobStartLatencyValues"]) == processed
    assert max(totals["reports"]["JobDurationValues"]) >= 200  # the 0.2 s sleep, in milliseconds
    assert max(totals["mail"]["JobStartLatencyValues"]) >= 60_000  # due a minute before it started
    for document in drains:
        assert dimensions(document) == [["Queue"], []]  # by queue, and the same points without it
        assert units(document) == {
            "JobsProcessed": "Count",
            "JobsSucceeded": "Count",
            "JobsFailed": "Count",
            "JobsRetried": "Count",
            "JobDuration": "Milliseconds",
            "JobStartLatency": "Milliseconds",
        }


def test_many_jobs_share_lines_of_at_most_100_samples(database: Any, capsys: Any) -> None:
    jobs.enqueue_many(database, [JobSpec("noop", queue="bulk") for _ in range(250)])
    jobs.enqueue(database, JobSpec("noop", queue="single"))

    result, documents = invoke({"action": "process"}, capsys)

    assert result["drain"]["processed"] == 251
    bulk = [d for d in documents if d.get("Queue") == "bulk"]
    assert [len(d["JobDuration"]) for d in bulk] == [100, 100, 50]
    assert [len(d["JobStartLatency"]) for d in bulk] == [100, 100, 50]
    # The counts are written once, on the queue's first line.
    assert [d.get("JobsProcessed") for d in bulk] == [250, None, None]
    assert "JobsProcessed" not in metric_names(bulk[1]) and "JobsProcessed" not in metric_names(bulk[2])
    assert len(documents) == 4  # 3 for the bulk queue, 1 for the other; no gauges outside a tick


def test_an_idle_drain_writes_nothing_and_a_tick_only_its_overall_gauges(capsys: Any) -> None:
    result, documents = invoke({"action": "process"}, capsys)
    assert result["drain"]["processed"] == 0 and documents == []

    response, documents = invoke(http_event("POST", "/process"), capsys)
    assert response["statusCode"] == 200 and documents == []

    result, documents = invoke(scheduled_event(), capsys)
    assert result["drain"]["processed"] == 0
    (only,) = documents  # zeros, so "nothing is waiting" differs from "no tick ran"
    assert "Queue" not in only
    assert (only["PendingJobs"], only["RunningJobs"], only["OldestPendingAge"]) == (0, 0, 0)


def test_http_drains_write_outcomes_but_no_gauges_and_keep_their_body(database: Any, capsys: Any) -> None:
    for _ in range(2):
        jobs.enqueue(database, JobSpec("echo", queue="web"))

    response, documents = invoke(http_event("POST", "/process", {"queues": ["web"]}), capsys)

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert set(body) == {"status", "drain"} and body["drain"]["processed"] == 2
    assert "queues" not in body["drain"]
    assert gauge_documents(documents) == []
    assert per_queue(documents)["web"]["JobsProcessed"] == 2


def test_ticks_count_jobs_other_drains_are_running(database: Any, capsys: Any) -> None:
    for _ in range(3):
        jobs.enqueue(database, JobSpec("echo", queue="busy"))
    # Another drain holds two of them.
    held = claims.claim(database, worker="elsewhere", limit=2, grace=60, fits=60, queues=["busy"]).rows
    assert len(held) == 2

    _, documents = invoke(scheduled_event({"queues": ["nothing-here"]}), capsys)

    (busy,) = [d for d in documents if d.get("Queue") == "busy"]
    assert (busy["PendingJobs"], busy["RunningJobs"]) == (1, 2)
    (overall,) = [d for d in documents if "Queue" not in d]
    assert (overall["PendingJobs"], overall["RunningJobs"]) == (1, 2)


def test_rescued_jobs_are_counted_once_per_drain_without_a_queue(database: Any, raw: Any, capsys: Any) -> None:
    jobs.enqueue(database, JobSpec("echo", queue="lost"))
    claims.claim(database, worker="crashed", limit=1, grace=0, fits=60)
    raw.run("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")

    result, documents = invoke({"action": "process"}, capsys)

    assert (result["drain"]["rescued"], result["drain"]["processed"]) == (1, 1)  # put back, then run again
    (rescued,) = [d for d in documents if "JobsRescued" in d]
    assert rescued["JobsRescued"] == 1 and "Queue" not in rescued
    assert dimensions(rescued) == [[]] and units(rescued) == {"JobsRescued": "Count"}
    assert per_queue(documents)["lost"]["JobsProcessed"] == 1


# --- metrics never get in the way ---------------------------------------------------------


def test_a_broken_stdout_fails_no_drain(database: Any, raw: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(2):
        jobs.enqueue(database, JobSpec("echo", queue="mail"))
    read_end, write_end = os.pipe()
    os.close(read_end)  # whatever is written now fails with EPIPE
    broken = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", broken)
    try:
        result = app.lambda_handler(scheduled_event(), context())
    finally:
        monkeypatch.undo()
        try:
            broken.close()
        except OSError:
            pass
    assert result["status"] == "ok" and result["drain"]["succeeded"] == 2
    assert raw.run("SELECT count(*) FROM jobs WHERE state = 'succeeded'")[0][0] == 2
    errors = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    failures = [(e["event"], e["what"]) for e in errors if e["event"] == "metrics_failed"]
    assert failures == [("metrics_failed", "tick"), ("metrics_failed", "drain")]
    assert all("BrokenPipeError" in e["error"] for e in errors if e["event"] == "metrics_failed")


def test_nothing_is_written_outside_lambda(database: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's stdout is its JSON answer; the local stack's is a terminal."""
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    jobs.enqueue(database, JobSpec("echo"))
    result, documents = invoke(scheduled_event(), capsys)
    assert result["drain"]["processed"] == 1 and documents == []


# --- the template's alarms watch what the function writes -----------------------------------


def _template() -> dict[str, Any]:
    from cfnlint.decode import decode

    decoded, problems = decode(str(ROOT / "template.yaml"))
    assert not problems, [str(problem) for problem in problems]
    return json.loads(json.dumps(decoded))


def test_the_alarms_watch_the_metrics_ticks_and_drains_write_without_a_queue() -> None:
    template = _template()
    resources, parameters = template["Resources"], template["Parameters"]
    function = resources["Function"]["Properties"]
    assert function["Environment"]["Variables"]["JOBQUEUE_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert parameters["MetricsNamespace"]["Default"] == Settings().metrics_namespace

    age = resources["OldestPendingAgeAlarm"]["Properties"]
    failed = resources["FailedJobsAlarm"]["Properties"]
    assert (age["MetricName"], age["Statistic"]) == (metrics.OLDEST_PENDING_AGE, "Maximum")
    assert (failed["MetricName"], failed["Statistic"]) == ("JobsFailed", "Sum")
    assert ("JobsFailed", "failed") in metrics.DRAIN_COUNTS
    for alarm in (age, failed):
        assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
        assert "Dimensions" not in alarm  # the queue-less series: every queue at once
        assert alarm["Period"] == {"Ref": "AlarmPeriodSeconds"}
        for actions in ("AlarmActions", "OKActions"):
            assert alarm[actions] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert age["Threshold"] == {"Ref": "OldestPendingAgeAlarmSeconds"}
    assert failed["Threshold"] == {"Ref": "FailedJobsAlarmThreshold"}
    # Ticks write the overall gauge every time, so silence means no tick ran.
    assert age["TreatMissingData"] == "breaching" and failed["TreatMissingData"] == "notBreaching"
    assert template["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    assert parameters["AlarmTopicArn"]["Default"] == ""


@pytest.mark.parametrize("namespace", ["jobqueue", "Prod/jobs", "team#1:jobs.v2-x_y", "AWS/Lambda", "a b", ""])
def test_the_namespace_parameter_takes_what_the_function_takes(namespace: str) -> None:
    import re

    pattern = _template()["Parameters"]["MetricsNamespace"]["AllowedPattern"]
    try:
        accepted = Settings.from_env({"JOBQUEUE_METRICS_NAMESPACE": namespace}).metrics_namespace == namespace
    except ConfigError:
        accepted = False
    assert bool(re.fullmatch(pattern, namespace)) == accepted
