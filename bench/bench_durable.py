"""Durable jobs: what sleeping jobs cost an idle drain, how late they wake,
how fast a signal resumes a waiting job, and how few writes progress makes.

Three modes (``--mode sleepers|signals|progress|all``), each on databases of
its own, dropped and made afresh (``<database>_<part>``), left behind for a
look afterwards. The tasks are in bench/durable_tasks.py.

1. sleepers.
   a. Idle tick: ``jobqueue.engine.drain.run`` in this process (a scheduled
      tick's drain, budget 60 s) on a database where nothing is due, with 0
      sleeping jobs (``<database>_none``, empty) and with --sleepers (10,000)
      durable jobs sleeping 1 h to 1 day ahead (``<database>_sleepers``).
      The sleepers are made by SQL from a real one: one ``durable.nap`` job
      runs through a drain and suspends itself (state waiting, its sleep's
      end in run_at, steps and waiting_for as the engine writes them), then
      its row is copied with new ids and wake times (steps.nap.until,
      waiting_for and run_at alike); ``--make jobs`` instead runs every
      sleeper through a drain until it suspends (about 8 ms each here).
      Both tables are VACUUM ANALYZEd, then ticks alternate one by one
      between the two databases (which goes first alternates too), --ticks
      of each after a warm-up. Figures: median ms per idle tick, and the
      ratio sleepers / none (target <= 1.10: the same within noise), with
      the spread of that ratio over blocks of 50 pairs.
   b. Wake lateness: --sleepers sleepers (copies of a real one, as above)
      whose sleeps end evenly over --spread seconds (the first a second or
      more after they are all made),
      and a drain every --tick seconds (one at a time, in this process, each
      until idle, as the scheduled tick runs one; --tick 0: drains back to
      back). Per job: started_at (the claim that resumed it) minus its
      sleep's end, and the task's own start (time.time(), in its result)
      minus the same; p50, p99, max. Target: max <= one tick. Baseline,
      the same run: as many plain ``noop`` jobs scheduled (run_at) at the
      same times, drained the same way (started_at - run_at).
   c. Wake rate, what bounds the lateness of a dense spread: --sleepers
      sleepers all due at once, one drain (in this process) until all have
      run, in jobs/s; and as many plain noop jobs, the baseline.

2. signals: the local stack (``python -m jobqueue serve`` on
   ``<database>_signals``, its schedule every --drain-every s, tasks from
   bench/durable_tasks.py through JOBQUEUE_TASK_MODULES). --jobs
   ``durable.wait`` jobs are submitted (POST /jobs/batch) and left to
   suspend; once all are waiting, signals are sent one at a time (--burst at
   a time) with POST /jobs/{id}/signals/go (202), and the job's row is read
   every 2 ms until it has succeeded. Figures: signal -> succeeded (as
   seen by that poll), signal -> the resumed run's start (the task's
   time.time(), in its result), and the POST's own answer time; p50, p99.
   Target: p99 <= 1 s. Baseline, interleaved one by one: POST /jobs of a
   ``noop`` -> succeeded, read the same way.

3. progress: one ``durable.progress`` job calling job.progress --calls
   (1,000) times evenly over --seconds (10 s), in a drain of its own process
   on a quiet database (``<database>_progress``). Writes are counted twice:
   the row versions (xmin) seen while it runs, sampled every 5 ms, less the
   claim's; and the table's n_tup_upd after the drain process has exited
   (its sessions' statistics flushed), less the baseline's: the same job
   with its progress calls switched off, run just before it (the claim's
   and the outcome's writes). Target: at most --seconds + 1 writes (about
   one a second, and the last value).

Exits 1 when a target is missed. ``--quick``: tiny sizes, to check it runs.

Usage (from the repository root):
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_durable.py --mode all
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_durable.py --mode sleepers --sleepers 10000 --spread 20
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_durable.py --mode signals --jobs 200
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_durable.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _path in (str(ROOT), str(BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import common  # noqa: E402 - after the path fix-up, like the package imports below

MODES = ("sleepers", "signals", "progress")
TASK_MODULE = "durable_tasks"  # bench/durable_tasks.py, bench/ on the drains' PYTHONPATH
TOKEN = "bench-durable-token-0123456789abcdef"
TICK_BUDGET = 60.0  # seconds: each in-process drain's budget, as a scheduled invocation's
WARM_UP_TICKS = 20
BLOCK = 50  # pairs of ticks per block, for the spread of the idle-tick ratio
IDLE_TARGET = 1.10  # sleepers / none, per idle tick: the same within noise
SIGNAL_TARGET = 1.0  # seconds, p99 of signal -> succeeded
SPREAD_LEAD = 1.0  # seconds from the set-up's end to the first wake
MAKE_SECONDS_PER_JOB = 0.0005  # an allowance for making the spread's jobs (about 0.25 ms each here)
POLL = 0.002  # seconds between reads of a signalled job's row
ENQUEUE_BATCH = 1000
XMIN_EVERY = 0.005  # seconds between samples of the progress job's row version

# The row versions of the progress job, as a concurrent reader sees them.
ROW_VERSION = "SELECT CAST(xmin AS text), state FROM jobs WHERE id = CAST(:id AS uuid)"
UPDATES = "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'jobs'"

# A drain run until idle in a process of its own, the bench's tasks loaded.
DRAIN_CHILD = f"""
from jobqueue import log
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.store import connection
from jobqueue.tasks.loading import load_modules
log.set_level("WARNING")
load_modules([{TASK_MODULE!r}])
drain.run(connection.default(), settings=Settings.from_env(), budget_seconds=None)
"""

# Copies of the row of one real suspended sleeper (:seed), one per id, the
# k-th (1-based) sleeping until :base + (k - 1) * :step seconds (epoch):
# run_at, the sleep's checkpoint and waiting_for all say so, as a job's own
# job.sleep("nap") would have written them.
CLONE_SLEEPERS = """
INSERT INTO jobs
SELECT (jsonb_populate_record(j, jsonb_build_object(
            'id', n.id,
            'run_at', w.at,
            'created_at', now(),
            'steps', jsonb_set(j.steps, '{nap,until}', to_jsonb(w.iso)),
            'waiting_for', jsonb_build_object('sleep_until', w.iso)))).*
FROM jobs AS j,
     unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS n(id, k),
     LATERAL (SELECT to_timestamp(CAST(:base AS float8) + (n.k - 1) * CAST(:step AS float8)) AS at) AS t,
     LATERAL (SELECT t.at AS at,
                     to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS iso) AS w
WHERE j.id = CAST(:seed AS uuid)
"""

LATENESS_DURABLE = """
SELECT EXTRACT(EPOCH FROM started_at - CAST(steps -> 'nap' ->> 'until' AS timestamptz)),
       CAST(result ->> 'started' AS float8) - EXTRACT(EPOCH FROM CAST(steps -> 'nap' ->> 'until' AS timestamptz))
FROM jobs WHERE task = 'durable.nap'
"""
LATENESS_PLAIN = "SELECT EXTRACT(EPOCH FROM started_at - run_at) FROM jobs WHERE task = 'noop'"


# --------------------------------------------------------------------------
# Shared


def open_database(cfg: common.DbConfig) -> Any:
    """A jobqueue Database on ``cfg`` (what drain.run and the stores take)."""
    from jobqueue.config import Settings
    from jobqueue.store import connection

    return connection.Database(Settings.from_env({**os.environ, **cfg.env()}).db)


def drain_settings(cfg: common.DbConfig) -> Any:
    from jobqueue.config import Settings

    return Settings.from_env({**os.environ, **cfg.env()})


def child_env(cfg: common.DbConfig) -> dict[str, str]:
    """A child's environment: this database, the bench's tasks, no other jobqueue
    setting of the caller's (no DB_SECRET_ARN, no JOBQUEUE_FUNCTION to fan out to)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "JOBQUEUE_"))}
    env.update(cfg.env())
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(BENCH)]),
        JOBQUEUE_LOG_LEVEL="WARNING",
        JOBQUEUE_TASK_MODULES=TASK_MODULE,
        JOBQUEUE_BUILTIN_TASKS="on",
    )
    return env


def enqueue_specs(db: Any, specs: Sequence[Any]) -> list[Any]:
    from jobqueue.store import jobs

    made: list[Any] = []
    for start in range(0, len(specs), ENQUEUE_BATCH):
        made += jobs.enqueue_many(db, list(specs[start : start + ENQUEUE_BATCH]))
    return made


# --------------------------------------------------------------------------
# 1. sleepers


def seed_sleeper(db: Any, settings: Any) -> str:
    """One real durable.nap job run through a drain until it sleeps; its id."""
    from jobqueue.engine import drain
    from jobqueue.store import jobs
    from jobqueue.tasks.spec import JobSpec

    job, _ = jobs.enqueue(db, JobSpec("durable.nap", {"seconds": 86400.0}))
    report = drain.run(db, settings=settings, budget_seconds=TICK_BUDGET)
    row = jobs.get(db, job["id"])
    if report.suspended != 1 or row["state"] != "waiting":
        raise RuntimeError(f"the seed sleeper did not suspend: {report}, state {row['state']}")
    return str(job["id"])


def clone_sleepers(db: Any, seed: str, count: int, base: float, step: float) -> None:
    """``count`` copies of the seed's row, sleeping until base, base + step, ... (epoch s)."""
    from jobqueue.store.ids import uuid7

    for start in range(0, count, ENQUEUE_BATCH):
        ids = [str(uuid7()) for _ in range(min(ENQUEUE_BATCH, count - start))]
        db.execute(CLONE_SLEEPERS, ids=ids, seed=seed, base=base + start * step, step=step)


def make_far_sleepers(db: Any, settings: Any, count: int, how: str) -> None:
    """``count`` durable jobs sleeping from 1 h to 1 day ahead."""
    from jobqueue.engine import drain
    from jobqueue.tasks.spec import JobSpec

    if how == "jobs":
        hours = [1 + 23 * k / max(1, count) for k in range(count)]
        enqueue_specs(db, [JobSpec("durable.nap", {"seconds": 3600.0 * h}) for h in hours])
        suspended = 0
        while suspended < count:
            report = drain.run(db, settings=settings, budget_seconds=None)
            suspended += report.suspended
            common.progress(f"sleepers: {suspended:,} of {count:,} real jobs suspended")
            if report.processed == 0:
                break
    else:
        seed = seed_sleeper(db, settings)
        clone_sleepers(db, seed, count - 1, time.time() + 3600.0, 23 * 3600.0 / max(1, count))
    waiting = db.execute("SELECT count(*) FROM jobs WHERE state = 'waiting'")[0][0]
    if waiting != count:
        raise RuntimeError(f"{waiting} of {count} sleepers are waiting")


def idle_ticks(args: argparse.Namespace, admin: common.DbConfig) -> dict[str, Any]:
    """Median ms per idle drain tick with no sleeper and with --sleepers, interleaved."""
    from jobqueue.engine import drain

    dbs, settings = {}, {}
    for side in ("none", "sleepers"):
        cfg = common.fresh_database(admin, f"{args.database}_{side}")
        dbs[side], settings[side] = open_database(cfg), drain_settings(cfg)
    how = "real jobs, each run until it suspends" if args.make == "jobs" else "SQL copies of a real suspended job"
    common.progress(f"sleepers: making {args.sleepers:,} durable jobs sleeping 1 h to 1 day ahead ({how})")
    with common.timer() as made:
        make_far_sleepers(dbs["sleepers"], settings["sleepers"], args.sleepers, args.make)
    common.progress(f"sleepers: made in {made[0]:.1f} s; VACUUM ANALYZE both databases")
    for db in dbs.values():
        db.execute("VACUUM ANALYZE jobs")

    def tick(side: str) -> float:
        start = time.perf_counter()
        report = drain.run(dbs[side], settings=settings[side], budget_seconds=TICK_BUDGET)
        elapsed = time.perf_counter() - start
        if report.processed:
            raise RuntimeError(f"an idle tick ({side}) ran {report.processed} jobs")
        return elapsed

    for _ in range(WARM_UP_TICKS):  # connections, prepared statements, the first prune
        tick("none")
        tick("sleepers")
    common.warn_if_busy()
    common.progress(f"sleepers: {args.ticks} idle ticks of each, alternating")
    times: dict[str, list[float]] = {"none": [], "sleepers": []}
    for i in range(args.ticks):
        for side in ("none", "sleepers")[:: 1 if i % 2 else -1]:
            times[side].append(tick(side))
    for db in dbs.values():
        db.close()
    blocks = [
        statistics.median(times["sleepers"][b : b + BLOCK]) / statistics.median(times["none"][b : b + BLOCK])
        for b in range(0, args.ticks - BLOCK + 1, BLOCK)
    ]
    none_ms = statistics.median(times["none"]) * 1000
    sleepers_ms = statistics.median(times["sleepers"]) * 1000
    common.progress(f"sleepers: idle tick {none_ms:.2f} ms with none, {sleepers_ms:.2f} ms with {args.sleepers:,}")
    return {
        "sleepers": args.sleepers,
        "made_by": args.make,
        "ticks": args.ticks,
        "none_ms": none_ms,
        "sleepers_ms": sleepers_ms,
        "none_p90_ms": common.percentile(times["none"], 90) * 1000,  # type: ignore[operator]
        "sleepers_p90_ms": common.percentile(times["sleepers"], 90) * 1000,  # type: ignore[operator]
        "ratio": sleepers_ms / none_ms,
        "block_ratios": (min(blocks), max(blocks)) if blocks else None,
    }


def tick_until_done(db: Any, settings: Any, task: str, total: int, tick: float, deadline: float) -> dict[str, Any]:
    """Drains one at a time, one every ``tick`` s (back to back for 0), until
    every job of ``task`` has succeeded."""
    from jobqueue.engine import drain

    drains, longest, last_note = 0, 0.0, time.monotonic()
    next_at = time.monotonic()
    while True:
        report = drain.run(db, settings=settings, budget_seconds=TICK_BUDGET)
        drains += 1
        longest = max(longest, report.seconds)
        done = db.execute("SELECT count(*) FROM jobs WHERE task = :t AND state = 'succeeded'", t=task)[0][0]
        if done >= total:
            break
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"{task}: only {done:,} of {total:,} jobs succeeded by the deadline")
        if now - last_note >= 5.0:
            common.progress(f"  {task}: {done:,} of {total:,} done, {drains} drains")
            last_note = now
        next_at = max(next_at + tick, now) if tick > 0 else now
        time.sleep(max(0.0, next_at - time.monotonic()))
    return {"drains": drains, "longest_drain_s": longest}


def make_wakers(db: Any, settings: Any, kind: str, count: int, base: float, step: float) -> str:
    """``count`` jobs due at base, base + step, ... (epoch s): durable sleepers
    (copies of a real one) or plain scheduled noop jobs; the task's name."""
    from jobqueue.tasks.spec import JobSpec

    if kind == "durable":
        seed = seed_sleeper(db, settings)
        db.execute("VACUUM ANALYZE jobs")
        clone_sleepers(db, seed, count, base, step)
        db.execute("DELETE FROM jobs WHERE id = CAST(:id AS uuid)", id=seed)
        return "durable.nap"
    start = datetime.fromtimestamp(base, timezone.utc)
    enqueue_specs(db, [JobSpec("noop", run_at=start + timedelta(seconds=k * step)) for k in range(count)])
    return "noop"


def wake_lateness(args: argparse.Namespace, admin: common.DbConfig) -> dict[str, Any]:
    """Sleepers whose sleeps end over the next --spread s, drained every --tick s;
    then plain scheduled jobs at the same times, the baseline."""
    count, step = args.sleepers, args.spread / max(1, args.sleepers)
    out: dict[str, Any] = {"jobs": count, "spread_s": args.spread, "tick_s": args.tick}
    for kind in ("durable", "plain"):
        cfg = common.fresh_database(admin, f"{args.database}_spread_{kind}")
        db, settings = open_database(cfg), drain_settings(cfg)
        try:
            base = time.time() + SPREAD_LEAD + count * MAKE_SECONDS_PER_JOB
            task = make_wakers(db, settings, kind, count, base, step)
            lead = base - time.time()
            if lead < 0.2:
                common.progress(f"warning: the first wakes came {-lead:.1f} s before the drains began")
            every = f"a drain every {args.tick:g} s" if args.tick > 0 else "drains back to back"
            common.progress(f"spread ({kind}): {count:,} wakes over {args.spread:g} s from {lead:.1f} s on; {every}")
            deadline = time.monotonic() + lead + args.spread + 120.0
            ran = tick_until_done(db, settings, task, count, args.tick, deadline)
            if kind == "durable":
                rows = db.execute(LATENESS_DURABLE)
                bad = db.execute(
                    "SELECT count(*) FROM jobs WHERE task = 'durable.nap' AND (state <> 'succeeded' OR attempts <> 1)"
                )[0][0]
                if bad:
                    raise RuntimeError(f"{bad} sleepers did not succeed at their first attempt")
                out["durable"] = {**common.latency_summary([r[0] for r in rows]), **ran}
                out["durable_task_start"] = common.latency_summary([r[1] for r in rows])
            else:
                rows = db.execute(LATENESS_PLAIN)
                out["plain"] = {**common.latency_summary([r[0] for r in rows]), **ran}
            lateness = out[kind]
            common.progress(
                f"spread ({kind}): lateness p50 {lateness['p50']:.3f} s, p99 {lateness['p99']:.3f} s, "
                f"max {lateness['max']:.3f} s, {ran['drains']} drains"
            )
        finally:
            db.close()
    return out


def wake_rate(args: argparse.Namespace, admin: common.DbConfig) -> dict[str, float]:
    """Jobs/s one drain runs when --sleepers sleepers are all due at once, and
    as many plain noop jobs: what bounds the lateness of a dense spread."""
    out = {}
    for kind in ("durable", "plain"):
        cfg = common.fresh_database(admin, f"{args.database}_rate_{kind}")
        db, settings = open_database(cfg), drain_settings(cfg)
        try:
            task = make_wakers(db, settings, kind, args.sleepers, time.time() - 3600.0, 0.0001)
            db.execute("VACUUM ANALYZE jobs")
            with common.timer() as took:
                tick_until_done(db, settings, task, args.sleepers, 0.0, time.monotonic() + 600.0)
            out[kind] = common.rate(args.sleepers, took[0])
            common.progress(f"rate ({kind}): {args.sleepers:,} due at once, one drain: {out[kind]:,.0f} jobs/s")
        finally:
            db.close()
    return out


# --------------------------------------------------------------------------
# 2. signals


class Stack(common.LocalStack):
    """``python -m jobqueue serve`` on the benchmark's database."""

    def __init__(self, cfg: common.DbConfig, drain_every: float, log_path: Path) -> None:
        env = {**child_env(cfg), "JOBQUEUE_API_TOKEN": TOKEN}
        super().__init__(["serve", "--port", "0", "--drain-every", str(drain_every)], env, log_path, TOKEN)


def wait_state(conn: Any, job_id: str, state: str, timeout: float) -> tuple[float, Any]:
    """Read the job's row every POLL s until it is in ``state``: (time.time() then, result)."""
    deadline = time.monotonic() + timeout
    while True:
        row = conn.run("SELECT state, result FROM jobs WHERE id = CAST(:id AS uuid)", id=job_id)[0]
        if row[0] == state:
            return time.time(), row[1]
        if row[0] in ("failed", "cancelled") or time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} is {row[0]}, not {state}, after {timeout:.0f} s")
        time.sleep(POLL)


def signals(args: argparse.Namespace, admin: common.DbConfig) -> dict[str, Any]:
    cfg = common.fresh_database(admin, f"{args.database}_signals")
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{args.database}_signals_stack.log"
    common.progress(f"signals: starting the local stack (log in {log_path})")
    stack = Stack(cfg, args.drain_every, log_path)
    conn = common.connect(cfg)
    try:
        count = args.jobs
        status, body = stack.call("POST", "/jobs/batch", {"jobs": [{"task": "durable.wait"}] * count})
        if status != 202:
            raise RuntimeError(f"POST /jobs/batch answered {status}: {body}")
        ids = [job["id"] for job in body["jobs"]]
        deadline = time.monotonic() + 60 + count * 0.1
        while (waiting := conn.run("SELECT count(*) FROM jobs WHERE state = 'waiting'")[0][0]) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {waiting} of {count} jobs are waiting; see {log_path}")
            time.sleep(0.05)
        common.progress(f"signals: {count} jobs wait; signalling {args.burst} at a time, submits interleaved")
        time.sleep(0.5)  # let the drains that suspended them end
        to_done: list[float] = []
        to_start: list[float] = []
        answer: list[float] = []
        submit_done: list[float] = []

        def signal_group(group: list[str]) -> None:
            sent = []
            for n, job_id in enumerate(group):
                at = time.time()
                status, reply = stack.call("POST", f"/jobs/{job_id}/signals/go", {"n": n})
                answer.append(time.time() - at)
                if status != 202:
                    raise RuntimeError(f"POST /jobs/{job_id}/signals/go answered {status}: {reply}")
                sent.append((job_id, at))
            for job_id, at in sent:
                done_at, result = wait_state(conn, job_id, "succeeded", 30)
                to_done.append(done_at - at)
                to_start.append(result["started"] - at)

        def submit_group(size: int) -> None:
            sent = []
            for _ in range(size):
                at = time.time()
                status, reply = stack.call("POST", "/jobs", {"task": "noop"})
                if status != 202:
                    raise RuntimeError(f"POST /jobs answered {status}: {reply}")
                sent.append((reply["job"]["id"], at))
            for job_id, at in sent:
                done_at, _ = wait_state(conn, job_id, "succeeded", 30)
                submit_done.append(done_at - at)

        groups = [ids[i : i + args.burst] for i in range(0, count, args.burst)]
        last_note = time.monotonic()
        for g, group in enumerate(groups):
            # Which goes first alternates: neither gains from following the other.
            for signalled in (True, False)[:: 1 if g % 2 else -1]:
                if signalled:
                    signal_group(group)
                else:
                    submit_group(len(group))
                time.sleep(args.gap)
            if time.monotonic() - last_note >= 5.0:
                common.progress(f"signals: {len(to_done)} of {count} resumed")
                last_note = time.monotonic()
        succeeded = conn.run("SELECT count(*) FROM jobs WHERE task = 'durable.wait' AND state = 'succeeded'")[0][0]
        if succeeded != count:
            raise RuntimeError(f"{succeeded} of {count} waiting jobs succeeded")
    finally:
        conn.close()
        stack.stop()
    out = {
        "jobs": count,
        "burst": args.burst,
        "drain_every": args.drain_every,
        "signal_to_succeeded": common.latency_summary(to_done),
        "signal_to_start": common.latency_summary(to_start),
        "signal_answer": common.latency_summary(answer),
        "submit_to_succeeded": common.latency_summary(submit_done),
    }
    common.progress(
        f"signals: signal -> succeeded p50 {out['signal_to_succeeded']['p50'] * 1000:.1f} ms, "
        f"p99 {out['signal_to_succeeded']['p99'] * 1000:.1f} ms"
    )
    return out


# --------------------------------------------------------------------------
# 3. progress


def table_updates(conn: Any) -> int:
    return int(conn.run(UPDATES)[0][0])


def settled_updates(conn: Any, timeout: float = 15.0) -> int:
    """The jobs table's n_tup_upd once it stops moving (statistics of sessions
    that ended are flushed as their backends exit)."""
    last, since, deadline = table_updates(conn), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = table_updates(conn)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            break
    return last


def progress_run(cfg: common.DbConfig, conn: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """One durable.progress job in a drain process of its own: its row's
    versions seen while it ran, the table's updates, and its last progress."""
    from jobqueue.tasks.spec import JobSpec

    db = open_database(cfg)
    try:
        (job,) = enqueue_specs(db, [JobSpec("durable.progress", payload)])
    finally:
        db.close()
    job_id = str(job["id"])
    before = settled_updates(conn)
    seen: list[str] = []
    child = subprocess.Popen([sys.executable, "-c", DRAIN_CHILD], cwd=ROOT, env=child_env(cfg))
    try:
        while child.poll() is None:
            xmin, state = conn.run(ROW_VERSION, id=job_id)[0]
            if state == "running" and (not seen or seen[-1] != xmin):
                seen.append(xmin)
            time.sleep(XMIN_EVERY)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    if child.returncode != 0:
        raise RuntimeError(f"the drain process exited with {child.returncode}")
    after = settled_updates(conn)
    state, progress = conn.run("SELECT state, progress FROM jobs WHERE id = CAST(:id AS uuid)", id=job_id)[0]
    if state != "succeeded":
        raise RuntimeError(f"the progress job ended {state}")
    return {"versions_while_running": len(set(seen)), "updates": after - before, "progress": progress}


def progress(args: argparse.Namespace, admin: common.DbConfig) -> dict[str, Any]:
    cfg = common.fresh_database(admin, f"{args.database}_progress")
    conn = common.connect(cfg)
    try:
        payload = {"times": args.calls, "seconds": args.seconds}
        common.progress(f"progress: baseline, the same job with its {args.calls} progress calls switched off")
        base = progress_run(cfg, conn, {**payload, "report": False})
        common.progress(f"progress: {args.calls} calls of job.progress over {args.seconds:g} s")
        run = progress_run(cfg, conn, payload)
    finally:
        conn.close()
    writes = run["updates"] - base["updates"]
    seen = run["versions_while_running"] - 1  # less the claim's version
    last = run["progress"] or {}
    if last.get("value") != 1.0:
        raise RuntimeError(f"the last progress written is {last}, not the last reported (1.0)")
    common.progress(f"progress: {writes} writes by n_tup_upd, {seen} row versions seen")
    return {
        "calls": args.calls,
        "seconds": args.seconds,
        "writes": writes,
        "versions_seen": seen,
        "baseline_updates": base["updates"],
        "updates": run["updates"],
        "last": last,
    }


# --------------------------------------------------------------------------
# Report


def _verdict(ok: bool) -> str:
    return "ok" if ok else "OVER TARGET"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:8.1f}"


def report(results: dict[str, Any], args: argparse.Namespace, reproduce: str, per_mode: dict[str, str]) -> bool:
    """Print the figures, the targets and the commands; True when every target was met."""
    ok = True
    lines: list[str] = []
    print("jobqueue durable jobs benchmark")
    idle = results.get("idle")
    if idle:
        made = "real jobs run until they suspended" if idle["made_by"] == "jobs" else "SQL copies of a real sleeper"
        print(f"  sleepers: idle drain tick (drain.run, nothing due), median of {idle['ticks']} interleaved ticks")
        print(f"    sleepers made as {made}")
        for label, key in (("0 sleeping jobs", "none"), (f"{idle['sleepers']:,} sleeping jobs", "sleepers")):
            print(f"    {label:<28} {idle[key + '_ms']:8.2f} ms   (p90 {idle[key + '_p90_ms']:.2f} ms)")
        met = idle["ratio"] <= IDLE_TARGET
        ok &= met
        spread = "" if not idle["block_ratios"] else " per block {:.2f}..{:.2f};".format(*idle["block_ratios"])
        lines.append(
            f"  idle tick, {idle['sleepers']:,} sleepers / none: {idle['ratio']:.3f} "
            f"(target <= {IDLE_TARGET:g};{spread} same within noise) {_verdict(met)}"
        )
    wake = results.get("wake")
    if wake:
        every = f"a drain every {wake['tick_s']:g} s" if wake["tick_s"] > 0 else "drains back to back"
        print(f"  sleepers: {wake['jobs']:,} wakes spread over {wake['spread_s']:g} s, {every}; lateness in ms")
        print("                                                   p50      p99      max   drains")
        rows = (
            ("durable sleepers, started_at - sleep end", wake["durable"]),
            ("durable sleepers, task's own start - sleep end", wake["durable_task_start"]),
            ("plain scheduled noop, started_at - run_at", wake["plain"]),
        )
        for label, fig in rows:
            drains = f" {fig['drains']:8d}" if "drains" in fig else ""
            print(f"    {label:<46} {_ms(fig['p50'])} {_ms(fig['p99'])} {_ms(fig['max'])}{drains}")
        limit = wake["tick_s"] if wake["tick_s"] > 0 else 1.0
        met = wake["durable"]["max"] <= limit
        ok &= met
        lines.append(
            f"  wake lateness max (started_at): {wake['durable']['max']:.3f} s "
            f"(target <= one tick, {limit:g} s) {_verdict(met)}"
        )
        plain = wake["plain"]["p99"]
        if plain:
            lines.append(f"  wake lateness p99, durable / plain scheduled: {wake['durable']['p99'] / plain:.2f}")
    rate = results.get("rate")
    if rate:
        print(f"  sleepers: {args.sleepers:,} all due at once, one drain until done; jobs/s")
        print(f"    durable sleepers resumed                     {common.fmt_rate(rate['durable']):>8}")
        print(f"    plain scheduled noop jobs                    {common.fmt_rate(rate['plain']):>8}")
        lines.append(f"  resumptions / plain jobs, per second of one drain: {rate['durable'] / rate['plain']:.2f}")
    sig = results.get("signals")
    if sig:
        print(
            f"  signals: {sig['jobs']} waiting jobs on the local stack, {sig['burst']} signal(s) at a time, "
            f"schedule every {sig['drain_every']:g} s; ms"
        )
        print("                                                   p50      p99      max")
        rows = (
            ("signal -> succeeded (row read every 2 ms)", sig["signal_to_succeeded"]),
            ("signal -> resumed run's start (task's clock)", sig["signal_to_start"]),
            ("POST /jobs/{id}/signals/go answered (202)", sig["signal_answer"]),
            ("baseline: POST /jobs noop -> succeeded", sig["submit_to_succeeded"]),
        )
        for label, fig in rows:
            print(f"    {label:<46} {_ms(fig['p50'])} {_ms(fig['p99'])} {_ms(fig['max'])}")
        p99 = sig["signal_to_succeeded"]["p99"]
        met = p99 <= SIGNAL_TARGET
        ok &= met
        lines.append(f"  signal -> succeeded p99: {p99:.3f} s (target <= {SIGNAL_TARGET:g} s) {_verdict(met)}")
        base = sig["submit_to_succeeded"]["p50"]
        if base:
            lines.append(
                f"  signal -> succeeded / submit -> succeeded, p50: {sig['signal_to_succeeded']['p50'] / base:.2f}"
            )
    prog = results.get("progress")
    if prog:
        print(f"  progress: {prog['calls']:,} calls of job.progress over {prog['seconds']:g} s, one job")
        print(f"    row writes, n_tup_upd less the baseline's     {prog['writes']:5d}")
        print(f"    row versions seen while running, less claim's {prog['versions_seen']:5d}")
        print(
            f"    baseline (no progress calls): {prog['baseline_updates']} updates (claim, outcome); "
            f"last progress kept: {prog['last'].get('message')!r}"
        )
        limit = prog["seconds"] + 1
        met = prog["writes"] <= limit
        ok &= met
        lines.append(
            f"  progress writes: {prog['writes']} for {prog['calls']:,} calls, "
            f"{prog['writes'] / prog['calls']:.3f} per call "
            f"(target <= {limit:g}: about one a second, and the last) {_verdict(met)}"
        )
    print("ratios (target)")
    for line in lines:
        print(line)
    print(f"reproduce: {reproduce}")
    if len(per_mode) > 1:
        print("reproduce each mode alone:")
        for mode, command in per_mode.items():
            print(f"  {mode}: {command}")
    return ok


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=(*MODES, "all"), default="all", help="what to measure (default %(default)s)")
    p.add_argument("--sleepers", type=int, default=10_000, help="sleeping jobs (default %(default)s)")
    p.add_argument(
        "--make",
        choices=("sql", "jobs"),
        default="sql",
        help="idle tick's sleepers: SQL copies of a real sleeper, or real jobs each run until it sleeps",
    )
    p.add_argument("--ticks", type=int, default=500, help="idle ticks measured of each kind (default %(default)s)")
    p.add_argument("--spread", type=float, default=20.0, help="seconds the wakes spread over (default %(default)s)")
    p.add_argument(
        "--tick", type=float, default=1.0, help="seconds between drains; 0: back to back (default %(default)s)"
    )
    p.add_argument("--jobs", type=int, default=200, help="waiting jobs signalled (default %(default)s)")
    p.add_argument("--burst", type=int, default=1, help="signals sent at once (default %(default)s)")
    p.add_argument("--gap", type=float, default=0.05, help="seconds between signals (default %(default)s)")
    p.add_argument(
        "--drain-every", type=float, default=2.0, help="the local stack's schedule, s (default: serve's, %(default)s)"
    )
    p.add_argument("--calls", type=int, default=1000, help="progress calls (default %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds the progress calls take (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs, nothing more")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--database", default="jobqueue_bench_durable", help="prefix of its databases (dropped first)")
    common.add_db_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.sleepers, args.ticks, args.spread, args.tick = 200, 50, 0.5, 0.25
        args.jobs, args.calls, args.seconds, args.gap = 6, 50, 0.5, 0.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from jobqueue import log
    from jobqueue.tasks.loading import load_modules

    args = parse_args(argv)
    reproduce = common.reproduce_command()
    modes = MODES if args.mode == "all" else (args.mode,)
    per_mode = common.mode_commands(sys.argv, modes)
    log.set_level("WARNING")
    load_modules([TASK_MODULE])
    admin = common.db_from_args(args)
    results: dict[str, Any] = {"args": common.jsonable_args(args)}
    if "sleepers" in modes:
        results["idle"] = idle_ticks(args, admin)
        results["wake"] = wake_lateness(args, admin)
        results["rate"] = wake_rate(args, admin)
    if "signals" in modes:
        results["signals"] = signals(args, admin)
    if "progress" in modes:
        results["progress"] = progress(args, admin)
    print()
    ok = report(results, args, reproduce, per_mode)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
