"""Tasks only the tests register (through JOBQUEUE_TASK_MODULES), among them
ones no deployment should ship: a task that kills its own process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jobqueue import Permanent, task


@task(name="tests.crash")
def crash(**_: Any) -> None:
    """Die mid-run the way a Lambda does when it runs out of memory or time."""
    os._exit(17)


@task(name="tests.flaky")
def flaky(counter: str, fail_times: int, **_: Any) -> dict[str, int]:
    """Fail the first ``fail_times`` runs, counting runs in a file."""
    path = Path(counter)
    runs = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(runs))
    if runs <= fail_times:
        raise RuntimeError(f"flaky failure {runs}")
    return {"runs": runs}


@task(name="tests.record")
def record(path: str, value: str, **_: Any) -> str:
    """Append a line to a file: lets tests count exactly how often a job ran."""
    with open(path, "a") as fh:
        fh.write(value + "\n")
    return value


@task(name="tests.unserialisable")
def unserialisable(**_: Any) -> object:
    return object()


@task(name="tests.permanent")
def permanent(**_: Any) -> None:
    raise Permanent("no point retrying")


@task(name="tests.swallow", timeout=1)
def swallow(seconds: float = 5.0, **_: Any) -> str:
    """Tries to swallow the timeout with a broad except: it must still time out."""
    import time

    try:
        time.sleep(seconds)
    except Exception:  # noqa: BLE001 - the point of this task
        return "swallowed"
    return "finished"


@task(name="tests.nul_result")
def nul_result(**_: object) -> str:
    """A result jsonb cannot store: it must fail this job alone, not its batch."""
    return "a\x00b"


@task(name="tests.nul_error")
def nul_error(**_: object) -> None:
    raise RuntimeError("bad \x00 byte and a lone \ud800 surrogate")


@task(name="tests.exit")
def exit_(**_: object) -> None:
    """A task that calls sys.exit(): a failed job, not a stopped worker."""
    import sys

    sys.exit(3)


@task(name="tests.interrupt")
def interrupt(**_: object) -> None:
    """Ctrl-C arriving mid-task in a local drain."""
    raise KeyboardInterrupt


@task(name="tests.async_record")
async def async_record(path: str, value: str, seconds: float = 0.0, **_: Any) -> str:
    """The async twin of tests.record, after an awaited pause."""
    import asyncio

    await asyncio.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(value + "\n")
    return value


@task(name="tests.span")
def span(path: str, value: str, seconds: float = 0.05, **_: Any) -> str:
    """Record when the job started and ended ("value start end" per line), to see overlaps."""
    import time

    start = time.time()
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(f"{value} {start} {time.time()}\n")
    return value


@task(name="tests.span_alone", alone=True)
def span_alone(path: str, value: str, seconds: float = 0.05, **_: Any) -> str:
    """tests.span, asking to run with nothing else of its drain beside it."""
    return span(path, value, seconds)


@task(name="tests.hang")
def hang(marker: str, seconds: float = 2.0, **_: Any) -> str:
    """A blocking call that outlives its timeout on a thread, then finishes late."""
    import time

    time.sleep(seconds)
    Path(marker).write_text("finished late")
    return "late"


@task(name="tests.async_hang")
async def async_hang(marker: str, seconds: float = 30.0, **_: Any) -> str:
    """An awaited call that outlives its timeout: it must be cancelled."""
    import asyncio

    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        Path(marker).write_text("cancelled")
        raise
    return "finished"


@task(name="tests.interval")
def interval(path: str, tag: str, seconds: float = 0.2, **_: Any) -> str:
    """Record when this run starts, as it starts, and when it ends (wall-clock
    seconds, one line each, appended to a file shared by processes): a run
    killed midway has left its start."""
    import time

    with open(path, "a") as fh:
        fh.write(f"start {tag} {time.time():.6f}\n")
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(f"end {tag} {time.time():.6f}\n")
    return tag


@task(name="tests.segv")
def segv(path: str, tag: str, **_: Any) -> None:
    """Record that this run started (as tests.interval does), then die of
    SIGSEGV: what a task that runs out of memory on Lambda looks like."""
    import signal
    import time

    with open(path, "a") as fh:
        fh.write(f"start {tag} {time.time():.6f}\n")
    os.kill(os.getpid(), signal.SIGSEGV)


@task(name="tests.big_result")
def big_result(text: str = "x", times: int = 0, **_: Any) -> str:
    """Return ``text`` ``times`` over: a result whose JSON is 2 + times * len(text.encode()) bytes."""
    return text * times


@task(name="tests.deep_failure")
def deep_failure(depth: int | None = None, text: str = "", times: int = 0, **_: Any) -> None:
    """Fail ``depth`` pairs of calls deep (None: until Python's recursion limit,
    a RecursionError) with the message ``text`` ``times`` over: two functions
    calling each other, so Python cannot fold the traceback's repeated lines."""
    _down(depth, text * times)


def _down(depth: int | None, message: str) -> None:
    if depth == 0:
        raise RuntimeError(message)
    _down_again(depth, message)


def _down_again(depth: int | None, message: str) -> None:
    _down(None if depth is None else depth - 1, message)
