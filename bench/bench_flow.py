"""Benchmark: what a limited queue costs the claims of every other queue.

A queue's concurrency and rate limits are enforced inside the claim, so
every claim that meets a limited queue pays for looking at its settings and
its room. This measures drain throughput (no-op jobs/s, worker processes
looping drains as warm Lambdas would) of an unlimited queue "free",
and the rate of the claims alone (one connection, the claim statement in a
loop), in three set-ups, measured in the same run and interleaved, medians
reported:

* none: no queue has any setting (the baseline);
* concurrency: another queue, "busy", with a backlog older than every free
  job (so each claim meets it first) and a concurrency limit its running
  jobs (held by another worker) already fill;
* rate: the same backlog under a rate limit whose window is already full.

Target: each limited set-up keeps at least 0.8x the baseline's throughput.
An informative row has the busy backlog paused (a setting, not a limit), to
tell the cost of meeting another queue from the cost of its limit.

The tables live in a database of their own (default jobqueue_bench_flow),
dropped and created afresh at the start.

Usage (from the repository root):
    .venv/bin/python bench/bench_flow.py --jobs 20000 --runs 3
    .venv/bin/python bench/bench_flow.py --quick
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Sequence
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up, like the package imports below

POLL_SECONDS = 0.02
FREE_LEFT = (
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = 'free' AND state = 'pending')"
    " OR EXISTS (SELECT 1 FROM jobs WHERE queue = 'free' AND state = 'running')"
)
SCENARIOS = ("none", "concurrency", "rate", "paused")
LABELS = {
    "none": "no settings anywhere (baseline)",
    "concurrency": "busy queue at its concurrency limit",
    "rate": "busy queue at its rate limit",
    "paused": "busy queue paused (informative)",
}
BUSY_HELD = 2  # busy jobs another worker is running: what fills its concurrency limit


def _worker(env: dict[str, str], budget: float, ready: Any, go: MpEvent, stop: MpEvent) -> None:
    """Child process: drains with a Lambda's time budget, one after another."""
    common.drain_loop(env, budget, ready, go, None, stop)


class Bench:
    def __init__(self, cfg: common.DbConfig, args: argparse.Namespace) -> None:
        from jobqueue import log
        from jobqueue.config import Settings
        from jobqueue.store import connection
        from jobqueue.tasks.loading import load_modules

        log.set_level("WARNING")
        load_modules([])
        self.cfg, self.args = cfg, args
        self.env = {**cfg.env(), "JOBQUEUE_LOG_LEVEL": "WARNING"}
        self.database = connection.Database(Settings.from_env({**os.environ, **self.env}).db)

    def close(self) -> None:
        self.database.close()

    def _enqueue(self, queue_name: str, count: int) -> None:
        from jobqueue.store import jobs
        from jobqueue.tasks.spec import JobSpec

        for start in range(0, count, 1000):
            size = min(1000, count - start)
            jobs.enqueue_many(self.database, [JobSpec("noop", queue=queue_name) for _ in range(size)])

    def prepare(self, scenario: str) -> None:
        """Empty tables, then the set-up: the busy backlog first, so that it is
        the oldest work and every claim meets it before the free queue."""
        from jobqueue.store import claims, queues

        self.database.execute("TRUNCATE jobs, queues")
        if scenario != "none":
            self._enqueue("busy", self.args.busy + BUSY_HELD)
            if scenario == "paused":
                queues.configure_queue(self.database, "busy", {"paused": True})
            else:
                # Another worker runs some of busy's jobs (long leases): with
                # the limit below they fill it, so busy is at its limit.
                if scenario == "rate":
                    queues.configure_queue(self.database, "busy", {"rate": (BUSY_HELD, 3600.0)})
                held = claims.claim(
                    self.database, worker="elsewhere", limit=BUSY_HELD, grace=3600.0, fits=1e9, queues=["busy"]
                )
                assert len(held.rows) == BUSY_HELD
                if scenario == "concurrency":
                    queues.configure_queue(self.database, "busy", {"concurrency": BUSY_HELD})
        self._enqueue("free", self.args.jobs)
        self.database.execute("ANALYZE jobs")

    def claim(self, batch: int) -> float:
        """Claims alone, one connection, `batch` jobs at a time until the free
        queue is claimed whole; returns jobs/s. What the database does per
        claim, without the drain's Python around it."""
        from jobqueue.store import claims

        wanted, taken = self.args.jobs, 0
        with common.timer() as elapsed:
            while taken < wanted:
                rows = claims.claim(self.database, worker="bench", limit=batch, grace=60.0, fits=1e9).rows
                if not rows:
                    raise RuntimeError(f"a claim came back empty after {taken} of {wanted} free jobs")
                taken += len(rows)
        if any(row[6] != "free" for row in rows):
            raise RuntimeError("a claim took a busy job past its limit")
        return common.rate(wanted, elapsed[0])

    def drain(self, procs: int, label: str) -> float:
        """Run `procs` workers until the free queue is done; return jobs/s.

        Workers connect and signal ready before the clock starts.
        """
        conn = self.database
        ctx = mp.get_context("spawn")
        ready = ctx.Queue()
        go, stop = ctx.Event(), ctx.Event()
        args = (self.env, self.args.budget, ready, go, stop)
        children = [ctx.Process(target=_worker, args=args, daemon=True) for _ in range(procs)]
        for child in children:
            child.start()
        jobs = self.args.jobs
        timeout = max(120.0, jobs / 100)
        try:
            for _ in children:
                ready.get(timeout=60)
            t0 = time.perf_counter()
            go.set()
            while True:
                time.sleep(POLL_SECONDS)
                if not conn.execute(FREE_LEFT)[0][0]:
                    elapsed = time.perf_counter() - t0
                    break
                if time.perf_counter() - t0 > timeout:
                    raise TimeoutError(f"{label}: free jobs still unfinished after {timeout:.0f}s")
                if not all(child.is_alive() for child in children):
                    raise RuntimeError(f"{label}: a worker process died")
        finally:
            stop.set()
            go.set()
            for child in children:
                child.join(timeout=30)
                if child.is_alive():
                    child.terminate()
                    child.join()
        done = conn.execute("SELECT count(*) FROM jobs WHERE queue = 'free' AND state = 'succeeded'")[0][0]
        if done != jobs:
            raise RuntimeError(f"{label}: {done} of {jobs} free jobs succeeded")
        started = conn.execute("SELECT count(*) FROM jobs WHERE queue = 'busy' AND state <> 'pending'")[0][0]
        if started > BUSY_HELD:
            raise RuntimeError(f"{label}: {started} busy jobs were started; its limit allows {BUSY_HELD}")
        return common.rate(jobs, elapsed)


def _shape(procs: int, args: argparse.Namespace) -> str:
    return f"claims of {args.claim_batch}" if procs == 0 else f"drain, {procs} worker(s)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=20000, help="free jobs per measurement (default %(default)s)")
    p.add_argument("--busy", type=int, default=20000, help="the busy queue's backlog (default %(default)s)")
    p.add_argument("--runs", type=int, default=3, help="interleaved rounds; medians reported (default %(default)s)")
    p.add_argument("--workers", type=int, default=4, help="worker processes in the multi-worker drain")
    p.add_argument(
        "--budget", type=float, default=120.0, help="each drain's time budget, like a Lambda's (default %(default)s)"
    )
    p.add_argument("--claim-batch", type=int, default=10, help="jobs per claim in the claims-only figure")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round: checks that it runs, nothing more")
    p.add_argument("--database", default="jobqueue_bench_flow", help="database for the tables (dropped first)")
    common.add_db_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.jobs, args.busy, args.runs, args.workers = 300, 300, 1, 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reproduce = common.reproduce_command()
    cfg = common.fresh_database(common.db_from_args(args), args.database)
    bench = Bench(cfg, args)
    shapes = ((0, "claim"), (1, "drain_1"), (args.workers, "drain_n"))
    samples: dict[str, dict[str, list[float]]] = {s: {m: [] for _, m in shapes} for s in SCENARIOS}
    try:
        for run_no in range(1, args.runs + 1):
            common.warn_if_busy()
            common.progress(f"round {run_no}/{args.runs}")
            for procs, metric in shapes:
                # A different set-up goes first each round: none gains from coming after another.
                order = SCENARIOS[run_no % len(SCENARIOS) :] + SCENARIOS[: run_no % len(SCENARIOS)]
                for scenario in order:
                    bench.prepare(scenario)
                    if procs:
                        value = bench.drain(procs, f"{scenario} {metric}")
                    else:
                        value = bench.claim(args.claim_batch)
                    samples[scenario][metric].append(value)
                    common.progress(f"{scenario}: {_shape(procs, args)} {value:,.0f} jobs/s")
    finally:
        bench.close()
    med = {s: {m: common.median(v) for m, v in by_metric.items()} for s, by_metric in samples.items()}
    base = med["none"]
    ratios: list[tuple[str, float | None, float | None]] = []
    for scenario, target in (("concurrency", 0.8), ("rate", 0.8), ("paused", None)):
        for procs, metric in shapes:
            value, reference = med[scenario][metric], base[metric]
            ratio = value / reference if value is not None and reference else None
            ratios.append((f"{_shape(procs, args)}, {LABELS[scenario]} / baseline", ratio, target))
    print()
    common.print_table(
        f"free queue no-op jobs/s, median of {args.runs} interleaved runs, {args.jobs} free jobs, "
        f"busy backlog {args.busy}",
        [f"claim x{args.claim_batch}", "drain 1w", f"drain {args.workers}w"],
        [(LABELS[s], [med[s][m] for _, m in shapes]) for s in SCENARIOS],
        ratios,
        reproduce,
    )
    missed = any(target is not None and (ratio is None or ratio < target) for _, ratio, target in ratios)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
