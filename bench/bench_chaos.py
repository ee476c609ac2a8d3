"""Chaos benchmark: what dying drain processes cost, in jobs run again and in time.

Why: a Lambda container can die at any moment (a timeout, an out-of-memory
kill, a deployment). Every job it was running, and every outcome it had not
yet written, is lost with it and runs again once its lease expires. That is
the at-least-once promise working; this benchmark measures its price, and
checks that it never costs more than that: no job may be lost, and no job
may run more times than its ``attempts`` column admits. And a job may be
the cause: a poison job kills whatever process runs it, every time. That
must cost its own attempts, not the jobs running beside it.

Kill modes: N jobs of task ``chaos.work`` (bench/chaos_tasks.py: one line
per run appended to a file, then a short sleep) are enqueued with a short
timeout (2 s, so leases of killed drains expire quickly). Four worker
processes drain them, each replaced as soon as it exits or is killed, until
no job is pending or running. For the first --chaos-seconds a random live
worker is sent SIGKILL every 0.5 to 2 s. Then the file's lines (the runs)
are set against the jobs table. Two shapes of worker, each on a fresh
database:

* processes: a fresh ``python -c`` running ``jobqueue.engine.drain.run``
  until idle (concurrency 8, lease grace 2 s, no safety margin);
* invocations: a fresh process making one scheduled Lambda invocation,
  ``app.lambda_handler`` with the EventBridge sample event of
  tests/support/samples/ and the runtime's own context (15 s left), then
  exiting, as the local stack runs them.

Figures per kill mode: kills, runs (lines written), jobs, re-runs (runs -
jobs), re-runs per kill, lost jobs (not succeeded at the end; must be 0),
jobs run more times than their attempts (must be 0), and the wall time.
A mode fails when a must-be-0 figure is not 0, a worker crashed, or the
jobs did not finish before --deadline.

Poison mode: --poison jobs of task ``chaos.segv`` (its line written, the
task kills its own process with SIGSEGV, as an out-of-memory kill takes a
Lambda container) shuffled among --ordinary ``chaos.work`` jobs of 5 ms,
all with a 2 s timeout and the default attempts (3), drained by four
processes-mode drains, each restarted whenever it dies or exits, until no
job is pending or running; nothing is killed from outside. Then the same
ordinary jobs again without the poison, on a fresh database, for the time
they take undisturbed. Figures: process deaths (drains that ended by a
signal or a non-zero exit), deaths per poison job (the most lines any
poison job wrote: each is a run that killed its process), ordinary jobs
succeeded, poison jobs failed with ProcessCrashed, re-runs of ordinary
jobs (runs - jobs), and the wall time with poison, without, and their
ratio. It fails when an ordinary job did not succeed, a poison job did not
end failed with ProcessCrashed as its last error, a poison job caused more
deaths than its attempts (3), a job ran more times than its attempts, a
drain died of anything but SIGSEGV (without poison: at all), or the jobs
did not finish before --deadline.

Exits 1 when any mode run failed. Each run's database is named after
--database (``<database>_processes``, ``<database>_invocations``,
``<database>_poison``, ``<database>_no_poison``) and dropped and made anew
at the start; it is left behind for a look at the jobs afterwards.

Usage (from the repository root):
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_chaos.py                # every mode (all), a few minutes
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_chaos.py --mode both    # processes and invocations
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_chaos.py --mode poison --json poison.json
    DB_HOST=127.0.0.1 .venv/bin/python bench/bench_chaos.py --quick        # small sizes: checks it runs
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up, like the package imports below

KILL_MODES = ("processes", "invocations")
POISON_MODE = "poison"
# --mode: one kill mode, both of them, the poison runs, or everything.
MODE_CHOICES = (*KILL_MODES, "both", POISON_MODE, "all")
TASK = "chaos.work"
POISON_TASK = "chaos.segv"  # writes its line, then kills its process with SIGSEGV
TASK_MODULE = "chaos_tasks"  # bench/chaos_tasks.py, bench/ on the workers' PYTHONPATH
ENQUEUE_BATCH = 1000
CONCURRENCY = 8
LEASE_GRACE = 2.0
JOB_TIMEOUT = 2.0  # seconds: a killed drain's jobs are rescued after this plus the grace
KILL_EVERY = (0.5, 2.0)  # seconds between kills, uniform
REMAINING_MS = 15_000  # an invocation's time left, as its context reports it
SAMPLE = "eventbridge-scheduled.json"  # tests/support/samples/: a rule's "Scheduled Event"
IDLE_PAUSE = 0.25  # seconds before replacing a worker that exited on its own
POLL = 0.05  # seconds between looks at the workers
CHECK_EVERY = 0.2  # seconds between looks at the jobs table
REPORT_EVERY = 5.0  # seconds between progress lines
STOP_WAIT = 30.0  # seconds the last workers get to exit on their own once every job is done
ORDINARY_SECONDS = 0.005  # poison mode: each ordinary job's sleep
POISON_TIMEOUT = 2.0  # poison mode: every job's timeout (ordinary and poison), as the kill modes'
POISON_DEATH = -signal.SIGSEGV  # the exit status of a drain a poison job killed

# A drain run until idle, as tests/support/drains.py starts one.
DRAIN_CHILD = f"""
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.store import connection
from jobqueue.tasks.loading import load_modules
load_modules([{TASK_MODULE!r}])
settings = Settings(concurrency={CONCURRENCY}, lease_grace_seconds={LEASE_GRACE}, drain_safety_ms=0)
drain.run(connection.default(), settings=settings)
"""

# One scheduled invocation in a fresh container: importing app is the cold start.
INVOCATION_CHILD = """
import sys
from tests.support.aws import make_context, sample
import app
event = sample(sys.argv[1])
app.lambda_handler(event, make_context(remaining_ms=int(sys.argv[2]), request_id=sys.argv[3]))
"""

UNFINISHED = """
SELECT count(*) FILTER (WHERE state IN ('pending', 'running')),
       count(*) FILTER (WHERE state = 'succeeded'),
       count(*) FILTER (WHERE state = 'failed')
FROM jobs
"""
# Per job: its key, state, attempts, and its last error's type.
OUTCOMES = "SELECT CAST(payload->>'key' AS int), state, attempts, errors->-1->>'type' FROM jobs"
# Every entry of the error histories, by type. The task never raises, so each
# is a kill's doing: a lease that expired, a job rescued from a dead drain.
ERRORS = """
SELECT e->>'type', count(*) FROM jobs CROSS JOIN LATERAL jsonb_array_elements(errors) AS e GROUP BY 1 ORDER BY 1
"""


@dataclass
class Figures:
    """What one mode's run came to; must-be-0 figures are lost, over_attempts,
    succeeded_unrun and crashed."""

    mode: str
    jobs: int
    finished: bool = False
    kills: int = 0
    kills_of_working: int = 0  # of the killed workers, those that had run a job
    workers_started: int = 0
    idle_exits: int = 0
    crashed: int = 0  # exited on their own with a status other than 0
    runs: int = 0
    reruns: int = 0
    reruns_per_kill: float | None = None
    lost: int = 0  # not succeeded at the end
    failed: int = 0
    errors: int = 0  # entries in the jobs' error histories (rescues of killed drains' jobs)
    over_attempts: int = 0  # jobs that ran more times than their attempts column says
    never_run: int = 0
    succeeded_unrun: int = 0  # succeeded with no run recorded: must never happen
    wall_seconds: float = 0.0
    states: dict[str, int] = field(default_factory=dict)
    errors_by_type: dict[str, int] = field(default_factory=dict)
    failed_errors: dict[str, int] = field(default_factory=dict)
    crash_sample: str | None = None

    def problems(self) -> list[str]:
        """What went wrong, in words; empty when the run upheld every promise."""
        out = []
        if not self.finished:
            out.append("jobs still unfinished at the deadline")
        for name in ("lost", "over_attempts", "succeeded_unrun", "crashed"):
            if getattr(self, name):
                out.append(f"{name} = {getattr(self, name)}")
        return out


# --------------------------------------------------------------------------
# Database and jobs


def enqueue(cfg: common.DbConfig, jobs: int, path: Path, seconds: float) -> None:
    """Enqueue ``jobs`` chaos jobs, keys 0..jobs-1."""
    from jobqueue.tasks.spec import JobSpec

    payload = {"path": str(path), "seconds": seconds}
    enqueue_specs(cfg, [JobSpec(TASK, {**payload, "key": key}, timeout_seconds=JOB_TIMEOUT) for key in range(jobs)])


def enqueue_specs(cfg: common.DbConfig, specs: Sequence[Any]) -> None:
    """Enqueue ``specs`` in their order (the order they are claimed in), in batches of ENQUEUE_BATCH."""
    from jobqueue.config import Settings
    from jobqueue.store import connection
    from jobqueue.store import jobs as store_jobs

    database = connection.Database(Settings.from_env(cfg.env()).db)
    try:
        for start in range(0, len(specs), ENQUEUE_BATCH):
            store_jobs.enqueue_many(database, list(specs[start : start + ENQUEUE_BATCH]))
    finally:
        database.close()


# --------------------------------------------------------------------------
# Workers


def worker_env(cfg: common.DbConfig, mode: str, workers: int) -> dict[str, str]:
    """The workers' environment: this database, the chaos task, no other jobqueue
    setting of the caller's (no DB_SECRET_ARN, no JOBQUEUE_FUNCTION to fan out to)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "JOBQUEUE_"))}
    env.update(cfg.env())
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(BENCH)]),
        JOBQUEUE_LOG_LEVEL="ERROR",
        JOBQUEUE_TASK_MODULES=TASK_MODULE,
    )
    if mode == "invocations":
        env.update(
            JOBQUEUE_CONCURRENCY=str(CONCURRENCY),
            JOBQUEUE_LEASE_GRACE_SECONDS=str(LEASE_GRACE),  # as the processes' drains, so tails compare
            JOBQUEUE_MAX_DRAINS=str(workers),  # every worker gets a drain slot
        )
    return env


class Pool:
    """``size`` workers of one mode, each replaced when it exits or is killed.

    A worker that ends on its own with a status other than 0 died: its
    status is counted in ``deaths``, and it crashed unless the status is in
    ``expected`` (a poison job's SIGSEGV)."""

    def __init__(
        self,
        mode: str,
        size: int,
        env: dict[str, str],
        logs: Path,
        *,
        label: str | None = None,
        expected: Sequence[int] = (),
    ) -> None:
        self.mode, self.env, self.logs = mode, env, logs
        self.label = label or mode
        self.expected = set(expected)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self.start_at = [0.0] * size
        self.killed: set[subprocess.Popen[bytes]] = set()  # the workers this pool sent SIGKILL
        self.stderr: dict[int, Path] = {}  # pid -> the file its stderr goes to
        self.started = self.idle = self.crashed = 0
        self.deaths: collections.Counter[int] = collections.Counter()  # exit status -> workers that died so
        self.crash_sample: str | None = None

    def _command(self, n: int) -> list[str]:
        if self.mode == "processes":
            return [sys.executable, "-c", DRAIN_CHILD]
        return [sys.executable, "-c", INVOCATION_CHILD, SAMPLE, str(REMAINING_MS), f"chaos-{n}"]

    def _start(self, slot: int) -> None:
        n = self.started
        log = self.logs / f"worker-{n}.err"
        with log.open("wb") as err:
            proc = subprocess.Popen(self._command(n), cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=err)
        self.stderr[proc.pid] = log
        self.procs[slot] = proc
        self.started += 1

    def _reap(self, slot: int, proc: subprocess.Popen[bytes], now: float) -> None:
        """A worker exited: count how, and schedule its replacement."""
        log = self.stderr.pop(proc.pid)
        if proc in self.killed:
            self.start_at[slot] = now
        elif proc.returncode == 0:
            self.idle += 1
            self.start_at[slot] = now + IDLE_PAUSE
        else:
            self.deaths[proc.returncode] += 1
            self.start_at[slot] = now + IDLE_PAUSE
            if proc.returncode not in self.expected:
                self.crashed += 1
                if self.crash_sample is None:
                    tail = log.read_text(errors="replace")[-2000:]
                    self.crash_sample = f"exit status {proc.returncode}: {tail}"
                    common.progress(f"{self.label}: a worker crashed, {self.crash_sample}")
        log.unlink(missing_ok=True)
        self.procs[slot] = None

    def tend(self, replace: bool) -> None:
        """Reap exited workers; start replacements that are due (when ``replace``)."""
        now = time.monotonic()
        for slot, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is not None:
                self._reap(slot, proc, now)
            if replace and self.procs[slot] is None and now >= self.start_at[slot]:
                self._start(slot)

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p is not None and p.poll() is None and p not in self.killed]

    def kill_one(self, rng: random.Random) -> bool:
        """SIGKILL a live worker chosen at random; False when none is live."""
        live = self.live()
        if not live:
            return False
        victim = rng.choice(live)
        self.killed.add(victim)
        victim.send_signal(signal.SIGKILL)
        return True

    def stop(self, wait: float) -> None:
        """Let the workers finish on their own for up to ``wait`` seconds, then kill the rest."""
        end = time.monotonic() + wait
        while any(p is not None for p in self.procs) and time.monotonic() < end:
            self.tend(replace=False)
            time.sleep(POLL)
        for slot, proc in enumerate(self.procs):
            if proc is not None:
                proc.kill()
                proc.wait()
                self.stderr.pop(proc.pid).unlink(missing_ok=True)
                self.procs[slot] = None


# --------------------------------------------------------------------------
# One mode


def run_mode(mode: str, admin: common.DbConfig, args: argparse.Namespace, rng: random.Random) -> Figures:
    """Enqueue, drain under chaos until every job is finished, and count."""
    cfg = common.fresh_database(admin, f"{args.database}_{mode}")
    figures = Figures(mode=mode, jobs=args.jobs)
    with tempfile.TemporaryDirectory(prefix="jobqueue-chaos-") as tmp:
        runs_file = Path(tmp) / "runs.txt"
        runs_file.touch()
        logs = Path(tmp) / "logs"
        logs.mkdir()
        common.progress(f"{mode}: enqueueing {args.jobs:,} jobs")
        enqueue(cfg, args.jobs, runs_file, args.seconds_per_job)
        common.warn_if_busy()
        pool = Pool(mode, args.workers, worker_env(cfg, mode, args.workers), logs)
        figures.finished, figures.wall_seconds, figures.kills = drain_then_count(
            pool,
            cfg,
            mode,
            args.jobs,
            args.deadline,
            lambda conn: _count(conn, runs_file, pool, figures),
            chaos_seconds=args.chaos_seconds,
            rng=rng,
        )
    return figures


def drain_then_count(
    pool: Pool,
    cfg: common.DbConfig,
    label: str,
    jobs: int,
    deadline: float,
    count: Callable[[Any], None],
    **chaos: Any,
) -> tuple[bool, float, int]:
    """Drive the pool until every job is finished (see drive), stop it, then
    let ``count`` read the database; (finished, seconds, kills)."""
    conn = common.connect(cfg)
    finished = False
    try:
        try:
            finished, seconds, kills = drive(pool, conn, label, jobs, deadline, **chaos)
        finally:
            pool.stop(STOP_WAIT if finished else 0.0)
        count(conn)
    finally:
        conn.close()
    return finished, seconds, kills


def drive(
    pool: Pool,
    conn: Any,
    label: str,
    jobs: int,
    deadline: float,
    *,
    chaos_seconds: float = 0.0,
    rng: random.Random | None = None,
) -> tuple[bool, float, int]:
    """Keep the pool full, and for the first ``chaos_seconds`` kill at random,
    until no job is pending or running, or ``deadline`` seconds pass;
    (finished, seconds, kills)."""
    t0 = time.monotonic()
    chaos_until = t0 + chaos_seconds
    next_kill = t0 + (rng.uniform(*KILL_EVERY) if rng is not None else 0.0)
    next_check = next_report = t0
    kills = 0
    while True:
        now = time.monotonic()
        pool.tend(replace=True)
        if rng is not None and now < chaos_until and now >= next_kill:
            kills += pool.kill_one(rng)
            next_kill = now + rng.uniform(*KILL_EVERY)
        if now >= next_check:
            next_check = now + CHECK_EVERY
            unfinished, succeeded, failed = conn.run(UNFINISHED)[0]
            if unfinished == 0:
                return True, time.monotonic() - t0, kills
            if now >= next_report:
                next_report = now + REPORT_EVERY
                phase = (" (chaos)" if now < chaos_until else " (calm)") if chaos_seconds > 0 else ""
                common.progress(
                    f"{label}{phase}: {succeeded:,}/{jobs:,} succeeded, {failed:,} failed, "
                    f"{unfinished:,} unfinished; {kills} kills, {pool.deaths.total()} deaths, "
                    f"{pool.started} workers started"
                )
        if now - t0 > deadline:
            common.progress(f"{label}: jobs still unfinished after {deadline:.0f}s, giving up")
            return False, now - t0, kills
        time.sleep(POLL)


def _count(conn: Any, runs_file: Path, pool: Pool, figures: Figures) -> None:
    """Set the runs the file recorded against the jobs table."""
    runs, pids = read_runs(runs_file, figures.mode)
    figures.kills_of_working = sum(proc.pid in pids for proc in pool.killed)
    figures.workers_started, figures.idle_exits = pool.started, pool.idle
    figures.crashed, figures.crash_sample = pool.crashed, pool.crash_sample
    figures.runs = sum(runs.values())
    figures.reruns = figures.runs - figures.jobs
    figures.reruns_per_kill = figures.reruns / figures.kills if figures.kills else None
    states: collections.Counter[str] = collections.Counter()
    failed_errors: collections.Counter[str] = collections.Counter()
    for key, state, attempts, last_error in conn.run(OUTCOMES):
        states[state] += 1
        ran = runs.get(key, 0)
        figures.over_attempts += ran > attempts
        figures.never_run += ran == 0
        if state == "succeeded":
            figures.succeeded_unrun += ran == 0
        else:
            figures.lost += 1
        if state == "failed":
            failed_errors[last_error or "?"] += 1
    figures.failed = states.get("failed", 0)
    figures.states = dict(states)
    figures.failed_errors = dict(failed_errors)
    figures.errors_by_type = {kind or "?": count for kind, count in conn.run(ERRORS)}
    figures.errors = sum(figures.errors_by_type.values())
    common.progress(
        f"{figures.mode}: {figures.runs:,} runs of {figures.jobs:,} jobs, {figures.kills} kills, "
        f"states {dict(states)}, {figures.wall_seconds:.1f}s"
    )


def read_runs(runs_file: Path, label: str) -> tuple[collections.Counter[int], set[int]]:
    """The runs the file recorded: lines per job key, and the processes that wrote them."""
    runs: collections.Counter[int] = collections.Counter()
    pids: set[int] = set()
    for line in runs_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            runs[int(parts[0])] += 1
            pids.add(int(parts[1]))
        else:
            common.progress(f"{label}: unreadable line in the runs file: {line[:80]!r}")
    return runs, pids


# --------------------------------------------------------------------------
# Poison

# Per job: key, task, state, attempts, max_attempts, forgiven, its error history.
JOB_ROWS = """
SELECT CAST(payload->>'key' AS int), task, state, attempts, max_attempts, forgiven, errors FROM jobs ORDER BY 1
"""
ODD_SAMPLE = 20  # jobs that broke a promise, shown as the database has them


@dataclass
class PoisonFigures:
    """One poison-mode run, with its poison jobs or without them; must-be-0
    figures are ordinary_lost, poison_bad, poison_over, over_attempts,
    succeeded_unrun and crashed."""

    label: str
    ordinary: int
    poison: int
    finished: bool = False
    drains_started: int = 0
    idle_exits: int = 0
    deaths: int = 0  # drains that ended by a signal or a non-zero exit
    crashed: int = 0  # of those, the ones not killed by SIGSEGV (without poison: every one)
    poison_runs: int = 0  # lines the poison jobs wrote: each run killed its process
    max_deaths_per_poison: int | None = None  # the most lines one poison job wrote
    poison_attempts: int | None = None  # the poison jobs' max_attempts (the default: 3)
    poison_over: int = 0  # poison jobs that caused more deaths than their max_attempts
    poison_crashed: int = 0  # poison jobs that ended failed, ProcessCrashed their last error
    poison_bad: int = 0  # poison jobs that did not
    ordinary_runs: int = 0
    ordinary_reruns: int = 0
    ordinary_succeeded: int = 0
    ordinary_lost: int = 0  # not succeeded at the end
    ordinary_caught: int = 0  # ordinary jobs with a ProcessCrashed in their history (in a dead drain's slots)
    over_attempts: int = 0  # jobs that ran more times than their attempts column says
    succeeded_unrun: int = 0
    wall_seconds: float = 0.0
    deaths_by_status: dict[str, int] = field(default_factory=dict)
    deaths_per_poison: dict[str, int] = field(default_factory=dict)  # lines written -> poison jobs
    states: dict[str, int] = field(default_factory=dict)  # "task state" -> jobs
    errors_by_type: dict[str, int] = field(default_factory=dict)
    odd_jobs: list[dict[str, Any]] = field(default_factory=list)
    crash_sample: str | None = None

    def problems(self) -> list[str]:
        """What went wrong, in words; empty when the run upheld every promise."""
        out = []
        if not self.finished:
            out.append("jobs still unfinished at the deadline")
        for name in ("ordinary_lost", "poison_bad", "poison_over", "over_attempts", "succeeded_unrun", "crashed"):
            if getattr(self, name):
                out.append(f"{name} = {getattr(self, name)}")
        return out


def run_poison(admin: common.DbConfig, args: argparse.Namespace, rng: random.Random) -> list[PoisonFigures]:
    """The ordinary jobs with the poison ones shuffled among them, then the
    same ordinary jobs in the same order without them."""
    order = [(TASK, key) for key in range(args.ordinary)]
    order += [(POISON_TASK, args.ordinary + n) for n in range(args.poison)]
    rng.shuffle(order)
    return [
        poison_round("poison", admin, args, order),
        poison_round("no_poison", admin, args, [job for job in order if job[0] == TASK]),
    ]


def poison_round(
    label: str, admin: common.DbConfig, args: argparse.Namespace, order: list[tuple[str, int]]
) -> PoisonFigures:
    """Enqueue ``order``'s jobs, drain them with drains restarted as they die
    or exit (nothing killed from outside) until every job is finished, and count."""
    from jobqueue.tasks.spec import JobSpec

    cfg = common.fresh_database(admin, f"{args.database}_{label}")
    poison = sum(task == POISON_TASK for task, _ in order)
    figures = PoisonFigures(label=label, ordinary=len(order) - poison, poison=poison)
    with tempfile.TemporaryDirectory(prefix="jobqueue-poison-") as tmp:
        runs_file = Path(tmp) / "runs.txt"
        runs_file.touch()
        logs = Path(tmp) / "logs"
        logs.mkdir()
        extra = {TASK: {"seconds": ORDINARY_SECONDS}, POISON_TASK: {}}
        specs = [
            JobSpec(task, {"path": str(runs_file), "key": key, **extra[task]}, timeout_seconds=POISON_TIMEOUT)
            for task, key in order
        ]
        common.progress(f"{label}: enqueueing {figures.ordinary:,} ordinary and {poison} poison jobs")
        enqueue_specs(cfg, specs)
        common.warn_if_busy()
        env = worker_env(cfg, "processes", args.workers)
        pool = Pool("processes", args.workers, env, logs, label=label, expected=(POISON_DEATH,) if poison else ())
        figures.finished, figures.wall_seconds, _ = drain_then_count(
            pool, cfg, label, len(order), args.deadline, lambda conn: _count_poison(conn, runs_file, pool, figures)
        )
    return figures


def _count_poison(conn: Any, runs_file: Path, pool: Pool, figures: PoisonFigures) -> None:
    """Set the runs the file recorded, and the drains' deaths, against the jobs table."""
    runs, _ = read_runs(runs_file, figures.label)
    figures.drains_started, figures.idle_exits = pool.started, pool.idle
    figures.deaths = pool.deaths.total()
    figures.deaths_by_status = {_status(code): n for code, n in sorted(pool.deaths.items())}
    figures.crashed, figures.crash_sample = pool.crashed, pool.crash_sample
    states: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    per_poison: collections.Counter[int] = collections.Counter()
    for key, task, state, attempts, max_attempts, forgiven, history in conn.run(JOB_ROWS):
        ran = runs.get(key, 0)
        states[f"{task} {state}"] += 1
        kinds = [entry.get("type") or "?" for entry in history]
        errors.update(kinds)
        last = kinds[-1] if kinds else None
        odd = []
        if ran > attempts:
            figures.over_attempts += 1
            odd.append(f"ran {ran} times, attempts {attempts}")
        if task == POISON_TASK:
            figures.poison_runs += ran
            per_poison[ran] += 1
            if ran > max_attempts:
                figures.poison_over += 1
                odd.append(f"{ran} deaths, more than its {max_attempts} attempts")
            if state == "failed" and last == "ProcessCrashed":
                figures.poison_crashed += 1
            else:
                figures.poison_bad += 1
                odd.append("not failed with ProcessCrashed")
            figures.poison_attempts = max(figures.poison_attempts or 0, max_attempts)
        else:
            figures.ordinary_runs += ran
            figures.ordinary_caught += "ProcessCrashed" in kinds
            if state == "succeeded":
                figures.ordinary_succeeded += 1
                if ran == 0:
                    figures.succeeded_unrun += 1
                    odd.append("succeeded, never run")
            else:
                figures.ordinary_lost += 1
                odd.append("not succeeded")
        if odd and len(figures.odd_jobs) < ODD_SAMPLE:
            figures.odd_jobs.append(
                {"key": key, "task": task, "state": state, "attempts": attempts, "max_attempts": max_attempts,
                 "forgiven": forgiven, "runs": ran, "why": odd, "errors": history}
            )  # fmt: skip
    figures.ordinary_reruns = figures.ordinary_runs - figures.ordinary
    if figures.poison:
        figures.max_deaths_per_poison = max(per_poison)
        figures.deaths_per_poison = {str(n): per_poison[n] for n in sorted(per_poison)}
    figures.states = dict(sorted(states.items()))
    figures.errors_by_type = dict(sorted(errors.items()))
    common.progress(
        f"{figures.label}: {figures.deaths} deaths, {figures.ordinary_runs:,} runs of {figures.ordinary:,} "
        f"ordinary jobs, states {figures.states}, {figures.wall_seconds:.1f}s"
    )


def _status(code: int) -> str:
    """An exit status in words: the signal's name for a death by signal."""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


# --------------------------------------------------------------------------
# Report


ROWS = (
    ("kills", "kills"),
    ("kills of a worker that had run jobs", "kills_of_working"),
    ("workers started", "workers_started"),
    ("runs (lines written)", "runs"),
    ("jobs", "jobs"),
    ("re-runs (runs - jobs)", "reruns"),
    ("lost (not succeeded), must be 0", "lost"),
    ("  of which failed", "failed"),
    ("errors recorded (rescues)", "errors"),
    ("run more than attempts, must be 0", "over_attempts"),
    ("succeeded, never run, must be 0", "succeeded_unrun"),
    ("workers crashed, must be 0", "crashed"),
    ("wall seconds", "wall_seconds"),
)


def report(results: list[Figures], args: argparse.Namespace) -> None:
    """Print the table, re-runs per kill, and what went wrong."""
    ratios: list[tuple[str, float | None, float | None]] = []
    for f in results:
        ratios.append((f"{f.mode}: re-runs per kill", f.reruns_per_kill, None))
        per_working = f.reruns / f.kills_of_working if f.kills_of_working else None
        ratios.append((f"{f.mode}: re-runs per kill of a worker that had run jobs", per_working, None))
    print()
    common.print_table(
        f"chaos: {args.jobs:,} jobs of {args.seconds_per_job:g}s (timeout {JOB_TIMEOUT:g}s, 3 attempts), "
        f"{args.workers} workers x {CONCURRENCY}, SIGKILL every {KILL_EVERY[0]:g}-{KILL_EVERY[1]:g}s "
        f"for the first {args.chaos_seconds:g}s",
        [f.mode for f in results],
        [(label, [float(getattr(f, name)) for f in results]) for label, name in ROWS],
        ratios,
    )
    for f in results:
        if f.errors_by_type:
            print(f"{f.mode}: errors recorded by type: {f.errors_by_type}")
        if f.failed_errors:
            print(f"{f.mode}: failed jobs by last error: {f.failed_errors}")
        problems = f.problems()
        print(f"{f.mode}: {'FAIL: ' + '; '.join(problems) if problems else 'ok'}")


def poison_rows(attempts: int | None) -> tuple[tuple[str, str], ...]:
    """The poison table's rows: (label, PoisonFigures field)."""
    most = "attempts" if attempts is None else f"{attempts}"
    return (
        ("ordinary jobs", "ordinary"),
        ("poison jobs", "poison"),
        ("drains started", "drains_started"),
        ("process deaths (signal or exit != 0)", "deaths"),
        ("  not by SIGSEGV, must be 0", "crashed"),
        ("poison runs (lines written)", "poison_runs"),
        (f"deaths per poison job, max, must be <= {most}", "max_deaths_per_poison"),
        ("ordinary succeeded", "ordinary_succeeded"),
        ("ordinary not succeeded, must be 0", "ordinary_lost"),
        ("poison failed with ProcessCrashed", "poison_crashed"),
        ("poison ending otherwise, must be 0", "poison_bad"),
        ("ordinary runs (lines written)", "ordinary_runs"),
        ("ordinary re-runs (runs - jobs)", "ordinary_reruns"),
        ("ordinary caught in a death (suspects)", "ordinary_caught"),
        ("run more than attempts, must be 0", "over_attempts"),
        ("succeeded, never run, must be 0", "succeeded_unrun"),
        ("wall seconds", "wall_seconds"),
    )


def report_poison(results: list[PoisonFigures], args: argparse.Namespace) -> None:
    """Print the poison table, the wall times' ratio, and what went wrong."""
    with_poison, without = results
    ratio = with_poison.wall_seconds / without.wall_seconds if without.wall_seconds > 0 else None
    ratios: list[tuple[str, float | None, float | None]] = [
        ("wall seconds with poison", with_poison.wall_seconds, None),
        ("wall seconds without", without.wall_seconds, None),
        ("wall time with poison / without", ratio, None),
    ]
    print()
    common.print_table(
        f"poison: {args.poison} jobs of {POISON_TASK} (SIGSEGV) shuffled among {args.ordinary:,} of {TASK} "
        f"({ORDINARY_SECONDS * 1000:g} ms), timeout {POISON_TIMEOUT:g}s, default attempts; "
        f"{args.workers} drains x {CONCURRENCY}, lease grace {LEASE_GRACE:g}s, restarted as they end; no kills",
        [f.label for f in results],
        [
            (label, [None if getattr(f, name) is None else float(getattr(f, name)) for f in results])
            for label, name in poison_rows(with_poison.poison_attempts)
        ],
        ratios,
    )
    for f in results:
        if f.deaths_by_status:
            print(f"{f.label}: drains' deaths by status: {f.deaths_by_status}")
        if f.deaths_per_poison:
            print(f"{f.label}: poison jobs by the deaths each caused: {f.deaths_per_poison}")
        print(f"{f.label}: jobs by task and state: {f.states}")
        if f.errors_by_type:
            print(f"{f.label}: errors recorded by type: {f.errors_by_type}")
        if f.crash_sample:
            print(f"{f.label}: first unexpected death: {f.crash_sample[-500:]}")
        for job in f.odd_jobs:
            print(f"{f.label}: odd job {json.dumps(job, default=str)}")
        problems = f.problems()
        print(f"{f.label}: {'FAIL: ' + '; '.join(problems) if problems else 'ok'}")


# --------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--mode",
        choices=MODE_CHOICES,
        default="all",
        help="processes or invocations (killed at random), both of those, poison, or all three (default %(default)s)",
    )
    p.add_argument("--jobs", type=int, default=20000, help="jobs per kill mode (default %(default)s)")
    p.add_argument("--chaos-seconds", type=float, default=60.0, help="seconds of killing (default %(default)s)")
    p.add_argument("--seconds-per-job", type=float, default=0.02, help="each job's sleep (default %(default)s)")
    p.add_argument("--workers", type=int, default=4, help="worker processes at once (default %(default)s)")
    p.add_argument(
        "--deadline", type=float, default=900.0, help="seconds per mode before giving up (default %(default)s)"
    )
    p.add_argument(
        "--ordinary", type=int, default=3000, help="poison mode: ordinary jobs (5 ms each) (default %(default)s)"
    )
    p.add_argument("--poison", type=int, default=20, help="poison mode: poison jobs among them (default %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="seed of the kills' timing and victims, and of the shuffle")
    p.add_argument(
        "--quick",
        action="store_true",
        help="2,000 jobs and 10 s of chaos, 300 ordinary and 4 poison jobs: checks that it runs",
    )
    p.add_argument(
        "--database", default="jobqueue_chaos", help="prefix of this benchmark's databases (default %(default)s)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    common.add_db_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.jobs, args.chaos_seconds = 2000, 10.0
        args.ordinary, args.poison = 300, 4
    if args.jobs < 1 or args.workers < 1 or args.ordinary < 1:
        p.error("--jobs, --workers and --ordinary must be at least 1")
    if args.poison < 0:
        p.error("--poison must be at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reproduce = common.reproduce_command()
    seed = random.randrange(2**32) if args.seed is None else args.seed
    common.progress(f"seed {seed}")
    rng = random.Random(seed)

    from jobqueue.tasks.loading import load_modules

    load_modules([TASK_MODULE])  # bench/ is sys.path[0]: enqueue checks the tasks exist
    admin = common.db_from_args(args)
    kill_modes = KILL_MODES if args.mode in ("both", "all") else tuple(m for m in KILL_MODES if m == args.mode)
    results = [run_mode(mode, admin, args, rng) for mode in kill_modes]
    # The shuffle has a generator of its own: --seed gives the same order whichever modes ran first.
    poisoned = run_poison(admin, args, random.Random(seed)) if args.mode in (POISON_MODE, "all") else []
    if results:
        report(results, args)
    if poisoned:
        report_poison(poisoned, args)
    print(f"reproduce: {reproduce}")
    if args.json:
        modes = {f.mode: asdict(f) for f in results} | {f.label: asdict(f) for f in poisoned}
        args.json.write_text(
            json.dumps({"seed": seed, "args": common.jsonable_args(args), "modes": modes}, indent=1, default=str)
        )
    return 1 if any(f.problems() for f in [*results, *poisoned]) else 0


if __name__ == "__main__":
    sys.exit(main())
