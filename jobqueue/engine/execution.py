"""Running one job: in the drain's own thread, on a thread of its own, or on
the event loop, and telling the drain when it has finished.

Plain functions that are fast (or must run alone) run in the drain's thread:
no hand-over costs anything, and a real-time alarm interrupts them at their
timeout, blocking calls included. Slower plain functions run on threads, so
that I/O-bound jobs overlap; a thread cannot be killed, so one that outlives
its timeout is recorded as timed out at its deadline and abandoned (its late
result is dropped, and the attempt guard would refuse it anyway). ``async def``
tasks run on one event loop per process and are cancelled at their timeout.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import JobTimeout

# A coroutine is cancelled at its timeout; if it ignores the cancellation this
# much longer, the drain records the timeout itself and moves on.
CANCEL_GRACE = 0.5


class Finished:
    """A job's outcome as the drain receives it: a result or an error, and its run time."""

    __slots__ = ("error", "job", "result", "seconds")

    def __init__(self, job: Any, result: Any, error: BaseException | None, seconds: float) -> None:
        self.job = job
        self.result = result
        self.error = error
        self.seconds = seconds


class Executor:
    """Starts jobs off the drain's thread and hands back what finished, in order of finishing."""

    def __init__(self) -> None:
        self._done: queue.SimpleQueue[Finished] = queue.SimpleQueue()

    def start_thread(self, job: Any, func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        threading.Thread(target=self._run_sync, args=(job, func, kwargs), name="jobqueue-job", daemon=True).start()

    def _run_sync(self, job: Any, func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        try:
            result, error = func(**kwargs), None
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: the job failed, not the worker
            result, error = None, exc
        self._done.put(Finished(job, result, error, time.perf_counter() - t0))

    def start_async(self, job: Any, func: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> None:
        asyncio.run_coroutine_threadsafe(self._run_async(job, func, kwargs, timeout), event_loop())

    async def _run_async(self, job: Any, func: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> None:
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()

        def stoppable(task: asyncio.Future[Any]) -> None:
            job.stop = lambda: loop.call_soon_threadsafe(task.cancel)

        result, error = await run_coroutine(func, kwargs, timeout, stoppable)
        self._done.put(Finished(job, result, error, time.perf_counter() - t0))

    def wait(self, timeout: float) -> list[Finished]:
        """What finished, waiting up to ``timeout`` seconds for the first."""
        finished = []
        try:
            finished.append(self._done.get(timeout=max(0.0, timeout)) if timeout > 0 else self._done.get_nowait())
            while True:
                finished.append(self._done.get_nowait())
        except queue.Empty:
            pass
        return finished


async def run_coroutine(
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    timeout: float,
    started: Callable[[asyncio.Future[Any]], None] | None = None,
) -> tuple[Any, BaseException | None]:
    """Await the task's coroutine for at most ``timeout`` seconds, cancelling it
    then; a TimeoutError the task raises itself stays the task's own error.
    ``started`` is given the running task (so a cancel can reach it)."""
    try:
        task = asyncio.ensure_future(func(**kwargs))
    except BaseException as exc:  # noqa: BLE001 - calling it failed: the job failed
        return None, exc
    if started is not None:
        started(task)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_GRACE)
        return None, JobTimeout("job exceeded its timeout")
    try:
        return task.result(), None
    except BaseException as exc:  # noqa: BLE001 - CancelledError and SystemExit too
        return None, exc


def call_async_here(func: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> Any:
    """Run an async task from the drain's thread and wait for it (a drain of one job at a time)."""
    future = asyncio.run_coroutine_threadsafe(run_coroutine(func, kwargs, timeout), event_loop())
    try:
        result, error = future.result(timeout + CANCEL_GRACE + 1.0)
    except TimeoutError:
        raise JobTimeout("job exceeded its timeout") from None
    if error is not None:
        raise error
    return result


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_guard = threading.Lock()


def event_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for async tasks, running on a daemon thread,
    started on first use (a forked child starts its own)."""
    global _loop, _loop_pid
    with _loop_guard:
        if _loop is None or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="jobqueue-asyncio", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop
