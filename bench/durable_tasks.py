"""The tasks of bench/bench_durable.py: durable jobs that sleep, wait for a
signal, or report progress in a tight loop.

Each takes a ``job`` argument, so the drain hands it a ``jobqueue.Job``. A
durable job resumes by running its function again from the top, so what a
task records about "now" (``started``) is the wall-clock start of the run
that finished it: for ``durable.wait``, the run the signal resumed.

The drains the benchmark starts load this module through
JOBQUEUE_TASK_MODULES=durable_tasks with bench/ on PYTHONPATH; the
benchmark's own process imports it by name.
"""

from __future__ import annotations

import time
from typing import Any

from jobqueue import task


@task(name="durable.nap")
def nap(seconds: float = 86400.0, job: Any = None) -> dict[str, float]:
    """Sleep ``seconds`` (the step "nap") without a running drain; once it has
    ended, return when the run that finished it started (time.time())."""
    started = time.time()
    job.sleep("nap", seconds=seconds)
    return {"started": started}


@task(name="durable.wait")
def wait(name: str = "go", job: Any = None) -> dict[str, Any]:
    """Wait for the signal ``name`` without a timeout; return its value and
    when the run that took it started (time.time())."""
    started = time.time()
    value = job.wait_for(name)
    return {"got": value, "started": started}


@task(name="durable.progress", timeout=120)
def progress(times: int = 1000, seconds: float = 10.0, report: bool = True, job: Any = None) -> int:
    """Call job.progress ``times`` times, evenly over ``seconds`` (the loop is
    the same with ``report`` false, which calls nothing: the baseline)."""
    start = time.monotonic()
    for i in range(times):
        if report:
            job.progress((i + 1) / times, f"{i + 1} of {times}")
        time.sleep(max(0.0, start + (i + 1) * seconds / times - time.monotonic()))
    return times
