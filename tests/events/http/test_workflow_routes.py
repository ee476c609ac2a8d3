"""Workflows over HTTP and the other ways in: POST /jobs with depends_on, a
batch with key, after and then, what GET /jobs/{id} and GET /jobs?state=blocked
show of them, and the same submits by direct invocation and SQS. A refused
submit writes nothing. Every answer is checked against the API document too."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import app
from jobqueue.config import Settings
from jobqueue.engine import drain
from tests.support.apigw import AUTH, assert_error, call, function_url, v1, v2
from tests.support.aws import make_context, sample
from tests.support.openapi import schema_validator

pytestmark = pytest.mark.usefixtures("database", "settings_env")

FAST = Settings(concurrency=4, drain_safety_ms=0)
UNKNOWN = "01890000-0000-7000-8000-000000000000"
WITH_LETTERS = "0189abcd-ef00-7000-8000-00000000000a"


def post(path: str, body: Any, make: Any = v2) -> tuple[int, Any]:
    status, _, answer = call(make("POST", path, body, AUTH))
    if status < 300:
        schema_validator("BatchBody" if path == "/jobs/batch" else "JobBody").validate(answer)
    else:
        schema_validator("Error").validate(answer)
    return status, answer


def submit(body: dict[str, Any], make: Any = v2) -> dict[str, Any]:
    status, answer = post("/jobs", body, make)
    assert status == 202, answer
    return answer["job"]


def batch(body: dict[str, Any]) -> dict[str, Any]:
    status, answer = post("/jobs/batch", body)
    assert status == 202, answer
    return answer


def get(job_id: str) -> dict[str, Any]:
    status, _, body = call(v2("GET", f"/jobs/{job_id}", headers=AUTH))
    assert status == 200, body
    schema_validator("JobBody").validate(body)
    return body["job"]


def listed(state: str) -> list[str]:
    status, _, body = call(v2("GET", "/jobs", headers=AUTH, query={"state": state, "limit": "200"}))
    assert status == 200, body
    schema_validator("JobList").validate(body)
    return [job["id"] for job in body["jobs"]]


def settle(database: Any) -> None:
    """Drain until nothing is due: parents end, their children become due, and run."""
    for _ in range(10):
        if drain.run(database, settings=FAST, budget_seconds=None).processed == 0:
            return
    raise AssertionError("the drains never ran out of due jobs")


def nothing_written(raw: Any) -> None:
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 0, raw.run("SELECT task, state FROM jobs")
    assert raw.run("SELECT count(*) FROM job_edges")[0][0] == 0


def later(**fields: Any) -> dict[str, Any]:
    """A job that stays pending for this test: due in an hour."""
    return {"task": "echo", "delay_seconds": 3600, **fields}


# --- depends_on on POST /jobs ----------------------------------------------------------------


@pytest.mark.parametrize("make", [v1, v2, function_url], ids=["v1", "v2", "url"])
def test_a_job_with_depends_on_is_blocked_until_its_parents_succeed(database: Any, make: Any) -> None:
    first = submit({"task": "echo", "payload": {"n": 1}})
    second = submit({"task": "echo", "payload": {"n": 2}})
    child = submit({"task": "echo", "payload": {"n": 3}, "depends_on": [first["id"], second["id"]]}, make)
    assert child["state"] == "blocked"
    assert child["depends_on"] == [first["id"], second["id"]]
    assert listed("blocked") == [child["id"]]
    assert listed("pending") == [second["id"], first["id"]]  # the blocked one is not pending
    settle(database)
    assert [get(job["id"])["state"] for job in (first, second, child)] == ["succeeded"] * 3
    assert get(child["id"])["result"] == {"n": 3}
    assert listed("blocked") == []


def test_a_child_of_parents_that_succeeded_already_is_pending_at_once(database: Any) -> None:
    parent = submit({"task": "echo"})
    settle(database)
    child = submit({"task": "echo", "depends_on": [parent["id"]]})
    assert child["state"] == "pending" and child["depends_on"] == [parent["id"]]


def test_a_child_of_a_failed_parent_is_cancelled_naming_it(database: Any) -> None:
    parent = submit({"task": "fail", "payload": {"permanent": True}})
    child = submit({"task": "echo", "depends_on": [parent["id"]]})
    grandchild = submit({"task": "echo", "depends_on": [child["id"]]})
    anyway = submit(
        {"task": "echo", "payload": {"ran": True}, "depends_on": [parent["id"]], "on_parent_failure": "run"}
    )
    settle(database)
    assert get(parent["id"])["state"] == "failed"
    for job, parent_id in ((child, parent["id"]), (grandchild, child["id"])):
        shown = get(job["id"])
        assert shown["state"] == "cancelled" and shown["attempts"] == 0
        assert (shown["error"]["type"], shown["error"]["parent"]) == ("ParentFailed", parent_id)
        assert parent_id in shown["error"]["message"]
    assert get(anyway["id"])["result"] == {"ran": True}
    # Submitted after the parent failed: cancelled at once.
    late = submit({"task": "echo", "depends_on": [parent["id"]]})
    assert late["state"] == "cancelled" and late["error"]["parent"] == parent["id"]


def test_retrying_a_failed_parent_blocks_its_cancelled_children_again(database: Any, raw: Any) -> None:
    parent = submit({"task": "fail", "payload": {"permanent": True}})
    child = submit({"task": "echo", "depends_on": [parent["id"]]})
    settle(database)
    assert get(child["id"])["state"] == "cancelled"
    raw.run("UPDATE jobs SET task = 'echo' WHERE id = CAST(:id AS uuid)", id=parent["id"])  # the bug is fixed
    status, _, body = call(v2("POST", f"/jobs/{parent['id']}/retry", headers=AUTH))
    assert status == 200 and body["job"]["state"] == "pending", body
    assert get(child["id"])["state"] == "blocked"
    settle(database)
    assert get(child["id"])["state"] == "succeeded"


def test_cancelling_a_blocked_job_is_immediate_and_its_children_follow(database: Any) -> None:
    parent = submit(later())
    child = submit({"task": "echo", "depends_on": [parent["id"]]})
    grandchild = submit({"task": "echo", "depends_on": [child["id"]]})
    status, _, body = call(v2("POST", f"/jobs/{child['id']}/cancel", headers=AUTH))
    assert status == 200 and body["job"]["state"] == "cancelled", body
    shown = get(grandchild["id"])
    assert shown["state"] == "cancelled" and shown["error"]["parent"] == child["id"]
    assert get(parent["id"])["state"] == "pending"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"depends_on": [UNKNOWN]}, "depends_on"),
        ({"depends_on": []}, "depends_on"),
        ({"depends_on": "01890000-0000-7000-8000-000000000000"}, "depends_on"),
        ({"depends_on": ["nope"]}, "depends_on[0]"),
        ({"depends_on": [WITH_LETTERS, WITH_LETTERS.upper()]}, "depends_on"),
        ({"on_parent_failure": "maybe"}, "on_parent_failure"),
        ({"depends_on": [UNKNOWN], "key": "a"}, "key"),
        ({"after": ["a"]}, "after"),
    ],
    ids=["unknown", "empty", "not a list", "not a uuid", "twice", "bad failure", "key", "after"],
)
def test_a_refused_depends_on_writes_nothing(raw: Any, fields: dict[str, Any], field: str) -> None:
    status, body = post("/jobs", {"task": "echo", **fields})
    assert status == 422
    assert_error(body, field=field)
    nothing_written(raw)


def test_ten_thousand_parents_at_most(raw: Any, settings_env: Any) -> None:
    """10,000 ids are 390 KB of JSON: over the default body limit, so it is raised here."""
    settings_env(JOBQUEUE_MAX_BODY_BYTES=str(1024 * 1024))
    ids = [str(uuid.uuid4()) for _ in range(10_001)]
    status, body = post("/jobs", {"task": "echo", "depends_on": ids})
    assert status == 422 and "at most 10,000" in body["message"]
    assert_error(body, field="depends_on")
    status, body = post("/jobs", {"task": "echo", "depends_on": ids[:10_000]})
    assert status == 422 and "do not exist" in body["message"]  # the count is taken: these are unknown
    nothing_written(raw)


def test_an_unknown_parent_among_known_ones_is_named_and_nothing_is_written(raw: Any) -> None:
    known = submit(later())
    status, body = post("/jobs", {"task": "echo", "depends_on": [known["id"], UNKNOWN]})
    assert status == 422
    assert_error(body, field="depends_on")
    assert UNKNOWN in body["message"] and known["id"] not in body["message"]
    assert raw.run("SELECT CAST(id AS text) FROM jobs") == [[known["id"]]]
    assert raw.run("SELECT count(*) FROM job_edges")[0][0] == 0
    assert get(known["id"]).get("children") is None  # a failed link leaves no trace on the parent


# --- batches with key, after and then --------------------------------------------------------


def test_a_batch_with_keys_after_and_then_runs_in_order_and_then_reads_every_result(
    database: Any, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"

    def node(name: str, **fields: Any) -> dict[str, Any]:
        return {"task": "tests.flow_node", "payload": {"path": str(log), "name": name}, **fields}

    body = batch(
        {
            "jobs": [
                node("resize-1", key="r1"),
                node("resize-2", key="r2"),
                node("resize-3", key="r3", after=["r1"]),
            ],
            "then": node("zip"),
        }
    )
    jobs, then = body["jobs"], body["then"]
    assert [job["state"] for job in jobs] == ["pending", "pending", "blocked"]
    assert then["state"] == "blocked"
    assert jobs[2]["depends_on"] == [jobs[0]["id"]]
    assert sorted(then["depends_on"]) == sorted(job["id"] for job in jobs)
    assert sorted(listed("blocked")) == sorted([jobs[2]["id"], then["id"]])
    settle(database)
    assert get(then["id"])["state"] == "succeeded"
    ran = {line.split(" ", 3)[0]: json.loads(line.split(" ", 3)[3]) for line in log.read_text().splitlines()}
    assert ran["resize-3"] == {"r1": "resize-1"}  # job.parents, by key
    assert ran["zip"] == {"r1": "resize-1", "r2": "resize-2", "r3": "resize-3"}


def test_then_runs_once_the_batch_has_ended_however_it_ended(database: Any, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    body = batch(
        {
            "jobs": [
                {"task": "fail", "key": "bad", "payload": {"permanent": True, "message": "no"}},
                {"task": "echo", "key": "after-bad", "after": ["bad"]},
                {"task": "echo", "payload": {"plain": 1}},
            ],
            "then": {"task": "tests.flow_node", "payload": {"path": str(log), "name": "then"}},
        }
    )
    settle(database)
    assert [get(job["id"])["state"] for job in body["jobs"]] == ["failed", "cancelled", "succeeded"]
    assert get(body["then"]["id"])["state"] == "succeeded"
    parents = json.loads(log.read_text().split(" ", 3)[3])
    assert parents["bad"]["state"] == "failed" and parents["bad"]["error"]["message"] == "no"
    assert parents["after-bad"]["state"] == "cancelled"
    assert parents["after-bad"]["error"]["type"] == "ParentFailed"
    assert parents[body["jobs"][2]["id"]] == {"plain": 1}  # a job without a key: by id


def test_a_batch_without_then_answers_no_then(database: Any) -> None:
    body = batch({"jobs": [{"task": "echo", "key": "a"}, {"task": "echo", "after": ["a"]}]})
    assert "then" not in body
    assert [job["state"] for job in body["jobs"]] == ["pending", "blocked"]
    plain = batch({"jobs": [{"task": "echo"}]})
    assert "then" not in plain and "depends_on" not in plain["jobs"][0]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (
            {"jobs": [{"task": "echo", "key": "a", "after": ["c"]}, {"task": "echo", "key": "b", "after": ["a"]},
                      {"task": "echo", "key": "c", "after": ["b"]}, {"task": "echo", "key": "d"}]},
            "jobs",
            "(a, b, c)",
        ),
        ({"jobs": [{"task": "echo", "key": "self", "after": ["self"]}]}, "jobs", "(self)"),
        ({"jobs": [{"task": "echo", "key": "a"}, {"task": "echo", "after": ["a", "ghost"]}]}, "jobs", "ghost"),
        ({"jobs": [{"task": "echo", "key": "twin"}, {"task": "echo", "key": "twin"}]}, "jobs", "repeated: twin"),
        ({"jobs": [{"task": "echo", "key": str(i)} for i in range(1001)]}, "jobs", "at most 1000"),
        ({"jobs": [{"task": "echo"}] * 1001, "then": {"task": "echo"}}, "jobs", "at most 1000"),
        ({"jobs": [], "then": {"task": "echo"}}, "jobs", "non-empty"),
        ({"jobs": [{"task": "echo", "key": "a"}, {"task": "nope", "after": ["a"]}]}, "jobs[1].task", "nope"),
        ({"jobs": [{"task": "echo", "depends_on": [UNKNOWN]}]}, "depends_on", UNKNOWN),
        ({"jobs": [{"task": "echo", "key": ""}]}, "jobs[0].key", "printable"),
        ({"jobs": [{"task": "echo", "key": "tab\there"}]}, "jobs[0].key", "printable"),
        ({"jobs": [{"task": "echo", "after": []}]}, "jobs[0].after", "non-empty"),
        ({"jobs": [{"task": "echo"}], "then": {"task": "echo", "key": "z"}}, "then.key", "key"),
        ({"jobs": [{"task": "echo"}], "then": {"task": "echo", "depends_on": [UNKNOWN]}}, "then.depends_on", ""),
        ({"jobs": [{"task": "echo"}], "then": [{"task": "echo"}]}, "then", "object"),
        ({"jobs": [{"task": "echo"}], "finally": {"task": "echo"}}, "finally", "finally"),
    ],
    ids=[
        "cycle", "self", "unknown key", "duplicate key", "1,001 jobs", "1,001 with then", "then without jobs",
        "bad task", "unknown parent", "empty key", "control character", "empty after", "key on then",
        "depends_on on then", "then not a job", "unknown field",
    ],
)  # fmt: skip
def test_a_refused_batch_writes_nothing(raw: Any, body: dict[str, Any], field: str, says: str) -> None:
    status, answer = post("/jobs/batch", body)
    assert status == 422, answer
    assert_error(answer, field=field)
    assert says in answer["message"]
    nothing_written(raw)


# --- what GET shows --------------------------------------------------------------------------


def test_get_shows_parents_and_children_and_a_plain_job_shows_neither(database: Any) -> None:
    body = batch({"jobs": [later(key="a"), later(key="b", after=["a"]), later(key="c", after=["b"])]})
    a, b, c = (job["id"] for job in body["jobs"])
    shown = get(b)
    assert (shown["depends_on"], shown["children"], shown["children_count"]) == ([a], [c], 1)
    assert (get(a)["depends_on"], get(a)["children"]) == ([], [b])
    assert (get(c)["depends_on"], get(c)["children"], get(c)["children_count"]) == ([b], [], 0)
    plain = get(submit(later())["id"])
    assert {"depends_on", "children", "children_count"}.isdisjoint(plain)


def test_a_thousand_children_are_shown_and_all_of_them_counted(database: Any) -> None:
    parent = submit(later())
    children = batch({"jobs": [{"task": "noop", "depends_on": [parent["id"]]} for _ in range(1000)]})["jobs"]
    last = submit({"task": "noop", "depends_on": [parent["id"]]})
    shown = get(parent["id"])
    assert len(shown["children"]) == 1000 and shown["children_count"] == 1001
    assert set(shown["children"]) <= {job["id"] for job in children} | {last["id"]}
    assert len(listed("blocked")) == 200  # the page's limit: all 1,001 are blocked


# --- direct invocation and SQS ---------------------------------------------------------------


def test_a_direct_submit_takes_depends_on(raw: Any) -> None:
    parent = submit(later())
    answer = app.lambda_handler(
        {"action": "submit", "task": "echo", "depends_on": [parent["id"]], "on_parent_failure": "run"}, make_context()
    )
    schema_validator("JobBody").validate(answer)
    assert answer["job"]["state"] == "blocked" and answer["job"]["depends_on"] == [parent["id"]]
    assert get(parent["id"])["children"] == [answer["job"]["id"]]
    refused = app.lambda_handler({"action": "submit", "task": "echo", "depends_on": [UNKNOWN]}, make_context())
    assert_error(refused, field="depends_on")
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 2


def test_an_sqs_message_with_depends_on_is_enqueued_blocked_and_a_bad_one_reported(raw: Any) -> None:
    parent = submit(later())
    event = copy.deepcopy(sample("sqs.json"))
    good, bad = event["Records"]
    good["body"] = json.dumps({"task": "echo", "payload": {"from": "sqs"}, "depends_on": [parent["id"]]})
    bad["body"] = json.dumps({"task": "echo", "depends_on": [UNKNOWN]})
    result = app.lambda_handler(event, make_context())
    assert result == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    rows = raw.run("SELECT CAST(id AS text), state, idempotency_key FROM jobs WHERE payload ->> 'from' = 'sqs'")
    assert [(state, key) for _, state, key in rows] == [("blocked", f"sqs:{good['messageId']}")]
    assert get(rows[0][0])["depends_on"] == [parent["id"]]
    again = app.lambda_handler(event, make_context())  # SQS delivers it again: still one job
    assert again == result
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 2
