"""Drains that follow the backlog, measured on the local stack with its schedule off.

What it answers, each run against the same database in the same run:

* I/O-bound throughput: jobs that sleep 100 ms, submitted in batches through
  POST /jobs/batch (each batch wakes a drain; drains start drains), drained
  with JOBQUEUE_MAX_DRAINS 1, 4, 8 and JOBQUEUE_CONCURRENCY 1, 8. The figure
  is jobs per second; the ratio against 1 drain x 1 job at a time is the
  speed-up (ideal: drains x concurrency). Runs at one job at a time drain a
  smaller backlog (--small-jobs) so that the benchmark stays minutes long;
  the rate is what is compared.
* Submit-to-start latency: single POST /jobs of a no-op at a steady rate
  (default 20/s), each job's started_at - created_at (both the database's
  clock), p50 and p99; and delayed jobs (delay 2 s) submitted while drains
  are busy, started_at - run_at.

Every invocation goes through the local stack's Lambda: its containers, its
Invoke API and the real boto3 client in the handler. What to expect on AWS is
in the README (cold starts and asynchronous Invoke latency come on top).

Usage (from the repository root):
    .venv/bin/python bench/bench_fanout.py
    .venv/bin/python bench/bench_fanout.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from queue import Empty, Queue
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up

TOKEN = "bench-fanout-token-0123456789abcdef"


class Stack:
    """``python -m jobqueue serve`` on the benchmark's database, schedule off."""

    def __init__(self, cfg: common.DbConfig, drains: int, concurrency: int, log_path: Path) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "JOBQUEUE_"))},
            **cfg.env(),
            "PYTHONPATH": str(ROOT),
            "JOBQUEUE_API_TOKEN": TOKEN,
            "JOBQUEUE_MAX_DRAINS": str(drains),
            "JOBQUEUE_CONCURRENCY": str(concurrency),
            "JOBQUEUE_LOG_LEVEL": "WARNING",
            "JOBQUEUE_BUILTIN_TASKS": "on",  # its jobs are sleep and noop (serve's default too)
        }
        self.log = log_path.open("w")
        # One container more than drains, for the submits.
        args = ["serve", "--port", "0", "--drain-every", "0", "--concurrency", str(drains + 1)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobqueue", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        lines: Queue[str] = Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True).start()
        deadline = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                raise SystemExit(f"the local stack did not start; see {log_path}") from None
            if line.startswith("jobqueue is running at "):
                self.url = line.split()[-1]
                break

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {TOKEN}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def wait_all_done(conn: Any, total: int, timeout: float) -> float:
    """Seconds until every job has finished (polled every 20 ms)."""
    start = time.perf_counter()
    while True:
        done = conn.run("SELECT count(*) FROM jobs WHERE state IN ('succeeded', 'failed')")[0][0]
        if done >= total:
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"only {done} of {total} jobs finished in {timeout:.0f} s")
        time.sleep(0.02)


def throughput(cfg: common.DbConfig, drains: int, concurrency: int, jobs: int, seconds: float, logs: Path) -> float:
    conn = common.connect(cfg)
    conn.run("TRUNCATE jobs")
    stack = Stack(cfg, drains, concurrency, logs / f"stack-{drains}x{concurrency}.log")
    try:
        spec = {"task": "sleep", "payload": {"seconds": seconds}, "timeout_seconds": 5}
        started = time.perf_counter()
        for start in range(0, jobs, 1000):
            stack.call("POST", "/jobs/batch", {"jobs": [spec] * min(1000, jobs - start)})
        wait_all_done(conn, jobs, timeout=max(600.0, jobs * seconds * 2))
        elapsed = time.perf_counter() - started
    finally:
        stack.stop()
        conn.close()
    return jobs / elapsed


def latencies(cfg: common.DbConfig, per_second: float, count: int, logs: Path) -> dict[str, float]:
    """Steady single submits of a no-op; then delayed jobs while drains are busy."""
    conn = common.connect(cfg)
    conn.run("TRUNCATE jobs")
    stack = Stack(cfg, 4, 8, logs / "stack-latency.log")
    try:
        gap = 1.0 / per_second
        next_at = time.perf_counter()
        for _ in range(count):
            stack.call("POST", "/jobs", {"task": "noop"})
            next_at += gap
            time.sleep(max(0.0, next_at - time.perf_counter()))
        wait_all_done(conn, count, timeout=120)
        now = [
            row[0]
            for row in conn.run(
                "SELECT EXTRACT(EPOCH FROM started_at - created_at)::float8 FROM jobs WHERE task = 'noop'"
            )
        ]
        # Delayed jobs while drains are busy: a backlog of 1 s jobs keeps them running
        # (at a lower priority, so that it is the promotion of due jobs being measured,
        # not their place behind the backlog).
        busy = {"task": "sleep", "payload": {"seconds": 1.0}, "queue": "busy", "priority": 10, "timeout_seconds": 5}
        stack.call("POST", "/jobs/batch", {"jobs": [busy] * 200})
        delayed = max(10, count // 10)
        for _ in range(delayed):
            stack.call("POST", "/jobs", {"task": "noop", "queue": "later", "delay_seconds": 2})
            time.sleep(0.2)
        deadline = time.monotonic() + 60
        while conn.run("SELECT count(*) FROM jobs WHERE queue = 'later' AND state = 'succeeded'")[0][0] < delayed:
            if time.monotonic() > deadline:
                raise SystemExit("delayed jobs did not all run")
            time.sleep(0.05)
        later = [
            row[0]
            for row in conn.run(
                "SELECT EXTRACT(EPOCH FROM started_at - run_at)::float8 FROM jobs WHERE queue = 'later'"
            )
        ]
    finally:
        stack.stop()
        conn.close()
    return {
        "p50": percentile(now, 50),
        "p99": percentile(now, 99),
        "delayed_p50": percentile(later, 50),
        "delayed_p99": percentile(later, 99),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_db_args(parser)
    parser.add_argument("--database", default="jobqueue_bench_fanout", help="database for jobqueue's tables")
    parser.add_argument("--jobs", type=int, default=2000, help="I/O-bound jobs per measurement (default %(default)s)")
    parser.add_argument("--small-jobs", type=int, default=200, help="jobs for runs of one job at a time")
    parser.add_argument("--sleep", type=float, default=0.1, help="seconds each I/O-bound job waits")
    parser.add_argument("--rate", type=float, default=20.0, help="single submits per second for the latency")
    parser.add_argument("--submits", type=int, default=300, help="single submits for the latency")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.small_jobs, args.submits = 80, 16, 20
    cfg = common.ensure_database(common.db_from_args(args), args.database)
    env = cfg.env()
    migrate = subprocess.run(
        [sys.executable, "-m", "jobqueue", "migrate"], cwd=ROOT, env={**os.environ, **env}, capture_output=True
    )
    if migrate.returncode:
        raise SystemExit(migrate.stderr.decode()[-2000:])
    logs = ROOT / ".jobqueue" / "bench-fanout"
    logs.mkdir(parents=True, exist_ok=True)
    common.warn_if_busy()

    rates: dict[tuple[int, int], float] = {}
    shapes = [(1, 1), (1, 8), (4, 1), (4, 8), (8, 1), (8, 8)]
    for drains, concurrency in shapes:
        jobs = args.small_jobs if concurrency == 1 and drains == 1 else args.jobs
        rates[drains, concurrency] = throughput(cfg, drains, concurrency, jobs, args.sleep, logs)
        common.progress(f"{drains} drains x {concurrency}: {rates[drains, concurrency]:,.1f} jobs/s ({jobs} jobs)")
    latency = latencies(cfg, args.rate, args.submits, logs)

    base = rates[1, 1]
    print(f"I/O-bound jobs ({args.sleep * 1000:.0f} ms each), jobs/s, local stack, schedule off")
    print("  drains x concurrency     jobs/s   speed-up   time for 2,000")
    for (drains, concurrency), value in rates.items():
        print(f"  {drains:>6} x {concurrency:<12} {value:9.1f} {value / base:9.1f}x {2000 / value:12.1f} s")
    speedup = rates[4, 8] / base
    verdict = "ok" if speedup >= 20 else "BELOW TARGET"
    print(f"ratio 4 drains x 8 / 1 x 1: {speedup:.1f} (target >= 20, ideal 32) {verdict}")
    print(f"submit-to-start latency at {args.rate:g} submits/s ({args.submits} jobs, 4 drains x 8):")
    p50_ok = "ok" if latency["p50"] <= 0.25 else "ABOVE TARGET"
    p99_ok = "ok" if latency["p99"] <= 1.0 else "ABOVE TARGET"
    print(f"  p50 {latency['p50'] * 1000:.0f} ms (target <= 250) {p50_ok}")
    print(f"  p99 {latency['p99'] * 1000:.0f} ms (target <= 1000) {p99_ok}")
    print(
        f"delayed jobs (2 s) while drains are busy: from run_at to start p50 {latency['delayed_p50'] * 1000:.0f} ms, "
        f"p99 {latency['delayed_p99'] * 1000:.0f} ms"
    )
    print(f"reproduce: {common.reproduce_command()}")
    return 0 if speedup >= 20 and latency["p50"] <= 0.25 and latency["p99"] <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
