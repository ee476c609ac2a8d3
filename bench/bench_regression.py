"""This tree's throughput against an earlier commit's, in the same run.

Checks out REF (default: the first release, before drains ran jobs side by
side and before the per-queue claim) in a temporary git worktree, and runs
this tree's bench_queue.py measurements of jobqueue ("ours": enqueue one by
one, in batches, drain with 1 and 4 processes, and the database
transactions each drain commits per job) on that tree's package and on this
one, in alternating rounds, each in a database of its own on the same
server. One harness measures both, and a drain's clock stops on its
workers' reports rather than on a poll of the table (a query whose cost
depends on each schema's indexes, and which shares the server with the
drain). The ratios this tree / REF are what the issues' "within 10% of
today's" targets read.

Jobs are no-ops unless --job-seconds S makes them sleep S seconds (the
built-in task `sleep`, in every tree): what a change to how a drain writes
its outcomes costs real, if short, jobs. Then only the drains are measured
(the enqueues do not depend on what the jobs do); --concurrency N sets the
drains' JOBQUEUE_CONCURRENCY in both trees (a tree before concurrency
ignores it).

Usage (from the repository root; needs the git history):
    .venv/bin/python bench/bench_regression.py --jobs 20000 --runs 3
    .venv/bin/python bench/bench_regression.py --ref 267fd86 --runs 3 --job-seconds 0.005 --jobs 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up

FIRST_RELEASE = "3d2e02c"  # 0.1.0: one drain, one job at a time, one claim index for every queue
METRICS = ("enqueue_single", "enqueue_batch", "drain_1", "drain_4")
DRAINS = ("drain_1", "drain_4")
XACT_METRICS = ("drain_1_xacts", "drain_4_xacts")  # transactions committed per job
COLUMNS = {"enqueue_single": "enq 1-by-1", "enqueue_batch": "enq x1000", "drain_1": "drain 1w", "drain_4": "drain 4w"}
# The issues' targets for this tree / the first release, no-op jobs.
TARGETS = {"enqueue_single": 0.95, "drain_1": 0.9}


def rate_metrics(args: argparse.Namespace) -> tuple[str, ...]:
    """The jobs/s figures compared: the drains only when jobs sleep."""
    return DRAINS if args.job_seconds > 0 else METRICS


def measure(tree: Path, database: str, args: argparse.Namespace, out: Path) -> dict[str, float | None]:
    """One round of bench_queue.py's jobqueue measurements in ``tree``."""
    command = [
        sys.executable,
        str(ROOT / "bench" / "bench_queue.py"),
        "--done-by",
        "workers",
        "--only",
        "ours",
        "--runs",
        "1",
        "--jobs",
        str(args.jobs),
        "--single-jobs",
        str(0 if args.job_seconds > 0 else args.single_jobs),
        "--job-seconds",
        repr(args.job_seconds),
        "--database",
        database,
        "--json",
        str(out),
        "--db-host",
        args.db_host,
        "--db-port",
        str(args.db_port),
        "--db-name",
        args.db_name,
        "--db-user",
        args.db_user,
    ]
    if args.concurrency is not None:
        command += ["--concurrency", str(args.concurrency)]
    env = {**os.environ, "JOBQUEUE_BENCH_TREE": str(tree)}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"bench_queue.py failed in {tree}:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())["medians"]["ours"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default=FIRST_RELEASE, help="the commit to compare with (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per measurement (default %(default)s)")
    parser.add_argument("--single-jobs", type=int, default=2000, help="jobs for the one-by-one enqueue")
    parser.add_argument("--runs", type=int, default=3, help="alternating rounds; medians reported")
    parser.add_argument(
        "--job-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="jobs sleep S seconds instead of doing nothing (default 0); above 0 only the drains are measured",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="JOBQUEUE_CONCURRENCY of the drains in both trees (default: unset, each tree's default)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every round's figures to this file")
    common.add_db_args(parser)
    args = parser.parse_args()
    if args.job_seconds < 0:
        parser.error("--job-seconds: must be 0 (no-op jobs) or more")
    metrics = (*rate_metrics(args), *XACT_METRICS)

    with tempfile.TemporaryDirectory(prefix="jobqueue-ref-") as scratch:
        ref_tree = Path(scratch) / "ref"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(ref_tree), args.ref], cwd=ROOT, check=True)
        try:
            samples: dict[str, dict[str, list[float | None]]] = {
                name: {m: [] for m in metrics} for name in ("ref", "this")
            }
            for round_no in range(1, args.runs + 1):
                common.warn_if_busy()
                for name, tree in (("ref", ref_tree), ("this", ROOT)):
                    common.progress(f"round {round_no}/{args.runs}: {name}")
                    medians = measure(tree, f"jobqueue_bench_{name}", args, Path(scratch) / f"{name}.json")
                    for metric in metrics:  # None kept, so that round i of ref and this line up
                        samples[name][metric].append(medians.get(metric))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT, check=False)

    report(samples, args)
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "args": {k: str(v) for k, v in vars(args).items()}}))
    return 0


def _ratios(samples: dict[str, dict[str, list[float | None]]], metric: str) -> list[float]:
    """This tree / REF, round by round."""
    pairs = zip(samples["ref"][metric], samples["this"][metric], strict=True)
    return [this / ref for ref, this in pairs if ref and this is not None]


def _span(values: list[float], fmt: Callable[[float | None], str]) -> str:
    return "-" if not values else f"{fmt(min(values))}–{fmt(max(values))}"


def report(samples: dict[str, dict[str, list[float | None]]], args: argparse.Namespace) -> None:
    """The medians of both trees, their ratios, and every figure's range over the rounds."""
    med = {name: {m: common.median(v) for m, v in per.items()} for name, per in samples.items()}
    kind = f"sleep({args.job_seconds:g} s)" if args.job_seconds > 0 else "no-op"
    setting = "" if args.concurrency is None else f", JOBQUEUE_CONCURRENCY={args.concurrency}"
    labels = {"ref": f"{args.ref} (ref)", "this": "this tree"}
    rates = rate_metrics(args)
    ratios = []
    for metric in (*rates, *XACT_METRICS):
        ref, this = med["ref"][metric], med["this"][metric]
        target = TARGETS.get(metric) if args.job_seconds == 0 else None
        ratios.append((f"{metric}: this / ref", None if not ref or this is None else this / ref, target))
    common.print_table(
        f"{kind} jobs/s, median of {args.runs} alternating rounds, {args.jobs} jobs per measurement{setting}",
        [COLUMNS[m] for m in rates],
        [(labels[name], [med[name][m] for m in rates]) for name in ("ref", "this")],
    )
    common.print_table(
        "database transactions committed per job of a drain (xact_commit), median",
        [COLUMNS[m.removesuffix("_xacts")] for m in XACT_METRICS],
        [(labels[name], [med[name][m] for m in XACT_METRICS]) for name in ("ref", "this")],
        ratios,
        fmt=common.fmt_per_job,
    )
    print(f"ranges over {args.runs} rounds (ref; this tree; this / ref round by round)")
    for metric in (*rates, *XACT_METRICS):
        fmt = common.fmt_per_job if metric in XACT_METRICS else common.fmt_rate
        spans = [_span([v for v in samples[name][metric] if v is not None], fmt) for name in ("ref", "this")]
        print(f"  {metric}: {spans[0]}; {spans[1]}; {_span(_ratios(samples, metric), lambda v: f'{v:.2f}')}")
    print(f"reproduce: {common.reproduce_command()}")


if __name__ == "__main__":
    sys.exit(main())
