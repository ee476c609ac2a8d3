"""What the Lambda handler costs on top of the queue, measured in one run.

1. Overhead per request: ``POST /jobs`` through ``app.lambda_handler`` (an
   HTTP API v2 event built from the real sample: token check, routing, body
   parsing, validation, the enqueue, the JSON response and the request's log
   line, written to a line-buffered /dev/null) against the bare
   enqueue call on the same connection. Calls alternate one by one;
   the figure is median handler time / median bare time over all calls (the
   spread of the same ratio per round is shown too); target: at most 15 % more.

2. Cold start: ``import app`` in a fresh interpreter (settings read, task
   modules imported, everything the first request needs) against ``import
   pg8000`` alone, in alternating pairs, the median of the pairs' ratios;
   target: at most 1.3x. Measured twice: as in the Lambda ZIP, which ships
   no bytecode (a copy of app.py, jobqueue and the runtime dependencies
   without .pyc, compiled on import), and with cached bytecode.

The enqueues go to their own database (default jobqueue_bench_handler,
created when missing and re-migrated), so no real data is touched.

JOBQUEUE_BENCH_TREE names another checkout (a git worktree of an earlier
commit) whose app.py and jobqueue package are measured with this harness.

Usage (from the repository root):
    .venv/bin/python bench/bench_handler.py
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_handler.py --rounds 20 --per-round 300
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TREE = Path(os.environ.get("JOBQUEUE_BENCH_TREE") or ROOT)  # whose jobqueue package is measured
if str(TREE) not in sys.path:
    sys.path.insert(0, str(TREE))

import common  # noqa: E402 - after the path fix-up, like the package imports below

TOKEN = "bench-handler-token-0123456789abcdef"
OVERHEAD_TARGET = 1.15
COLD_START_TARGET = 1.3
RUNTIME_PACKAGES = ("pg8000", "scramp", "asn1crypto", "dateutil", "six.py")


# --- 1. per-request overhead ------------------------------------------------------------


def _event() -> dict[str, Any]:
    event = json.loads((ROOT / "tests" / "support" / "samples" / "apigw-http-v2.json").read_text())
    event.update(rawPath="/jobs", body=json.dumps({"task": "echo", "payload": {"n": 1}}), isBase64Encoded=False)
    event["requestContext"]["http"].update(method="POST", path="/jobs")
    event["headers"] = {
        "authorization": f"Bearer {TOKEN}",
        "content-type": "application/json",
        "user-agent": "curl/8.5.0",
        "host": "id.execute-api.us-east-1.amazonaws.com",
        "x-forwarded-for": "192.0.2.1",
    }
    event.pop("cookies", None)
    return event


def _context() -> Any:
    """The Lambda runtime's own context class (a dev dependency), 30 s from its deadline."""
    from awslambdaric.lambda_context import LambdaContext

    return LambdaContext("bench", None, None, int(time.time() * 1000) + 30_000)


def _per_call(fn: Callable[[], Any], n: int) -> float:
    """Mean seconds per call over n calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def measure_overhead(cfg: common.DbConfig, rounds: int, per_round: int) -> dict[str, Any]:
    os.environ.update(cfg.env())
    os.environ.update(JOBQUEUE_API_TOKEN=TOKEN, JOBQUEUE_LOG_LEVEL="INFO")
    import app
    from jobqueue.config import Settings

    jobqueue = common.jobqueue_parts()
    JobSpec, store = jobqueue.JobSpec, jobqueue.jobs_module
    database = jobqueue.Database(Settings.from_env().db)
    jobqueue.set_default(database)
    # Everything the migrations made (tables, functions, triggers): the bench
    # database holds nothing else, and a run of another tree may have left it.
    database.execute("DROP SCHEMA public CASCADE")
    database.execute("CREATE SCHEMA public")
    jobqueue.migrate(database)
    event, context = _event(), _context()
    payload = {"n": 1}

    def bare() -> None:
        store.enqueue(database, JobSpec("echo", payload))

    def handler() -> None:
        response = app.lambda_handler(event, context)
        if response["statusCode"] != 202:
            raise RuntimeError(f"POST /jobs answered {response['statusCode']}: {response['body']}")

    # Request log lines are written to a line-buffered /dev/null: one write()
    # per line, as Lambda's stderr does, without a reader competing for the CPU.
    sink = open(os.devnull, "w", buffering=1)
    clock = time.perf_counter
    bare_times, handler_times, ratios = [], [], []
    with redirect_stderr(sink):
        for _ in range(100):  # warm-up: connection, prepared statements, code paths
            bare()
            handler()
        for _ in range(rounds):
            database.execute("TRUNCATE jobs")
            # Call by call, alternating which goes first: a commit that waits on a
            # slow disk flush hits both sides alike, and medians drop the outliers.
            bare_round, handler_round = [], []
            for i in range(per_round):
                for fn, out in ((bare, bare_round), (handler, handler_round))[:: 1 if i % 2 else -1]:
                    start = clock()
                    fn()
                    out.append(clock() - start)
            bare_times += bare_round
            handler_times += handler_round
            ratios.append(statistics.median(handler_round) / statistics.median(bare_round))
    sink.close()
    counted = io.StringIO()
    with redirect_stderr(counted):
        _per_call(handler, 100)
    logged = counted.getvalue().count('"event":"request"')

    # The handler's own work, without the database: enqueue stubbed out.
    job, _ = store.enqueue(database, JobSpec("echo", payload))
    real_enqueue = store.enqueue
    store.enqueue = lambda db, spec: (job, True)
    try:
        with redirect_stderr(io.StringIO()):
            handler_only = statistics.median(_per_call(handler, per_round) for _ in range(5))
    finally:
        store.enqueue = real_enqueue
    database.execute("TRUNCATE jobs")
    database.close()
    return {
        "bare_us": statistics.median(bare_times) * 1e6,
        "handler_us": statistics.median(handler_times) * 1e6,
        "ratio": statistics.median(handler_times) / statistics.median(bare_times),
        "ratio_spread": (min(ratios), max(ratios)),
        "handler_only_us": handler_only * 1e6,
        "log_lines_per_request": logged / 100,
    }


# --- 2. cold start ------------------------------------------------------------------------

_TIMED_IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def _zip_like_tree() -> Path:
    """app.py, jobqueue and the runtime dependencies as the ZIP holds them: sources only."""
    import pg8000

    site = Path(pg8000.__file__).resolve().parent.parent
    tree = Path(tempfile.mkdtemp(prefix="jobqueue-coldstart-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copy2(TREE / "app.py", tree / "app.py")
    shutil.copytree(TREE / "jobqueue", tree / "jobqueue", ignore=ignore)
    for name in RUNTIME_PACKAGES:
        source = site / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=ignore)
        else:
            shutil.copy2(source, tree / name)
    return tree


def _import_seconds(module: str, cwd: Path, env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT.format(module=module)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def measure_cold_start(runs: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBQUEUE_", "PYTHON"))}
    env.update(JOBQUEUE_API_TOKEN=TOKEN)
    results = {}
    tree = _zip_like_tree()
    try:
        variants = {
            # The ZIP ships no bytecode; nothing may be written beside it either.
            "zip": (tree, {**env, "PYTHONDONTWRITEBYTECODE": "1"}),
            "cached": (TREE, env),
        }
        for name, (cwd, variant_env) in variants.items():
            _import_seconds("app", cwd, variant_env)  # cached: make sure the bytecode exists
            app_times, pg_times, ratios = [], [], []
            for i in range(runs):
                # Pairs, alternating which goes first; the ratio is taken per pair,
                # so a slow second on the machine weighs on both sides of it.
                pair = {}
                for module in ("pg8000", "app")[:: 1 if i % 2 else -1]:
                    pair[module] = _import_seconds(module, cwd, variant_env)
                pg_times.append(pair["pg8000"])
                app_times.append(pair["app"])
                ratios.append(pair["app"] / pair["pg8000"])
            results[name] = {
                "app_ms": statistics.median(app_times) * 1000,
                "pg8000_ms": statistics.median(pg_times) * 1000,
                "ratio": statistics.median(ratios),
            }
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return results


# --- report ------------------------------------------------------------------------------


def _verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER TARGET"


def report(overhead: dict[str, Any] | None, cold: dict[str, Any] | None, reproduce: str) -> None:
    print("jobqueue handler benchmark")
    if overhead:
        lo, hi = overhead["ratio_spread"]
        print("  POST /jobs, per request (median over all calls)")
        print(f"    bare enqueue                   {overhead['bare_us']:9.1f} us")
        print(f"    app.lambda_handler             {overhead['handler_us']:9.1f} us")
        print(f"    handler work alone (no db)     {overhead['handler_only_us']:9.1f} us")
        print(f"    log lines per request          {overhead['log_lines_per_request']:9.2f}")
    if cold:
        print("  cold start, fresh interpreter (median)")
        for name, label in (("zip", "as in the ZIP (no bytecode)"), ("cached", "cached bytecode")):
            c = cold[name]
            print(f"    {label:<30} import app {c['app_ms']:6.1f} ms   import pg8000 {c['pg8000_ms']:6.1f} ms")
    print("ratios (target)")
    if overhead:
        ratio = overhead["ratio"]
        print(
            f"  handler / bare enqueue: {ratio:.3f} = {100 * (ratio - 1):+.1f}% "
            f"(target <= +{100 * (OVERHEAD_TARGET - 1):.0f}%; per round {lo:.3f}..{hi:.3f}) "
            f"{_verdict(ratio, OVERHEAD_TARGET)}"
        )
    if cold:
        for name, label in (("zip", "no bytecode"), ("cached", "cached bytecode")):
            ratio = cold[name]["ratio"]
            print(
                f"  import app / import pg8000, {label}: {ratio:.2f}x "
                f"(target <= {COLD_START_TARGET}x) {_verdict(ratio, COLD_START_TARGET)}"
            )
    print(f"reproduce: {reproduce}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_db_args(parser)
    parser.add_argument("--database", default="jobqueue_bench_handler", help="database of its own (created)")
    parser.add_argument("--rounds", type=int, default=15, help="alternating blocks of bare and handler calls")
    parser.add_argument("--per-round", type=int, default=300, help="calls of each kind per round")
    parser.add_argument("--cold-runs", type=int, default=21, help="fresh interpreters per import measured")
    parser.add_argument("--only", choices=("overhead", "cold-start"), help="run one of the two measurements")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reproduce = common.reproduce_command()
    overhead = cold = None
    if args.only != "cold-start":
        cfg = common.ensure_database(common.db_from_args(args), args.database)
        common.progress(f"overhead: {args.rounds} rounds of {args.per_round} bare and handler submits")
        overhead = measure_overhead(cfg, args.rounds, args.per_round)
    if args.only != "overhead":
        common.progress(f"cold start: {args.cold_runs} fresh interpreters per import, two variants")
        cold = measure_cold_start(args.cold_runs)
    if args.json:
        print(json.dumps({"overhead": overhead, "cold_start": cold}, indent=2))
    else:
        report(overhead, cold, reproduce)
    failed = (overhead is not None and overhead["ratio"] > OVERHEAD_TARGET) or (
        cold is not None and cold["zip"]["ratio"] > COLD_START_TARGET
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
