"""The command line, run as people run it: ``python -m jobqueue ...`` in a
subprocess against the test database, reading its JSON and exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobqueue.store import schema
from tests.support.cli import CLI


def count_jobs(raw: Any) -> int:
    return raw.run("SELECT count(*) FROM jobs")[0][0]


def test_migrate_is_a_no_op_on_rerun(cli: CLI) -> None:
    first = cli.ok("migrate")
    again = cli.ok("migrate")
    assert first["schema_version"] == again["schema_version"] == schema.latest_version()
    assert again["applied"] == []


def test_submit_status_process_stats_round_trip(cli: CLI) -> None:
    submitted = cli.ok(
        "submit", "echo", "--payload", '{"n": 1, "word": "hi"}', "--queue", "cli", "--priority", "5",
        "--max-attempts", "2", "--timeout", "10", "--idempotency-key", "cli-key-1",
    )  # fmt: skip
    job = submitted["job"]
    assert submitted["status"] == "ok"
    assert (job["task"], job["queue"], job["priority"], job["max_attempts"]) == ("echo", "cli", 5, 2)
    assert job["state"] == "pending"

    repeat = cli.ok("submit", "echo", "--payload", '{"n": 2}', "--idempotency-key", "cli-key-1")
    assert repeat["job"]["id"] == job["id"]
    assert repeat["job"]["payload"] == {"n": 1, "word": "hi"}

    assert cli.ok("status", job["id"])["job"]["state"] == "pending"
    report = cli.ok("process", "--queue", "other", "--queue", "cli", "--max-jobs", "10", "--budget", "20")["drain"]
    assert (report["processed"], report["succeeded"], report["failed"]) == (1, 1, 0)

    done = cli.ok("status", job["id"])["job"]
    assert done["state"] == "succeeded"
    assert done["result"] == {"n": 1, "word": "hi"}
    assert done["attempts"] == 1

    stats = cli.ok("stats")["stats"]
    assert stats["queues"]["cli"]["counts"]["succeeded"] == 1
    assert stats["totals"]["pending"] == 0


def test_process_leaves_delayed_jobs_and_other_queues(cli: CLI) -> None:
    later = cli.ok("submit", "echo", "--delay", "3600")["job"]
    elsewhere = cli.ok("submit", "echo", "--queue", "elsewhere")["job"]
    report = cli.ok("process", "--queue", "default")["drain"]
    assert report["processed"] == 0
    assert report["stopped"] == "idle"
    assert cli.ok("status", later["id"])["job"]["state"] == "pending"
    assert cli.ok("status", elsewhere["id"])["job"]["state"] == "pending"


def test_failing_job_is_retried_then_failed(cli: CLI) -> None:
    job = cli.ok("submit", "tests.permanent")["job"]
    assert cli.ok("process")["drain"]["failed"] == 1
    failed = cli.ok("status", job["id"])["job"]
    assert failed["state"] == "failed"
    assert "no point retrying" in json.dumps(failed["error"])


def test_prune_deletes_finished_jobs(cli: CLI, raw: Any) -> None:
    cli.ok("submit", "echo")
    cli.ok("process")
    assert cli.ok("prune", "--older-than-days", "0")["pruned"] == 1
    assert count_jobs(raw) == 0


def test_bad_payload_json_names_the_field_and_enqueues_nothing(cli: CLI, raw: Any) -> None:
    message = cli.fails(2, "submit", "echo", "--payload", '{"n": 1')
    assert "payload" in message
    assert "not valid JSON" in message
    message = cli.fails(2, "submit", "echo", "--payload", "[1, 2]")
    assert "payload must be a JSON object" in message
    assert count_jobs(raw) == 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("submit", "no.such.task"), "task"),
        (("submit", "echo", "--priority", "40000"), "priority"),
        (("submit", "echo", "--max-attempts", "0"), "max_attempts"),
        (("submit", "echo", "--run-at", "next tuesday"), "run_at"),
        (("submit", "echo", "--queue", "bad queue!"), "queue"),
    ],
)
def test_invalid_submit_is_rejected_naming_the_field(cli: CLI, raw: Any, args: tuple[str, ...], field: str) -> None:
    message = cli.fails(2, *args)
    assert field in message
    assert count_jobs(raw) == 0


def test_unknown_job_id(cli: CLI) -> None:
    missing = "01900000-0000-7000-8000-000000000000"
    assert missing in cli.fails(3, "status", missing)
    assert "UUID" in cli.fails(2, "status", "not-a-uuid")


def test_usage_errors_exit_2(cli: CLI) -> None:
    done = cli.run("submit", "echo", "--priority", "high")
    assert done.returncode == 2
    assert "--priority" in done.stderr
    assert cli.run("frobnicate").returncode == 2


def test_unreachable_database(cli: CLI) -> None:
    message = cli.fails(4, "stats", DB_HOST="127.0.0.1", DB_PORT="1", DB_CONNECT_TIMEOUT="2")
    assert "cannot connect" in message


def test_invalid_configuration_names_the_variable(cli: CLI) -> None:
    assert "DB_PORT" in cli.fails(5, "stats", DB_PORT="five")
    assert "JOBQUEUE_TASK_MODULES" in cli.fails(5, "stats", JOBQUEUE_TASK_MODULES="no_such_module_here")


def test_on_a_given_database_the_builtin_tasks_follow_the_setting(cli: CLI) -> None:
    """With DB_HOST the commands work on a real deployment's database, whose
    function runs only its own tasks: echo is refused there unless switched on."""
    assert "unknown task 'echo'" in cli.fails(2, "submit", "echo", JOBQUEUE_BUILTIN_TASKS="off")
    assert cli.run("submit", "echo", JOBQUEUE_BUILTIN_TASKS="on").returncode == 0


def test_on_the_local_database_the_builtin_tasks_are_on_as_in_serve() -> None:
    from jobqueue.cli import _local_defaults

    assert _local_defaults({"PATH": "/bin"}) == {"PATH": "/bin", "JOBQUEUE_BUILTIN_TASKS": "on"}
    assert _local_defaults({"JOBQUEUE_BUILTIN_TASKS": "off"}) == {"JOBQUEUE_BUILTIN_TASKS": "off"}
