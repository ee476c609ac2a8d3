"""Timers: a job that starts later wakes a drain on time through one SQS
message with DelaySeconds, armed once for the earliest start (moto stands in
for SQS; the messages are delivered to the handler as SQS events)."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import app
from jobqueue.actions import jobs as job_actions
from jobqueue.engine import invocation, timers
from jobqueue.store import jobs
from tests.support.aws import fake_account, make_context, sample

REGION = "us-east-1"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch, settings_env: Any) -> Iterator[tuple[Any, str]]:
    """A mocked timer queue, and the handler configured to use it."""
    fake_account(monkeypatch, REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    timers.reset()
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        url = client.create_queue(QueueName="jobqueue-timers")["QueueUrl"]
        container = settings_env(JOBQUEUE_TIMER_QUEUE_URL=url, JOBQUEUE_FANOUT="off")
        invocation.begin(None, container.settings)  # as the handler does before any action
        yield client, url
        invocation.reset()
    timers.reset()


def sent(client: Any, url: str, wait: float = 0) -> list[dict[str, Any]]:
    """Messages visible now (or within ``wait`` seconds)."""
    got = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=int(wait)
    )
    return got.get("Messages", [])


def as_event(message: dict[str, Any]) -> dict[str, Any]:
    """A received message as the SQS event Lambda delivers (the sample's shape)."""
    event = sample("sqs.json")
    record = dict(event["Records"][0])
    record.update(
        messageId=message["MessageId"],
        receiptHandle=message["ReceiptHandle"],
        body=message["Body"],
        md5OfBody=hashlib.md5(message["Body"].encode()).hexdigest(),
        messageAttributes={
            name: {"stringValue": value["StringValue"], "stringListValues": [], "binaryListValues": [],
                   "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()
        },
    )  # fmt: skip
    return {"Records": [record]}


def test_a_job_due_now_never_touches_the_timer(database, raw, sqs):
    client, url = sqs
    job_actions.submit(database, {"task": "echo"})
    job_actions.submit_batch(database, {"jobs": [{"task": "echo"}] * 20})
    assert sent(client, url) == []
    assert raw.run("SELECT armed_at FROM jobqueue_timer") == [[None]]


def test_a_delayed_job_arms_one_message_for_its_start(database, raw, sqs):
    client, url = sqs
    body, _ = job_actions.submit(database, {"task": "echo", "delay_seconds": 1.2})
    armed = raw.run("SELECT extract(epoch FROM armed_at - CAST(:run_at AS timestamptz)) FROM jobqueue_timer",
                    run_at=body["job"]["run_at"])[0][0]  # fmt: skip
    assert 0 <= float(armed) < 1  # the start, rounded up to a whole second
    job_actions.submit(database, {"task": "echo", "delay_seconds": 30})  # later: the armed wake comes first
    assert sent(client, url) == []  # not visible before its delay
    messages = sent(client, url, wait=4)
    assert len(messages) == 1 and messages[0]["MessageAttributes"]["jobqueue"]["StringValue"] == "timer"
    result = app.lambda_handler(as_event(messages[0]), make_context())
    assert result == {"batchItemFailures": []}
    assert jobs.get(database, body["job"]["id"])["state"] == "succeeded"
    # The drain armed the next start, 30 s out.
    assert raw.run("SELECT armed_at > now() + interval '25 seconds' FROM jobqueue_timer") == [[True]]


def test_a_burst_of_delayed_jobs_arms_at_most_one_message_per_second_of_spread(database, raw, sqs):
    """2,000 jobs with delays spread over 4 s, submitted in random order, in
    batches: the messages, delivered as they come due and each draining what
    is due, run every job, and number at most one per second of spread plus
    the few that earlier and earlier submits armed."""
    client, url = sqs
    delays = [random.uniform(0.5, 4.5) for _ in range(2000)]
    for start in range(0, len(delays), 500):
        job_actions.submit_batch(database, {"jobs": [{"task": "noop", "delay_seconds": d}
                                                     for d in delays[start:start + 500]]})  # fmt: skip
    messages = 0
    deadline = time.monotonic() + 30
    while raw.run("SELECT count(*) FROM jobs WHERE state <> 'succeeded'")[0][0] and time.monotonic() < deadline:
        for message in sent(client, url, wait=1):
            messages += 1
            app.lambda_handler(as_event(message), make_context())
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert raw.run("SELECT count(*) FROM jobs WHERE state = 'succeeded'")[0][0] == 2000
    assert messages <= 5 + 4, messages  # one per second of spread, and the arms of a falling earliest start


def test_a_timer_that_comes_early_or_twice_finds_nothing_and_arms_nothing_new(database, raw, sqs):
    client, url = sqs
    job_actions.submit(database, {"task": "echo", "delay_seconds": 60})
    assert len(sent(client, url)) == 0
    armed = raw.run("SELECT armed_at FROM jobqueue_timer")
    early = {"MessageId": "m-early", "ReceiptHandle": "r", "Body": json.dumps({"jobqueue": "timer"}),
             "MessageAttributes": {"jobqueue": {"StringValue": "timer", "DataType": "String"}}}  # fmt: skip
    for _ in range(2):
        result = app.lambda_handler(as_event(early), make_context())
        assert result == {"batchItemFailures": []}
    assert raw.run("SELECT armed_at FROM jobqueue_timer") == armed
    assert raw.run("SELECT state FROM jobs") == [["pending"]]
    assert len(sent(client, url, wait=0)) == 0


def test_a_retry_wakes_on_time_after_the_drain_that_failed_it_has_ended(database, raw, sqs, tmp_path):
    client, url = sqs
    counter = tmp_path / "runs"
    job_actions.submit(database, {"task": "tests.flaky", "payload": {"counter": str(counter), "fail_times": 1}})
    from jobqueue.actions import drains

    report = drains.process(database, {}, budget_seconds=None)["drain"]
    assert report["retried"] == 1 and report["stopped"] == "idle"
    messages = sent(client, url, wait=5)  # the backoff is about 2 s
    assert len(messages) == 1
    app.lambda_handler(as_event(messages[0]), make_context())
    assert raw.run("SELECT state, attempts FROM jobs") == [["succeeded", 2]]


def test_timers_are_off_without_a_queue(database, raw, settings_env):
    invocation.begin(None, settings_env().settings)  # no JOBQUEUE_TIMER_QUEUE_URL
    job_actions.submit(database, {"task": "echo", "delay_seconds": 5})
    assert raw.run("SELECT armed_at FROM jobqueue_timer") == [[None]]


def test_a_rate_window_that_reopens_later_arms_a_wake_for_it(database, raw, sqs):
    client, url = sqs
    from jobqueue.actions import drains, queues

    queues.configure_queue(database, "slow", {"rate": {"limit": 2, "per_seconds": 3}})
    job_actions.submit_batch(
        database, {"jobs": [{"task": "noop", "queue": "slow", "timeout_seconds": 1} for _ in range(4)]}
    )
    assert raw.run("SELECT armed_at FROM jobqueue_timer") == [[None]]  # due now: the submit armed nothing
    report = drains.process(database, {}, budget_seconds=4)["drain"]  # 2 s after the safety margin
    assert report["succeeded"] == 2 and report["stopped"] == "limited", report
    armed = raw.run("SELECT extract(epoch FROM armed_at - now()) FROM jobqueue_timer")[0][0]
    assert armed is not None and 0 < float(armed) <= 4
    messages = sent(client, url, wait=5)
    assert len(messages) == 1
    app.lambda_handler(as_event(messages[0]), make_context())
    assert raw.run("SELECT count(*) FROM jobs WHERE state = 'succeeded'")[0][0] == 4
