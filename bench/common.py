"""Shared helpers for the benchmark scripts in this folder.

Kept to the standard library plus pg8000 so that it imports both in the
project venv (bench_queue.py) and in the bench-only venv
(pgqueuer_baseline.py), which runs as a separate interpreter.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_T0 = time.perf_counter()

# The benchmarks run the built-in tasks (noop, sleep, echo), which a deployment
# registers only when asked: on for this process and every process it starts
# with its environment, unless the caller said otherwise.
os.environ.setdefault("JOBQUEUE_BUILTIN_TASKS", "on")


@dataclasses.dataclass(frozen=True)
class DbConfig:
    """Where the benchmark's PostgreSQL lives.

    Read from the same DB_* variables the package uses, so one environment
    drives the package, its tests and the benchmarks alike.
    """

    host: str = "127.0.0.1"
    port: int = 5432
    name: str = "test"
    user: str = "postgres"
    password: str | None = None

    @classmethod
    def from_env(cls) -> DbConfig:
        """Build from DB_HOST / DB_PORT / DB_NAME / DB_USER / DB_PASSWORD."""
        env = os.environ
        return cls(
            host=env.get("DB_HOST", cls.host),
            port=int(env.get("DB_PORT", str(cls.port))),
            name=env.get("DB_NAME", cls.name),
            user=env.get("DB_USER", cls.user),
            password=env.get("DB_PASSWORD") or None,
        )

    def with_database(self, name: str) -> DbConfig:
        """Same server and credentials, another database."""
        return dataclasses.replace(self, name=name)

    def env(self) -> dict[str, str]:
        """This config as DB_* variables, to hand to a subprocess."""
        out = {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_NAME": self.name,
            "DB_USER": self.user,
        }
        if self.password:
            out["DB_PASSWORD"] = self.password
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (password omitted) for JSON output and child processes."""
        return {"host": self.host, "port": self.port, "name": self.name, "user": self.user}


def add_db_args(parser: argparse.ArgumentParser) -> None:
    """Add --db-* flags whose defaults come from the environment."""
    base = DbConfig.from_env()
    group = parser.add_argument_group("database (defaults from DB_* env)")
    group.add_argument("--db-host", default=base.host)
    group.add_argument("--db-port", type=int, default=base.port)
    group.add_argument(
        "--db-name",
        default=base.name,
        help="existing database to connect to for CREATE DATABASE (default %(default)s)",
    )
    group.add_argument("--db-user", default=base.user)
    group.add_argument("--db-password", default=base.password)


def db_from_args(args: argparse.Namespace) -> DbConfig:
    """The DbConfig selected by add_db_args' flags."""
    return DbConfig(
        host=args.db_host,
        port=args.db_port,
        name=args.db_name,
        user=args.db_user,
        password=args.db_password or None,
    )


def connect(cfg: DbConfig) -> Any:
    """Open a pg8000.native connection (autocommit), with TCP_NODELAY.

    NODELAY as jobqueue.db sets it: without it a large Bind can stall ~40 ms
    on delayed ACKs, which would make a baseline look slow for no good reason.
    """
    import pg8000.native

    where: dict[str, Any] = {"host": cfg.host, "port": cfg.port}
    if cfg.host.startswith("/"):  # a socket directory, as jobqueue's DB_HOST allows
        where = {"unix_sock": f"{cfg.host.rstrip('/')}/.s.PGSQL.{cfg.port}"}
    conn = pg8000.native.Connection(
        cfg.user, database=cfg.name, password=cfg.password, application_name="jobqueue-bench", **where
    )
    sock = getattr(conn, "_usock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def ensure_database(cfg: DbConfig, name: str) -> DbConfig:
    """Create database `name` on cfg's server if missing; return its config.

    Benchmarks truncate their tables freely, so they only ever run in a
    database of their own, never in the one holding real data.
    """
    conn = connect(cfg)
    try:
        exists = conn.run("SELECT 1 FROM pg_database WHERE datname = :n", n=name)
        if not exists:
            progress(f"creating database {name}")
            conn.run(f"CREATE DATABASE {conn_ident(name)}")
    finally:
        conn.close()
    return cfg.with_database(name)


def conn_ident(name: str) -> str:
    """Quote an SQL identifier (CREATE DATABASE cannot take a parameter)."""
    return '"' + name.replace('"', '""') + '"'


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def warn_if_busy(sample_seconds: float = 0.5) -> None:
    """Say so on stderr when other work is using the CPUs right now.

    Call it while the benchmark itself is idle (between rounds): on a 2-core
    machine a concurrent test run halves the figures, and it is better to
    know than to chase a regression that is only a busy neighbour. Samples
    /proc/stat rather than the load average, which still remembers the
    benchmark's own previous round.
    """
    before = _cpu_times()
    if before is None:
        return
    time.sleep(sample_seconds)
    after = _cpu_times()
    if after is None or after[1] == before[1]:
        return
    busy = (after[0] - before[0]) / (after[1] - before[1])
    if busy > 0.25:
        progress(f"warning: other processes keep the CPUs {busy:.0%} busy; figures will be noisy")


def progress(msg: str) -> None:
    """One timestamped status line on stderr, so long runs visibly advance.

    stdout stays reserved for results (JSON or the final table).
    """
    print(f"[bench {time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


@contextmanager
def timer() -> Iterator[list[float]]:
    """Measure wall time of a block: `with timer() as t: ...; t[0]` is seconds."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def rate(count: int, seconds: float) -> float:
    """Items per second, guarding against a zero-length interval."""
    return count / seconds if seconds > 0 else float("inf")


def median(values: Sequence[float]) -> float | None:
    """Median of the runs that produced a value; None when none did.

    Medians, not means: one run disturbed by autovacuum or a checkpoint
    should not move the headline figure.
    """
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt_rate(value: float | None) -> str:
    """Human figure for a jobs/s value (blank when not measured)."""
    return "-" if value is None else f"{value:,.0f}"


def fmt_per_job(value: float | None) -> str:
    """Human figure for a per-job count such as transactions per job."""
    return "-" if value is None else f"{value:.3f}"


# Makes a session's pending statistics (its commits among them) visible to
# other sessions now, before the statement's answer is sent. Otherwise
# PostgreSQL 15+ flushes a session's statistics at most once a second, and
# what it gathered within a second of its last flush can wait 10 s for the
# next (PGSTAT_IDLE_INTERVAL). It reads a table because a session whose
# pending statistics touch no table keeps its transaction counts back even
# when forced.
STATS_FLUSH = "SELECT pg_stat_force_next_flush() FROM pg_am LIMIT 1"


def can_flush_stats(conn: Any) -> bool:
    """Whether the server of this pg8000 connection has pg_stat_force_next_flush() (15+)."""
    version = re.match(r"\d+", conn.parameter_statuses.get("server_version", ""))
    return version is not None and int(version.group()) >= 15


def jsonable_args(args: argparse.Namespace) -> dict[str, Any]:
    """A script's arguments as JSON can hold them (paths as text), the password left out."""
    out = {k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in vars(args).items()}
    out.pop("db_password", None)
    return out


def reproduce_command(argv: Sequence[str] | None = None) -> str:
    """The shell command that reruns this script with the same arguments.

    The interpreter is shown relative to the working directory when it lives
    under it (e.g. .venv/bin/python), so the line can be pasted as is.
    """
    argv = list(sys.argv if argv is None else argv)
    keys = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER")
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in keys if k in os.environ)
    python = sys.executable or "python"
    cwd = os.getcwd() + os.sep
    python = python[len(cwd) :] if python.startswith(cwd) else os.path.basename(python)
    cmd = " ".join(shlex.quote(a) for a in [python, *argv])
    return f"{env} {cmd}".strip()


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[tuple[str, Sequence[float | None]]],
    ratios: Sequence[tuple[str, float | None, float | None]] = (),
    reproduce: str | None = None,
    fmt: Callable[[float | None], str] = fmt_rate,
) -> None:
    """Print a results table (jobs/s, or what ``fmt`` formats), target ratios
    and the reproduce command.

    rows: (label, one value per column). ratios: (label, value, target);
    a ratio is marked ok when value >= target; a None target is informative.
    """
    width = max([len(r[0]) for r in rows] + [8])
    colw = max([len(c) for c in columns] + [10])
    print(title)
    print("  " + " " * width + "".join(f"  {c:>{colw}}" for c in columns))
    for label, values in rows:
        cells = "".join(f"  {fmt(v):>{colw}}" for v in values)
        print(f"  {label:<{width}}{cells}")
    if ratios:
        print("ratios")
        for label, value, target in ratios:
            goal = "" if target is None else f" (target >= {target:g})"
            if value is None:
                print(f"  {label}: not measured{goal}")
            elif target is None:
                print(f"  {label}: {value:.2f}")
            else:
                verdict = "ok" if value >= target else "BELOW TARGET"
                print(f"  {label}: {value:.2f}{goal} {verdict}")
    if reproduce:
        print(f"reproduce: {reproduce}")


def jobqueue_parts() -> Any:
    """The functions of jobqueue the harness drives, from this tree's layers or,
    when bench_regression measures an earlier commit, from its flat package."""
    from types import SimpleNamespace

    try:
        from jobqueue.engine import drain
        from jobqueue.store import claims, connection, jobs, queries, schema
        from jobqueue.store.ids import uuid7
        from jobqueue.tasks.loading import load_modules
        from jobqueue.tasks.spec import JobSpec

        run_drain, apply_migrations = drain.run, schema.migrate
    except ImportError:  # before the regrouping
        from jobqueue.spec import JobSpec, uuid7

        from jobqueue import db as connection
        from jobqueue import migrate, worker
        from jobqueue import queue as jobs
        from jobqueue import sql as queries
        from jobqueue.tasks import load_modules

        claims, run_drain, apply_migrations = jobs, worker.drain, migrate.migrate
    return SimpleNamespace(
        Database=connection.Database,
        set_default=connection.set_default,
        jobs_module=jobs,
        load_modules=load_modules,
        enqueue=jobs.enqueue,
        enqueue_many=jobs.enqueue_many,
        drain=run_drain,
        JobSpec=JobSpec,
        uuid7=uuid7,
        migrate=apply_migrations,
        query=queries.query,
        attempt_records=claims.attempt_records,
    )


def drain_loop(env: dict[str, str], budget: float | None, ready: Any, go: Any, finished: Any, stop: Any) -> None:
    """Body of a benchmark's drain process: a drain in a loop, as a warm
    Lambda container runs one drain after another.

    It connects before it says it is ready, so the clock never counts a
    connection; ``finished`` (a queue, or None) hears how many jobs each
    drain ran. On PostgreSQL 15+ it flushes its session's statistics before
    it says it is ready and once more before it disconnects (STATS_FLUSH: one
    transaction), so that a count of the database's transactions read before
    and after the drain holds exactly the drain's. Imports jobqueue only
    here: the PgQueuer venv imports this module too.
    """
    os.environ.update(env)
    from jobqueue.config import Settings

    jobqueue = jobqueue_parts()
    jobqueue.load_modules([])
    settings = Settings.from_env()
    database = jobqueue.Database(settings.db)
    database.execute("SELECT 1")  # connected before the clock starts
    flush_stats = can_flush_stats(database.connection)
    if flush_stats:
        database.execute(STATS_FLUSH)
    ready.put(os.getpid())
    go.wait()
    kwargs = {} if budget is None else {"budget_seconds": budget}
    while True:
        report = jobqueue.drain(database, settings=settings, **kwargs)
        if report.processed and finished is not None:
            finished.put(report.processed)
        if report.processed == 0 and stop.wait(0.005):
            break
    if flush_stats:
        database.execute(STATS_FLUSH)
    database.close()


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def latency_summary(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def fresh_database(admin: DbConfig, name: str) -> DbConfig:
    """Drop database ``name`` if it exists, create it, migrate it; its config."""
    from jobqueue.store import schema

    conn = connect(admin)
    try:
        conn.run(f"DROP DATABASE IF EXISTS {conn_ident(name)} WITH (FORCE)")
        conn.run(f"CREATE DATABASE {conn_ident(name)}")
    finally:
        conn.close()
    cfg = admin.with_database(name)
    conn = connect(cfg)
    try:
        schema.migrate(conn)
    finally:
        conn.close()
    return cfg


def mode_commands(argv: Sequence[str], modes: Sequence[str]) -> dict[str, str]:
    """The reproduce command of each mode run, alone."""
    rest: list[str] = []
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg == "--mode":
            skip = True
            continue
        if arg.startswith("--mode="):
            continue
        rest.append(arg)
    return {mode: reproduce_command([argv[0], "--mode", mode, *rest]) for mode in modes}


class LocalStack:
    """``python -m jobqueue <args>`` (serve) as a benchmark drives it: started
    with ``env``, its log in ``log_path``, its URL read from what it prints,
    its API called with ``token``."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log_path: Any, token: str) -> None:
        import subprocess
        import threading
        from queue import Empty, Queue

        self.token = token
        self.log_path = log_path
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobqueue", *args],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        lines: Queue[str] = Queue()
        assert self.proc.stdout is not None
        out = self.proc.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True).start()
        deadline = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                self.stop()
                raise SystemExit(f"the local stack did not start; see {log_path}") from None
            if line.startswith("jobqueue is running at "):
                self.url = line.split()[-1]
                break

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        import json
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
