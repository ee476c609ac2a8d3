"""Benchmark what must not grow with other queues' backlogs or the table's size.

What it answers, each figure against a baseline measured in the same run:

* drains: 20,000 no-op jobs of queue q1, drained with queues=["q1"], beside
  1,000,000 due jobs of another queue, and beside 1,000,000 jobs due
  tomorrow (higher priority than the due ones) in q1 itself and in another
  queue, against the same drain with nothing beside it; an all-queues drain
  of 20,000 jobs spread over 50 queues against 20,000 in one queue.
* idle: the database time of a drain that finds nothing due in its queue,
  beside a 1,000,000-job backlog of another queue, per tick.
* warm: a drain process whose connection has run every statement many
  times on an empty table (so PostgreSQL may have cached plans made for an
  empty table) meets 100,000 new jobs; its rate against a fresh connection's.
* reads: stats, lists, get, prune and rescue on a table of 10,000,000 jobs,
  mostly finished, as an operator's dashboard and the drains call them.
* lists: a list by state across queues reads the queues' index one queue at
  a time (there is no index by state alone, which every job would pay for):
  its time on 500,000 finished jobs spread over 10, 100 and 1,000 queues.

Every drain runs jobqueue's own drain in a child process that connects
before the clock starts; reads call jobqueue's api/queue functions. Big tables
are built in SQL (see scale_build.py) in databases of their own, named after
--database, and reused between runs when they already hold what is asked for
(--rebuild builds them again). Exits 1 when a target is missed.

Usage (from the repository root):
    .venv/bin/python bench/bench_scale.py                  # everything, full sizes
    .venv/bin/python bench/bench_scale.py --only reads     # the 10M-row reads
    .venv/bin/python bench/bench_scale.py --quick          # small sizes, seconds
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up
import scale_build as build  # noqa: E402

SECTIONS = ("drains", "idle", "warm", "reads", "lists")
DAY = 86400.0
QUICK = {
    "drain_jobs": 400,
    "backlog": 5000,
    "queues": 10,
    "idle_ticks": 10,
    "warm_jobs": 2000,
    "rows": 30000,
    "running": 30,
    "calls": 10,
    "runs": 1,
    "list_rows": 5000,
}
LIST_QUEUES = (10, 100, 1000)  # queues in the tables of the "lists" section


# --------------------------------------------------------------------------
# Figures


@dataclass
class Figures:
    """Everything measured, and the verdicts printed at the end."""

    drains: dict[str, list[float]] = field(default_factory=dict)  # case -> jobs/s per run
    lines: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool | None]] = field(default_factory=list)

    def rate(self, case: str, value: float) -> None:
        self.drains.setdefault(case, []).append(value)

    def ratio(self, label: str, case: str, baseline: str, target: float) -> None:
        """Median rate of case over median rate of baseline, and its range over runs."""
        a, b = common.median(self.drains.get(case, [])), common.median(self.drains.get(baseline, []))
        if a is None or not b:
            self.lines.append(f"  {label}: not measured")
            return
        value = a / b
        runs = [x / y for x, y in zip(self.drains[case], self.drains[baseline], strict=False) if y]
        spread = f", runs {min(runs):.2f}-{max(runs):.2f}" if len(runs) > 1 else ""
        ok = value >= target
        self.lines.append(
            f"  {label}: {value:.2f} ({common.fmt_rate(a)} / {common.fmt_rate(b)} jobs/s{spread})"
            f" (target >= {target:g}) {'ok' if ok else 'BELOW TARGET'}"
        )
        self.verdicts.append((label, ok))

    def timing(self, label: str, samples: list[float], target_ms: float | None) -> None:
        """Median and p95 of samples (seconds), judged on both against target_ms."""
        if not samples:
            self.lines.append(f"  {label}: not measured")
            return
        med, p95 = statistics.median(samples) * 1000, _p95(samples) * 1000
        text = (
            f"  {label}: median {med:.2f} ms, p95 {p95:.2f} ms, max {max(samples) * 1000:.1f} ms ({len(samples)} calls)"
        )
        if target_ms is not None:
            ok = med <= target_ms and p95 <= target_ms
            text += f" (target <= {target_ms:g} ms) {'ok' if ok else 'ABOVE TARGET'}"
            self.verdicts.append((label, ok))
        self.lines.append(text)


def _p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# --------------------------------------------------------------------------
# Databases


def _database(admin: common.DbConfig, name: str, fresh: bool) -> tuple[common.DbConfig, Any]:
    """A database of this benchmark's, migrated; dropped and made anew when fresh."""
    from jobqueue.store.schema import migrate

    conn = common.connect(admin)
    try:
        exists = bool(conn.run("SELECT 1 FROM pg_database WHERE datname = :n", n=name))
        if exists and fresh:
            conn.run(f"DROP DATABASE {common.conn_ident(name)} WITH (FORCE)")
        if fresh or not exists:
            common.progress(f"creating database {name}")
            conn.run(f"CREATE DATABASE {common.conn_ident(name)}")
    finally:
        conn.close()
    cfg = admin.with_database(name)
    conn = common.connect(cfg)
    migrate(conn)
    conn.run("CREATE TABLE IF NOT EXISTS bench_built (what text PRIMARY KEY)")
    return cfg, conn


def _schema() -> str:
    """A fingerprint of the migrations: a table built under other ones is built
    again (migration files change in place until they are released)."""
    import hashlib

    from jobqueue.store import queries

    return hashlib.sha256("".join(text for _, _, text in queries.migrations()).encode()).hexdigest()[:12]


def _reusable(admin: common.DbConfig, args: argparse.Namespace, name: str, what: str) -> bool:
    """Whether database name already holds what this run would build (and may be reused)."""
    if args.rebuild:
        return False
    conn = common.connect(admin)
    try:
        if not conn.run("SELECT 1 FROM pg_database WHERE datname = :n", n=name):
            return False
    finally:
        conn.close()
    conn = common.connect(admin.with_database(name))
    try:
        if not conn.run("SELECT 1 FROM pg_tables WHERE tablename = 'bench_built'"):
            return False
        return bool(conn.run("SELECT 1 FROM bench_built WHERE what = :w", w=what))
    finally:
        conn.close()


def _backlog_db(admin: common.DbConfig, args: argparse.Namespace, suffix: str, fill: Callable[[Any], None]) -> Any:
    """The database of one scenario, its backlog built once (reused while it matches)."""
    name, what = f"{args.database}_{suffix}", f"{suffix}:{args.backlog}:{_schema()}"
    if _reusable(admin, args, name, what):
        common.progress(f"{suffix}: reusing its backlog of {args.backlog:,}")
        return _database(admin, name, fresh=False)
    cfg, conn = _database(admin, name, fresh=True)
    with build.BulkLoad(conn):
        fill(conn)
    build.settle(conn, suffix)
    conn.run("INSERT INTO bench_built VALUES (:w)", w=what)
    return cfg, conn


def _jobq_env(cfg: common.DbConfig) -> dict[str, str]:
    return {**cfg.env(), "JOBQUEUE_LOG_LEVEL": "WARNING"}


# --------------------------------------------------------------------------
# Drains, in child processes


def _drain_child(env: dict[str, str], queues: list[str] | None, warm: int, pipe: Any) -> None:
    """Connect (and warm up when asked), say ready, drain on "go", send back (jobs, seconds)."""
    os.environ.update(env)
    from jobqueue.config import Settings
    from jobqueue.engine import drain
    from jobqueue.store import connection
    from jobqueue.tasks.loading import load_modules

    load_modules([])
    settings = Settings.from_env()
    database = connection.Database(settings.db)
    database.execute("SELECT 1")
    if warm:
        _warm_up(database, settings, warm)
    pipe.send("ready")
    pipe.recv()
    t0 = time.perf_counter()
    done = 0
    while True:
        report = drain.run(database, settings=settings, queues=queues)
        done += report.processed
        if report.processed == 0:
            break
    pipe.send((done, time.perf_counter() - t0))
    database.close()


def _warm_up(database: Any, settings: Any, rounds: int) -> None:
    """Run every statement of a polling container, `rounds` times, on a near-empty table:
    more than five executions is when PostgreSQL may switch to a cached generic plan."""
    from jobqueue.actions import admin
    from jobqueue.engine import drain
    from jobqueue.store import claims, jobs, upkeep
    from jobqueue.tasks.spec import JobSpec

    for _ in range(rounds):
        job, _created = jobs.enqueue(database, JobSpec(task="noop", queue="q1"))
        jobs.enqueue_many(database, [JobSpec(task="noop", queue="q1")])
        drain.run(database, settings=settings, queues=["q1"])
        drain.run(database, settings=settings)
        claims.fail(
            database, worker="nobody", ids=[job["id"]], attempts=[1], finals=[True], delays=[0.0], errors=["{}"]
        )
        jobs.get(database, job["id"])
        admin.stats(database)
        for state in (None, "pending", "running", "succeeded", "failed"):
            for name in (None, "q1"):
                jobs.list_jobs(database, state=state, queue=name)
        upkeep.prune(database, 0.0)
        upkeep.rescue(database)
        upkeep.compact_counts(database)


def _drain_once(
    cfg: common.DbConfig, queues: list[str] | None, warm: int = 0, before_go: Callable[[], None] | None = None
) -> tuple[int, float]:
    """One drain in a fresh process (its own connection): (jobs done, seconds)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_drain_child, args=(_jobq_env(cfg), queues, warm, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(600):
            raise TimeoutError("the drain process never became ready")
        parent.recv()
        if before_go is not None:
            before_go()
        parent.send("go")
        while not parent.poll(1.0):
            if not proc.is_alive():
                raise RuntimeError("the drain process died")
        return parent.recv()
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
            proc.join()


def _refill(conn: Any, n: int, queues: list[str]) -> None:
    """The jobs under test: n due no-op jobs over queues, newer than any backlog;
    the last run's are removed first, then the table is vacuumed and analyzed."""
    conn.run("DELETE FROM jobs WHERE task = 'noop'")
    build.pending(conn, n, queues, task="noop", age=1.0, label="jobs under test")
    conn.run("VACUUM ANALYZE jobs")


def _measure_drain(
    figures: Figures, case: str, cfg: common.DbConfig, conn: Any, n: int, fill: list[str], queues: list[str] | None
) -> None:
    _refill(conn, n, fill)
    done, seconds = _drain_once(cfg, queues)
    left = conn.run("SELECT count(*) FROM jobs WHERE task = 'noop' AND state <> 'succeeded'")[0][0]
    if done != n or left:
        raise RuntimeError(f"{case}: drained {done} of {n} jobs, {left} left unfinished")
    figures.rate(case, common.rate(n, seconds))
    common.progress(f"{case}: {common.rate(n, seconds):,.0f} jobs/s")


def drains(admin: common.DbConfig, args: argparse.Namespace, figures: Figures) -> None:
    n, backlog = args.drain_jobs, args.backlog
    tomorrow = time.time() + DAY
    wide = [f"w{k:02d}" for k in range(args.queues)]
    dbs = {
        "base": _backlog_db(admin, args, "base", lambda conn: None),
        "other": _backlog_db(
            admin,
            args,
            "other",
            lambda conn: build.pending(
                conn, backlog, ["other"], task="backlog", age=3600, label="backlog in queue other"
            ),
        ),
        "future_q1": _backlog_db(
            admin,
            args,
            "future_q1",
            lambda conn: build.pending(
                conn,
                backlog,
                ["q1"],
                task="backlog",
                priority=-10,
                run_at=tomorrow,
                spread=3600,
                age=3600,
                label="future jobs in q1",
            ),
        ),
        "future_other": _backlog_db(
            admin,
            args,
            "future_other",
            lambda conn: build.pending(
                conn,
                backlog,
                ["other"],
                task="backlog",
                priority=-10,
                run_at=tomorrow,
                spread=3600,
                age=3600,
                label="future jobs in other",
            ),
        ),
    }
    cases = [
        ("q1 alone", "base", ["q1"], ["q1"]),
        ("q1 beside other's backlog", "other", ["q1"], ["q1"]),
        ("q1 beside future jobs in q1", "future_q1", ["q1"], ["q1"]),
        ("q1 beside future jobs in other", "future_other", ["q1"], ["q1"]),
        ("all queues, one queue", "base", ["q1"], None),
        (f"all queues, {len(wide)} queues", "base", wide, None),
    ]
    try:
        for run in range(1, args.runs + 1):
            common.warn_if_busy()
            common.progress(f"drains: round {run}/{args.runs}")
            for case, db, fill, queues in cases:
                cfg, conn = dbs[db]
                _measure_drain(figures, case, cfg, conn, n, fill, queues)
            for _, conn in dbs.values():
                conn.run("DELETE FROM jobs WHERE task = 'noop'")
    finally:
        for _, conn in dbs.values():
            conn.close()
    figures.lines.append(f"drains of {n:,} no-op jobs (jobs/s, median of {args.runs} interleaved runs):")
    for case, values in figures.drains.items():
        each = ", ".join(common.fmt_rate(v) for v in values)
        figures.lines.append(f"  {case}: {common.fmt_rate(common.median(values))} (runs: {each})")
    figures.lines.append("ratios")
    figures.ratio(
        f"q1 beside {backlog:,} due jobs of another queue / alone", "q1 beside other's backlog", "q1 alone", 0.67
    )
    figures.ratio(f"q1 beside {backlog:,} future jobs in q1 / alone", "q1 beside future jobs in q1", "q1 alone", 0.67)
    figures.ratio(
        f"q1 beside {backlog:,} future jobs in another queue / alone",
        "q1 beside future jobs in other",
        "q1 alone",
        0.67,
    )
    figures.ratio(
        f"all queues, {len(wide)} queues / one queue", f"all queues, {len(wide)} queues", "all queues, one queue", 0.67
    )


# --------------------------------------------------------------------------
# Idle ticks


def _idle_child(env: dict[str, str], ticks: int, pipe: Any) -> None:
    """Drain an empty q1 `ticks` times; send back each tick's wall and database seconds."""
    os.environ.update(env)
    from jobqueue.config import Settings
    from jobqueue.engine import drain
    from jobqueue.store import connection
    from jobqueue.tasks.loading import load_modules

    class Timed(connection.Database):
        """The process Database, adding up the time spent waiting on it."""

        spent = 0.0
        statements: dict[str, int] = {}

        def run(self, name: str, *, resend: bool = True, **params: Any) -> list[list[Any]]:
            t0 = time.perf_counter()
            try:
                return super().run(name, resend=resend, **params)
            finally:
                Timed.spent += time.perf_counter() - t0
                Timed.statements[name] = Timed.statements.get(name, 0) + 1

        def execute(self, text: str, **params: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return super().execute(text, **params)
            finally:
                Timed.spent += time.perf_counter() - t0
                Timed.statements["(literal)"] = Timed.statements.get("(literal)", 0) + 1

    load_modules([])
    settings = Settings.from_env()
    database = Timed(settings.db)
    database.execute("SELECT 1")
    Timed.statements.clear()
    wall, spent = [], []
    for _ in range(ticks):
        before = Timed.spent
        t0 = time.perf_counter()
        report = drain.run(database, settings=settings, queues=["q1"], budget_seconds=60.0)
        wall.append(time.perf_counter() - t0)
        spent.append(Timed.spent - before)
        if report.processed:
            raise RuntimeError("an idle drain found work")
    pipe.send((wall, spent, dict(Timed.statements)))
    database.close()


def _idle_ticks(cfg: common.DbConfig, ticks: int) -> tuple[list[float], list[float], dict[str, int]]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_idle_child, args=(_jobq_env(cfg), ticks, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(600):
            raise TimeoutError("the idle drain process never answered")
        return parent.recv()
    finally:
        proc.join(timeout=30)


def idle(admin: common.DbConfig, args: argparse.Namespace, figures: Figures) -> None:
    base = _backlog_db(admin, args, "base", lambda conn: None)
    other = _backlog_db(
        admin,
        args,
        "other",
        lambda conn: build.pending(
            conn, args.backlog, ["other"], task="backlog", age=3600, label="backlog in queue other"
        ),
    )
    results = {}
    try:
        for label, (cfg, conn) in (
            ("empty table", base),
            (f"beside {args.backlog:,} due jobs of another queue", other),
        ):
            conn.run("DELETE FROM jobs WHERE task = 'noop'")
            conn.run("VACUUM ANALYZE jobs")
            common.progress(f"idle drains of q1, {label}")
            results[label] = _idle_ticks(cfg, args.idle_ticks)
    finally:
        base[1].close()
        other[1].close()
    figures.lines.append(f"idle drain of q1 (nothing due in it), {args.idle_ticks} ticks:")
    medians = {}
    for label, (wall, spent, statements) in results.items():
        figures.timing(f"database time per tick, {label}", spent, None)
        figures.timing(f"wall time per tick, {label}", wall, None)
        per_tick = ", ".join(f"{k} {v / args.idle_ticks:.1f}" for k, v in sorted(statements.items()))
        figures.lines.append(f"    statements per tick: {per_tick}")
        medians[label] = statistics.median(spent)
    (empty, beside) = medians.values()
    figures.lines.append(f"  database time beside the backlog / on an empty table: {beside / empty:.2f} (informative)")


# --------------------------------------------------------------------------
# Warm plans


def warm(admin: common.DbConfig, args: argparse.Namespace, figures: Figures) -> None:
    """A connection that ran everything on an empty table, then a burst; against a fresh one.

    Autovacuum is off for this table, as if it had not come by yet: the burst
    arrives with the statistics of an empty table, for both drains alike.
    """
    cfg, conn = _database(admin, f"{args.database}_warm", fresh=True)
    conn.run("ALTER TABLE jobs SET (autovacuum_enabled = off)")
    n = args.warm_jobs

    def empty_table() -> None:
        conn.run("TRUNCATE jobs")
        conn.run("VACUUM ANALYZE jobs")

    def burst() -> None:
        build.pending(conn, n, ["q1"], task="noop", age=1.0, label="burst")

    try:
        for run in range(1, args.runs + 1):
            common.progress(f"warm plans: round {run}/{args.runs}")
            for case, rounds in (("fresh connection", 0), ("warm connection", args.warm_rounds)):
                empty_table()
                if not rounds:
                    # The same history on the table, from a connection that then goes away.
                    _drain_once(cfg, ["q1"], warm=args.warm_rounds)
                    burst()
                done, seconds = _drain_once(cfg, ["q1"], warm=rounds, before_go=burst if rounds else None)
                if done != n:
                    raise RuntimeError(f"{case}: drained {done} of {n} jobs")
                figures.rate(case, common.rate(n, seconds))
                common.progress(f"{case}: {common.rate(n, seconds):,.0f} jobs/s")
    finally:
        conn.close()
    figures.lines.append(
        f"a burst of {n:,} jobs after {args.warm_rounds} rounds of every statement on an empty table "
        f"(jobs/s, median of {args.runs} runs):"
    )
    for case in ("fresh connection", "warm connection"):
        each = ", ".join(common.fmt_rate(v) for v in figures.drains[case])
        figures.lines.append(f"  {case}: {common.fmt_rate(common.median(figures.drains[case]))} (runs: {each})")
    figures.ratio("warm connection / fresh connection", "warm connection", "fresh connection", 0.67)


# --------------------------------------------------------------------------
# Reads at ten million rows


def _history_db(admin: common.DbConfig, args: argparse.Namespace) -> tuple[common.DbConfig, Any, list[str]]:
    """The big table: mostly finished jobs over 14 days, some pending and running."""
    rows = args.rows
    queues = [f"queue-{k:02d}" for k in range(20)]
    running = args.running
    what = f"history:{rows}:{running}:{_schema()}"
    name = f"{args.database}_reads"
    if _reusable(admin, args, name, what):
        common.progress(f"reusing the table of {rows:,} jobs in {name}")
        cfg, conn = _database(admin, name, fresh=False)
        return cfg, conn, queues
    cfg, conn = _database(admin, name, fresh=True)
    finished = round(rows * 0.98)
    common.progress(f"building {rows:,} jobs: {finished:,} finished, then pending and running")
    with build.BulkLoad(conn):
        # 9M succeeded, 0.5M failed, 0.3M cancelled in 10M.
        build.history(conn, finished, queues, failed=0.5 / 9.8, cancelled=0.3 / 9.8, days=14)
        build.pending(conn, rows - finished - running, queues, age=3600, skew=2.0, label="pending jobs")
        build.running(conn, running, queues, lease=3600)
    build.settle(conn, "the big table")
    conn.run("INSERT INTO bench_built VALUES (:w)", w=what)
    return cfg, conn, queues


def reads(admin: common.DbConfig, args: argparse.Namespace, figures: Figures) -> None:
    from jobqueue.actions import admin as admin_actions
    from jobqueue.actions import jobs as job_actions
    from jobqueue.config import Settings
    from jobqueue.store import connection, upkeep

    cfg, conn, queues = _history_db(admin, args)
    database = connection.Database(Settings.from_env(_jobq_env(cfg)).db)
    calls = args.calls
    rng = random.Random(7)
    try:
        size = conn.run("SELECT pg_size_pretty(pg_total_relation_size('jobs')), count(*) FROM jobs")[0]
        counts = dict(conn.run("SELECT state, count(*) FROM jobs GROUP BY state"))
        common.progress(f"the table: {size[1]:,} jobs, {size[0]} with indexes, {counts}")
        ids = [r[0] for r in conn.run("SELECT CAST(id AS text) FROM jobs TABLESAMPLE SYSTEM (1) LIMIT 2000")]
        middle = conn.run("SELECT CAST(id AS text) FROM jobs ORDER BY id LIMIT 1 OFFSET :k", k=size[1] // 2)[0][0]

        def timed(label: str, fn: Callable[[int], Any], target_ms: float | None) -> None:
            fn(0)  # prepared and cached once, as in a warm container
            samples = []
            for i in range(calls):
                t0 = time.perf_counter()
                fn(i)
                samples.append(time.perf_counter() - t0)
            figures.timing(label, samples, target_ms)

        figures.lines.append(
            f"reads on {size[1]:,} jobs ({size[0]} with indexes; {_counts_text(counts)}), API default page of 50:"
        )
        timed("stats (actions.admin.stats)", lambda i: admin_actions.stats(database), 50)
        for state in ("failed", "succeeded", "pending", "running", "cancelled"):
            timed(f"list state={state}", lambda i, s=state: job_actions.list_jobs(database, state=s), 20)
        timed(
            f"list state=failed, page after the {size[1] // 2:,}th job",
            lambda i: job_actions.list_jobs(database, state="failed", cursor=middle),
            20,
        )
        timed("list queue=<each of 20>", lambda i: job_actions.list_jobs(database, queue=queues[i % len(queues)]), 20)
        timed(
            "list queue=<each>&state=<each>",
            lambda i: job_actions.list_jobs(
                database,
                queue=queues[i % len(queues)],
                state=("failed", "succeeded", "pending", "cancelled", "running")[i % 5],
            ),
            20,
        )
        timed("list, no filter", lambda i: job_actions.list_jobs(database), 20)
        timed("get by id", lambda i: job_actions.status(database, ids[rng.randrange(len(ids))]), 2)
        timed("list task=charge (informative)", lambda i: job_actions.list_jobs(database, task="charge"), None)
        timed(
            "list state=failed&task=charge (informative)",
            lambda i: job_actions.list_jobs(database, state="failed", task="charge"),
            None,
        )

        # Prune: 5,000-row batches of jobs finished more than 7 days ago.
        batches = conn.run(
            "SELECT count(*) / 5000 FROM"
            " (SELECT 1 FROM jobs WHERE finished_at < now() - interval '7 days' LIMIT :n) AS o",
            n=5000 * max(3, calls // 20),
        )[0][0]
        samples = []
        for _ in range(batches):
            t0 = time.perf_counter()
            deleted = upkeep.prune(database, 7 * DAY, limit=5000)
            samples.append(time.perf_counter() - t0)
            if deleted != 5000:
                raise RuntimeError(f"prune deleted {deleted}, not a whole batch of 5000")
        figures.timing("prune, a batch of 5,000", samples, None)

        # Rescue: leases of some running jobs run out; then the same with none lost.
        lost = max(1, min(200, counts.get("running", 0) // 5))
        victims = [r[0] for r in conn.run("SELECT CAST(id AS text) FROM jobs WHERE state = 'running' LIMIT :n", n=lost)]
        samples = []
        for _ in range(max(3, calls // 20)):
            conn.run(
                "UPDATE jobs SET lease_expires_at = now() - interval '1 minute' WHERE id = ANY(CAST(:ids AS uuid[]))",
                ids=victims,
            )
            t0 = time.perf_counter()
            rescued = upkeep.rescue(database)
            samples.append(time.perf_counter() - t0)
            if rescued.total != lost:
                raise RuntimeError(f"rescue returned {rescued}, expected {lost} back")
            # Back to running, so the table stays what it was for the next call and run.
            conn.run(
                "UPDATE jobs SET state = 'running', attempts = 1, worker_id = 'bench/0', started_at = now(),"
                " lease_expires_at = now() + interval '1 hour', errors = '[]' WHERE id = ANY(CAST(:ids AS uuid[]))",
                ids=victims,
            )
        figures.timing(f"rescue, {lost} lost leases among {counts.get('running', 0):,} running", samples, None)
        timed(f"rescue, none lost among {counts.get('running', 0):,} running", lambda i: upkeep.rescue(database), None)
    finally:
        database.close()
        conn.close()


def lists(admin: common.DbConfig, args: argparse.Namespace, figures: Figures) -> None:
    """A list by state across queues, as the number of queues grows."""
    from jobqueue.actions import jobs as job_actions
    from jobqueue.config import Settings
    from jobqueue.store import connection

    figures.lines.append(f"lists by state across queues, {args.list_rows:,} finished jobs, API default page of 50:")
    for count in LIST_QUEUES:
        queues = [f"queue-{k:04d}" for k in range(count)]
        name, what = f"{args.database}_lists_{count}", f"lists:{args.list_rows}:{count}:{_schema()}"
        if _reusable(admin, args, name, what):
            cfg, conn = _database(admin, name, fresh=False)
        else:
            cfg, conn = _database(admin, name, fresh=True)
            with build.BulkLoad(conn):
                build.history(conn, args.list_rows, queues, failed=0.05, cancelled=0.03, days=14)
            build.settle(conn, f"{count} queues")
            conn.run("INSERT INTO bench_built VALUES (:w)", w=what)
        database = connection.Database(Settings.from_env({**os.environ, **_jobq_env(cfg)}).db)
        try:
            for state in ("failed", "succeeded"):
                job_actions.list_jobs(database, state=state)  # prepared once, as in a warm container
                samples = []
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    job_actions.list_jobs(database, state=state)
                    samples.append(time.perf_counter() - t0)
                figures.timing(f"list state={state}, {count} queues", samples, 20)
        finally:
            database.close()
            conn.close()


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(s, 0):,} {s}" for s in ("succeeded", "failed", "cancelled", "pending", "running"))


# --------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections (repeatable)")
    p.add_argument("--drain-jobs", type=int, default=20_000, help="jobs per measured drain (default %(default)s)")
    p.add_argument("--backlog", type=int, default=1_000_000, help="jobs beside the drained queue (default %(default)s)")
    p.add_argument("--queues", type=int, default=50, help="queues of the all-queues drain (default %(default)s)")
    p.add_argument("--idle-ticks", type=int, default=50, help="idle drains measured (default %(default)s)")
    p.add_argument(
        "--warm-jobs", type=int, default=100_000, help="the burst a warm connection meets (default %(default)s)"
    )
    p.add_argument(
        "--warm-rounds", type=int, default=8, help="times each statement runs on the empty table (default %(default)s)"
    )
    p.add_argument(
        "--rows", type=int, default=10_000_000, help="jobs in the table the reads run on (default %(default)s)"
    )
    p.add_argument(
        "--running",
        type=int,
        default=2_000,
        help="running jobs among them: what 4 drains claiming 500 at a time hold (default %(default)s)",
    )
    p.add_argument("--calls", type=int, default=200, help="calls per read measured (default %(default)s)")
    p.add_argument("--list-rows", type=int, default=500_000, help="finished jobs in each table of the lists section")
    p.add_argument(
        "--runs", type=int, default=3, help="interleaved rounds of the drains; medians reported (default %(default)s)"
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a check that the benchmark runs, not figures")
    p.add_argument("--rebuild", action="store_true", help="build the big tables again even when they exist")
    p.add_argument(
        "--database", default="jobqueue_scale", help="prefix of this benchmark's databases (default %(default)s)"
    )
    common.add_db_args(p)
    args = p.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reproduce = common.reproduce_command()
    admin = common.db_from_args(args)
    figures = Figures()
    sections = args.only or list(SECTIONS)
    for name, section in (("drains", drains), ("idle", idle), ("warm", warm), ("reads", reads), ("lists", lists)):
        if name in sections:
            section(admin, args, figures)
    print()
    print("\n".join(figures.lines))
    missed = [label for label, ok in figures.verdicts if ok is False]
    print(
        f"targets: {len(figures.verdicts) - len(missed)} of {len(figures.verdicts)} met"
        + (f"; missed: {'; '.join(missed)}" if missed else "")
    )
    print(f"reproduce: {reproduce}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
