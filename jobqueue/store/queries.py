"""Named SQL: every query lives in sql/queries.sql under a ``-- name: x`` header.

Reviewing all SQL of the system means reading one file. ``{job_columns}`` (the
job's columns) and ``{time:col}`` (a column as ISO 8601 UTC text) are the only
substitutions: constant column names, never user input.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

JOB_COLUMNS = (
    "id",
    "queue",
    "task",
    "payload",
    "state",
    "priority",
    "run_at",
    "attempts",
    "max_attempts",
    "timeout_seconds",
    "result",
    "errors",
    "idempotency_key",
    "created_at",
    "started_at",
    "finished_at",
    "progress",
    "steps",
    "waiting_for",
    "cancel_requested",
    "has_children",
    "parents_left",
)

TIME_COLUMNS = frozenset({"run_at", "created_at", "started_at", "finished_at"})


# Times leave the database as ISO 8601 UTC text: what the API returns anyway,
# and far cheaper than parsing timestamps in Python for every row.
def _iso(column: str) -> str:
    alias = column.rstrip("()")
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS {alias}"""


# A durable job's steps leave without their checkpointed results (see jobqueue_steps).
_EXPRESSIONS = {"steps": "jobqueue_steps(steps) AS steps"}
_SELECT_LIST = ", ".join(_iso(c) if c in TIME_COLUMNS else _EXPRESSIONS.get(c, c) for c in JOB_COLUMNS)
_TIME_REF = re.compile(r"\{time:(\w+(?:\(\))?)\}")

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_PLANNED_ONCE = re.compile(r"^-- plan: once\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split a named-query file into {name: sql}; comments stay in the SQL (harmless, useful in logs)."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=False):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        sql = body.strip().rstrip(";").strip()
        sql = sql.replace("{job_columns}", _SELECT_LIST)
        queries[name] = _TIME_REF.sub(lambda m: _iso(m[1]), sql)
    return queries


@cache
def queries() -> dict[str, str]:
    return parse(resources.files(__package__).joinpath("sql", "queries.sql").read_text("utf-8"))


@cache
def planned_once() -> frozenset[str]:
    """The queries marked "-- plan: once": prepared, their plan kept for the
    session. The others are planned afresh on every run (see connection.py)."""
    return frozenset(name for name, sql in queries().items() if _PLANNED_ONCE.search(sql))


def query(name: str) -> str:
    return queries()[name]


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for each file in sql/migrations/, in version order."""
    found = []
    for entry in resources.files(__package__).joinpath("sql", "migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text("utf-8")))
    return sorted(found)
