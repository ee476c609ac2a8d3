"""Periodic schedules declared the ways a deployment declares them; imported
through JOBQUEUE_TASK_MODULES by the tests that want them (never by default,
so that other tests' scheduled drains enqueue nothing of theirs)."""

from __future__ import annotations

from typing import Any

import jobqueue
from jobqueue import task


@task(name="tests.periodic.nightly", periodic="0 3 * * *")
def nightly(**_: Any) -> str:
    return "nightly"


@task(name="tests.periodic.office", periodic=["0 9 * * MON-FRI", "0 12 * * SAT,SUN"])
def office(**_: Any) -> str:
    return "office"


jobqueue.periodic(
    "30 2 * * *",
    "echo",
    payload={"report": "berlin"},
    timezone="Europe/Berlin",
    name="reports.berlin",
    queue="reports",
    catch_up="all",
)
