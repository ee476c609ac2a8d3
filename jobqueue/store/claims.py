"""A drain's statements: claim a batch, read it back after a lost answer, and
write outcomes, give jobs back or extend their leases, each for a whole batch
in one statement, each guarded by (state, attempt, worker) so that a drain
that lost a job can never overwrite the attempt that replaced it."""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ClaimLost, ConnectionLost, DatabaseUnavailable
from .connection import Database, Runner, run


def new_worker_id() -> str:
    """A drain's id: unique per drain, it is what every guarded write checks."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


@dataclass
class Claim:
    """What one claim took, and why it did not take more.

    ``rows`` are [id, task, payload, attempt, max_attempts, timeout, queue];
    ``deferred`` the queues whose next jobs need more time than was left;
    ``capped`` the queues at their concurrency or rate limit, ``wait`` the
    seconds until a rate window lets more start; ``parked`` how many jobs
    were set aside because no drain's budget can ever fit their timeout.
    """

    rows: list[list[Any]]
    deferred: list[str]
    capped: list[str]
    wait: float | None
    parked: int
    reclaimed: bool = False  # read back after a lost answer: every job the worker holds
    suspects: bool = False  # a suspect waits for a drain that runs it alone


def claim(
    db: Database | Runner,
    *,
    worker: str,
    limit: int,
    grace: float,
    fits: float,
    cap: float | None = None,
    park_seconds: float = 600.0,
    queues: Iterable[str] | None = None,
) -> Claim:
    """Lease up to ``limit`` due jobs whose timeout is at most ``fits`` seconds.

    Raises ClaimLost when the answer was lost and what the claim took could
    not be read back yet: call ``reclaim`` before claiming again.
    """
    params: dict[str, Any] = {"worker": worker, "limit": limit, "grace": grace, "fits": fits, "cap": cap}
    try:
        rows = run(
            db, "claim", resend=False, queues=None if queues is None else list(queues), park=park_seconds, **params
        )
    except ConnectionLost:
        return _read_back(db, worker, cap)
    answer = json.loads(rows[0][0])
    return Claim(answer["j"], answer["d"], answer["c"], answer["w"], answer["p"], suspects=rows[0][1])


def _read_back(db: Database | Runner, worker: str, cap: float | None) -> Claim:
    """After a claim whose answer was lost: it may have committed, and sending
    it again would take a second batch and strand the first until its leases
    ran out. Read back whatever this worker holds instead."""
    try:
        return reclaim(db, worker=worker, cap=cap)
    except DatabaseUnavailable as exc:
        raise ClaimLost(str(exc)) from None


def claim_alone(
    db: Database | Runner,
    *,
    worker: str,
    grace: float,
    fits: float,
    cap: float | None = None,
    queues: Iterable[str] | None = None,
) -> Claim:
    """Lease one suspect to run with nothing beside it; its slots now hold it alone.

    Only for a drain that holds no job and has written every outcome: a
    death from here on is this job's. A lost answer is handled as ``claim``'s.
    """
    try:
        rows = run(
            db, "claim_alone", resend=False, worker=worker, grace=grace, fits=fits, cap=cap,
            queues=None if queues is None else list(queues),
        )  # fmt: skip
    except ConnectionLost:
        return _read_back(db, worker, cap)
    answer = json.loads(rows[0][0])
    return Claim(answer["j"], [], [], None, 0)


def reclaim(db: Database | Runner, *, worker: str, cap: float | None = None) -> Claim:
    """Every job ``worker`` holds, as a claim (after a claim whose answer was
    lost), each with the timeout a drain whose whole budget is ``cap`` gives it."""
    answer = json.loads(run(db, "reclaim", worker=worker, cap=cap)[0][0])
    return Claim(answer["j"], [], [], None, 0, True)


def attempt_records(worker: str, ids: list[Any], attempts: list[int], **columns: list[str | None]) -> str:
    """One attempt per record, as the JSON array the outcome statements read
    (short keys, see queries.sql; a None value is left out, which reads as NULL).

    Written by hand rather than by json.dumps: the values are ids, integers
    and JSON texts already made (results, errors), and this runs per job.
    """
    who = json.dumps(worker)
    names = list(columns)
    parts = []
    for row in zip(ids, attempts, *columns.values(), strict=True):
        extra = "".join(f',"{n}":{v}' for n, v in zip(names, row[2:], strict=True) if v is not None)
        parts.append(f'{{"i":"{row[0]}","a":{int(row[1])},"w":{who}{extra}}}')
    return "[" + ",".join(parts) + "]"


def record(
    db: Database | Runner,
    *,
    worker: str,
    batch: str | None,
    slots: list[Any] | None = None,
    done: bool = False,
    every_held: bool = False,
) -> None:
    """Write outcomes (records as ``success_records`` and ``failure_records``
    make them, or None) and the drain's slots: the ids it may run until it
    writes again (None leaves them as they were), or, with ``every_held``,
    every job it holds now, however many (one word instead of their ids);
    ``done`` ends the drain, forgetting its slots."""
    if every_held:
        slots_json: str | None = '"all"'
    else:
        slots_json = None if slots is None else "[" + ",".join(f'"{i}"' for i in slots) + "]"
    run(db, "record", worker=worker, batch=batch, slots=slots_json, done=done)


def success_records(worker: str, ids: list[Any], attempts: list[int], results: list[str | None]) -> str:
    """Successes as records; ``results`` are JSON texts (None for no result)."""
    return attempt_records(worker, ids, attempts, r=results)


def failure_records(
    worker: str, ids: list[Any], attempts: list[int], finals: list[bool], delays: list[float], errors: list[str]
) -> str:
    """Failed attempts as records; ``errors`` are JSON texts, never null."""
    return attempt_records(
        worker,
        ids,
        attempts,
        f=["true" if f else "false" for f in finals],
        d=[repr(float(d)) for d in delays],
        e=errors,
    )


def complete(
    db: Database | Runner, *, worker: str, ids: list[Any], attempts: list[int], results: list[str | None]
) -> None:
    """Record successes; ``results`` are JSON texts (None for no result)."""
    record(db, worker=worker, batch=success_records(worker, ids, attempts, results))


def fail(
    db: Database | Runner,
    *,
    worker: str,
    ids: list[Any],
    attempts: list[int],
    finals: list[bool],
    delays: list[float],
    errors: list[str],
) -> None:
    """Record failed attempts; ``errors`` are JSON texts."""
    record(db, worker=worker, batch=failure_records(worker, ids, attempts, finals, delays, errors))


def release(db: Database | Runner, *, worker: str, ids: list[Any], attempts: list[int]) -> None:
    run(db, "release", batch=attempt_records(worker, ids, attempts))


def renew_leases(
    db: Database | Runner,
    *,
    worker: str,
    ids: list[Any],
    attempts: list[int],
    grace: float,
    waits: list[float] | None = None,
    timeouts: list[float] | None = None,
) -> set[str]:
    """Extend leases to timeout + grace (+ each job's wait); returns the ids
    still held. ``timeouts`` are the ones the jobs were claimed with (a job
    that names none runs with its drain's budget, which the row cannot tell)."""
    extra = {} if waits is None else {"x": [repr(float(w)) for w in waits]}
    if timeouts is not None:
        extra["t"] = [repr(float(t)) for t in timeouts]
    rows = run(db, "renew_leases", batch=attempt_records(worker, ids, attempts, **extra), grace=grace)
    return {row[0] for row in rows}
