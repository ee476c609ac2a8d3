"""Workflows: jobs that wait for other jobs (depends_on, a batch's after),
and a batch's then job, released by the database as parents end, whichever
drain ends them; failures cancel the jobs downstream, transitively."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobqueue.actions import workflows
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.errors import ValidationError
from jobqueue.store import jobs
from tests.support.drains import start_drain
from tests.support.waiting import wait_until

FAST = Settings(concurrency=4, drain_safety_ms=0)


def node(path: Path, name: str, **extra: Any) -> dict[str, Any]:
    return {"task": "tests.flow_node", "payload": {"path": str(path), "name": name, **extra.pop("payload", {})},
            **extra}  # fmt: skip


def runs(path: Path) -> dict[str, tuple[float, float, dict[str, Any]]]:
    found = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        name, start, end, parents = line.split(" ", 3)
        assert name not in found, f"{name} ran twice"
        found[name] = (float(start), float(end), json.loads(parents))
    return found


def count(raw: Any, state: str) -> int:
    return raw.run("SELECT count(*) FROM jobs WHERE state = :state", state=state)[0][0]


def test_a_diamond_run_by_several_drains_keeps_its_order_and_reads_its_parents(database, raw, server_env, tmp_path):
    log = tmp_path / "runs.log"
    body = workflows.submit_batch(database, {"jobs": [
        node(log, "a", key="a", payload={"seconds": 0.2}),
        node(log, "b", key="b", after=["a"], payload={"seconds": 0.3}),
        node(log, "c", key="c", after=["a"], payload={"seconds": 0.1}),
        node(log, "d", key="d", after=["b", "c"]),
    ]})  # fmt: skip
    assert [job["state"] for job in body["jobs"]] == ["pending", "blocked", "blocked", "blocked"]
    drains = [start_drain(server_env, concurrency=4) for _ in range(3)]
    wait_until(lambda: count(raw, "succeeded") == 4, timeout=60, what="the diamond to finish")
    for process in drains:
        process.kill()
        process.wait()
    ran = runs(log)
    assert ran["b"][0] >= ran["a"][1] and ran["c"][0] >= ran["a"][1]
    assert ran["d"][0] >= max(ran["b"][1], ran["c"][1])
    assert ran["d"][2] == {"b": "b", "c": "c"}  # d reads both results, by key
    assert ran["b"][2] == {"a": "a"}
    d = jobs.get(database, body["jobs"][3]["id"])
    assert sorted(d["depends_on"]) == sorted([body["jobs"][1]["id"], body["jobs"][2]["id"]])
    a = jobs.get(database, body["jobs"][0]["id"])
    assert sorted(a["children"]) == sorted([body["jobs"][1]["id"], body["jobs"][2]["id"]]) and a["children_count"] == 2


@pytest.mark.parametrize(
    ("batch", "says"),
    [
        ({"jobs": [{"task": "echo", "key": "a", "after": ["b"]}, {"task": "echo", "key": "b", "after": ["a"]}]},
         "circle"),
        ({"jobs": [{"task": "echo", "key": "a", "after": ["zz"]}]}, "zz"),
        ({"jobs": [{"task": "echo", "key": "a"}, {"task": "echo", "key": "a"}]}, "repeated: a"),
        ({"jobs": [{"task": "echo", "key": str(i)} for i in range(1001)]}, "at most 1000"),
        ({"jobs": [{"task": "echo", "key": "a"}, {"task": "nope", "after": ["a"]}]}, "nope"),
        ({"jobs": [{"task": "echo", "depends_on": ["01a23bf6-0000-7000-8000-000000000000"]}]}, "do not exist"),
    ],
)  # fmt: skip
def test_a_refused_batch_leaves_nothing_behind(database, raw, batch, says):
    with pytest.raises(ValidationError) as refused:
        workflows.submit_batch(database, batch)
    assert says in refused.value.message
    assert raw.run("SELECT count(*) FROM jobs")[0][0] == 0, raw.run("SELECT task, state, payload FROM jobs")
    assert raw.run("SELECT count(*) FROM job_edges")[0][0] == 0


def test_a_failure_cancels_downstream_transitively_unless_a_child_runs_anyway(database, tmp_path):
    log = tmp_path / "runs.log"
    body = workflows.submit_batch(database, {"jobs": [
        node(log, "root", key="root", payload={"fail": True}),
        node(log, "child", key="child", after=["root"]),
        node(log, "grandchild", key="grandchild", after=["child"]),
        node(log, "cleanup", key="cleanup", after=["root"], on_parent_failure="run"),
    ]})  # fmt: skip
    ids = [job["id"] for job in body["jobs"]]
    for _ in range(3):
        drain.run(database, settings=FAST)
    states = [jobs.get(database, job_id)["state"] for job_id in ids]
    assert states == ["failed", "cancelled", "cancelled", "succeeded"]
    child, grandchild = jobs.get(database, ids[1]), jobs.get(database, ids[2])
    assert child["error"]["type"] == "ParentFailed" and ids[0] in child["error"]["message"]
    assert grandchild["error"]["type"] == "ParentFailed" and ids[1] in grandchild["error"]["message"]
    cleanup = runs(log)["cleanup"]
    assert cleanup[2]["root"]["state"] == "failed" and cleanup[2]["root"]["error"]["type"] == "Permanent"


def test_retrying_a_failed_parent_blocks_the_children_it_cancelled_again(database, raw, tmp_path):
    log = tmp_path / "runs.log"
    body = workflows.submit_batch(database, {"jobs": [
        node(log, "root", key="root", payload={"fail": True}),
        node(log, "child", key="child", after=["root"]),
        node(log, "grandchild", key="grandchild", after=["child"]),
    ]})  # fmt: skip
    ids = [job["id"] for job in body["jobs"]]
    drain.run(database, settings=FAST)
    assert [jobs.get(database, i)["state"] for i in ids] == ["failed", "cancelled", "cancelled"]
    raw.run("UPDATE jobs SET payload = payload - 'fail' WHERE id = CAST(:id AS uuid)", id=ids[0])  # fixed
    jobs.retry(database, ids[0])
    assert [jobs.get(database, i)["state"] for i in ids] == ["pending", "blocked", "blocked"]
    for _ in range(4):
        drain.run(database, settings=FAST)
    assert [jobs.get(database, i)["state"] for i in ids] == ["succeeded"] * 3
    assert list(runs(log)) == ["root", "child", "grandchild"]


def test_cancelling_a_parent_cancels_its_children(database, tmp_path):
    log = tmp_path / "runs.log"
    body = workflows.submit_batch(database, {"jobs": [
        node(log, "p", key="p", delay_seconds=3600), node(log, "c", after=["p"]),
    ]})  # fmt: skip
    jobs.cancel(database, body["jobs"][0]["id"])
    child = jobs.get(database, body["jobs"][1]["id"])
    assert child["state"] == "cancelled" and child["error"]["type"] == "ParentFailed"


def test_a_then_job_runs_exactly_once_with_drains_racing_to_finish_the_batch(database, raw, server_env, tmp_path):
    log = tmp_path / "runs.log"
    members = [node(log, f"m{i}", key=f"m{i}", payload={"seconds": 0.01, "fail": i == 3}) for i in range(40)]
    body = workflows.submit_batch(database, {"jobs": members, "then": node(log, "then")})
    assert body["then"]["state"] == "blocked"
    drains = [start_drain(server_env, concurrency=4) for _ in range(4)]
    then_id = body["then"]["id"]
    wait_until(lambda: jobs.get(database, then_id)["state"] == "succeeded", timeout=60, what="the then job")
    for process in drains:
        process.kill()
        process.wait()
    ran = runs(log)
    assert "then" in ran  # runs() fails on a second run
    parents = ran["then"][2]
    assert len(parents) == 40 and parents["m0"] == "m0" and parents["m3"]["state"] == "failed"
    assert ran["then"][0] >= max(end for name, (_, end, _) in ran.items() if name != "then")


def test_depends_on_an_existing_job_and_on_one_that_already_ended(database):
    done, _ = jobs.enqueue(database, __import__("jobqueue").JobSpec("echo", {"x": 1}))
    drain.run(database, settings=FAST)
    waiting, _ = jobs.enqueue(database, __import__("jobqueue").JobSpec("echo", delay_seconds=3600))
    body, created = workflows.submit(database, {"task": "echo", "depends_on": [done["id"], waiting["id"]]})
    assert created and body["job"]["state"] == "blocked"
    assert sorted(body["job"]["depends_on"]) == sorted([done["id"], waiting["id"]])
    listed = jobs.list_jobs(database, state="blocked").jobs
    assert [job["id"] for job in listed] == [body["job"]["id"]]
    only_done, _ = workflows.submit(database, {"task": "echo", "depends_on": [done["id"]]})
    assert only_done["job"]["state"] == "pending"  # its one parent had succeeded already


def test_fan_in_and_fan_out_leave_nothing_blocked(database, raw):
    """One parent into 2,000 children, and 2,000 parents into one child (the
    bench runs 10,000): every child is released, none is left blocked."""
    from jobqueue import JobSpec

    parent, _ = jobs.enqueue(database, JobSpec("noop"))
    workflows.submit_batch(database, {"jobs": [{"task": "noop", "depends_on": [parent["id"]]} for _ in range(1000)]})
    workflows.submit_batch(database, {"jobs": [{"task": "noop", "depends_on": [parent["id"]]} for _ in range(1000)]})
    many = jobs.enqueue_many(database, [JobSpec("noop") for _ in range(1000)])
    more = jobs.enqueue_many(database, [JobSpec("noop") for _ in range(1000)])
    fan_in, _ = workflows.submit(database, {"task": "noop", "depends_on": [job["id"] for job in many + more]})
    assert count(raw, "blocked") == 2001
    for _ in range(20):
        if drain.run(database, settings=Settings(concurrency=8, drain_safety_ms=0)).processed == 0:
            break
    assert count(raw, "blocked") == 0 and count(raw, "succeeded") == 4002
    assert jobs.get(database, fan_in["job"]["id"])["state"] == "succeeded"


def test_a_batch_job_whose_key_was_seen_before_is_that_job_and_its_children_wait_for_it(database):
    first, _ = workflows.submit(database, {"task": "echo", "idempotency_key": "k1", "depends_on": [
        jobs.enqueue(database, __import__("jobqueue").JobSpec("echo", delay_seconds=3600))[0]["id"]]})  # fmt: skip
    body = workflows.submit_batch(database, {
        "jobs": [{"task": "echo", "key": "a", "idempotency_key": "k1"}, {"task": "echo", "after": ["a"]}],
        "then": {"task": "echo"},
    })  # fmt: skip
    assert body["jobs"][0]["id"] == first["job"]["id"]
    assert body["jobs"][1]["depends_on"] == [first["job"]["id"]] and body["jobs"][1]["state"] == "blocked"
    assert first["job"]["id"] in body["then"]["depends_on"]
