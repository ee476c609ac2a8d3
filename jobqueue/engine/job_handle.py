"""``jobqueue.Job``: a durable task's handle on the job it runs.

A durable job resumes by running its function again from the top. What it
did before is in its row: a completed step returns its checkpointed result
without running, a finished sleep returns at once, a wait returns the signal
it received. So code between steps runs on every resumption and must be
deterministic and free of side effects; a step's side effect happens once
per checkpoint (after a crash before the checkpoint, it runs again).

The handle talks to PostgreSQL on a connection of its own, shared by the
drain's durable jobs under a lock (the drain's own connection belongs to the
drain's thread). It is opened on the first durable call, so a drain of plain
jobs never opens it.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from .. import rules
from ..errors import Cancelled, DurableError, LeaseLost, Suspended, WaitTimeout
from ..store import durable
from ..store.connection import Database, Runner

PROGRESS_EVERY = 1.0  # seconds: at most one progress write per job in this time
MAX_PROGRESS_MESSAGE = 1000
MAX_NAME = 200


class Link:
    """The durable jobs' connection, one per process and database, under a lock."""

    _links: dict[Any, Link] = {}
    _guard = threading.Lock()

    def __init__(self, db: Database | Runner) -> None:
        self.db = db
        self.lock = threading.Lock()

    @classmethod
    def to(cls, db: Database | Runner) -> Link:
        """A link beside the drain's connection ``db``: to the same database."""
        key = db.settings if isinstance(db, Database) else id(db)
        with cls._guard:
            link = cls._links.get(key)
            if link is None:
                side = Database(db.settings) if isinstance(db, Database) else db
                link = cls._links[key] = Link(side)
            return link

    def call(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            try:
                return action(self.db, *args, **kwargs)
            except BaseException as exc:
                # A timeout's alarm may land mid-statement, leaving the
                # connection half-way through the protocol: start afresh.
                if not isinstance(exc, Exception) and isinstance(self.db, Database):
                    self.db.close()
                raise


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%f}Z"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Job:
    """The job a durable task runs: steps, sleeps, waits, progress and cancel.

    ``job.step(name, fn, *args)`` runs ``fn`` once and checkpoints its JSON
    result; ``job.sleep(name, seconds=)`` and ``job.wait_for(name, timeout=)``
    end the run (the job waits, no Lambda runs for it) and return when it
    resumes; ``job.progress(value, message)`` is shown on the job;
    ``job.cancel_requested`` turns true when a cancel reaches the running job.
    """

    def __init__(
        self,
        job_id: str,
        attempt: int,
        worker: str,
        *,
        task: str,
        queue: str,
        link: Link,
        max_value_bytes: int,
    ) -> None:
        self.id = job_id
        self.attempt = attempt
        self.task = task
        self.queue = queue
        self._run = (job_id, attempt, worker)
        self._link = link
        self._max_bytes = max_value_bytes
        self._cancel = threading.Event()
        self._seen: set[str] = set()
        self._steps: dict[str, Any] | None = None
        self._signals: dict[str, Any] = {}
        self._progress: dict[str, Any] | None = None
        self._progress_written_at = -math.inf
        self._progress_pending = False
        self._parents: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, task={self.task!r}, attempt={self.attempt})"

    # --- workflows ----------------------------------------------------------------

    @property
    def parents(self) -> dict[str, Any]:
        """The jobs this one waited for (depends_on, after, or a batch's then):
        by key within a batch, else by id; each its result if it succeeded,
        else ``{"state", "error"}``. Read once per run."""
        if self._parents is None:
            self._parents = self._link.call(durable.parents, self.id)
        return self._parents

    # --- cancel -------------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        """True once POST /jobs/{id}/cancel reached this job while it runs."""
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        """The drain saw a cancel for this job (the task does not call this)."""
        self._cancel.set()

    # --- steps --------------------------------------------------------------------

    def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once for this job and return its result,
        checkpointed (as JSON) before this returns; on a resumption, the
        checkpointed result, without running ``fn``. An exception from ``fn``
        fails this attempt as any task error does; steps completed before it
        stay completed."""
        entry = self._begin(name)
        if entry is not None and "r" in entry:
            return entry["r"]
        result = fn(*args, **kwargs)
        return self._complete(name, result)

    def _begin(self, name: str) -> dict[str, Any] | None:
        """Check the name and the cancel, and return the name's checkpoint."""
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise DurableError(f"a step name must be text of 1 to {MAX_NAME} characters, got {name!r}"[:300])
        if name in self._seen:
            raise DurableError(f"step name {name!r} is used twice in one run of job {self.id}: names must be unique")
        self._seen.add(name)
        if self._cancel.is_set():
            raise Cancelled(f"cancelled while it ran, before step {name!r}")
        return self._state().get(name)

    def _complete(self, name: str, result: Any) -> Any:
        try:
            text = json.dumps(result, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise DurableError(f"step {name!r} returned a value that is not JSON: {exc}") from None
        if not rules.json_storable(text):
            raise DurableError(f"step {name!r} returned text with a NUL character or an unpaired surrogate")
        if len(text.encode()) > self._max_bytes:
            raise DurableError(
                f"step {name!r} returned {len(text.encode()):,} bytes of JSON, over the limit of "
                f"{self._max_bytes:,} (JOBQUEUE_MAX_BODY_BYTES): checkpoints are never truncated"
            )
        stored = json.loads(text)
        entry = {"r": stored, "at": _iso(_now())}
        if not self._link.call(durable.checkpoint, self._run, name, entry):
            raise LeaseLost(f"job {self.id} is no longer held by this run")
        self._state()[name] = entry
        return stored

    def _state(self) -> dict[str, Any]:
        if self._steps is None:
            self._read()
        return self._steps or {}

    def _read(self) -> bool:
        """Read the job's checkpoints and signals again; True when the run still holds it."""
        self._steps, self._signals, cancel, held = self._link.call(durable.state, self._run)
        if cancel:
            self._cancel.set()
        return held

    # --- suspension ---------------------------------------------------------------

    def sleep(self, name: str, *, seconds: float) -> None:
        """Sleep ``seconds`` without a running Lambda: the run ends here and the
        job resumes (from the top) once the time has come. A sleep is named as
        a step is; on resumption it returns at once."""
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds):
            raise DurableError(f"sleep {name!r}: seconds must be a number, got {seconds!r}")
        entry = self._begin(name)
        now = _now()
        until = _parse(entry["until"]) if entry and "until" in entry else now + timedelta(seconds=max(0.0, seconds))
        if until <= now:
            if not entry:
                self._checkpoint(name, {"until": _iso(until), "at": _iso(now)})
            return
        self._suspend(name, {"until": _iso(until), "at": (entry or {}).get("at", _iso(now))}, until, None)

    def wait_for(self, name: str, *, timeout: float | None = None) -> Any:
        """Wait for the signal ``name`` (POST /jobs/{id}/signals/{name}) without
        a running Lambda, and return its JSON value. A signal that came before
        the wait is taken at once. After ``timeout`` seconds without one,
        raises WaitTimeout (and does so again on every later resumption)."""
        if timeout is not None and (
            not isinstance(timeout, int | float) or isinstance(timeout, bool) or not math.isfinite(timeout)
        ):
            raise DurableError(f"wait_for {name!r}: timeout must be a number of seconds or None, got {timeout!r}")
        entry = self._begin(name)
        if entry is not None and "r" in entry:
            return entry["r"]
        if entry is not None and entry.get("timed_out"):
            raise WaitTimeout(f"no signal {name!r} came within the wait's timeout")
        now = _now()
        if name in self._signals:
            return self._take_signal(name, now)
        if entry is not None and entry.get("timeout_at"):
            timeout_at: datetime | None = _parse(entry["timeout_at"])
        else:
            timeout_at = None if timeout is None else now + timedelta(seconds=max(0.0, timeout))
        if timeout_at is not None and timeout_at <= now:
            self._checkpoint(name, {"timed_out": True, "at": _iso(now)})
            raise WaitTimeout(f"no signal {name!r} came within {timeout if timeout is not None else 'its'} s")
        began = (entry or {}).get("at", _iso(now))
        record = {"timeout_at": None if timeout_at is None else _iso(timeout_at), "at": began}
        self._suspend(name, record, timeout_at, name)
        return self._take_signal(name, now)  # the signal came as the run was about to wait

    def _take_signal(self, name: str, now: datetime) -> Any:
        found, value = self._link.call(durable.consume_signal, self._run, name, _iso(now))
        if not found:
            raise LeaseLost(f"job {self.id} is no longer held by this run")
        self._state()[name] = {"r": value, "at": _iso(now)}
        self._signals.pop(name, None)
        return value

    def _checkpoint(self, name: str, entry: dict[str, Any]) -> None:
        if not self._link.call(durable.checkpoint, self._run, name, entry):
            raise LeaseLost(f"job {self.id} is no longer held by this run")
        self._state()[name] = entry

    def _suspend(self, name: str, entry: dict[str, Any], until: datetime | None, signal: str | None) -> None:
        """End the run: the job waits. Returns only when the awaited signal has
        already come (the caller then takes it)."""
        self.flush_progress()
        waiting_for: dict[str, Any] = (
            {"sleep_until": _iso(until)} if signal is None else {"signal": signal, "timeout_at": entry["timeout_at"]}
        )
        until_text = None if until is None else _iso(until)
        if self._link.call(
            durable.suspend, self._run, name=name, entry=entry, until=until_text, waiting_for=waiting_for, signal=signal
        ):
            raise Suspended(f"job {self.id} waits: {waiting_for}")
        held = self._read()
        if not held:
            raise LeaseLost(f"job {self.id} is no longer held by this run")
        if self._cancel.is_set():
            raise Cancelled("cancelled while it ran")
        if signal is None or signal not in self._signals:
            raise LeaseLost(f"job {self.id} could not be suspended")  # not reached: the guard names every case

    # --- progress -----------------------------------------------------------------

    def progress(self, value: float, message: str | None = None) -> None:
        """Report how far the job has come (any number; 0 to 1 draws a bar).
        Cheap in a loop: written at most once a second, and the last value is
        always written before the run ends."""
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise DurableError(f"progress must be a finite number, got {value!r}"[:300])
        if message is not None and not isinstance(message, str):
            raise DurableError(f"a progress message must be text, got {type(message).__name__}")
        self._progress = {"value": value, "message": None if message is None else message[:MAX_PROGRESS_MESSAGE]}
        self._progress_pending = True
        if time.monotonic() - self._progress_written_at >= PROGRESS_EVERY:
            self.flush_progress()

    def flush_progress(self) -> None:
        """Write the last progress reported, if not yet written."""
        if not self._progress_pending or self._progress is None:
            return
        self._progress_pending = False
        self._progress_written_at = time.monotonic()
        self._link.call(durable.progress, self._run, {**self._progress, "at": _iso(_now())})


class AsyncJob(Job):
    """The handle of an ``async def`` durable task: the same calls, awaited.
    Database calls run on a thread, so the event loop keeps serving other jobs."""

    async def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        entry = await asyncio.to_thread(self._begin, name)
        if entry is not None and "r" in entry:
            return entry["r"]
        result = fn(*args, **kwargs)
        if asyncio.iscoroutine(result):
            result = await result
        return await asyncio.to_thread(self._complete, name, result)

    async def sleep(self, name: str, *, seconds: float) -> None:  # type: ignore[override]
        await asyncio.to_thread(Job.sleep, self, name, seconds=seconds)

    async def wait_for(self, name: str, *, timeout: float | None = None) -> Any:  # type: ignore[override]
        return await asyncio.to_thread(Job.wait_for, self, name, timeout=timeout)
