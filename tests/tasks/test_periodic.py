"""Periodic jobs: declared in code, enqueued by the scheduled tick exactly once
per slot on a real PostgreSQL, however many ticks overlap, across daylight-saving
changes and outages; listed by GET /schedules; a bad declaration stops the cold start.

Time is the tick's ``now`` argument, moved by the tests; the database's clock
decides no slot.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import app
import jobqueue
from jobqueue import task
from jobqueue.config import DatabaseSettings
from jobqueue.engine import periodic_enqueuer
from jobqueue.errors import ConfigError, DatabaseUnavailable
from jobqueue.events import schedule as schedule_event
from jobqueue.store import connection
from jobqueue.tasks import periodic
from tests.support.apigw import AUTH, assert_error, call, v2
from tests.support.aws import ROOT, make_context, sample
from tests.support.openapi import schema_validator

UTC = timezone.utc
pytestmark = pytest.mark.usefixtures("database", "settings_env")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(autouse=True)
def registry(database: connection.Database) -> Iterator[dict[str, periodic.Schedule]]:
    """An empty schedule registry and table for each test; the process's come back after."""
    saved = dict(periodic._registry)
    periodic._registry.clear()
    periodic_enqueuer._next_slots.clear()
    database.execute("TRUNCATE schedules")
    yield periodic._registry
    periodic._registry.clear()
    periodic._registry.update(saved)
    periodic_enqueuer._next_slots.clear()
    for name in [m for m in sys.modules if m == "tests.support.periodic_tasks" or m.startswith("periodic_case_")]:
        del sys.modules[name]


def jobs(raw: Any, name: str | None = None) -> list[tuple[str, str, str]]:
    """(idempotency key, run_at in UTC ISO, state) of periodic jobs, by run_at."""
    rows = raw.run(
        "SELECT idempotency_key, to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), state"
        " FROM jobs WHERE idempotency_key LIKE 'periodic:%' ORDER BY run_at, idempotency_key"
    )
    return [tuple(r) for r in rows if name is None or r[0].startswith(f"periodic:{name}:")]


def slots(raw: Any, name: str) -> list[str]:
    return [run_at for _, run_at, _ in jobs(raw, name)]


def ticks(database: connection.Database, start: datetime, end: datetime, every: timedelta) -> None:
    now = start
    while now <= end:
        periodic_enqueuer.tick(database, now)
        now += every


# --- declaring -------------------------------------------------------------------------


def test_declared_in_code_with_stable_names(registry: dict[str, periodic.Schedule]) -> None:
    schedule = jobqueue.periodic("0 3 * * *", "echo", payload={"a": 1}, timezone="Europe/Berlin")
    assert registry == {"echo": schedule}
    assert (schedule.task, schedule.queue, schedule.catch_up) == ("echo", None, "latest")
    # Declaring the same again (a module imported twice) is harmless.
    jobqueue.periodic("0 3 * * *", "echo", payload={"a": 1}, timezone="Europe/Berlin")

    @task(name="tests.reports", periodic="@daily")
    def reports() -> None: ...

    @task(name="tests.twice", periodic=["0 9 * * MON-FRI", "0  12 * * SAT,SUN"])
    def twice() -> None: ...

    assert sorted(registry) == ["echo", "tests.reports", "tests.twice 0 12 * * SAT,SUN", "tests.twice 0 9 * * MON-FRI"]
    assert registry["tests.reports"].expression == "@daily"


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("0 3 * * x", "echo"), {"name": "reports.nightly"}, "schedule 'reports.nightly' (\"0 3 * * x\"): day-of-week"),
        (("0 3 * *", "echo"), {}, "schedule 'echo' (\"0 3 * *\"): expected 5 fields"),
        (("@daily", "echo"), {"timezone": "Mars/Olympus"}, "schedule 'echo' (\"@daily\"): unknown time zone"),
        (("@daily", "echo"), {"catch_up": "some"}, 'catch_up must be "latest" or "all"'),
        (("@daily", "echo"), {"queue": "no spaces"}, "queue must be a queue name: 1 to 100 letters"),
        (("@daily", "echo"), {"priority": 40000}, "priority must be between -32767 and 32767"),
        (("@daily", "echo"), {"max_attempts": 0}, "max_attempts must be"),
        (("@daily", "echo"), {"timeout_seconds": 901}, "timeout_seconds must be"),
        (("@daily", "echo", {"when": datetime(2024, 1, 1)}), {}, "payload is not JSON-serialisable"),
        (("@daily", "echo", ["not", "a", "dict"]), {}, "payload must be a dict"),
        (("@daily", "echo"), {"name": "x" * 201}, "name must be 1 to 200 characters"),
    ],
)
def test_bad_declarations_name_the_schedule(args: tuple[Any, ...], options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        jobqueue.periodic(*args, **options)
    assert message in str(caught.value)


def test_two_schedules_with_one_name_and_different_definitions_are_an_error() -> None:
    jobqueue.periodic("0 3 * * *", "echo")
    with pytest.raises(ConfigError, match="another schedule already has this name .* give one of them its own name="):
        jobqueue.periodic("0 4 * * *", "echo")
    with pytest.raises(ConfigError, match="schedule 'echo'"):
        jobqueue.periodic("0 3 * * *", "echo", payload={"other": True})
    jobqueue.periodic("0 4 * * *", "echo", name="echo at four")  # named apart: fine


def _task_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            'jobqueue.periodic("0 3 * * x", "echo", name="reports.nightly")',
            "schedule 'reports.nightly' (\"0 3 * * x\"): day-of-week field 'x': 'x' is not a number or a name",
        ),
        (
            'jobqueue.periodic("0 3 * * *", "echo", timezone="Europe/Berln")',
            "schedule 'echo' (\"0 3 * * *\"): unknown time zone 'Europe/Berln'",
        ),
        (
            '@jobqueue.task(name="case.t", periodic="0 0 31 2 *")\ndef t(): ...',
            "schedule 'case.t' (\"0 0 31 2 *\"): it never fires",
        ),
        (
            'jobqueue.periodic("@daily", "reports.missing")',
            "schedule 'reports.missing' (\"@daily\"): task 'reports.missing' is not registered",
        ),
    ],
)
def test_a_bad_schedule_fails_the_cold_start_naming_it(
    declaration: str, message: str, settings_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"periodic_case_{abs(hash(declaration))}"
    module = _task_module(tmp_path, monkeypatch, name, f"import jobqueue\n{declaration}\n")
    config = settings_env(JOBQUEUE_TASK_MODULES=module)
    assert config.error is not None and message in config.error
    # Every way in then fails, instead of half-working; the schedule is named where the
    # operator looks (the log, a schedule's or a direct invocation's error), not to HTTP callers.
    status, _, body = call(v2("GET", "/schedules", headers=AUTH))
    assert status == 500 and body["message"] == "the service is misconfigured; its log has the detail"
    with pytest.raises(ConfigError, match="schedule"):
        app.lambda_handler(sample("eventbridge-scheduled.json"), make_context())


# --- the tick: exactly once ---------------------------------------------------------------


def test_a_schedule_seen_for_the_first_time_starts_from_now(database: connection.Database, raw: Any) -> None:
    jobqueue.periodic("* * * * *", "echo")
    now = utc(2024, 5, 1, 12, 0, 30)
    assert periodic_enqueuer.tick(database, now)["enqueued"] == 0
    assert raw.run("SELECT name, first_seen, last_slot FROM schedules") == [["echo", now, None]]
    assert periodic_enqueuer.tick(database, now + timedelta(seconds=29))["enqueued"] == 0
    assert periodic_enqueuer.tick(database, now + timedelta(seconds=30))["enqueued"] == 1
    assert slots(raw, "echo") == ["2024-05-01T12:01:00Z"]


def test_concurrent_ticks_enqueue_each_slot_exactly_once(
    db_settings: DatabaseSettings, database: connection.Database, raw: Any
) -> None:
    """Eight ticks at a time, each on its own connection, 40 times over, crossing
    Berlin's spring-forward jump: each slot once, and no tick even tries twice."""
    registry = {
        s.name: s
        for s in (
            jobqueue.periodic("* * * * *", "echo", name="minutely", catch_up="all"),
            jobqueue.periodic("*/2 * * * *", "echo", name="two", payload={"n": 2}),
            jobqueue.periodic("30 2 * * *", "echo", name="berlin", timezone="Europe/Berlin"),
            jobqueue.periodic("@hourly", "echo", name="hourly", timezone="Europe/Berlin", catch_up="all"),
        )
    }
    start = utc(2024, 3, 31, 0, 44, 50)  # 01:44:50 CET; at 01:00 UTC clocks go from 02:00 to 03:00
    nows = [start + timedelta(seconds=47 * k) for k in range(40)]
    threads, barrier, reports, errors = 8, threading.Barrier(8), [], []

    def run() -> None:
        own = connection.Database(db_settings)
        try:
            for now in nows:
                barrier.wait(timeout=60)
                reports.append(periodic_enqueuer.tick(own, now))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()
        finally:
            own.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not errors, errors
    assert len(reports) == threads * len(nows)

    # The same ticks one after another, on the pure model of which slots are due.
    expected: dict[str, list[str]] = {}
    cursors = dict.fromkeys(registry, nows[0])
    for now in nows[1:]:
        for name, schedule in registry.items():
            due = schedule.due(cursors[name], now)
            if due:
                expected.setdefault(name, []).extend(periodic_enqueuer._iso(slot) for slot in due)
                cursors[name] = due[-1]
    for name in registry:
        assert slots(raw, name) == expected[name], name
    assert expected["berlin"] == ["2024-03-31T01:00:00Z"]  # 02:30 was skipped: 03:00 CEST, once
    assert expected["hourly"] == ["2024-03-31T01:00:00Z"]  # the real hour after 01:00 CET is 03:00 CEST
    assert len(expected["minutely"]) == 31  # 00:45 to 01:15
    # No tick enqueued a slot another had: the row lock, not only the key, kept them apart.
    reported = sum(report["enqueued"] for report in reports)
    assert reported == len(jobs(raw)) == sum(len(v) for v in expected.values())
    assert raw.run("SELECT name, last_slot FROM schedules ORDER BY name") == [
        [name, datetime.fromisoformat(expected[name][-1])] for name in sorted(registry)
    ]


def test_a_lost_answer_and_a_resend_cannot_double_a_slot(database: connection.Database, raw: Any) -> None:
    """Should the record of a slot be lost while its job stays (an answer lost,
    the statement sent again), the job's key still keeps the slot single."""
    jobqueue.periodic("0 * * * *", "echo")
    periodic_enqueuer.tick(database, utc(2024, 5, 1, 9, 30))
    periodic_enqueuer.tick(database, utc(2024, 5, 1, 10, 0, 5))
    assert slots(raw, "echo") == ["2024-05-01T10:00:00Z"]
    raw.run("UPDATE schedules SET last_slot = NULL")
    periodic_enqueuer._next_slots.clear()
    periodic_enqueuer.tick(database, utc(2024, 5, 1, 10, 0, 9))
    assert slots(raw, "echo") == ["2024-05-01T10:00:00Z"]
    assert raw.run("SELECT last_slot FROM schedules") == [[utc(2024, 5, 1, 10)]]


@pytest.mark.parametrize(
    ("zone", "fixed", "start", "expected"),
    [
        # Berlin falls back at 01:00 UTC: 02:30 local happens twice and runs once;
        # @hourly runs every real hour, the repeated 02:00 included.
        (
            "Europe/Berlin",
            "30 2 * * *",
            utc(2024, 10, 26, 22, 5),
            {"fixed": ["2024-10-27T00:30:00Z"], "hourly": ["23:00", "00:00", "01:00", "02:00", "03:00", "04:00"]},
        ),
        # Berlin springs forward at 01:00 UTC: 02:30 never happens; it runs at 03:00 CEST.
        (
            "Europe/Berlin",
            "30 2 * * *",
            utc(2024, 3, 30, 22, 5),
            {"fixed": ["2024-03-31T01:00:00Z"], "hourly": ["23:00", "00:00", "01:00", "02:00", "03:00", "04:00"]},
        ),
        # New York falls back at 06:00 UTC: 01:00-01:59 repeats; 01:30 EDT runs, 01:30 EST not.
        (
            "America/New_York",
            "30 1 * * *",
            utc(2024, 11, 3, 3, 5),
            {"fixed": ["2024-11-03T05:30:00Z"], "hourly": ["04:00", "05:00", "06:00", "07:00", "08:00", "09:00"]},
        ),
        # Lord Howe springs forward half an hour at 15:30 UTC: 02:00 becomes 02:30.
        # 02:15 runs at 02:30; @hourly has no 02:00 that day, and 03:00 is half an hour on.
        (
            "Australia/Lord_Howe",
            "15 2 * * *",
            utc(2024, 10, 5, 12, 35),
            {"fixed": ["2024-10-05T15:30:00Z"], "hourly": ["13:30", "14:30", "16:00", "17:00", "18:00"]},
        ),
    ],
)
def test_a_daylight_saving_change(
    zone: str, fixed: str, start: datetime, expected: dict[str, list[str]], database: connection.Database, raw: Any
) -> None:
    jobqueue.periodic(fixed, "echo", name="fixed", timezone=zone)
    jobqueue.periodic("@hourly", "echo", name="hourly", timezone=zone)
    ticks(database, start, start + timedelta(hours=6), timedelta(minutes=10))
    assert slots(raw, "fixed") == expected["fixed"]
    assert [slot[11:16] for slot in slots(raw, "hourly")] == expected["hourly"]


def test_catch_up_after_a_gap_enqueues_the_latest_by_default_or_all(database: connection.Database, raw: Any) -> None:
    jobqueue.periodic("0 * * * *", "echo", name="latest")
    jobqueue.periodic("0 * * * *", "echo", name="all", catch_up="all")
    periodic_enqueuer.tick(database, utc(2024, 5, 1, 8, 30))
    report = periodic_enqueuer.tick(database, utc(2024, 5, 1, 13, 45))  # the ticks stopped for five hours
    assert slots(raw, "latest") == ["2024-05-01T13:00:00Z"]
    assert slots(raw, "all") == [f"2024-05-01T{h:02}:00:00Z" for h in range(9, 14)]
    assert report["enqueued"] == 6
    assert raw.run("SELECT name, last_slot FROM schedules ORDER BY name") == [
        ["all", utc(2024, 5, 1, 13)],
        ["latest", utc(2024, 5, 1, 13)],
    ]


def test_catch_up_all_goes_a_thousand_slots_per_tick_oldest_first(database: connection.Database, raw: Any) -> None:
    jobqueue.periodic("* * * * *", "echo", catch_up="all")
    jobqueue.periodic("* * * * *", "noop", name="latest")  # a year away: the latest, found fast
    periodic_enqueuer.tick(database, utc(2024, 1, 1))
    back = utc(2024, 1, 1) + timedelta(minutes=2500, seconds=10)
    assert [periodic_enqueuer.tick(database, back)["enqueued"] for _ in range(4)] == [1001, 1000, 500, 0]
    found = slots(raw, "echo")
    assert len(found) == len(set(found)) == 2500
    assert (found[0], found[-1]) == ("2024-01-01T00:01:00Z", "2024-01-02T17:40:00Z")
    periodic_enqueuer.tick(database, utc(2024, 12, 31, 23, 59, 59))
    assert slots(raw, "latest") == ["2024-01-02T17:40:00Z", "2024-12-31T23:59:00Z"]


def test_an_idle_tick_is_one_round_trip_for_200_schedules(db_settings: DatabaseSettings) -> None:
    class Counting(connection.Database):
        statements = 0

        def run(self, name: str, **params: Any) -> Any:
            self.statements += 1
            return super().run(name, **params)

        def execute(self, text: str, **params: Any) -> Any:
            self.statements += 1
            return super().execute(text, **params)

    for i in range(200):
        jobqueue.periodic(f"{i % 60} {i % 24} * * *", "echo", name=f"s{i:03}")
    counting = Counting(db_settings)
    now = utc(2024, 5, 1, 0, 0, 30)
    periodic_enqueuer.tick(counting, now)  # first sight: the rows are added
    for later in (now, now + timedelta(seconds=20)):
        counting.statements = 0
        assert periodic_enqueuer.tick(counting, later)["enqueued"] == 0
        assert counting.statements == 1
    counting.close()


def test_one_failing_schedule_does_not_stop_the_others(database: connection.Database, raw: Any, capfd: Any) -> None:
    jobqueue.periodic("* * * * *", "echo", name="good")
    # A schedule whose task went away (cold start would refuse it; here it slips past).
    periodic._registry["gone"] = periodic.Schedule(name="gone", expression="* * * * *", task="no.such.task")
    periodic_enqueuer.tick(database, utc(2024, 5, 1, 9, 0, 30))
    report = periodic_enqueuer.tick(database, utc(2024, 5, 1, 9, 1, 30))
    assert report["failed"] == ["gone"] and report["enqueued"] == 1
    assert slots(raw, "good") == ["2024-05-01T09:01:00Z"]
    assert raw.run("SELECT last_slot FROM schedules WHERE name = 'gone'") == [[None]]
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines() if "periodic_failed" in line]
    assert logged and logged[0]["schedule"] == "gone" and "no.such.task" in logged[0]["error"]


# --- the scheduled invocation -------------------------------------------------------------


def _due_yearly(raw: Any, tmp_path: Path) -> Path:
    """A yearly schedule of tests.record whose last slot was a year ago: one slot is due now."""
    record = tmp_path / "runs.txt"
    jobqueue.periodic("@yearly", "tests.record", payload={"path": str(record), "value": "ran"}, name="yearly")
    raw.run(
        "INSERT INTO schedules (name, first_seen) VALUES ('yearly', :t)",
        t=datetime.now(UTC) - timedelta(days=400),
    )
    return record


def test_the_scheduled_invocation_enqueues_then_drains_the_periodic_job(raw: Any, tmp_path: Path) -> None:
    record = _due_yearly(raw, tmp_path)
    result = app.lambda_handler(sample("eventbridge-scheduled.json"), make_context())
    assert (result["drain"]["processed"], result["drain"]["succeeded"]) == (1, 1)
    year = datetime.now(UTC).year
    assert jobs(raw) == [(f"periodic:yearly:{year}-01-01T00:00:00Z", f"{year}-01-01T00:00:00Z", "succeeded")]
    assert record.read_text() == "ran\n"
    # The next scheduled invocations find nothing new to enqueue.
    assert app.lambda_handler(sample("eventbridge-scheduled.json"), make_context())["drain"]["processed"] == 0
    assert record.read_text() == "ran\n"


def test_a_failed_periodic_enqueue_is_logged_and_the_drain_still_runs(raw: Any, tmp_path: Path, capfd: Any) -> None:
    _due_yearly(raw, tmp_path)
    status, _, body = call(v2("POST", "/jobs", {"task": "echo"}, AUTH))
    assert status == 202
    raw.run("ALTER TABLE schedules RENAME TO schedules_away")  # as if migration 0003 were missing
    try:
        result = app.lambda_handler(sample("eventbridge-scheduled.json"), make_context())
    finally:
        raw.run("ALTER TABLE schedules_away RENAME TO schedules")
    assert (result["drain"]["processed"], result["drain"]["succeeded"]) == (1, 1)
    assert jobs(raw) == []
    assert any("periodic_failed" in line for line in capfd.readouterr().err.splitlines())


def test_an_unavailable_database_fails_the_scheduled_invocation(db_settings: DatabaseSettings) -> None:
    jobqueue.periodic("@daily", "echo")
    down = connection.Database(dataclasses.replace(db_settings, host="127.0.0.1", port=1, connect_timeout=1))
    connection.set_default(down)
    with pytest.raises(DatabaseUnavailable):
        schedule_event.enqueue_periodic("test")
    with pytest.raises(DatabaseUnavailable):
        app.lambda_handler(sample("eventbridge-scheduled.json"), make_context())


# --- GET /schedules, the direct action and the CLI ------------------------------------------


def test_get_schedules_shows_last_and_next_run(database: connection.Database, raw: Any, tmp_path: Path) -> None:
    jobqueue.periodic("0 3 * * *", "echo", payload={"r": 1}, timezone="Europe/Berlin", name="nightly")
    _due_yearly(raw, tmp_path)
    status, _, body = call(v2("GET", "/schedules", headers=AUTH))
    assert status == 200
    schema_validator("ScheduleList").validate(body)
    listed = {s["name"]: s for s in body["schedules"]}
    year = datetime.now(UTC).year
    assert listed["yearly"]["last_run"] is None
    assert listed["yearly"]["next_run"] == f"{year}-01-01T00:00:00Z"  # due: the next tick enqueues it
    assert listed["nightly"] == {
        "name": "nightly",
        "task": "echo",
        "expression": "0 3 * * *",
        "timezone": "Europe/Berlin",
        "queue": "default",
        "catch_up": "latest",
        "payload": {"r": 1},
        "last_run": None,
        "next_run": listed["nightly"]["next_run"],
    }
    next_run = datetime.fromisoformat(listed["nightly"]["next_run"])
    assert next_run.astimezone(periodic.cron.zone("Europe/Berlin")).strftime("%H:%M") == "03:00"
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(hours=25)

    periodic_enqueuer.tick(database)
    _, _, body = call(v2("GET", "/schedules", headers=AUTH))
    listed = {s["name"]: s for s in body["schedules"]}
    assert listed["yearly"]["last_run"] == f"{year}-01-01T00:00:00Z"
    assert listed["yearly"]["next_run"] == f"{year + 1}-01-01T00:00:00Z"
    # The same body from a direct invocation; the route wants the token like the others.
    assert app.lambda_handler({"action": "schedules"}, make_context()) == body
    status, _, error = call(v2("GET", "/schedules"))
    assert status == 401
    assert_error(error)


def test_cli_lists_the_schedules_a_deployment_declares(server_env: dict[str, str], raw: Any) -> None:
    import os
    import subprocess

    env = {**os.environ, **server_env, "JOBQUEUE_TASK_MODULES": "tests.support.tasks,tests.support.periodic_tasks"}
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue", "schedules"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    listed = {s["name"]: s for s in json.loads(done.stdout)["schedules"]}
    assert sorted(listed) == [
        "reports.berlin",
        "tests.periodic.nightly",
        "tests.periodic.office 0 12 * * SAT,SUN",
        "tests.periodic.office 0 9 * * MON-FRI",
    ]
    assert (listed["reports.berlin"]["queue"], listed["reports.berlin"]["catch_up"]) == ("reports", "all")
    assert listed["tests.periodic.nightly"]["next_run"].endswith("T03:00:00Z")
