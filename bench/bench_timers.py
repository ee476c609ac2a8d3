"""Timers: delayed jobs, retries and wake-ups start on time with no drain running.

A job whose next start is later than now arms one SQS message with
DelaySeconds (jobqueue/engine/timers.py); its arrival drains what came due.
Measured on the local stack (``python -m jobqueue serve --drain-every 60
--concurrency 2``, started by the benchmark on a database of its own), whose
port answers SQS's SendMessage and delivers each message, after its delay,
as a real SQS event to a container. Every part runs on a database of its own
(``<database>_<part>``), dropped and made afresh, left behind for a look
afterwards; each stack's log (JOBQUEUE_LOG_LEVEL=DEBUG) is kept in $TMPDIR.

1. delayed: --jobs (200) ``noop`` jobs, each its own ``POST /jobs`` with
   ``delay_seconds`` uniform in 1..--max-delay (30 s), nothing else running
   (--warm-up delayed jobs, 2, first warm the containers; not counted).
   With --long, two more wait 120 s and 600 s (that takes ten minutes).
   Per job: started_at - run_at (both the database's clock); p50, p99, max.
   Target: p99 <= 2 s. Baseline, the same with ``serve --no-timers``
   (--baseline-jobs, 20): the next scheduled tick starts them, up to a
   minute late.
2. retry: --retries (40) jobs of the built-in ``fail`` task with
   max_attempts 2 and the default backoff (1-2 s before the first retry),
   submitted one at a time, each after the previous one has ended, so that
   nothing but its timer can start its retry (after --warm-up such jobs,
   not counted). Per job: the retry's started_at - its run_at (the
   backoff's end, which the failure wrote and the final failure keeps).
   Target: p99 <= 2 s.
3. burst: --burst (10,000) ``noop`` jobs whose run_at are spread evenly
   over --spread (60) seconds from a moment a little ahead, shuffled and
   submitted through ``POST /jobs/batch`` 1,000 at a time. The timer
   messages the stack received are counted from its log (``local.sqs_send``,
   one line per SendMessage). Figures: messages per delayed job, and per
   second of spread (target <= 1); the jobs' lateness, for information.
4. early: a timer message that finds nothing due (it came early, or twice)
   against an idle scheduled tick, in this process: ``app.lambda_handler``
   with an SQS event of one timer record, and with the EventBridge sample
   (tests/support/samples/eventbridge-scheduled.json), on an empty database,
   alternating one by one, --calls (500) of each after a warm-up; medians.
   JOBQUEUE_TIMER_QUEUE_URL names a dummy queue: with nothing scheduled,
   nothing is armed (checked). Metrics (EMF, written only inside Lambda)
   are off for both. Target: timer / tick <= 1.10 (the idle-tick cost).

Exits 1 when a target is missed. ``--quick``: tiny sizes, no warm-up and a
2 s schedule for the baseline, to check that it runs (20-30 s).

Usage (from the repository root):
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_timers.py                 # every part, about 6 minutes
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_timers.py --long          # plus 120 s and 600 s delays
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_timers.py --mode burst --burst 10000 --spread 60
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_timers.py --quick
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import redirect_stderr
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up, like the package imports below

MODES = ("delayed", "retry", "burst", "early")
TOKEN = "bench-timers-token-0123456789abcdef"
LATENESS_TARGET = 2.0  # seconds from run_at to start, p99
MESSAGES_TARGET = 1.0  # timer messages per second of spread
EARLY_TARGET = 1.10  # timer message finding nothing / idle tick
LONG_DELAYS = (120.0, 600.0)
BATCH = 1000  # jobs per POST /jobs/batch (the API's most)
POLL = 0.1  # seconds between looks at the jobs table
REPORT_EVERY = 5.0  # seconds between progress lines while waiting
WARM_UP_CALLS = 20
BLOCK = 50  # pairs of calls per block, for the spread of the early ratio
DUMMY_QUEUE = "https://sqs.us-east-1.amazonaws.com/000000000000/jobqueue-bench-timers"
SAMPLES = ROOT / "tests" / "support" / "samples"

LATENESS = """
SELECT EXTRACT(EPOCH FROM started_at - run_at) FROM jobs
WHERE id = ANY(CAST(:ids AS uuid[])) AND state = 'succeeded'
"""
# A retried job that failed twice: its retry's start against the backoff's end
# (run_at, kept by the final failure), and the backoff itself (run_at less the
# first failure's time, as its error entry says).
RETRIES = """
SELECT EXTRACT(EPOCH FROM started_at - run_at),
       EXTRACT(EPOCH FROM run_at - CAST(errors -> 0 ->> 'at' AS timestamptz)),
       state, attempts
FROM jobs WHERE id = ANY(CAST(:ids AS uuid[]))
"""
DONE = """
SELECT count(*) FROM jobs WHERE id = ANY(CAST(:ids AS uuid[])) AND state IN ('succeeded', 'failed', 'cancelled')
"""


# --------------------------------------------------------------------------
# Shared


def log_dir() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp"))


class Stack(common.LocalStack):
    """``python -m jobqueue serve`` on the benchmark's database, its log at DEBUG
    (the SQS endpoint's ``local.sqs_send``, one line per timer message)."""

    def __init__(
        self, cfg: common.DbConfig, log_path: Path, *, drain_every: float, concurrency: int, timers: bool
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "JOBQUEUE_", "AWS_ENDPOINT_URL"))}
        env.update(cfg.env())
        env.update(
            PYTHONPATH=str(ROOT),
            JOBQUEUE_API_TOKEN=TOKEN,
            JOBQUEUE_LOG_LEVEL="DEBUG",
            JOBQUEUE_BUILTIN_TASKS="on",  # noop and fail (serve's default too)
        )
        args = ["serve", "--port", "0", "--drain-every", f"{drain_every:g}", "--concurrency", str(concurrency)]
        if not timers:
            args.append("--no-timers")
        self.command = "python -m jobqueue " + " ".join(args)
        super().__init__(args, env, log_path, TOKEN)

    def submit(self, spec: dict[str, Any]) -> str:
        status, body = self.call("POST", "/jobs", spec)
        if status != 202:
            raise RuntimeError(f"POST /jobs answered {status}: {body}")
        return str(body["job"]["id"])

    def submit_batch(self, specs: list[dict[str, Any]]) -> list[str]:
        status, body = self.call("POST", "/jobs/batch", {"jobs": specs})
        if status != 202:
            raise RuntimeError(f"POST /jobs/batch answered {status}: {str(body)[:500]}")
        return [str(job["id"]) for job in body["jobs"]]

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines of the stack's log so far (its own and its containers')."""
        if not self.log.closed:
            self.log.flush()
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def stop_soon(self) -> None:
        """Stop it in the background (serve takes a second or two to wind down),
        while the next part starts; ``stop_all`` waits for every one."""
        thread = threading.Thread(target=self.stop, name="stop-stack")
        thread.start()
        STOPPING.append(thread)


STOPPING: list[threading.Thread] = []


def stop_all() -> None:
    for thread in STOPPING:
        thread.join()


def timer_figures(events: Sequence[dict[str, Any]]) -> dict[str, int]:
    """What the log says the timers did: messages sent (the SQS endpoint's
    SendMessage), timer invocations (a container's ``timer`` line), those that
    found nothing due, and arms that failed."""
    timers = [e for e in events if e.get("event") == "timer"]
    return {
        "messages": sum(1 for e in events if e.get("event") == "local.sqs_send"),
        "wakes": len(timers),
        "idle_wakes": sum(1 for e in timers if not e.get("processed")),
        "not_armed": sum(1 for e in events if e.get("event") == "timer_not_armed"),
        "schedule_ticks": sum(1 for e in events if e.get("event") == "schedule"),
    }


def wait_done(conn: Any, ids: Sequence[str], timeout: float, label: str) -> None:
    """Poll the jobs table until every job of ``ids`` has ended."""
    deadline = time.monotonic() + timeout
    last_note = time.monotonic()
    while True:
        done = conn.run(DONE, ids=list(ids))[0][0]
        if done >= len(ids):
            return
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"{label}: only {done} of {len(ids)} jobs ended within {timeout:.0f} s")
        if now - last_note >= REPORT_EVERY:
            common.progress(f"  {label}: {done:,} of {len(ids):,} jobs ended")
            last_note = now
        time.sleep(POLL)


def warm_up(stack: Stack, conn: Any, task: str, extra: dict[str, Any], count: int) -> None:
    """A few jobs run first, one after the other, not counted: the containers
    have imported app and made their boto3 clients, as warm ones have."""
    for _ in range(count):
        job = stack.submit({"task": task, **extra})
        wait_done(conn, [job], 90.0, "warm-up")


# --------------------------------------------------------------------------
# 1. delayed


def delayed_run(args: argparse.Namespace, admin: common.DbConfig, rng: random.Random, timers: bool) -> dict[str, Any]:
    """--jobs delayed noop jobs (with timers) or --baseline-jobs (without), each
    its own POST /jobs; their lateness, and what the timers did."""
    part = "delayed" if timers else "baseline"
    count = args.jobs if timers else args.baseline_jobs
    drain_every = args.drain_every if timers else args.baseline_drain_every
    cfg = common.fresh_database(admin, f"{args.database}_{part}")
    log_path = log_dir() / f"{args.database}_{part}_stack.log"
    stack = Stack(cfg, log_path, drain_every=drain_every, concurrency=args.concurrency, timers=timers)
    common.progress(f"{part}: {stack.command} (log in {log_path})")
    conn = common.connect(cfg)
    try:
        if timers:
            warm_up(stack, conn, "noop", {"delay_seconds": 1}, args.warm_up)
        delays = [rng.uniform(1.0, args.max_delay) for _ in range(count)]
        longs = list(LONG_DELAYS) if timers and args.long else []
        common.progress(
            f"{part}: submitting {count} noop jobs, delay_seconds uniform in 1..{args.max_delay:g}"
            + (f", and {len(longs)} of {', '.join(f'{d:g}' for d in longs)} s" if longs else "")
        )
        ids = [stack.submit({"task": "noop", "delay_seconds": round(d, 3)}) for d in delays]
        long_ids = [stack.submit({"task": "noop", "delay_seconds": d}) for d in longs]
        timeout = max(delays + longs) + drain_every + 60.0
        wait_done(conn, ids + long_ids, timeout, part)
        lateness = [row[0] for row in conn.run(LATENESS, ids=ids)]
        long_lateness = [row[0] for row in conn.run(LATENESS, ids=long_ids)] if long_ids else []
        time.sleep(args.settle)  # the last drain ends and logs
        figures = timer_figures(stack.events())
    finally:
        conn.close()
        stack.stop_soon()
    if len(lateness) != count or len(long_lateness) != len(longs):
        raise RuntimeError(f"{part}: not every job succeeded")
    out = {
        "timers": timers,
        "stack": stack.command,
        "max_delay": args.max_delay,
        "lateness": common.latency_summary(lateness),
        "long": dict(zip([f"{d:g}" for d in longs], long_lateness, strict=True)),
        **figures,
    }
    fig = out["lateness"]
    common.progress(
        f"{part}: lateness p50 {fig['p50']:.3f} s, p99 {fig['p99']:.3f} s, max {fig['max']:.3f} s; "
        f"{out['messages']} timer messages"
    )
    return out


# --------------------------------------------------------------------------
# 2. retry


def retry_run(args: argparse.Namespace, admin: common.DbConfig, rng: random.Random) -> dict[str, Any]:
    """--retries fail jobs (max_attempts 2), one at a time: each retry's lateness."""
    cfg = common.fresh_database(admin, f"{args.database}_retry")
    log_path = log_dir() / f"{args.database}_retry_stack.log"
    stack = Stack(cfg, log_path, drain_every=args.drain_every, concurrency=args.concurrency, timers=True)
    common.progress(f"retry: {stack.command} (log in {log_path})")
    spec = {"task": "fail", "payload": {"message": "bench: fails on purpose"}, "max_attempts": 2}
    conn = common.connect(cfg)
    ids: list[str] = []
    try:
        warm_up(stack, conn, "fail", {"max_attempts": 2}, args.warm_up)
        common.progress(f"retry: {args.retries} fail jobs (max_attempts 2), each after the previous one ended")
        last_note = time.monotonic()
        for _ in range(args.retries):
            job = stack.submit(spec)
            ids.append(job)
            wait_done(conn, [job], 30.0 + args.drain_every, "retry")
            time.sleep(rng.uniform(0.0, 0.3))
            if time.monotonic() - last_note >= REPORT_EVERY:
                common.progress(f"  retry: {len(ids)} of {args.retries} retried")
                last_note = time.monotonic()
        rows = conn.run(RETRIES, ids=ids)
        time.sleep(args.settle)  # the last drain ends and logs
        figures = timer_figures(stack.events())
    finally:
        conn.close()
        stack.stop_soon()
    odd = [row for row in rows if row[2] != "failed" or row[3] != 2]
    if odd:
        raise RuntimeError(f"retry: {len(odd)} jobs did not fail twice: {odd[:3]}")
    out = {
        "stack": stack.command,
        "lateness": common.latency_summary([row[0] for row in rows]),
        "backoff": common.latency_summary([row[1] for row in rows]),
        **figures,
    }
    fig = out["lateness"]
    common.progress(f"retry: lateness p50 {fig['p50']:.3f} s, p99 {fig['p99']:.3f} s, max {fig['max']:.3f} s")
    return out


# --------------------------------------------------------------------------
# 3. burst


def burst_run(args: argparse.Namespace, admin: common.DbConfig, rng: random.Random) -> dict[str, Any]:
    """--burst jobs due evenly over --spread s, shuffled, submitted 1,000 at a
    time: the timer messages they cost."""
    cfg = common.fresh_database(admin, f"{args.database}_burst")
    log_path = log_dir() / f"{args.database}_burst_stack.log"
    stack = Stack(cfg, log_path, drain_every=args.drain_every, concurrency=args.concurrency, timers=True)
    common.progress(f"burst: {stack.command} (log in {log_path})")
    conn = common.connect(cfg)
    try:
        warm_up(stack, conn, "noop", {"delay_seconds": 1}, args.warm_up)
        time.sleep(args.settle)  # the warm-up's last drain ends
        before = timer_figures(stack.events())
        count, spread = args.burst, args.spread
        lead = 2.0 + count / 5000  # seconds to submit them all, before the first is due
        base = datetime.now(timezone.utc) + timedelta(seconds=lead)
        run_ats = [base + timedelta(seconds=spread * k / count) for k in range(count)]
        rng.shuffle(run_ats)
        specs = [{"task": "noop", "run_at": at.isoformat().replace("+00:00", "Z")} for at in run_ats]
        common.progress(f"burst: {count:,} jobs due over {spread:g} s from {lead:.1f} s on, {BATCH:,} per batch")
        with common.timer() as took:
            ids: list[str] = []
            for start in range(0, count, BATCH):
                ids += stack.submit_batch(specs[start : start + BATCH])
        if took[0] > lead:
            common.progress(f"warning: submitting took {took[0]:.1f} s, past the first run_at ({lead:.1f} s)")
        wait_done(conn, ids, lead + spread + args.drain_every + 60.0, "burst")
        lateness = [row[0] for row in conn.run(LATENESS, ids=ids)]
        time.sleep(args.settle)  # the last drain ends (and arms nothing: nothing is left)
        after = timer_figures(stack.events())
    finally:
        conn.close()
        stack.stop_soon()
    figures = {key: after[key] - before[key] for key in after}
    out = {
        "stack": stack.command,
        "jobs": count,
        "spread_s": spread,
        "submit_s": took[0],
        "lateness": common.latency_summary(lateness),
        **figures,
        "per_job": figures["messages"] / count,
        "per_second": figures["messages"] / spread,
    }
    common.progress(
        f"burst: {out['messages']} timer messages for {count:,} jobs over {spread:g} s: "
        f"{out['per_job']:.4f} per job, {out['per_second']:.2f} per second of spread"
    )
    return out


# --------------------------------------------------------------------------
# 4. early


def _timer_event() -> dict[str, Any]:
    """An SQS event of one record, the function's own timer message, as the event
    source mapping delivers it (the sample's shape, the timer's attribute)."""
    event = json.loads((SAMPLES / "sqs.json").read_text())
    record = event["Records"][0]
    record.update(
        body=json.dumps({"jobqueue": "timer", "due": "2026-01-01T00:00:00+00:00"}),
        eventSourceARN="arn:aws:sqs:us-east-1:000000000000:jobqueue-bench-timers",
        awsRegion="us-east-1",
        messageAttributes={
            "jobqueue": {"stringValue": "timer", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
        },
    )
    return {"Records": [record]}


def _context() -> Any:
    """The Lambda runtime's own context class (a dev dependency), 60 s from its
    deadline, without a function ARN (so no drain invokes another)."""
    from awslambdaric.lambda_context import LambdaContext

    return LambdaContext("bench-timers", None, None, int(time.time() * 1000) + 60_000)


def early_run(args: argparse.Namespace, admin: common.DbConfig) -> dict[str, Any]:
    """A timer message finding nothing due against an idle scheduled tick, in
    this process, alternating; medians."""
    cfg = common.fresh_database(admin, f"{args.database}_early")
    for key in [k for k in os.environ if k.startswith("JOBQUEUE_")]:
        del os.environ[key]
    os.environ.update(cfg.env())
    os.environ.update(
        JOBQUEUE_API_TOKEN=TOKEN,
        JOBQUEUE_BUILTIN_TASKS="on",
        JOBQUEUE_LOG_LEVEL="INFO",
        JOBQUEUE_TIMER_QUEUE_URL=DUMMY_QUEUE,
    )
    import app

    timer_event = _timer_event()
    tick_event = json.loads((SAMPLES / "eventbridge-scheduled.json").read_text())

    def timer() -> None:
        reply = app.lambda_handler(timer_event, _context())
        if reply != {"batchItemFailures": []}:
            raise RuntimeError(f"the timer message was answered {reply}")

    def tick() -> None:
        reply = app.lambda_handler(tick_event, _context())
        if reply.get("status") != "ok" or reply["drain"]["processed"]:
            raise RuntimeError(f"the idle tick was answered {reply}")

    clock = time.perf_counter
    times: dict[str, list[float]] = {"timer": [], "tick": []}
    calls = {"timer": timer, "tick": tick}
    # Log lines go to a line-buffered /dev/null: one write() per line, as Lambda's stderr.
    sink = open(os.devnull, "w", buffering=1)
    counted = io.StringIO()
    try:
        with redirect_stderr(sink):
            for _ in range(WARM_UP_CALLS):
                timer()
                tick()
        common.warn_if_busy()
        common.progress(f"early: {args.calls} timer messages finding nothing and idle ticks, alternating")
        with redirect_stderr(sink):
            for i in range(args.calls):
                for name in ("timer", "tick")[:: 1 if i % 2 else -1]:
                    start = clock()
                    calls[name]()
                    times[name].append(clock() - start)
        with redirect_stderr(counted):
            timer()
    finally:
        sink.close()
    conn = common.connect(cfg)
    try:
        armed = conn.run("SELECT armed_at FROM jobqueue_timer")[0][0]
        jobs = conn.run("SELECT count(*) FROM jobs")[0][0]
    finally:
        conn.close()
    if armed is not None or jobs:
        raise RuntimeError(f"early: the idle database armed a timer ({armed}) or holds jobs ({jobs})")
    lines = [json.loads(line) for line in counted.getvalue().splitlines() if line.startswith("{")]
    timer_line = next((line for line in lines if line.get("event") == "timer"), {})
    blocks = [
        statistics.median(times["timer"][b : b + BLOCK]) / statistics.median(times["tick"][b : b + BLOCK])
        for b in range(0, args.calls - BLOCK + 1, BLOCK)
    ]
    timer_ms = statistics.median(times["timer"]) * 1000
    tick_ms = statistics.median(times["tick"]) * 1000
    common.progress(f"early: timer finding nothing {timer_ms:.2f} ms, idle tick {tick_ms:.2f} ms")
    return {
        "calls": args.calls,
        "timer_ms": timer_ms,
        "tick_ms": tick_ms,
        "timer_p90_ms": common.percentile(times["timer"], 90) * 1000,  # type: ignore[operator]
        "tick_p90_ms": common.percentile(times["tick"], 90) * 1000,  # type: ignore[operator]
        "ratio": timer_ms / tick_ms,
        "block_ratios": (min(blocks), max(blocks)) if blocks else None,
        "timer_processed": timer_line.get("processed"),
    }


# --------------------------------------------------------------------------
# Report


def _verdict(ok: bool) -> str:
    return "ok" if ok else "OVER TARGET"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:8.3f}"


def report(results: dict[str, Any], args: argparse.Namespace, reproduce: str, per_mode: dict[str, str]) -> bool:
    """Print the figures, the targets and the commands; True when every target was met."""
    ok = True
    lines: list[str] = []
    print("jobqueue timers benchmark (local stack: serve, its SQS endpoint holding each message for its delay)")
    delayed, baseline = results.get("delayed"), results.get("baseline")
    if delayed or baseline:
        print("  delayed jobs, nothing else running; lateness = started_at - run_at, seconds")
        print("                                                             n      p50      p99      max  messages")
    if delayed:
        late = delayed["lateness"]
        print(f"    timers on: {delayed['stack']}")
        print(
            f"      noop, delay_seconds uniform 1..{delayed['max_delay']:g} s{'':<17}"
            f"{late['n']:5d} {_s(late['p50'])} {_s(late['p99'])} {_s(late['max'])} {delayed['messages']:9d}"
        )
        for delay, value in delayed["long"].items():
            print(f"      noop, delay_seconds {delay} s{'':<{31 - len(delay)}}    1 {_s(value)}")
        print(
            f"      timer invocations {delayed['wakes']} ({delayed['idle_wakes']} found nothing due), "
            f"arms that failed {delayed['not_armed']}, scheduled ticks {delayed['schedule_ticks']}"
        )
        met = late["p99"] <= LATENESS_TARGET and all(v <= LATENESS_TARGET for v in delayed["long"].values())
        ok &= met
        longs = f"; the {len(delayed['long'])} long ones too" if delayed["long"] else ""
        lines.append(
            f"  delayed jobs, lateness p99: {late['p99']:.3f} s, p50 {late['p50']:.3f} s "
            f"(target <= {LATENESS_TARGET:g} s{longs}) {_verdict(met)}"
        )
    if baseline:
        late = baseline["lateness"]
        print(f"    before, timers off: {baseline['stack']}")
        print(
            f"      noop, delay_seconds uniform 1..{baseline['max_delay']:g} s{'':<17}"
            f"{late['n']:5d} {_s(late['p50'])} {_s(late['p99'])} {_s(late['max'])} {baseline['messages']:9d}"
        )
        print(f"      scheduled ticks {baseline['schedule_ticks']}")
    if delayed and baseline:
        lines.append(
            f"  delayed jobs, lateness p50 timers on / off: "
            f"{delayed['lateness']['p50'] / baseline['lateness']['p50']:.3f}"
        )
    retry = results.get("retry")
    if retry:
        late, backoff = retry["lateness"], retry["backoff"]
        print(f"  retries: {late['n']} fail jobs (max_attempts 2), one at a time; {retry['stack']}")
        print("                                                             n      p50      p99      max")
        print(
            f"    retry's started_at - its run_at (the backoff's end), s    {late['n']:5d} "
            f"{_s(late['p50'])} {_s(late['p99'])} {_s(late['max'])}"
        )
        print(
            f"    backoff applied (run_at - first failure), s             {backoff['n']:5d} "
            f"{_s(backoff['p50'])} {_s(backoff['p99'])} {_s(backoff['max'])}"
        )
        print(
            f"    timer messages {retry['messages']}, timer invocations {retry['wakes']} "
            f"({retry['idle_wakes']} found nothing due), arms that failed {retry['not_armed']}"
        )
        met = late["p99"] <= LATENESS_TARGET
        ok &= met
        lines.append(f"  retry lateness p99: {late['p99']:.3f} s (target <= {LATENESS_TARGET:g} s) {_verdict(met)}")
    burst = results.get("burst")
    if burst:
        late = burst["lateness"]
        print(
            f"  burst: {burst['jobs']:,} jobs due evenly over {burst['spread_s']:g} s, shuffled, "
            f"{BATCH:,} per POST /jobs/batch (submitted in {burst['submit_s']:.1f} s); {burst['stack']}"
        )
        print(f"    timer messages sent (SendMessage)           {burst['messages']:8d}")
        print(f"    messages per delayed job                    {burst['per_job']:8.4f}")
        print(f"    messages per second of spread               {burst['per_second']:8.3f}")
        print(f"    timer invocations                           {burst['wakes']:8d}")
        print(f"    of which found nothing due                  {burst['idle_wakes']:8d}")
        print(f"    arms that failed                            {burst['not_armed']:8d}")
        print(f"    lateness p50 / p99 / max, s                 {_s(late['p50'])} {_s(late['p99'])} {_s(late['max'])}")
        met = burst["per_second"] <= MESSAGES_TARGET
        ok &= met
        lines.append(
            f"  burst, timer messages per second of spread: {burst['per_second']:.3f} "
            f"({burst['per_job']:.4f} per job; target <= {MESSAGES_TARGET:g}) {_verdict(met)}"
        )
    early = results.get("early")
    if early:
        print(f"  early: app.lambda_handler on an idle database, {early['calls']} calls of each, alternating")
        for label, key in (("timer message, nothing due (SQS event)", "timer"), ("idle tick (EventBridge)", "tick")):
            print(f"    {label:<44}{early[key + '_ms']:8.2f} ms (p90 {early[key + '_p90_ms']:.2f} ms)")
        met = early["ratio"] <= EARLY_TARGET
        ok &= met
        spread = "" if not early["block_ratios"] else " per block {:.2f}..{:.2f};".format(*early["block_ratios"])
        lines.append(
            f"  early timer / idle tick: {early['ratio']:.3f} (target <= {EARLY_TARGET:g};{spread} "
            f"within the idle-tick cost) {_verdict(met)}"
        )
    print("ratios (target)")
    for line in lines:
        print(line)
    print(f"reproduce: {reproduce}")
    if len(per_mode) > 1:
        print("reproduce each part alone:")
        for mode, command in per_mode.items():
            print(f"  {mode}: {command}")
    return ok


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=(*MODES, "all"), default="all", help="what to measure (default %(default)s)")
    p.add_argument("--jobs", type=int, default=200, help="delayed jobs with timers (default %(default)s)")
    p.add_argument("--max-delay", type=float, default=30.0, help="delays uniform in 1..this, s (default %(default)s)")
    p.add_argument("--long", action="store_true", help=f"also {', '.join(f'{d:g}' for d in LONG_DELAYS)} s delays")
    p.add_argument(
        "--baseline-jobs", type=int, default=20, help="delayed jobs with serve --no-timers, 0: none (%(default)s)"
    )
    p.add_argument("--retries", type=int, default=40, help="fail jobs retried once (default %(default)s)")
    p.add_argument("--burst", type=int, default=10_000, help="jobs of the burst (default %(default)s)")
    p.add_argument("--spread", type=float, default=60.0, help="seconds the burst is due over (default %(default)s)")
    p.add_argument("--calls", type=int, default=500, help="early: calls of each kind (default %(default)s)")
    p.add_argument("--drain-every", type=float, default=60.0, help="serve's schedule, s (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=2, help="serve's containers (default %(default)s)")
    p.add_argument(
        "--warm-up", type=int, default=2, help="delayed jobs run first in each stack, not counted (%(default)s)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the delays and the shuffle")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs, nothing more")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--database", default="jobqueue_bench_timers", help="prefix of its databases (dropped first)")
    common.add_db_args(p)
    args = p.parse_args(argv)
    args.baseline_drain_every, args.settle = args.drain_every, 1.5
    if args.quick:
        args.jobs, args.max_delay, args.baseline_jobs, args.retries = 6, 2.0, 2, 1
        args.burst, args.spread, args.calls, args.warm_up, args.settle = 200, 1.0, 40, 0, 0.3
        args.baseline_drain_every = 2.0  # the baseline waits for a tick: keep it short
    if args.jobs < 1 or args.retries < 1 or args.burst < 1 or args.calls < 1 or args.baseline_jobs < 0:
        p.error("--jobs, --retries, --burst and --calls must be at least 1, --baseline-jobs at least 0")
    if args.max_delay < 1 or args.spread <= 0:
        p.error("--max-delay must be at least 1 and --spread more than 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reproduce = common.reproduce_command()
    modes = MODES if args.mode == "all" else (args.mode,)
    per_mode = common.mode_commands(sys.argv, modes)
    seed = random.randrange(2**32) if args.seed is None else args.seed
    common.progress(f"seed {seed}")
    rng = random.Random(seed)
    admin = common.db_from_args(args)
    results: dict[str, Any] = {"args": common.jsonable_args(args), "seed": seed}
    try:
        if "delayed" in modes:
            results["delayed"] = delayed_run(args, admin, rng, timers=True)
            if args.baseline_jobs:
                results["baseline"] = delayed_run(args, admin, rng, timers=False)
        if "retry" in modes:
            results["retry"] = retry_run(args, admin, rng)
        if "burst" in modes:
            results["burst"] = burst_run(args, admin, rng)
        if "early" in modes:
            stop_all()  # measured in this process: no stack winding down beside it
            results["early"] = early_run(args, admin)
    finally:
        stop_all()
    print()
    ok = report(results, args, reproduce, per_mode)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
