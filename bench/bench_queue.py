"""Benchmark jobqueue against two baselines measured in the same run.

What it answers: how many no-op jobs per second does jobqueue enqueue (one
by one and in batches) and drain (1 and 4 worker processes) on a given
PostgreSQL, and how many database transactions a drain commits per job,
next to

* raw SQL: the very claim / record / enqueue statements jobqueue runs
  (from jobqueue/store/sql/queries.sql), issued by a bare pg8000 loop. The gap
  between jobqueue and this row is what jobqueue's Python layer costs.
* PgQueuer 1.6 (bench/pgqueuer_baseline.py, run with the .bench-venv
  interpreter): the reference the project's targets are set against.

Runs are interleaved (jobqueue, raw, PgQueuer, jobqueue, raw, ...) so that
a slow minute on the machine hits every system alike, and medians are
reported. Every drain starts with N pending jobs in a freshly truncated
and ANALYZEd table, starts its workers and connects them first, then
releases them together and stops the clock when no job is left pending or
running (polled every 20 ms), exactly as the PgQueuer baseline does; or,
with --done-by workers, when the workers have reported every job done, so
that no query of the harness's own competes with the drain (what
bench_regression.py uses to compare two trees of jobqueue alike).

Transactions per job: the bench database's xact_commit (pg_stat_database,
read from the --db-name database so the reads are not counted) before the
workers start and after they have exited, less the harness's own statements,
divided by the jobs. On PostgreSQL 15+ every session in the bench database
forces its statistics out first (pg_stat_force_next_flush), so the count is
exact; older servers are read until the count stops moving. The count covers
the drain's window and its tail: workers that ran out of jobs run empty
drains until the last job is done, as the drain loop does in every tree.

--job-seconds S measures jobqueue's drains on real, if short, jobs: the
built-in task `sleep` with payload {"seconds": S} instead of `noop`, which
then run in the drain's slots (JOBQUEUE_CONCURRENCY, --concurrency) rather
than inline. The raw loop and PgQueuer have no such task and are skipped.

JOBQUEUE_BENCH_TREE names another checkout whose jobqueue package is
measured with this harness (bench_regression.py sets it).

jobqueue's tables live in their own database (default jobqueue_bench,
created when missing); the bench drops and re-migrates them at start and
truncates them between measurements, so it never touches real data.

Setup and usage (from the repository root):
    bash bench/setup_env.sh              # PgQueuer's venv, once
    .venv/bin/python bench/bench_queue.py --jobs 20000 --runs 3
    .venv/bin/python bench/bench_queue.py --only baselines
    .venv/bin/python bench/bench_queue.py --only ours --job-seconds 0.005 --jobs 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from queue import Empty
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TREE = Path(os.environ.get("JOBQUEUE_BENCH_TREE") or ROOT)  # whose jobqueue package is measured
if str(TREE) not in sys.path:
    sys.path.insert(0, str(TREE))

import common  # noqa: E402 - after the path fix-up, like the package imports below

BENCH_VENV_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
PGQUEUER_SCRIPT = ROOT / "bench" / "pgqueuer_baseline.py"
POLL_SECONDS = 0.02
UNFINISHED = "SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE state IN ('pending', 'running'))"
SUCCEEDED = "SELECT count(*) FROM jobs WHERE state = 'succeeded'"
# The batch statement's parameters beside its records ("batch"): what every job
# of a batch has alike (see enqueue_many in queries.sql).
BATCH_SHARED = ("queue", "task", "max_attempts", "timeout")
METRICS = ("enqueue_single", "enqueue_batch", "drain_1", "drain_4")
# Database transactions committed per job by each drain (see Transactions).
XACT_METRICS = ("drain_1_xacts", "drain_4_xacts")


# --------------------------------------------------------------------------
# Shared plumbing


def _new_id() -> str:
    """A job id made as jobqueue makes it (UUIDv7), so index locality matches."""
    return common.jobqueue_parts().uuid7()


def _noop_row() -> dict[str, Any]:
    """The single enqueue's parameters for a "noop" job with no options, as
    jobqueue sends them (the task's defaults; a delay in microseconds), so
    the raw baseline inserts exactly the rows jobqueue would."""
    parts = common.jobqueue_parts()
    parts.load_modules([])
    r = parts.JobSpec(task="noop").resolve()
    return {
        "queue": r.queue,
        "task": r.task,
        "priority": r.priority,
        "run_at": None,
        "delay": 0,
        "max_attempts": r.max_attempts,
        "timeout": r.timeout_seconds,
        "idempotency_key": None,
    }


def _reset(conn: Any) -> None:
    conn.run("TRUNCATE jobs")


def _prepare_schema(conn: Any) -> None:
    """Drop and re-create jobqueue's tables in the bench database.

    Re-creating (not only migrating) keeps the bench honest while migration
    files are still edited in place before a release.
    """
    # Everything the migrations made (tables, functions, triggers): the bench
    # database holds nothing else.
    conn.run("DROP SCHEMA public CASCADE")
    conn.run("CREATE SCHEMA public")
    common.jobqueue_parts().migrate(conn)


class Transactions:
    """The bench database's committed transactions (pg_stat_database.xact_commit).

    Read over a connection to another database (the --db-name one), so that
    the reads themselves are not counted. The count only holds once every
    session in the bench database has flushed its statistics: with
    ``exact`` (PostgreSQL 15+) each one runs common.STATS_FLUSH first (the
    drain workers do it themselves, before they are ready and before they
    disconnect); otherwise read() waits until the count stops moving.
    """

    SETTLE_SECONDS = 1.5  # before PG15: unchanged this long counts as settled
    SETTLE_DEADLINE = 15.0

    def __init__(self, admin: common.DbConfig, database: str) -> None:
        self.conn = common.connect(admin)
        self.database = database
        self.exact = common.can_flush_stats(self.conn)

    def flush(self, run: Callable[[str], Any]) -> int:
        """Flush the statistics of a session of the bench database (``run``
        runs a statement on it); return how many transactions that took."""
        if not self.exact:
            return 0
        run(common.STATS_FLUSH)
        return 1

    def _read(self) -> int:
        rows = self.conn.run("SELECT xact_commit FROM pg_stat_database WHERE datname = :d", d=self.database)
        return int(rows[0][0])

    def read(self) -> int:
        """The count now; each autocommitted read sees fresh statistics."""
        if self.exact:
            return self._read()
        last, since = self._read(), time.monotonic()
        deadline = since + self.SETTLE_DEADLINE
        while time.monotonic() < deadline:
            time.sleep(0.25)
            self.conn.run("SELECT pg_stat_clear_snapshot()")
            now = self._read()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= self.SETTLE_SECONDS:
                break
        return last

    def close(self) -> None:
        self.conn.close()


@dataclasses.dataclass
class DrainResult:
    seconds: float
    xacts_per_job: float | None  # None when transactions were not counted


def _drain(
    conn: Any,
    target: Callable[..., None],
    target_args: tuple[Any, ...],
    procs: int,
    jobs: int,
    label: str,
    done_by: str = "poll",
    xacts: Transactions | None = None,
    own_sessions: Sequence[Callable[[str], Any]] = (),
    job_seconds: float = 0.0,
) -> DrainResult:
    """Run `procs` worker processes until no job is unfinished; return seconds
    and, with ``xacts``, the transactions committed per job.

    Workers connect and signal ready before the clock starts. The parent's
    own connection `conn` polls, or (``done_by="workers"``) the workers
    report the jobs each drain finished. Start-up and shut-down are not
    timed. ``own_sessions``: the harness's other sessions in the bench
    database (statement runners), flushed before the count starts.
    """
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    finished = ctx.Queue() if done_by == "workers" else None  # nobody would read it otherwise
    go, stop = ctx.Event(), ctx.Event()
    children = [
        ctx.Process(target=target, args=(*target_args, ready, go, finished, stop), daemon=True) for _ in range(procs)
    ]
    for p in children:
        p.start()
    timeout = max(120.0, jobs / 100 + 2 * jobs * job_seconds)
    count = 0
    own = 0  # the parent's statements in the bench database while it counts
    before = None
    try:
        for _ in children:
            ready.get(timeout=60)
        if xacts is not None:
            for session in (conn.run, *own_sessions):
                xacts.flush(session)
            before = xacts.read()
        t0 = time.perf_counter()
        go.set()
        next_report = t0 + 1.0
        while True:
            if done_by == "workers":
                try:
                    count += finished.get(timeout=POLL_SECONDS)
                except Empty:
                    pass
                if count >= jobs:
                    elapsed = time.perf_counter() - t0
                    break
            else:
                time.sleep(POLL_SECONDS)
                own += 1
                if conn.run(UNFINISHED)[0][0]:
                    elapsed = time.perf_counter() - t0
                    break
            now = time.perf_counter()
            if now >= next_report:
                if done_by == "workers":
                    done = count
                else:
                    own += 1
                    done = conn.run(SUCCEEDED)[0][0]
                common.progress(f"{label}: {done}/{jobs} done")
                next_report = now + 1.0
            if now - t0 > timeout:
                raise TimeoutError(f"{label}: jobs still unfinished after {timeout:.0f}s")
            if not all(p.is_alive() for p in children):
                raise RuntimeError(f"{label}: a worker process died")
    finally:
        stop.set()
        go.set()
        for p in children:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()
    per_job = None
    if xacts is not None and before is not None:
        own += xacts.flush(conn.run)  # the workers flushed theirs before they disconnected,
        workers = procs if xacts.exact else 0  # each with one more transaction
        per_job = (xacts.read() - before - own - workers) / jobs
    done = conn.run(SUCCEEDED)[0][0]
    if done != jobs:
        raise RuntimeError(f"{label}: {done} of {jobs} jobs succeeded")
    return DrainResult(elapsed, per_job)


def _timed_rate(jobs: int, fn: Callable[[], None]) -> float:
    with common.timer() as t:
        fn()
    return common.rate(jobs, t[0])


# --------------------------------------------------------------------------
# jobqueue ("ours")


def _ours_env(cfg: common.DbConfig, args: argparse.Namespace) -> dict[str, str]:
    env = cfg.env()
    if not args.job_logs:
        # One JSON line per job on stderr is right for Lambda, noise here;
        # PgQueuer logs its per-job lines at DEBUG, off by default.
        env["JOBQUEUE_LOG_LEVEL"] = "WARNING"
    if args.concurrency is not None:
        env["JOBQUEUE_CONCURRENCY"] = str(args.concurrency)
    return env


def _ours_worker(env: dict[str, str], ready: Any, go: MpEvent, finished: Any, stop: MpEvent) -> None:
    """Child process: a drain in a loop, as a warm Lambda container would."""
    common.drain_loop(env, None, ready, go, finished, stop)


class Ours:
    """jobqueue through the functions it is used by: enqueue(_many), a drain.

    Its jobs are `noop`, or with --job-seconds S `sleep` for S seconds (the
    built-in task of every tree since the first release)."""

    name = "ours"

    def __init__(self, cfg: common.DbConfig, args: argparse.Namespace) -> None:
        from jobqueue import log
        from jobqueue.config import Settings

        log.set_level("INFO" if args.job_logs else "WARNING")
        self.jobqueue = common.jobqueue_parts()
        self.jobqueue.load_modules([])
        self.cfg, self.args = cfg, args
        env = {**os.environ, **_ours_env(cfg, args)}
        self.database = self.jobqueue.Database(Settings.from_env(env).db)
        if args.job_seconds > 0:
            self.task, self.payload = "sleep", {"seconds": args.job_seconds}
        else:
            self.task, self.payload = "noop", {}

    def enqueue_single(self, conn: Any, n: int) -> float:
        enqueue, spec = self.jobqueue.enqueue, self.jobqueue.JobSpec

        def go() -> None:
            for _ in range(n):
                enqueue(self.database, spec(task=self.task, payload=self.payload))

        return _timed_rate(n, go)

    def enqueue_batch(self, conn: Any, n: int) -> float:
        enqueue_many, spec = self.jobqueue.enqueue_many, self.jobqueue.JobSpec
        batch = self.args.enqueue_batch

        def go() -> None:
            for start in range(0, n, batch):
                k = min(batch, n - start)
                enqueue_many(self.database, [spec(task=self.task, payload=self.payload) for _ in range(k)])

        return _timed_rate(n, go)

    def drain(self, conn: Any, n: int, procs: int, xacts: Transactions | None) -> DrainResult:
        env = _ours_env(self.cfg, self.args)
        return _drain(
            conn,
            _ours_worker,
            (env,),
            procs,
            n,
            f"ours drain_{procs}",
            self.args.done_by,
            xacts,
            [self.database.execute],
            self.args.job_seconds,
        )

    def close(self) -> None:
        self.database.close()


# --------------------------------------------------------------------------
# raw SQL: jobqueue's statements, no jobqueue Python around them


def _raw_worker(
    cfg: common.DbConfig, batch: int, grace: float, ready: Any, go: MpEvent, finished: Any, stop: MpEvent
) -> None:
    """Child process: claim a batch, complete it, repeat. Nothing else.

    Same session setting as a jobqueue drain (asynchronous commit), so the gap
    to jobqueue is its Python, not a different durability.
    """
    jobqueue = common.jobqueue_parts()
    records = jobqueue.attempt_records
    conn = common.connect(cfg)
    worker = f"raw/{os.getpid()}"
    claim = conn.prepare(jobqueue.query("claim"))
    try:  # one statement writes every outcome (and a drain's slots, left alone here)
        record = conn.prepare(jobqueue.query("record"))
        extra: dict[str, Any] = {"worker": worker, "slots": None, "done": False}
    except KeyError:  # before it: one statement for the successes
        record, extra = conn.prepare(jobqueue.query("complete")), {}
    conn.run("SET synchronous_commit TO off")
    flush_stats = common.can_flush_stats(conn)  # as common.drain_loop does, for the transaction count
    if flush_stats:
        conn.run(common.STATS_FLUSH)
    ready.put(os.getpid())
    go.wait()
    while True:
        claimed = claim.run(worker=worker, limit=batch, grace=grace, fits=1e9, cap=None, park=600.0, queues=None)
        rows = json.loads(claimed[0][0])["j"]  # the batch is one JSON value
        if not rows:
            if stop.wait(0.005):
                break
            continue
        record.run(batch=records(worker, [r[0] for r in rows], [r[3] for r in rows], r=[None] * len(rows)), **extra)
        if finished is not None:
            finished.put(len(rows))
    if flush_stats:
        conn.run(common.STATS_FLUSH)
    conn.close()


def _prepared(conn: Any, sql: str) -> Callable[..., Any]:
    """``sql`` prepared on ``conn``, run as jobqueue runs its prepared statements
    (Bind, Execute and Sync in one packet: connection._run_prepared), or as
    pg8000 runs them in a tree without that."""
    from jobqueue.store import connection

    statement = conn.prepare(sql)
    run_prepared = getattr(connection, "_run_prepared", None)
    if run_prepared is None:
        return statement.run
    return lambda **params: run_prepared(conn, statement, params)


class Raw:
    """The same statements jobqueue runs, from a bare pg8000 loop."""

    name = "raw"

    def __init__(self, cfg: common.DbConfig, args: argparse.Namespace) -> None:
        query = common.jobqueue_parts().query
        self.cfg, self.args = cfg, args
        self.conn = common.connect(cfg)
        self.enqueue_one = _prepared(self.conn, query("enqueue"))
        self.enqueue_many = _prepared(self.conn, query("enqueue_many"))
        self.noop_row = _noop_row()

    def enqueue_single(self, conn: Any, n: int) -> float:
        row = self.noop_row

        def go() -> None:
            for _ in range(n):
                self.enqueue_one(id=_new_id(), payload="{}", **row)

        return _timed_rate(n, go)

    def enqueue_batch(self, conn: Any, n: int) -> float:
        batch = self.args.enqueue_batch
        shared = {name: self.noop_row[name] for name in BATCH_SHARED}

        def go() -> None:
            for start in range(0, n, batch):
                k = min(batch, n - start)
                rows = [{"i": _new_id()} for _ in range(k)]
                self.enqueue_many(batch=json.dumps(rows, separators=(",", ":")), **shared)

        return _timed_rate(n, go)

    def drain(self, conn: Any, n: int, procs: int, xacts: Transactions | None) -> DrainResult:
        target_args = (self.cfg, self.args.raw_batch, 10.0)
        label = f"raw drain_{procs}"
        return _drain(conn, _raw_worker, target_args, procs, n, label, self.args.done_by, xacts, [self.conn.run])

    def close(self) -> None:
        self.conn.close()


def _measure_system(
    system: Ours | Raw,
    conn: Any,
    args: argparse.Namespace,
    out: dict[str, list[float]],
    xacts: Transactions | None,
) -> None:
    """One round for jobqueue or raw SQL: single and batch enqueue, drains
    (and the transactions each drain committed per job)."""
    n = args.jobs
    _reset(conn)
    if args.single_jobs:
        out["enqueue_single"].append(system.enqueue_single(conn, args.single_jobs))
        common.progress(f"{system.name}: enqueue one by one {out['enqueue_single'][-1]:,.0f}/s")
    for procs, metric in ((1, "drain_1"), (args.workers, "drain_4")):
        _reset(conn)
        out["enqueue_batch"].append(system.enqueue_batch(conn, n))
        common.progress(f"{system.name}: enqueue batches {out['enqueue_batch'][-1]:,.0f}/s")
        conn.run("ANALYZE jobs")
        result = system.drain(conn, n, procs, xacts)
        out[metric].append(common.rate(n, result.seconds))
        per_job = ""
        if result.xacts_per_job is not None:
            out[f"{metric}_xacts"].append(result.xacts_per_job)
            per_job = f", {result.xacts_per_job:.3f} transactions per job"
        common.progress(f"{system.name}: {metric} {out[metric][-1]:,.0f}/s{per_job}")
    _reset(conn)


# --------------------------------------------------------------------------
# PgQueuer, in its own venv


def _run_pgqueuer(admin: common.DbConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Run pgqueuer_baseline.py once (all shapes) and parse its JSON."""
    if not BENCH_VENV_PYTHON.exists():
        raise SystemExit("PgQueuer's venv is missing: run `bash bench/setup_env.sh`, or pass --skip-pgqueuer")
    cmd = [
        str(BENCH_VENV_PYTHON),
        str(PGQUEUER_SCRIPT),
        "--jobs",
        str(args.jobs),
        "--runs",
        "1",
        "--enqueue-batch",
        str(args.enqueue_batch),
        "--workers",
        str(args.workers),
        *shlex.split(args.pgqueuer_args),
    ]
    env = {**os.environ, **admin.env()}  # password by environment, not argv
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, text=True, check=True)
    return json.loads(proc.stdout)


def _record_pgqueuer(result: dict[str, Any], out: dict[str, dict[str, list[float]]]) -> None:
    profiles = [("pgqueuer", result)]
    if result.get("default"):
        profiles.append(("pgqueuer_default", result["default"]))
    for name, figures in profiles:
        dest = out.setdefault(name, {})
        if name == "pgqueuer":
            dest.setdefault("enqueue_batch", []).append(result["enqueue_batch_jps"])
        for shape in ("drain_1", "drain_4_inproc", "drain_4_procs"):
            if figures.get(f"{shape}_jps") is not None:
                dest.setdefault(shape, []).append(figures[f"{shape}_jps"])


# --------------------------------------------------------------------------
# Report


def _medians(samples: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float | None]]:
    med = {system: {m: common.median(v) for m, v in metrics.items()} for system, metrics in samples.items()}
    for system in ("pgqueuer", "pgqueuer_default"):
        if system in med:
            shapes = [med[system].get(s) for s in ("drain_4_inproc", "drain_4_procs")]
            shapes = [v for v in shapes if v is not None]
            med[system]["drain_4"] = max(shapes) if shapes else None
    return med


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def job_kind(args: argparse.Namespace) -> str:
    """What the measured jobs do, for titles: no-op, or sleep(S s)."""
    return f"sleep({args.job_seconds:g} s)" if args.job_seconds > 0 else "no-op"


def concurrency_note(args: argparse.Namespace) -> str:
    return "" if args.concurrency is None else f", JOBQUEUE_CONCURRENCY={args.concurrency}"


def report(
    samples: dict[str, dict[str, list[float]]],
    args: argparse.Namespace,
    pgq_settings: dict[str, Any] | None,
    reproduce: str,
) -> dict[str, Any]:
    """Print the table, the target ratios and the reproduce command; return medians."""
    med = _medians(samples)
    tuned_bs = (pgq_settings or {}).get("batch_size", {}).get("tuned")
    labels = {
        "ours": "jobqueue",
        "raw": "raw SQL (same statements)",
        "pgqueuer": f"PgQueuer tuned (batch_size={tuned_bs})",
        "pgqueuer_default": "PgQueuer default (batch_size=10)",
    }
    rows = [(labels[s], [med[s].get(m) for m in METRICS]) for s in labels if s in med]
    ours, pgq, pgq_def = med.get("ours", {}), med.get("pgqueuer", {}), med.get("pgqueuer_default", {})
    raw = med.get("raw", {})
    w = f"drain {args.workers} workers"
    ratios: list[tuple[str, float | None, float | None]] = [
        ("drain 1 worker, jobqueue / PgQueuer tuned", _ratio(ours.get("drain_1"), pgq.get("drain_1")), 1.5),
        (f"{w}, jobqueue / best PgQueuer tuned shape", _ratio(ours.get("drain_4"), pgq.get("drain_4")), 2.5),
        ("batch enqueue, jobqueue / PgQueuer", _ratio(ours.get("enqueue_batch"), pgq.get("enqueue_batch")), 1.2),
        ("batch enqueue, jobqueue / raw SQL", _ratio(ours.get("enqueue_batch"), raw.get("enqueue_batch")), None),
        ("enqueue one by one, jobqueue / raw SQL", _ratio(ours.get("enqueue_single"), raw.get("enqueue_single")), None),
        ("drain 1 worker, jobqueue / PgQueuer default", _ratio(ours.get("drain_1"), pgq_def.get("drain_1")), None),
        (f"{w}, jobqueue / best PgQueuer default shape", _ratio(ours.get("drain_4"), pgq_def.get("drain_4")), None),
        ("drain 1 worker, jobqueue / raw SQL", _ratio(ours.get("drain_1"), raw.get("drain_1")), None),
        (f"{w}, jobqueue / raw SQL", _ratio(ours.get("drain_4"), raw.get("drain_4")), None),
    ]
    ratios = [r for r in ratios if r[1] is not None]
    xact_rows = [(labels[s], [med[s].get(m) for m in XACT_METRICS]) for s in ("ours", "raw") if s in med]
    xact_rows = [row for row in xact_rows if any(v is not None for v in row[1])]
    print()
    common.print_table(
        f"{job_kind(args)} jobs/s, median of {args.runs} interleaved runs, {args.jobs} jobs per measurement"
        f"{concurrency_note(args)}",
        ["enq 1-by-1", f"enq x{args.enqueue_batch}", "drain 1w", f"drain {args.workers}w"],
        rows,
        () if xact_rows else ratios,
    )
    if xact_rows:  # the ratios follow the last table
        common.print_table(
            "database transactions committed per job of a drain (xact_commit), median",
            ["drain 1w", f"drain {args.workers}w"],
            xact_rows,
            ratios,
            fmt=common.fmt_per_job,
        )
    for system in ("pgqueuer", "pgqueuer_default"):
        if system in med:
            inproc, procs = med[system].get("drain_4_inproc"), med[system].get("drain_4_procs")
            better = "in-process" if (inproc or 0) >= (procs or 0) else "processes"
            print(
                f"{labels[system]}, {args.workers} workers: {common.fmt_rate(inproc)}/s as QueueManagers in "
                f"one process, {common.fmt_rate(procs)}/s as processes; better: {better}"
            )
    if "pgqueuer" in med and ("ours" in med or "raw" in med):
        print(
            "note: jobqueue's drain commits asynchronously (synchronous_commit off during a drain), and so "
            "does the raw SQL loop; PgQueuer runs with the server's setting unless --pgqueuer-args says otherwise."
        )
    print(f"reproduce: {reproduce}")
    return med


# --------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags; DB connection flags default from DB_* env."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=20000, help="jobs per measurement (default %(default)s)")
    p.add_argument("--runs", type=int, default=3, help="interleaved rounds; medians reported (default %(default)s)")
    p.add_argument(
        "--only",
        choices=("all", "ours", "raw", "pgqueuer", "baselines"),
        default="all",
        help="which systems to measure (baselines = raw + pgqueuer)",
    )
    p.add_argument("--skip-pgqueuer", action="store_true", help="do not run the PgQueuer baseline")
    p.add_argument("--workers", type=int, default=4, help="worker processes in the multi-worker drain")
    p.add_argument(
        "--single-jobs",
        type=int,
        default=None,
        help="jobs for the one-by-one enqueue (default: --jobs; 0 skips it)",
    )
    p.add_argument("--enqueue-batch", type=int, default=1000, help="jobs per batch enqueue call (jobqueue max 1000)")
    p.add_argument("--raw-batch", type=int, default=500, help="claim size of the raw SQL loop (jobqueue's ceiling)")
    p.add_argument("--job-logs", action="store_true", help="keep jobqueue's per-job INFO log lines")
    p.add_argument(
        "--job-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="jobqueue's jobs sleep S seconds (the built-in task `sleep`) instead of doing nothing "
        "(default 0: no-op jobs); above 0 only jobqueue is measured: the raw SQL loop and PgQueuer's "
        "worker have no such task",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="JOBQUEUE_CONCURRENCY of jobqueue's drain workers (jobs one drain runs side by side; "
        "default: unset, the package's default)",
    )
    p.add_argument(
        "--done-by",
        choices=("poll", "workers"),
        default="poll",
        help="stop a drain's clock on a poll of the table (as for PgQueuer) or on the workers' reports",
    )
    p.add_argument(
        "--pgqueuer-args",
        default="",
        help="extra flags for pgqueuer_baseline.py, e.g. '--synchronous-commit off --skip-default'",
    )
    p.add_argument("--database", default="jobqueue_bench", help="database for jobqueue's tables")
    p.add_argument("--json", type=Path, default=None, help="also write all samples and medians to this file")
    common.add_db_args(p)
    args = p.parse_args(argv)
    if args.single_jobs is None:
        args.single_jobs = args.jobs
    if args.enqueue_batch > 1000:
        p.error("--enqueue-batch: jobqueue takes at most 1000 jobs per batch")
    if args.job_seconds < 0:
        p.error("--job-seconds: must be 0 (no-op jobs) or more")
    if args.job_seconds > 0 and args.only in ("raw", "pgqueuer", "baselines"):
        p.error("--job-seconds: only jobqueue runs such jobs; use --only ours (or all)")
    if args.database == args.db_name:
        p.error("--database: the bench drops its tables, and counts its transactions from --db-name; use another")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the interleaved rounds and print the comparison."""
    args = parse_args(argv)
    reproduce = common.reproduce_command()
    wanted = {
        "all": {"ours", "raw", "pgqueuer"},
        "ours": {"ours"},
        "raw": {"raw"},
        "pgqueuer": {"pgqueuer"},
        "baselines": {"raw", "pgqueuer"},
    }[args.only]
    if args.skip_pgqueuer:
        wanted.discard("pgqueuer")
    if args.job_seconds > 0:
        wanted &= {"ours"}  # the baselines' workers only run no-op jobs
        common.progress(f"--job-seconds {args.job_seconds:g}: measuring jobqueue only")
    admin = common.db_from_args(args)
    systems: list[Ours | Raw] = []
    conn = None
    xacts = None
    if wanted & {"ours", "raw"}:
        cfg = common.ensure_database(admin, args.database)
        conn = common.connect(cfg)
        _prepare_schema(conn)
        xacts = Transactions(admin, args.database)
        if not xacts.exact:
            common.progress("PostgreSQL < 15: transaction counts are read once they stop moving")
        if "ours" in wanted:
            systems.append(Ours(cfg, args))
        if "raw" in wanted:
            systems.append(Raw(cfg, args))
    samples: dict[str, dict[str, list[float]]] = {s.name: {m: [] for m in (*METRICS, *XACT_METRICS)} for s in systems}
    pgq_settings: dict[str, Any] | None = None
    try:
        for run_no in range(1, args.runs + 1):
            common.warn_if_busy()
            common.progress(f"round {run_no}/{args.runs}")
            for system in systems:
                _measure_system(system, conn, args, samples[system.name], xacts)
            if "pgqueuer" in wanted:
                common.progress("pgqueuer baseline")
                result = _run_pgqueuer(admin, args)
                pgq_settings = result.get("settings")
                _record_pgqueuer(result, samples)
    finally:
        for system in systems:
            system.close()
        if conn is not None:
            conn.close()
        if xacts is not None:
            xacts.close()
    med = report(samples, args, pgq_settings, reproduce)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "medians": med,
                    "samples": samples,
                    "pgqueuer_settings": pgq_settings,
                    "args": common.jsonable_args(args),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
