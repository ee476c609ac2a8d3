"""Versioned schema migrations, applied under an advisory lock.

Many Lambda containers may cold-start at once and all call migrate: the lock
makes them take turns, and the record of applied versions makes every run
after the first a no-op.
"""

from __future__ import annotations

from pg8000.exceptions import DatabaseError

from . import queries
from .connection import Database, Runner, run

# An arbitrary constant that identifies "jobqueue migrations" among advisory locks.
LOCK_KEY = 0x6A6F6271  # "jobq"

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS jobqueue_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migrate(db: Database | Runner) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied now."""
    conn = db.connection if isinstance(db, Database) else db
    applied_now: list[int] = []
    conn.run("BEGIN")
    try:
        conn.run("SELECT pg_advisory_xact_lock(:key)", key=LOCK_KEY)
        conn.run(_CREATE_LEDGER)
        done = {row[0] for row in conn.run("SELECT version FROM jobqueue_migrations")}
        for version, name, text in queries.migrations():
            if version in done:
                continue
            conn.run(text)
            conn.run(
                "INSERT INTO jobqueue_migrations (version, name) VALUES (:version, :name)",
                version=version,
                name=name,
            )
            applied_now.append(version)
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return applied_now


def latest_version() -> int:
    return max(version for version, _, _ in queries.migrations())


def schema_version(db: Database | Runner) -> int | None:
    """The version this database's schema is at; None before the first migration."""
    try:
        return run(db, "schema_version")[0][0]
    except DatabaseError:  # the migrations table does not exist yet
        return None
