"""PgQueuer baseline: how fast does PgQueuer move no-op jobs on this server?

Runs only in the bench venv (`bash bench/setup_env.sh`), because pgqueuer and
asyncpg are not dependencies of jobqueue. bench_queue.py runs it as a
subprocess and parses the single JSON object it prints on stdout; progress
goes to stderr.

Method, mirroring the drain strategy of PgQueuer's own benchmark tool
(tools/benchmark.py in its repository): the queue is filled with N jobs
first, then QueueManagers on the asyncpg driver under uvloop, each with its
own connection and an async entrypoint that does nothing, empty it with no
concurrency caps. Differences, each to measure PgQueuer at its best rather
than its worst:

* Workers are started and connected before the clock starts; the clock
  stops when the queue table is empty (polled from this process), not when
  the workers notice and shut down. Start-up and shut-down are not counted.
* `pgq autovac` settings are applied after install, as PgQueuer's
  performance-tuning checklist says.
* The queue table is ANALYZEd after each enqueue (--no-analyze to skip).
  Without it the planner has no statistics for the freshly filled table and
  the dequeue cost grows with the queue length (measured: 100k jobs drained
  at 4.6k/s without, 11.7k/s with, batch size 100). A server with autovacuum
  on analyzes by itself sooner or later; one with it off never does.
* Two profiles are measured. "default" uses PgQueuer's default batch_size
  (10), which is also what its benchmark tool uses. "tuned" uses a larger
  batch_size, as PgQueuer's tuning guide advises for short jobs; 500 was
  the best of 10/50/100/200/500/1000 on a 2-core machine. The top-level
  figures are the tuned ones.
* Workers' sessions keep the server's synchronous_commit (PgQueuer as
  shipped); --synchronous-commit off measures it with asynchronous commit,
  the setting jobqueue's drain uses.

Shapes measured:
  enqueue_batch  Queries.enqueue with lists, --enqueue-batch jobs per call
  drain_1        one QueueManager in one process
  drain_4_inproc four QueueManagers sharing one process (one event loop)
  drain_4_procs  four processes with one QueueManager each

PgQueuer's objects live in a database of their own (default bench_pgqueuer),
created when missing; its tables are dropped and reinstalled at start, so a
leftover from another PgQueuer version cannot skew the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import threading
import time
from datetime import timedelta
from importlib.metadata import version
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import asyncpg
import common
import uvloop
from pgqueuer import Queries, QueueManager
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

ENTRYPOINT = "noop"
POLL_SECONDS = 0.02
SHAPES = ("drain_1", "drain_4_inproc", "drain_4_procs")
DEFAULT_BATCH_SIZE = 10  # QueueManager.run's default and PgQueuer's benchmark's
TUNED_BATCH_SIZE = 500


async def _connect(cfg: dict[str, Any], synchronous_commit: str | None = None) -> asyncpg.Connection:
    settings = {"synchronous_commit": synchronous_commit} if synchronous_commit else None
    return await asyncpg.connect(
        host=cfg["host"],
        port=cfg["port"],
        user=cfg["user"],
        password=cfg.get("password"),
        database=cfg["name"],
        server_settings=settings,
    )


def _make_qm(conn: asyncpg.Connection) -> QueueManager:
    qm = QueueManager(Queries(AsyncpgDriver(conn)))

    @qm.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        return None

    return qm


async def _worker_main(
    cfg: dict[str, Any],
    managers: int,
    run_kwargs: dict[str, Any],
    ready: Any,
    go: MpEvent,
    stop: MpEvent,
) -> None:
    conns = [await _connect(cfg, cfg.get("synchronous_commit")) for _ in range(managers)]
    qms = [_make_qm(c) for c in conns]
    loop = asyncio.get_running_loop()
    ready.put(managers)
    await loop.run_in_executor(None, go.wait)
    runs = [asyncio.create_task(qm.run(**run_kwargs)) for qm in qms]

    def _on_stop() -> None:
        stop.wait()
        for qm in qms:
            loop.call_soon_threadsafe(qm.shutdown.set)

    threading.Thread(target=_on_stop, daemon=True).start()
    await asyncio.gather(*runs)
    for c in conns:
        await c.close()


def _worker_proc(
    cfg: dict[str, Any],
    managers: int,
    batch_size: int,
    max_concurrent_tasks: int,
    ready: Any,
    go: MpEvent,
    stop: MpEvent,
) -> None:
    """Child process body: `managers` QueueManagers on one uvloop event loop."""
    run_kwargs = {
        "batch_size": batch_size,
        "max_concurrent_tasks": max_concurrent_tasks or None,
        "dequeue_timeout": timedelta(seconds=30),
    }
    uvloop.run(_worker_main(cfg, managers, run_kwargs, ready, go, stop))


async def _reset(q: Queries) -> None:
    await q.clear_queue()
    await q.clear_queue_log()
    await q.clear_statistics_log()


async def _enqueue(q: Queries, jobs: int, batch: int) -> float:
    """Enqueue `jobs` no-op jobs in calls of `batch`; return seconds taken."""
    with common.timer() as t:
        for start in range(0, jobs, batch):
            k = min(batch, jobs - start)
            await q.enqueue([ENTRYPOINT] * k, [None] * k, [0] * k)
    return t[0]


async def _drain(
    conn: asyncpg.Connection,
    cfg: dict[str, Any],
    jobs: int,
    procs: int,
    managers_per_proc: int,
    batch_size: int,
    max_concurrent_tasks: int,
    label: str,
) -> float:
    """Start workers, release them together, return seconds until the queue is empty."""
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    children = [
        ctx.Process(
            target=_worker_proc,
            args=(cfg, managers_per_proc, batch_size, max_concurrent_tasks, ready, go, stop),
            daemon=True,
        )
        for _ in range(procs)
    ]
    for p in children:
        p.start()
    timeout = max(120.0, jobs / 200)
    try:
        for _ in children:
            ready.get(timeout=60)
        t0 = time.perf_counter()
        go.set()
        next_report = t0 + 1.0
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM pgqueuer)"):
                elapsed = time.perf_counter() - t0
                break
            now = time.perf_counter()
            if now >= next_report:
                left = await conn.fetchval("SELECT count(*) FROM pgqueuer")
                common.progress(f"{label}: {jobs - left}/{jobs} done")
                next_report = now + 1.0
            if now - t0 > timeout:
                raise TimeoutError(f"{label}: queue not empty after {timeout:.0f}s")
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
    ok = await conn.fetchval("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
    if ok != jobs:
        raise RuntimeError(f"{label}: {ok} of {jobs} jobs logged successful")
    return elapsed


def _summary(runs: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {f"{s}_jps": common.median(runs[s]) for s in SHAPES}
    four = {s: out[f"{s}_jps"] for s in ("drain_4_inproc", "drain_4_procs")}
    measured = {k: v for k, v in four.items() if v is not None}
    out["drain_4_best_shape"] = max(measured, key=measured.__getitem__) if measured else None
    out["drain_4_best_jps"] = max(measured.values()) if measured else None
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every requested profile x shape --runs times; report medians."""
    admin = common.db_from_args(args)
    db = common.ensure_database(admin, args.database)
    cfg = {**db.as_dict(), "password": db.password, "synchronous_commit": args.synchronous_commit}
    profiles = {"tuned": args.batch_size}
    if not args.skip_default:
        profiles["default"] = DEFAULT_BATCH_SIZE
    plan = {
        "drain_1": (1, 1),
        "drain_4_inproc": (1, args.workers),
        "drain_4_procs": (args.workers, 1),
    }
    enqueue_runs: list[float] = []
    drain_runs = {p: {s: [] for s in SHAPES} for p in profiles}

    conn = await _connect(cfg)
    q = Queries(AsyncpgDriver(conn))

    async def fill(run_no: int) -> None:
        await _reset(q)
        secs = await _enqueue(q, args.jobs, args.enqueue_batch)
        enqueue_runs.append(common.rate(args.jobs, secs))
        common.progress(f"run {run_no}: enqueued {args.jobs} in {secs:.2f}s ({enqueue_runs[-1]:,.0f}/s)")
        if args.analyze:
            await conn.execute("ANALYZE pgqueuer")

    try:
        if await q.schema_is_installed():
            await q.uninstall()
        await q.install()
        await q.optimize_autovacuum()

        for run_no in range(1, args.runs + 1):
            if not args.shapes:
                await fill(run_no)
            for profile, batch_size in profiles.items():
                for shape in args.shapes:
                    await fill(run_no)
                    procs, managers = plan[shape]
                    label = f"{shape} ({profile}, batch_size={batch_size})"
                    secs = await _drain(
                        conn,
                        cfg,
                        args.jobs,
                        procs,
                        managers,
                        batch_size,
                        args.max_concurrent_tasks,
                        label,
                    )
                    drain_runs[profile][shape].append(common.rate(args.jobs, secs))
                    jps = drain_runs[profile][shape][-1]
                    common.progress(f"run {run_no}: {label} {secs:.2f}s ({jps:,.0f}/s)")
        await _reset(q)
    finally:
        await conn.close()

    result: dict[str, Any] = {"enqueue_batch_jps": common.median(enqueue_runs)}
    result.update(_summary(drain_runs["tuned"]))
    if "default" in drain_runs:
        result["default"] = _summary(drain_runs["default"])
    result["runs"] = {"enqueue_batch_jps": enqueue_runs, **drain_runs}
    result["settings"] = {
        "pgqueuer_version": version("pgqueuer"),
        "asyncpg_version": version("asyncpg"),
        "jobs": args.jobs,
        "runs": args.runs,
        "enqueue_batch": args.enqueue_batch,
        "batch_size": profiles,
        "max_concurrent_tasks": args.max_concurrent_tasks or None,
        "workers": args.workers,
        "driver": "AsyncpgDriver (one connection per QueueManager)",
        "event_loop": "uvloop",
        "entrypoint": "async no-op",
        "durability": "durable (install default)",
        "autovac": "pgq autovac applied",
        "analyze_after_enqueue": args.analyze,
        "worker_synchronous_commit": args.synchronous_commit or "server default",
        "database": db.name,
    }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; DB connection flags default from DB_* env."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=20000, help="jobs per measurement")
    p.add_argument("--runs", type=int, default=1, help="repeat each shape; medians reported")
    p.add_argument(
        "--shapes",
        default=",".join(SHAPES),
        type=lambda s: [x for x in s.split(",") if x],
        help=f"comma list of drain shapes, '' for enqueue only (default: {','.join(SHAPES)})",
    )
    p.add_argument("--workers", type=int, default=4, help="workers in the multi-worker shapes")
    p.add_argument("--enqueue-batch", type=int, default=1000, help="jobs per Queries.enqueue call")
    p.add_argument(
        "--batch-size",
        type=int,
        default=TUNED_BATCH_SIZE,
        help="QueueManager.run batch_size of the tuned profile (default %(default)s)",
    )
    p.add_argument(
        "--skip-default",
        action="store_true",
        help=f"skip the default profile (batch_size={DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--max-concurrent-tasks",
        type=int,
        default=0,
        help="QueueManager.run max_concurrent_tasks; 0 = unlimited (PgQueuer's default)",
    )
    p.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="do not ANALYZE the queue table after each enqueue",
    )
    p.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default=None,
        help="synchronous_commit for the workers' sessions (default: the server's)",
    )
    p.add_argument("--database", default="bench_pgqueuer", help="database for PgQueuer's tables")
    common.add_db_args(p)
    args = p.parse_args(argv)
    bad = [s for s in args.shapes if s not in SHAPES]
    if bad:
        p.error(f"unknown shape(s): {bad}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: print one JSON object with the figures on stdout."""
    args = parse_args(argv)
    common.warn_if_busy()
    result = uvloop.run(run(args))
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
