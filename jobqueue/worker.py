"""The drain: claim due jobs in batches, run them, record outcomes in batches.

Throughput comes from doing per batch what naive queues do per job: one
statement claims a batch, one records its successes, one its failures. The
batch is sized to about a quarter second of work, so fast jobs go hundreds
at a time and slow ones one at a time, leaving the rest to other workers.

Correctness comes from the lease: a claimed job belongs to this worker until
its lease expires, and every write is guarded by the attempt it belongs to,
so a worker that lost a job cannot overwrite the attempt that replaced it.

During a drain the session commits asynchronously: a completion lost in a
database crash only means the job runs again after its lease (at-least-once),
while enqueues, outside drains, stay durable before they are acknowledged.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from . import db as dbmod
from . import log, queue, tasks
from .config import Settings
from .errors import JobTimeout, Permanent, UnknownTask
from .spec import json_storable

# Seconds kept back after the last job so its outcome can be written in time.
RECORD_MARGIN = 0.5
# Outcomes of slow jobs are written at least this often, not only per batch.
FLUSH_INTERVAL = 1.0
PRUNE_INTERVAL = 300.0
PRUNE_BATCH = 5000
_last_prune = 0.0

# How much work one claim takes, in seconds of expected run time. Claimed jobs
# wait their turn in this worker while other workers (other Lambdas) could run
# them, so batches shrink as jobs get slower: ~500 no-op jobs, ~25 jobs of
# 10 ms, one job of a second or more.
BATCH_SECONDS = 0.25
FIRST_BATCH = 20
# Mean run time per job, carried across invocations of a warm container.
_mean_job_seconds: float | None = None


@dataclass
class DrainReport:
    processed: int = 0
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    rescued: int = 0
    released: int = 0
    pruned: int = 0
    unfit: int = 0  # due jobs whose timeout exceeds the budget (they wait for a longer drain)
    stopped: str = "idle"  # idle | budget | max_jobs
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with 'equal jitter': in [d/2, d] for d = base * 2^(attempt-1).

    Half the delay is kept so retries never pile up at once; half is random so
    a burst of failures spreads out instead of retrying in lockstep.
    """
    ceiling = min(cap, base * (2 ** min(attempt - 1, 62)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def batch_limit(ceiling: int) -> int:
    """Claim size for the next batch from the mean job time seen so far."""
    if _mean_job_seconds is None:
        return min(FIRST_BATCH, ceiling)
    return max(1, min(ceiling, int(BATCH_SECONDS / max(_mean_job_seconds, 1e-6))))


def _observe(jobs: int, seconds: float) -> None:
    global _mean_job_seconds
    if jobs:
        mean = seconds / jobs
        _mean_job_seconds = mean if _mean_job_seconds is None else 0.5 * _mean_job_seconds + 0.5 * mean


def new_worker_id() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


class _Outcomes:
    """Outcomes waiting to be written, as the column arrays the SQL takes."""

    def __init__(self) -> None:
        self.ok_ids: list[Any] = []
        self.ok_attempts: list[int] = []
        self.ok_results: list[str | None] = []
        self.bad_ids: list[Any] = []
        self.bad_attempts: list[int] = []
        self.bad_finals: list[bool] = []
        self.bad_delays: list[float] = []
        self.bad_errors: list[str] = []
        self.since = 0.0

    def __len__(self) -> int:
        return len(self.ok_ids) + len(self.bad_ids)

    def flush(self, db: dbmod.Database, worker: str) -> None:
        if self.ok_ids:
            queue.complete(db, worker=worker, ids=self.ok_ids, attempts=self.ok_attempts, results=self.ok_results)
        if self.bad_ids:
            queue.fail(
                db,
                worker=worker,
                ids=self.bad_ids,
                attempts=self.bad_attempts,
                finals=self.bad_finals,
                delays=self.bad_delays,
                errors=self.bad_errors,
            )
        self.__init__()


def drain(
    db: dbmod.Database | None = None,
    *,
    budget_seconds: float | None = None,
    queues: Iterable[str] | None = None,
    max_jobs: int | None = None,
    settings: Settings | None = None,
    batch_size: int | None = None,
) -> DrainReport:
    """Run due jobs until none is due, the budget is spent, or max_jobs ran.

    ``budget_seconds`` is the time this call may take (a Lambda's remaining
    time); it never claims a job whose timeout does not fit in what is left.
    """
    db = db or dbmod.default()
    settings = settings or Settings.from_env()
    queues = None if queues is None else list(queues)
    grace = settings.lease_grace_seconds
    started = time.monotonic()
    deadline = float("inf") if budget_seconds is None else started + budget_seconds - settings.drain_safety_ms / 1000
    worker = new_worker_id()
    report = DrainReport()
    rescued = queue.rescue(db)
    report.rescued = rescued["pending"] + rescued["failed"]
    outcomes = _Outcomes()
    logging_jobs = log.enabled("INFO")
    db.execute("SET synchronous_commit TO off")
    batch: _Batch | None = None
    try:
        from .timeouts import alarms

        with alarms() as call:
            while True:
                if max_jobs is not None and report.processed >= max_jobs:
                    report.stopped = "max_jobs"
                    break
                fits = deadline - time.monotonic() - RECORD_MARGIN
                if fits <= 0:
                    report.stopped = "budget"
                    break
                limit = batch_size or batch_limit(settings.drain_batch_size)
                if max_jobs is not None:
                    limit = min(limit, max_jobs - report.processed)
                claimed_at = time.monotonic()
                rows = queue.claim(db, worker=worker, limit=limit, grace=grace, max_timeout=fits, queues=queues)
                if not rows:
                    report.stopped = "idle"
                    break
                batch = _Batch(rows, claimed_at, grace)
                done_before = report.processed
                for i, (job_id, name, payload, attempt, max_attempts, timeout) in enumerate(rows):
                    now = time.monotonic()
                    if now + timeout > deadline - RECORD_MARGIN:
                        report.released += batch.release_rest(db, worker, i)
                        report.stopped = "budget"
                        break
                    if batch.lease_floor(i) < now + timeout + 1.0:
                        # The jobs still waiting, this one included, must
                        # outlive this job's run: extend them by its timeout.
                        outcomes.flush(db, worker)
                        batch.renew_rest(db, worker, i, extra=timeout)
                    if job_id in batch.lost:
                        continue  # its lease ran out and another worker owns it now
                    batch.next = i + 1
                    if not outcomes:
                        outcomes.since = now
                    _run_one(
                        call,
                        settings,
                        outcomes,
                        report,
                        job_id,
                        name,
                        payload,
                        attempt,
                        max_attempts,
                        timeout,
                        logging_jobs,
                    )
                    if time.monotonic() - outcomes.since > FLUSH_INTERVAL:
                        outcomes.flush(db, worker)
                _observe(report.processed - done_before, time.monotonic() - claimed_at)
                outcomes.flush(db, worker)
                batch = None
                if report.stopped == "budget":
                    break
    finally:
        try:
            if batch is not None:  # leaving mid-batch on an error: give back what never started
                batch.release_rest(db, worker, batch.next, quiet=True)
            outcomes.flush(db, worker)
        finally:
            db.execute("SET synchronous_commit TO DEFAULT")
    if report.stopped == "idle":
        report.unfit = queue.count_unfit(db, max_timeout=deadline - time.monotonic() - RECORD_MARGIN, queues=queues)
        if report.unfit:
            log.warning(
                "jobs_exceed_budget",
                count=report.unfit,
                message="due jobs have a timeout longer than a drain's time budget: raise the function's "
                "timeout or lower theirs",
            )
        report.pruned = _maybe_prune(db, settings, deadline)
    report.seconds = round(time.monotonic() - started, 3)
    return report


class _Batch:
    """The claimed rows of one batch and what this worker knows of their leases."""

    def __init__(self, rows: list[list[Any]], claimed_at: float, grace: float) -> None:
        self.rows = rows
        self.grace = grace
        self.next = 0  # rows before this one have started
        self.lost: set[str] = set()
        # A lease ends no sooner than the claim was sent plus timeout plus grace.
        self._set_floors(0, [claimed_at + row[5] + grace for row in rows])

    def _set_floors(self, start: int, leases: list[float]) -> None:
        """Suffix minima: _floor[k] is the earliest lease end among rows[k:]."""
        floors = [0.0] * len(leases)
        low = float("inf")
        for k in range(len(leases) - 1, -1, -1):
            low = min(low, leases[k])
            floors[k] = low
        self._floor = getattr(self, "_floor", [])[:start] + floors

    def lease_floor(self, i: int) -> float:
        return self._floor[i]

    def renew_rest(self, db: dbmod.Database, worker: str, i: int, *, extra: float) -> None:
        rest = self.rows[i:]
        renewed_at = time.monotonic()
        waits = [0.0] + [extra] * (len(rest) - 1)  # the first runs now; the others after it
        renewed = queue.renew_leases(
            db, worker=worker, ids=[r[0] for r in rest], attempts=[r[3] for r in rest], grace=self.grace, waits=waits
        )
        self.lost.update(r[0] for r in rest if r[0] not in renewed)
        self._set_floors(i, [renewed_at + r[5] + self.grace + w for r, w in zip(rest, waits, strict=True)])

    def release_rest(self, db: dbmod.Database, worker: str, i: int, *, quiet: bool = False) -> int:
        rest = [r for r in self.rows[i:] if r[0] not in self.lost]
        self.next = len(self.rows)
        if not rest:
            return 0
        try:
            queue.release(db, worker=worker, ids=[r[0] for r in rest], attempts=[r[3] for r in rest])
        except Exception:
            if not quiet:
                raise
        return len(rest)


def _run_one(
    call: Any,
    settings: Settings,
    outcomes: _Outcomes,
    report: DrainReport,
    job_id: Any,
    name: str,
    payload: Any,
    attempt: int,
    max_attempts: int,
    timeout: float,
    logging_jobs: bool,
) -> None:
    t0 = time.perf_counter()
    try:
        result = call(tasks.get(name).func, payload, timeout)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise  # the operator stopping a local drain; the batch's rest is given back
        # SystemExit too: a task calling sys.exit() has failed, the worker has not.
        final = attempt >= max_attempts or isinstance(exc, Permanent)
        _failed(settings, outcomes, report, job_id, name, attempt, exc, final, t0)
        return
    result_json = None if result is None else _result_json(result)
    if result is not None and result_json is None:
        # The same code would return the same value: retrying cannot help, and
        # the whole batch's write must not fail on one job's result.
        exc = TypeError(f"the task's result ({type(result).__name__}) is not storable JSON")
        _failed(settings, outcomes, report, job_id, name, attempt, exc, True, t0)
        return
    outcomes.ok_ids.append(job_id)
    outcomes.ok_attempts.append(attempt)
    outcomes.ok_results.append(result_json)
    report.processed += 1
    report.succeeded += 1
    if logging_jobs:
        log.info(
            "job",
            job_id=str(job_id),
            task=name,
            attempt=attempt,
            outcome="succeeded",
            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
        )


def _result_json(result: Any) -> str | None:
    """The result as JSON that jsonb accepts, or None when there is no such JSON."""
    try:
        text = json.dumps(result, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if json_storable(text) else None


def _failed(
    settings: Settings,
    outcomes: _Outcomes,
    report: DrainReport,
    job_id: Any,
    name: str,
    attempt: int,
    exc: BaseException,
    final: bool,
    t0: float,
) -> None:
    delay = 0.0 if final else backoff(attempt, settings.retry_base_seconds, settings.retry_max_seconds)
    outcomes.bad_ids.append(job_id)
    outcomes.bad_attempts.append(attempt)
    outcomes.bad_finals.append(final)
    outcomes.bad_delays.append(delay)
    outcomes.bad_errors.append(json.dumps(_error_entry(exc, attempt), default=str))
    report.processed += 1
    if final:
        report.failed += 1
    else:
        report.retried += 1
    log.emit(
        "ERROR" if final else "WARNING",
        "job",
        job_id=str(job_id),
        task=name,
        attempt=attempt,
        outcome="failed" if final else "retry",
        error=_clean(f"{type(exc).__name__}: {exc}")[:500],
        retry_in=None if final else round(delay, 3),
        duration_ms=round((time.perf_counter() - t0) * 1000, 3),
    )


def _clean(text: str) -> str:
    """Text jsonb can store: no NUL, no lone surrogates (an error message may hold either)."""
    text = text.replace("\x00", "\ufffd")
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _error_entry(exc: BaseException, attempt: int) -> dict[str, Any]:
    if isinstance(exc, JobTimeout):
        kind, message = "JobTimeout", "job exceeded its timeout"
    elif isinstance(exc, UnknownTask):
        kind, message = "UnknownTask", f"{exc.message} (is its module in JOBQUEUE_TASK_MODULES?)"
    else:
        kind, message = type(exc).__name__, str(exc)
    # The API returns tracebacks: name each file relative to the sys.path entry it
    # was imported from (jobqueue/worker.py, mytasks.py), never the server's paths.
    import re
    import sys

    roots = sorted({os.path.join(os.path.abspath(p), "") for p in sys.path}, key=len, reverse=True)

    def relative(match: re.Match[str]) -> str:
        path = match.group(1)
        root = next((r for r in roots if path.startswith(r)), None)
        shown = path[len(root) :] if root else os.path.basename(path)
        return f'File "{shown}"'

    text = "".join(traceback.format_exception(exc))
    return {
        "attempt": attempt,
        "at": datetime.now(timezone.utc).isoformat(),
        "type": kind,
        "message": _clean(message[:2000]),
        "traceback": _clean(re.sub(r'File "(/[^"]*)"', relative, text)[-4000:]),
    }


def _maybe_prune(db: dbmod.Database, settings: Settings, deadline: float) -> int:
    """Prune at most every few minutes per container, so an idle drain stays
    cheap, but keep going while whole batches come back and time is left, so
    pruning keeps up with any rate of finished jobs."""
    global _last_prune
    now = time.monotonic()
    if now - _last_prune < PRUNE_INTERVAL:
        return 0
    _last_prune = now
    pruned = 0
    while True:
        deleted = queue.prune(db, settings.retention_days * 86400, limit=PRUNE_BATCH)
        pruned += deleted
        if deleted < PRUNE_BATCH or time.monotonic() > deadline - 1.0:
            return pruned
