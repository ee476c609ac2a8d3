"""Settings from the environment and the connection's behaviour."""

from __future__ import annotations

import dataclasses

import pytest

from jobqueue.config import Settings
from jobqueue.errors import ConfigError, DatabaseUnavailable
from jobqueue.store import connection


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DB_PORT": "five"}, "DB_PORT"),
        ({"DB_PORT": "70000"}, "DB_PORT"),
        ({"DB_SSLMODE": "sometimes"}, "DB_SSLMODE"),
        ({"JOBQUEUE_AUTH": "maybe"}, "JOBQUEUE_AUTH"),
        ({"JOBQUEUE_LEASE_GRACE_SECONDS": "-1"}, "JOBQUEUE_LEASE_GRACE_SECONDS"),
        ({"JOBQUEUE_MAX_BODY_BYTES": "12"}, "JOBQUEUE_MAX_BODY_BYTES"),
        ({"DB_STATEMENT_TIMEOUT_MS": "x"}, "DB_STATEMENT_TIMEOUT_MS"),
    ],
)
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_settings_parse_lists_and_defaults():
    alpha, beta = "tok-alpha-0123456789abcdefghijklmnop", "tok-beta-0123456789abcdefghijklmnopq"
    s = Settings.from_env(
        {"JOBQUEUE_API_TOKEN": f" {alpha} , {beta},", "DB_SSLMODE": "off", "JOBQUEUE_TASK_MODULES": "x.y"}
    )
    assert s.api_tokens == (alpha, beta) and s.db.sslmode == "disable" and s.task_modules == ("x.y",)
    assert s.db.statement_timeout_ms == 30_000 and s.max_body_bytes == 256 * 1024
    assert alpha not in repr(s)  # tokens never reach a log line through repr


def test_missing_host_is_a_config_error():
    with pytest.raises(ConfigError, match="DB_HOST"):
        connection.connect(Settings.from_env({}).db)


def test_unreachable_database_is_unavailable_without_leaking_the_password():
    settings = Settings.from_env(
        {"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_PASSWORD": "hunter2-secret", "DB_CONNECT_TIMEOUT": "1"}
    ).db
    with pytest.raises(DatabaseUnavailable) as err:
        connection.connect(settings)
    assert "hunter2" not in str(err.value) and "127.0.0.1:1" in str(err.value)
    assert err.value.__cause__ is None or "hunter2" not in str(err.value.__cause__)


def test_statement_timeout_is_set(db_settings):
    short = dataclasses.replace(db_settings, statement_timeout_ms=200)
    conn = connection.connect(short)
    assert conn.run("SHOW statement_timeout")[0][0] == "200ms"
    with pytest.raises(Exception, match="statement timeout"):
        conn.run("SELECT pg_sleep(2)")
    conn.close()


def test_a_statement_may_take_longer_than_the_connect_timeout(db_settings):
    """The connect timeout bounds the handshake only: a statement slower than
    it, within the statement timeout, answers instead of being taken for a
    lost connection (and resent)."""
    quick = dataclasses.replace(db_settings, connect_timeout=0.3, statement_timeout_ms=10_000)
    database = connection.Database(quick)
    assert database.execute("SELECT pg_sleep(1.0), 7")[0][1] == 7
    assert quick.read_timeout is not None and quick.read_timeout > 10
    assert dataclasses.replace(quick, statement_timeout_ms=0).read_timeout is None  # no limit: wait as long as it takes
    database.close()


def test_only_queries_marked_plan_once_are_prepared(database):
    """A query that reads the table is sent whole each time (planned for the
    table at hand); the marked ones (inserts, calls) keep a prepared plan."""
    from jobqueue import JobSpec
    from jobqueue.store import jobs, queries

    job, _ = jobs.enqueue(database, JobSpec("noop"))
    jobs.get(database, job["id"])
    assert "enqueue" in queries.planned_once() and "get" not in queries.planned_once()
    assert set(database._prepared) == {"enqueue"}


def test_one_connection_is_reused_and_reopened_once_when_broken(database, raw):
    pid = database.execute("SELECT pg_backend_pid()")[0][0]
    assert database.run("schema_version")[0][0] >= 1
    assert database.execute("SELECT pg_backend_pid()")[0][0] == pid  # reused
    raw.run("SELECT pg_terminate_backend(:pid)", pid=pid)
    assert database.run("schema_version")[0][0] >= 1  # re-opened transparently
    assert database.execute("SELECT pg_backend_pid()")[0][0] != pid


def test_a_transaction_is_never_silently_retried(database, raw):
    pid = database.execute("SELECT pg_backend_pid()")[0][0]
    with pytest.raises(DatabaseUnavailable):
        with database.transaction():
            raw.run("SELECT pg_terminate_backend(:pid)", pid=pid)
            database.run("schema_version")
    assert database.run("schema_version")[0][0] >= 1  # usable again afterwards
