"""What a scheduled tick costs when no periodic job is due, measured in one run.

Every scheduled invocation runs the tick before it drains, so its idle cost is
paid every minute by every deployment that declares schedules. With N
schedules declared (default 200) and none due, the tick is timed against the
one query it sends (``store.schedules.state``: the ``schedules_state`` query for
all N names, read into times) and against a bare ``SELECT 1`` round trip, calls
alternating one by one on the same connection. The figure is the median tick
time over the median query time: what the tick adds in Python on top of its
one round trip; target: at most 1.5x.

The schedules table lives in its own database (default
jobqueue_bench_periodic, created when missing and migrated), so no real data
is touched.

Usage (from the repository root):
    .venv/bin/python bench/bench_periodic.py
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_periodic.py --schedules 1000 --calls 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up, like the package imports below

TARGET = 1.5


def measure(cfg: common.DbConfig, count: int, calls: int) -> dict[str, Any]:
    from jobqueue.config import Settings
    from jobqueue.engine import periodic_enqueuer
    from jobqueue.store import connection, schedules, schema
    from jobqueue.tasks import periodic

    env = {"DB_HOST": cfg.host, "DB_PORT": str(cfg.port), "DB_NAME": cfg.name, "DB_USER": cfg.user}
    if cfg.password:
        env["DB_PASSWORD"] = cfg.password
    settings = Settings.from_env(env)
    database = connection.Database(settings.db)
    schema.migrate(database)
    database.execute("TRUNCATE schedules")
    for i in range(count):
        periodic.periodic(f"{i % 60} {i % 24} * * *", "echo", name=f"bench-{i:05}")
    names = sorted(periodic.registered())
    now = datetime(2024, 5, 1, 0, 0, 30, tzinfo=timezone.utc)
    periodic_enqueuer.tick(database, now)  # first sight: the rows are added
    later = now + timedelta(seconds=20)

    def tick() -> None:
        assert periodic_enqueuer.tick(database, later)["enqueued"] == 0

    def query() -> None:
        schedules.state(database, names)

    def select_1() -> None:
        database.execute("SELECT 1")

    timings: dict[str, list[float]] = {"tick": [], "query": [], "select_1": []}
    runners: dict[str, Callable[[], None]] = {"tick": tick, "query": query, "select_1": select_1}
    for fn in runners.values():  # warm: statements prepared, caches filled
        fn()
    for _ in range(calls):
        for name, fn in runners.items():
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    database.close()
    medians = {name: statistics.median(values) * 1e6 for name, values in timings.items()}
    return {
        "schedules": count,
        "calls": calls,
        "median_us": {name: round(value, 1) for name, value in medians.items()},
        "ratio": medians["tick"] / medians["query"],
        "ratio_select_1": medians["tick"] / medians["select_1"],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=200, help="schedules declared (default %(default)s)")
    parser.add_argument("--calls", type=int, default=1000, help="timed calls of each kind (default %(default)s)")
    parser.add_argument("--database", default="jobqueue_bench_periodic", help="database to use (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    common.add_db_args(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reproduce = common.reproduce_command()
    cfg = common.ensure_database(common.db_from_args(args), args.database)
    common.warn_if_busy()
    common.progress(f"idle tick: {args.calls} calls each of tick, its query and SELECT 1, alternating")
    result = measure(cfg, args.schedules, args.calls)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        us = result["median_us"]
        print(f"idle scheduled tick, {result['schedules']} schedules, none due (median of {result['calls']} calls)")
        print(f"  tick                       {us['tick']:>9.1f} us")
        print(f"  its one query alone        {us['query']:>9.1f} us")
        print(f"  SELECT 1 round trip        {us['select_1']:>9.1f} us")
        verdict = "ok" if result["ratio"] <= TARGET else "ABOVE TARGET"
        print("ratios")
        print(f"  tick / its query: {result['ratio']:.2f} (target <= {TARGET:g}) {verdict}")
        print(f"  tick / SELECT 1: {result['ratio_select_1']:.2f}")
        print(f"reproduce: {reproduce}")
    return 0 if result["ratio"] <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
