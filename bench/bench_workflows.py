"""Benchmark: what workflows (depends_on, batches with after/then) cost a drain.

Children are released by a statement trigger on jobs (migrations/
0008_workflows.sql): a parent's end decrements its children's parents_left
in the same transaction as its outcome. Three modes, each against a
baseline measured in the same run, interleaved, medians reported; no-op
jobs drained by worker processes looping drains as warm Lambdas would:

* fanin: --width parents (default 10,000) into one child, submitted with
  depends_on all of them (workflows.submit), drained whole. Reported: the
  time to drain everything, rows left blocked (must be 0), and what the
  release costs per parent next to draining --width plain jobs with no child.
* fanout: one parent into --children children (default 10,000: batches of
  1,000 by workflows.submit_batch, each job depends_on [parent]). Reported:
  the time from the parent's end to no child left blocked (seen by the
  harness, which polls a single snapshot, and from the database's
  timestamps to the last child's end), rows left blocked (0), and the whole
  drain next to --children + 1 plain jobs.
* beside: --jobs plain jobs drained alone, and drained beside --blocked
  blocked jobs (default 100,000: batches of 1,000 whose parent, a job
  delayed by a day, never ends, in the same queue). Target: the same rate
  (ratio about 1.0; flagged below 0.9), since blocked rows sit outside the
  claim index. --jobs defaults to the issue's 1,000,000, one round (a
  whole --mode all run took 4.5 minutes on a 2-core machine, 3 of them
  enqueueing and draining 1M twice); --jobs 200000 is the shorter check.

Then (unless --no-explain) the statements the trigger runs are shown with
auto_explain (loaded into one session, plans sent to it as notices; the
server needs nothing preloaded): a fan-in and a fan-out are drained in
process with every nested statement explained with its actual rows, and the
rows each release statement reads from jobs and job_edges are added up per
parent ended, with any sequential scan of those tables called out.

The tables live in a database of their own (default jobqueue_bench_workflows),
dropped and created afresh at the start.

Usage (from the repository root):
    .venv/bin/python bench/bench_workflows.py --mode all
    .venv/bin/python bench/bench_workflows.py --mode beside --jobs 1000000 --runs 1
    .venv/bin/python bench/bench_workflows.py --quick
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up, like the package imports below

POLL_SECONDS = 0.01
# Nothing left to run: none pending and due (the beside mode's anchor is
# pending, but due a day from now; blocked jobs are neither), none running.
DONE = (
    "SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'pending' AND due)"
    " AND NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'running')"
)
# The fan-out's poll, one snapshot: done?, the parent's state, any child blocked?
FANOUT_POLL = (
    "SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'pending' AND due)"
    " AND NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'running'),"
    " (SELECT state FROM jobs WHERE id = CAST(:p AS uuid)),"
    " EXISTS (SELECT 1 FROM jobs WHERE state = 'blocked')"
)
FINAL = ("succeeded", "failed", "cancelled")
BATCH = 1000  # jobs per enqueue_many / submit_batch call (a batch's most)
MODES = ("fanin", "fanout", "beside")
SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan")
RELEASE_MARK = "unnest(p_ended"  # the release statement of jobqueue_release_children
TRIGGER_MARK = "new_jobs"  # the trigger's own checks, over the statement's changed rows


def _worker(env: dict[str, str], budget: float, ready: Any, go: MpEvent, stop: MpEvent) -> None:
    """Child process: drains with a Lambda's time budget, one after another."""
    common.drain_loop(env, budget, ready, go, None, stop)


def fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


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
        self.settings = Settings.from_env({**os.environ, **self.env})
        self.database = connection.Database(self.settings.db)

    def close(self) -> None:
        self.database.close()

    def one(self, sql: str, **params: Any) -> Any:
        return self.database.execute(sql, **params)[0][0]

    # ------------------------------------------------------------------ set-ups

    def reset(self) -> None:
        self.database.execute("TRUNCATE jobs, queues")  # job_edges goes with jobs (its trigger)

    def analyze(self) -> None:
        if self.args.stale_stats:
            return
        self.database.execute("ANALYZE jobs")
        self.database.execute("ANALYZE job_edges")

    def plain(self, count: int, **options: Any) -> list[str]:
        """Enqueue `count` no-op jobs, 1,000 a statement; their ids."""
        from jobqueue.store import jobs
        from jobqueue.tasks.spec import JobSpec

        ids: list[str] = []
        for start in range(0, count, BATCH):
            size = min(BATCH, count - start)
            made = jobs.enqueue_many(self.database, [JobSpec("noop", **options) for _ in range(size)])
            ids += [job["id"] for job in made]
        return ids

    def fanin(self, width: int) -> float:
        """`width` parents and one child that depends on all; the child's submit's seconds."""
        from jobqueue.actions import workflows

        parents = self.plain(width)
        self.analyze()
        with common.timer() as took:
            body, _ = workflows.submit(self.database, {"task": "noop", "depends_on": parents})
        if body["job"]["state"] != "blocked":
            raise RuntimeError(f"the fan-in child is {body['job']['state']}, not blocked")
        self.analyze()
        return took[0]

    def children_of(self, parent: str, count: int) -> list[float]:
        """Submit `count` jobs that depend on `parent`, 1,000 a batch; each batch's seconds.

        Statistics are refreshed after each batch (unless --stale-stats), as
        they stand in a table autovacuum keeps: with none (a new or truncated
        table), both jobqueue_link and the release join the blocked jobs, as
        the outer side, to the batch's edges re-aggregated for each one.
        """
        from jobqueue.actions import workflows

        seconds = []
        for start in range(0, count, BATCH):
            size = min(BATCH, count - start)
            with common.timer() as took:
                body = workflows.submit_batch(
                    self.database, {"jobs": [{"task": "noop", "depends_on": [parent]} for _ in range(size)]}
                )
            seconds.append(took[0])
            if any(job["state"] != "blocked" for job in body["jobs"]):
                raise RuntimeError("a child is not blocked")
            self.analyze()
        return seconds

    def fanout(self, children: int) -> tuple[str, list[float]]:
        """One parent and `children` that depend on it; (its id, each batch's seconds)."""
        (parent,) = self.plain(1)
        return parent, self.children_of(parent, children)

    def blocked(self, count: int) -> float:
        """`count` blocked jobs whose parent (delayed by a day) never ends; seconds."""
        (anchor,) = self.plain(1, delay_seconds=86400)
        return sum(self.children_of(anchor, count))

    # ------------------------------------------------------------------ drains

    def drain(self, label: str, expected: int, poll: Callable[[float], bool] | None = None) -> float:
        """Run --workers worker processes until nothing is left to run; seconds.

        Workers connect and signal ready before the clock starts. ``poll(t)``
        (t: seconds since the start) replaces the plain done-check; it
        returns whether everything is done. ``expected``: jobs that must
        have succeeded by then.
        """
        ctx = mp.get_context("spawn")
        ready = ctx.Queue()
        go, stop = ctx.Event(), ctx.Event()
        args = (self.env, self.args.budget, ready, go, stop)
        children = [ctx.Process(target=_worker, args=args, daemon=True) for _ in range(self.args.workers)]
        for child in children:
            child.start()
        timeout = max(120.0, expected / 100)
        check = poll or (lambda _t: bool(self.one(DONE)))
        try:
            for _ in children:
                ready.get(timeout=60)
            t0 = time.perf_counter()
            go.set()
            next_report = t0 + 5.0
            while True:
                time.sleep(POLL_SECONDS)
                now = time.perf_counter()
                if check(now - t0):
                    elapsed = time.perf_counter() - t0
                    break
                if now >= next_report:
                    done = self.one("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
                    common.progress(f"{label}: {done:,}/{expected:,} done")
                    next_report = now + 5.0
                if now - t0 > timeout:
                    raise TimeoutError(f"{label}: jobs still unfinished after {timeout:.0f}s")
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
        done = self.one("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
        if done != expected:
            raise RuntimeError(f"{label}: {done} of {expected} jobs succeeded")
        return elapsed

    def left_blocked(self) -> int:
        return int(self.one("SELECT count(*) FROM jobs WHERE state = 'blocked'"))


# ---------------------------------------------------------------------- modes


def run_fanin(bench: Bench, args: argparse.Namespace, out: dict[str, Any]) -> None:
    width = args.width
    plain_s, flow_s, submit_s, blocked = [], [], [], []
    for run_no in range(1, args.runs + 1):
        common.warn_if_busy()
        order = ("plain", "fanin") if run_no % 2 else ("fanin", "plain")
        for what in order:
            bench.reset()
            if what == "plain":
                bench.plain(width)
                bench.analyze()
                plain_s.append(bench.drain("fanin baseline", width))
                common.progress(f"fanin {run_no}/{args.runs}: {width:,} plain jobs drained in {plain_s[-1]:.3f}s")
            else:
                submit_s.append(bench.fanin(width))
                flow_s.append(bench.drain("fanin", width + 1))
                blocked.append(bench.left_blocked())
                common.progress(
                    f"fanin {run_no}/{args.runs}: {width:,} parents + child drained in {flow_s[-1]:.3f}s, "
                    f"{blocked[-1]} left blocked (child submitted in {submit_s[-1]:.3f}s)"
                )
    out["fanin"] = {
        "plain": common.median(plain_s),
        "flow": common.median(flow_s),
        "submit": common.median(submit_s),
        "blocked": max(blocked),
    }


def run_fanout(bench: Bench, args: argparse.Namespace, out: dict[str, Any]) -> None:
    n = args.children
    plain_s, flow_s, submit_s, slowest, blocked, seen_gap, db_gap, torn_polls = [], [], [], [], [], [], [], 0
    for run_no in range(1, args.runs + 1):
        common.warn_if_busy()
        order = ("plain", "fanout") if run_no % 2 else ("fanout", "plain")
        for what in order:
            bench.reset()
            if what == "plain":
                bench.plain(n + 1)
                bench.analyze()
                plain_s.append(bench.drain("fanout baseline", n + 1))
                common.progress(f"fanout {run_no}/{args.runs}: {n + 1:,} plain jobs drained in {plain_s[-1]:.3f}s")
                continue
            parent, batches = bench.fanout(n)
            submit_s.append(sum(batches))
            slowest.append(max(batches))
            seen: dict[str, float] = {}

            def poll(t: float, parent: str = parent, seen: dict[str, float] = seen) -> bool:
                nonlocal torn_polls
                done, state, any_blocked = bench.database.execute(FANOUT_POLL, p=parent)[0]
                if state in FINAL:
                    seen.setdefault("parent_end", t)
                    if any_blocked:
                        torn_polls += 1  # the parent ended, a child still blocked: not one transaction
                if not any_blocked and state in FINAL:
                    seen.setdefault("released", t)
                return bool(done)

            flow_s.append(bench.drain("fanout", n + 1, poll))
            blocked.append(bench.left_blocked())
            seen_gap.append(seen["released"] - seen["parent_end"])
            # From the parent's outcome to the last child's (both now() of their transactions).
            db_gap.append(
                float(
                    bench.one(
                        "SELECT extract(epoch FROM max(c.finished_at) - p.finished_at) FROM jobs AS p"
                        " JOIN job_edges AS e ON e.parent = p.id JOIN jobs AS c ON c.id = e.child"
                        " WHERE p.id = CAST(:p AS uuid) GROUP BY p.finished_at",
                        p=parent,
                    )
                )
            )
            common.progress(
                f"fanout {run_no}/{args.runs}: parent + {n:,} children drained in {flow_s[-1]:.3f}s, "
                f"{blocked[-1]} left blocked; children seen released {seen_gap[-1] * 1000:.0f} ms after the "
                f"parent's end, all finished {db_gap[-1]:.3f}s after it (submitted in {submit_s[-1]:.3f}s, "
                f"slowest batch {slowest[-1]:.3f}s)"
            )
    out["fanout"] = {
        "plain": common.median(plain_s),
        "flow": common.median(flow_s),
        "submit": common.median(submit_s),
        "slowest_batch": max(slowest),
        "blocked": max(blocked),
        "released": max(seen_gap),
        "children_done": common.median(db_gap),
        "torn_polls": torn_polls,
    }


def run_beside(bench: Bench, args: argparse.Namespace, out: dict[str, Any]) -> None:
    n = args.jobs
    alone, beside, make = [], [], []
    for run_no in range(1, args.runs + 1):
        common.warn_if_busy()
        order = ("alone", "beside") if run_no % 2 else ("beside", "alone")
        for what in order:
            bench.reset()
            if what == "beside":
                make.append(bench.blocked(args.blocked))
                common.progress(f"beside: {args.blocked:,} blocked jobs submitted in {make[-1]:.1f}s")
            common.progress(f"beside: enqueueing {n:,} plain jobs")
            bench.plain(n)
            bench.analyze()
            seconds = bench.drain(f"beside {what}", n)
            (alone if what == "alone" else beside).append(common.rate(n, seconds))
            if what == "beside" and bench.left_blocked() != args.blocked:
                raise RuntimeError(f"{bench.left_blocked()} jobs blocked, {args.blocked} were made")
            rated = common.rate(n, seconds)
            common.progress(f"beside {run_no}/{args.runs}: {what}: {n:,} plain jobs at {rated:,.0f}/s")
    out["beside"] = {"alone": common.median(alone), "beside": common.median(beside), "make": common.median(make)}


# ------------------------------------------------------------------- explain


def _walk(plan: dict[str, Any]) -> Any:
    yield plan
    for sub in plan.get("Plans", ()):
        yield from _walk(sub)


def _explained(notices: Sequence[dict[bytes, bytes]]) -> list[dict[str, Any]]:
    """The auto_explain plans (JSON) among a session's notices."""
    plans = []
    for notice in notices:
        text = notice.get(b"M", b"").decode()
        if "plan:" not in text:
            continue
        try:
            plan = json.loads(text[text.index("{") :])
        except ValueError:
            continue
        match = re.match(r"duration: ([0-9.]+) ms", text)
        plan["ms"] = float(match.group(1)) if match else None
        plans.append(plan)
    return plans


def _rows_read(plan: dict[str, Any]) -> tuple[dict[str, int], list[str], list[str]]:
    """Rows a statement's scans read from jobs and from job_edges (kept or
    filtered out), the scans (node, relation, index), and those that read a
    whole table or index: sequential scans, and index scans with no
    condition on the index (read in the index's order, whole)."""
    rows = {"jobs": 0, "job_edges": 0}
    scans, whole = [], []
    for node in _walk(plan["Plan"]):
        relation = node.get("Relation Name")
        if node.get("Node Type") not in SCANS or relation not in rows:
            continue
        loops = node.get("Actual Loops", 1)
        rows[relation] += (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
        name = f"{node['Node Type']} {relation}" + (f" ({node['Index Name']})" if node.get("Index Name") else "")
        scans.append(name)
        unbounded = "Index Name" in node and "Index Cond" not in node
        if node["Node Type"] == "Seq Scan" or unbounded:
            whole.append(name + (" with no Index Cond" if unbounded else ""))
    return rows, scans, whole


def explain(bench: Bench, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Drain a fan-in and a fan-out in process, every statement (nested ones
    too) explained with its actual rows; add up what the release reads.

    Beside each, --explain-others blocked jobs of another parent (one that
    never ends) hold edges of their own: a release that reads only its
    parents' edges reads none of them, one that scans job_edges reads them all.
    """
    from jobqueue.engine import drain
    from jobqueue.store import connection

    database = connection.Database(bench.settings.db)
    try:
        database.execute("LOAD 'auto_explain'")
    except Exception as exc:  # noqa: BLE001 - not a superuser, or not installed: say so, go on
        out["explain"] = {"error": f"auto_explain could not be loaded: {exc}"}
        database.close()
        return
    for setting in (
        "auto_explain.log_min_duration = 0",
        "auto_explain.log_analyze = on",
        "auto_explain.log_timing = off",
        "auto_explain.log_nested_statements = on",
        "auto_explain.log_triggers = on",
        "auto_explain.log_format = 'json'",
        "auto_explain.log_level = 'notice'",
        "client_min_messages = 'notice'",
    ):
        database.execute(f"SET {setting}")
    preloaded = bench.one("SELECT current_setting('shared_preload_libraries')")
    report: dict[str, Any] = {"pg_stat_statements": "pg_stat_statements" in preloaded, "others": args.explain_others}
    try:
        for shape in ("fanin", "fanout"):
            bench.reset()
            if args.explain_others:
                bench.blocked(args.explain_others)
            if shape == "fanin":
                bench.fanin(args.width)
                ended, edges = args.width, args.width
            else:
                bench.fanout(args.children)
                ended, edges = 1, args.children
            common.progress(f"explain: draining the {shape} in process, every statement explained")
            notices: deque[dict[bytes, bytes]] = deque()
            database.connection.notices = notices
            releases: list[dict[str, Any]] = []
            checks: list[dict[str, Any]] = []
            # Until the parents have all ended (the fan-out's children are not the point).
            while bench.one("SELECT count(*) FROM jobs WHERE state = 'succeeded'") < ended:
                drain.run(database, settings=bench.settings, max_jobs=ended)
                plans = _explained(notices)
                releases += [p for p in plans if RELEASE_MARK in p.get("Query Text", "")]
                checks += [p for p in plans if TRIGGER_MARK in p.get("Query Text", "")]
                notices.clear()
            read = [_rows_read(p) for p in releases]
            per_statement = [r["jobs"] + r["job_edges"] for r, _, _ in read]
            report[shape] = {
                "parents_ended": ended,
                "edges": edges,
                "release_statements": len(releases),
                "edges_read": sum(r["job_edges"] for r, _, _ in read),
                "jobs_read": sum(r["jobs"] for r, _, _ in read),
                "max_rows_one_statement": max(per_statement, default=0),
                "release_ms": sum(p["ms"] or 0.0 for p in releases),
                "scans": sorted({s for _, ss, _ in read for s in ss}),
                "whole": sorted({s for _, _, ss in read for s in ss} | {s for p in checks for s in _rows_read(p)[2]}),
                "left_blocked": bench.left_blocked() - args.explain_others,
            }
            common.progress(f"explain {shape}: {report[shape]}")
    finally:
        database.close()
    out["explain"] = report


# ---------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=(*MODES, "all"), default="all", help="what to measure (default %(default)s)")
    p.add_argument("--width", type=int, default=10000, help="fanin: parents of the one child (default %(default)s)")
    p.add_argument("--children", type=int, default=10000, help="fanout: children of the one parent")
    p.add_argument("--blocked", type=int, default=100000, help="beside: blocked jobs (default %(default)s)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1000000,
        help="beside: plain jobs drained alone and beside the blocked ones (default %(default)s)",
    )
    p.add_argument("--runs", type=int, default=3, help="interleaved rounds of fanin and fanout; medians reported")
    p.add_argument("--beside-runs", type=int, default=1, help="rounds of the beside mode (default %(default)s)")
    p.add_argument("--workers", type=int, default=4, help="drain worker processes (default %(default)s)")
    p.add_argument(
        "--budget", type=float, default=120.0, help="each drain's time budget, like a Lambda's (default %(default)s)"
    )
    p.add_argument("--no-explain", action="store_true", help="skip the auto_explain reading of the release")
    p.add_argument(
        "--stale-stats",
        action="store_true",
        help="never ANALYZE jobs after a set-up's submits (a table without statistics: shows the quadratic plans)",
    )
    p.add_argument(
        "--explain-others",
        type=int,
        default=20000,
        help="blocked jobs of another parent beside the explained fan-in and fan-out (default %(default)s)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round: checks that it runs, nothing more")
    p.add_argument("--database", default="jobqueue_bench_workflows", help="database for the tables (dropped first)")
    common.add_db_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.width, args.children, args.blocked, args.jobs, args.explain_others = 300, 300, 1500, 500, 600
        args.runs, args.beside_runs, args.workers = 1, 1, 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reproduce = common.reproduce_command()
    modes = MODES if args.mode == "all" else (args.mode,)
    cfg = common.fresh_database(common.db_from_args(args), args.database)
    bench = Bench(cfg, args)
    out: dict[str, Any] = {}
    try:
        for mode in modes:
            common.progress(f"mode {mode}")
            if mode == "fanin":
                run_fanin(bench, args, out)
            elif mode == "fanout":
                run_fanout(bench, args, out)
            else:
                beside_args = argparse.Namespace(**{**vars(args), "runs": args.beside_runs})
                run_beside(bench, beside_args, out)
        if not args.no_explain and {"fanin", "fanout"} & set(modes):
            explain(bench, args, out)
    finally:
        bench.close()
    return report(args, out, reproduce)


def report(args: argparse.Namespace, out: dict[str, Any], reproduce: str) -> int:
    missed = False
    print()
    if "fanin" in out:
        r, w = out["fanin"], args.width
        per_parent = (r["flow"] - r["plain"]) / w * 1e6
        common.print_table(
            f"fanin: {w:,} parents into one child, {args.workers} workers, median of {args.runs} interleaved runs",
            ["drain s", "jobs/s"],
            [
                (f"{w:,} plain jobs, no child (baseline)", [r["plain"], common.rate(w, r["plain"])]),
                (f"{w:,} parents + their child", [r["flow"], common.rate(w + 1, r["flow"])]),
            ],
            [("fan-in drain rate / baseline", common.rate(w + 1, r["flow"]) / common.rate(w, r["plain"]), None)],
            fmt=fmt_seconds,
        )
        print(f"  the release's cost per parent: {per_parent:+.1f} us of drain time (fan-in less baseline, / {w:,})")
        print(f"  the child's submit (depends_on {w:,} ids): {r['submit']:.3f}s")
        print(f"  rows left blocked: {r['blocked']} {'ok' if r['blocked'] == 0 else 'WRONG'}")
        missed |= r["blocked"] != 0
        print()
    if "fanout" in out:
        r, n = out["fanout"], args.children
        common.print_table(
            f"fanout: one parent into {n:,} children, {args.workers} workers, median of {args.runs} interleaved runs",
            ["drain s", "jobs/s"],
            [
                (f"{n + 1:,} plain jobs (baseline)", [r["plain"], common.rate(n + 1, r["plain"])]),
                (f"the parent + {n:,} children", [r["flow"], common.rate(n + 1, r["flow"])]),
            ],
            [("fan-out drain rate / baseline", r["plain"] / r["flow"], None)],
            fmt=fmt_seconds,
        )
        print(
            f"  parent's end to no child blocked: {r['released'] * 1000:.0f} ms as polled every "
            f"{POLL_SECONDS * 1000:.0f} ms (worst run; 0: seen in the same snapshot), polls that saw the parent "
            f"ended and a child still blocked: {r['torn_polls']}"
        )
        print(f"  parent's end to the last child's end: {r['children_done']:.3f}s (database timestamps)")
        print(
            f"  the children's submit ({-(-n // BATCH)} batches): {r['submit']:.3f}s, slowest batch "
            f"{r['slowest_batch']:.3f}s" + (" (--stale-stats)" if args.stale_stats else "")
        )
        print(f"  rows left blocked: {r['blocked']} {'ok' if r['blocked'] == 0 else 'WRONG'}")
        missed |= r["blocked"] != 0 or r["torn_polls"] != 0
        print()
    if "beside" in out:
        r = out["beside"]
        ratio = r["beside"] / r["alone"] if r["alone"] else None
        common.print_table(
            f"beside: {args.jobs:,} plain no-op jobs/s, {args.workers} workers, median of {args.beside_runs} run(s)",
            ["jobs/s"],
            [
                ("drained alone (baseline)", [r["alone"]]),
                (f"drained beside {args.blocked:,} blocked jobs", [r["beside"]]),
            ],
            [("beside / alone (target about 1.0)", ratio, 0.9)],
        )
        print(f"  {args.blocked:,} blocked jobs made by submit_batch in {r['make']:.1f}s")
        missed |= ratio is None or ratio < 0.9
        print()
    if "explain" in out:
        r = out["explain"]
        print(
            f"release statements (auto_explain, nested statements with actual rows; beside "
            f"{r.get('others', 0):,} blocked jobs of another parent)"
        )
        if "error" in r:
            print(f"  {r['error']}")
        for shape in ("fanin", "fanout"):
            if shape not in r:
                continue
            s = r[shape]
            print(
                f"  {shape}: {s['parents_ended']:,} parent(s) ended by {s['release_statements']} release "
                f"statement(s): {s['edges_read']:,} job_edges rows read for their {s['edges']:,} edges "
                f"({s['edges_read'] / s['edges']:.2f} per edge), {s['jobs_read']:,} jobs rows read "
                f"({s['jobs_read'] / s['edges']:.2f} per edge), at most {s['max_rows_one_statement']:,} rows "
                f"in one statement, {s['release_ms']:.0f} ms in all (auto_explain's own cost included); "
                f"{s['left_blocked']} left blocked"
            )
            print(f"    scans: {', '.join(s['scans']) or '-'}")
            print(f"    whole-table or whole-index reads: {', '.join(s['whole']) or 'none'}")
            missed |= bool(s["whole"]) or s["edges_read"] > s["edges"]
        print(f"  pg_stat_statements preloaded: {'yes' if r.get('pg_stat_statements') else 'no (auto_explain used)'}")
        print()
    print(f"reproduce: {reproduce}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
