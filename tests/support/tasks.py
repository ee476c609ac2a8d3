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


# --- durable tasks ------------------------------------------------------------------------


def _append(path: str, line: str) -> str:
    with open(path, "a") as fh:
        fh.write(line + "\n")
    return line


@task(name="tests.durable_steps")
def durable_steps(path: str, crash_marker: str | None = None, job: Any = None, **_: Any) -> list[str]:
    """Three steps that each log a side effect; the first run dies after the
    second step when ``crash_marker`` names a file that does not exist yet."""
    done = [job.step("a", _append, path, "a"), job.step("b", _append, path, "b")]
    if crash_marker and not os.path.exists(crash_marker):
        Path(crash_marker).write_text("crashed")
        os._exit(17)
    done.append(job.step("c", _append, path, "c"))
    return done


@task(name="tests.durable_sleeps")
def durable_sleeps(seconds: float = 0.2, times: int = 1, path: str | None = None, job: Any = None, **_: Any) -> int:
    for i in range(times):
        job.sleep(f"sleep-{i}", seconds=seconds)
        if path:
            job.step(f"log-{i}", _append, path, f"woke {i}")
    return times


@task(name="tests.durable_wait")
def durable_wait(name: str = "go", timeout: float | None = None, job: Any = None, **_: Any) -> Any:
    from jobqueue import WaitTimeout

    try:
        return {"got": job.wait_for(name, timeout=timeout)}
    except WaitTimeout as exc:
        return {"timed_out": str(exc)}


@task(name="tests.durable_snooze", max_attempts=1)
def durable_snooze(path: str, sleeps: int = 3, snoozes: int = 5, job: Any = None, **_: Any) -> int:
    """Sleeps and snoozes, with one attempt: none of them may count as one."""
    from jobqueue import Snooze

    for i in range(sleeps):
        job.sleep(f"sleep-{i}", seconds=0.05)
    runs = len(Path(path).read_text().splitlines()) if os.path.exists(path) else 0
    _append(path, "run")
    if runs < snoozes:
        raise Snooze(0.05)
    return runs


@task(name="tests.durable_progress")
def durable_progress(times: int = 1000, seconds: float = 10.0, job: Any = None, **_: Any) -> int:
    import time

    for i in range(times):
        job.progress((i + 1) / times, f"{i + 1} of {times}")
        time.sleep(seconds / times)
    return times


@task(name="tests.durable_cancellable")
def durable_cancellable(path: str, seconds: float = 30.0, job: Any = None, **_: Any) -> str:
    """Steps of 50 ms until cancelled (the next step raises Cancelled)."""
    import time

    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        job.step(f"tick-{i}", time.sleep, 0.05)
        i += 1
    return _append(path, "finished")


@task(name="tests.durable_async")
async def durable_async(path: str, job: Any = None, **_: Any) -> str:
    import asyncio

    async def effect(line: str) -> str:
        await asyncio.sleep(0)
        return _append(path, line)

    first = await job.step("first", effect, "first")
    await job.sleep("nap", seconds=0.1)
    second = await job.step("second", effect, "second")
    return f"{first}+{second}"


@task(name="tests.durable_twice")
def durable_twice(job: Any = None, **_: Any) -> None:
    job.step("same", lambda: 1)
    job.step("same", lambda: 2)


@task(name="tests.durable_big_step")
def durable_big_step(size: int, job: Any = None, **_: Any) -> None:
    job.step("big", lambda: "x" * size)


# --- workflow tasks -----------------------------------------------------------------------


@task(name="tests.flow_node")
def flow_node(path: str, name: str, seconds: float = 0.05, fail: bool = False, job: Any = None, **_: Any) -> str:
    """Record "name start end parents" (wall-clock seconds, parents as JSON)
    as one line, so a test can prove the order from the tasks' own clocks."""
    import json
    import time

    parents = job.parents
    start = time.time()
    time.sleep(seconds)
    if fail:
        raise Permanent(f"{name} fails")
    _append(path, f"{name} {start:.6f} {time.time():.6f} {json.dumps(parents, sort_keys=True)}")
    return name
