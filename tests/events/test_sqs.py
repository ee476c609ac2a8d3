"""SQS ingest: each message a POST /jobs body, enqueued at most once however
often SQS delivers it, and exactly the messages that cannot be enqueued
reported back in batchItemFailures."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from typing import Any

import pytest

import app
from jobqueue.store import connection, jobs
from tests.support.aws import make_context, sample

pytestmark = pytest.mark.usefixtures("database", "settings_env")


_TEMPLATE = sample("sqs.json")["Records"][0]


def record(body: Any, message_id: str | None = None) -> dict[str, Any]:
    entry = copy.deepcopy(_TEMPLATE)
    entry["messageId"] = message_id or str(uuid.uuid4())
    entry["body"] = body if isinstance(body, str) else json.dumps(body)
    return entry


def deliver(*records: dict[str, Any]) -> list[str]:
    result = app.lambda_handler({"Records": list(records)}, make_context())
    assert set(result) == {"batchItemFailures"}
    return [item["itemIdentifier"] for item in result["batchItemFailures"]]


def stored(raw: Any) -> list[list[Any]]:
    return raw.run("SELECT task, payload, idempotency_key FROM jobs ORDER BY payload->>'n'")


GOOD = [
    {"task": "echo", "payload": {"n": "1"}},
    {"task": "echo", "payload": {"n": "2"}, "queue": "emails", "priority": 3},
    {"task": "noop", "payload": {"n": "3"}, "delay_seconds": 60},
]
BAD = [
    "Test message.",  # not JSON
    "{'task': 'echo'}",  # not JSON either
    "",  # empty
    "[1, 2]",  # JSON, not an object
    {"task": "no.such.task", "payload": {"n": "x"}},
    {"task": "echo", "payload": "not an object"},
    {"task": "echo", "priority": "high"},
    {"task": "echo", "colour": "red"},
    {"payload": {"n": "y"}},
    {"task": "echo", "payload": {"bad": "\u0000"}},
    '{"task": "echo", "payload": {"x": NaN}}',
]


def test_mixed_batch_enqueues_the_good_once_even_when_delivered_twice(raw: Any) -> None:
    good = [record(body) for body in GOOD]
    bad = [record(body) for body in BAD]
    batch = [item for pair in zip(good, bad, strict=False) for item in pair] + bad[len(good) :]
    expected = [entry["messageId"] for entry in bad]

    assert sorted(deliver(*batch)) == sorted(expected)
    first = stored(raw)
    assert [row[1]["n"] for row in first] == ["1", "2", "3"]
    assert {row[2] for row in first} == {f"sqs:{entry['messageId']}" for entry in good}

    # SQS delivers at least once: the same batch again adds nothing.
    assert sorted(deliver(*batch)) == sorted(expected)
    # And a partial redelivery (only the good ones, in another order) neither.
    assert deliver(*reversed(good)) == []
    assert stored(raw) == first


def test_a_body_idempotency_key_wins_over_the_message_id(raw: Any) -> None:
    """Two messages the producer marked as one job make one job; without a key,
    two messages with equal bodies are two jobs."""
    body = {"task": "echo", "payload": {"n": "k"}, "idempotency_key": "order-42"}
    assert deliver(record(body), record(body)) == []
    assert deliver(record(body)) == []
    assert stored(raw) == [["echo", {"n": "k"}, "order-42"]]
    plain = {"task": "echo", "payload": {"n": "p"}}
    assert deliver(record(plain), record(plain)) == []
    assert len(stored(raw)) == 3


def test_the_same_message_twice_in_one_batch_is_one_job(raw: Any) -> None:
    entry = record({"task": "echo", "payload": {"n": "dup"}})
    assert deliver(entry, copy.deepcopy(entry)) == []
    assert len(stored(raw)) == 1


def test_database_down_reports_every_message_so_none_is_lost(db_settings: Any, raw: Any) -> None:
    connection.set_default(
        connection.Database(dataclasses.replace(db_settings, host="127.0.0.1", port=1, connect_timeout=1))
    )
    good = [record(body) for body in GOOD]
    bad = record("nope")
    assert sorted(deliver(*good, bad)) == sorted([entry["messageId"] for entry in good] + [bad["messageId"]])
    assert stored(raw) == []


def test_a_batch_statement_failure_falls_back_to_one_by_one(monkeypatch: pytest.MonkeyPatch, raw: Any) -> None:
    def broken(db: Any, specs: Any) -> None:
        raise RuntimeError("statement failed")

    monkeypatch.setattr(jobs, "enqueue_many", broken)
    good = [record(body) for body in GOOD]
    bad = record({"task": "nope"})
    assert deliver(*good, bad) == [bad["messageId"]]
    assert len(stored(raw)) == 3


def test_large_batches_go_in_chunks(raw: Any) -> None:
    records = [record({"task": "noop", "payload": {"n": str(i)}}) for i in range(1500)]
    assert deliver(*records) == []
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 1500


def test_a_record_without_a_message_id_fails_the_batch_safely(raw: Any) -> None:
    entry = record({"task": "echo", "payload": {"n": "1"}})
    del entry["messageId"]
    # An empty identifier makes SQS retry the whole batch: nothing is dropped.
    assert deliver(entry, record({"task": "echo", "payload": {"n": "2"}})) == [""]
    assert len(stored(raw)) == 1


def test_with_real_sqs_messages(raw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages as SQS hands them out (moto), turned into the Lambda event."""
    moto = pytest.importorskip("moto")
    import boto3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        for body in [json.dumps(GOOD[0]), "garbage", json.dumps(GOOD[1])]:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    event = {"Records": [record(m["Body"], m["MessageId"]) for m in messages]}
    failed = app.lambda_handler(event, make_context())["batchItemFailures"]
    assert [item["itemIdentifier"] for item in failed] == [m["MessageId"] for m in messages if m["Body"] == "garbage"]
    assert [row[1]["n"] for row in stored(raw)] == ["1", "2"]


# --- signals to durable jobs, as SQS messages --------------------------------------------------


def _drain(database: Any) -> Any:
    from jobqueue.config import Settings
    from jobqueue.engine import drain

    return drain.run(database, settings=Settings(drain_safety_ms=0), budget_seconds=None)


def _waiting(database: Any, name: str) -> str:
    """A tests.durable_wait job, run until it waits for the signal ``name``."""
    from jobqueue import JobSpec

    job, _ = jobs.enqueue(database, JobSpec("tests.durable_wait", {"name": name}))
    assert _drain(database).suspended == 1
    return job["id"]


def _signal(job_id: str, name: str, value: Any = None) -> dict[str, Any]:
    return {"action": "signal", "job_id": job_id, "name": name, "value": value}


def test_a_signal_message_resumes_a_waiting_job_and_one_for_no_job_is_reported(database: Any) -> None:
    """The SQS sample with its bodies replaced: a signal for a waiting job, and one
    for no job, which comes back in batchItemFailures (the dead-letter queue keeps it)."""
    job_id = _waiting(database, "shipped")
    event = sample("sqs.json")
    delivered, unknown = event["Records"]
    delivered["body"] = json.dumps(_signal(job_id, "shipped", {"tracking": "1Z"}))
    unknown["body"] = json.dumps(_signal("01890000-0000-7000-8000-000000000000", "shipped", 1))
    result = app.lambda_handler(event, make_context())
    assert result == {"batchItemFailures": [{"itemIdentifier": unknown["messageId"]}]}
    assert jobs.get(database, job_id)["state"] == "pending"  # due at once
    _drain(database)
    done = jobs.get(database, job_id)
    assert (done["state"], done["result"]) == ("succeeded", {"got": {"tracking": "1Z"}})


def test_signal_messages_mix_with_submissions_and_bad_ones_fail_alone(database: Any, raw: Any) -> None:
    from jobqueue import JobSpec

    job_id = _waiting(database, "go")
    finished, _ = jobs.enqueue(database, JobSpec("echo"))
    raw.run("UPDATE jobs SET state = 'succeeded', finished_at = now() WHERE id = CAST(:id AS uuid)", id=finished["id"])
    good = [record(GOOD[0]), record(_signal(job_id, "go", [1, 2]))]
    bad = [
        record(_signal(finished["id"], "go")),  # a finished job takes no signal
        record({"action": "signal", "job_id": job_id}),  # no name
        record({**_signal(job_id, "go"), "colour": "red"}),  # an unknown field
        record(_signal(job_id, "x" * 201)),  # a name too long
        record(_signal("not-a-uuid", "go")),
    ]
    assert sorted(deliver(*good, *bad)) == sorted(entry["messageId"] for entry in bad)
    assert jobs.get(database, job_id)["state"] == "pending"
    assert [row[1] for row in stored(raw) if row[0] == "echo"] == [{"n": "1"}, {}]
    _drain(database)
    assert jobs.get(database, job_id)["result"] == {"got": [1, 2]}
