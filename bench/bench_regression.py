"""This tree's no-op throughput against an earlier commit's, in the same run.

Checks out REF (default: the first release, before drains ran jobs side by
side and before the per-queue claim) in a temporary git worktree, and runs
this tree's bench_queue.py measurements of jobqueue ("ours": enqueue one by
one, in batches, drain with 1 and 4 processes) on that tree's package and on
this one, in alternating rounds, each in a database of its own on the same
server. One harness measures both, and a drain's clock stops on its
workers' reports rather than on a poll of the table (a query whose cost
depends on each schema's indexes, and which shares the server with the
drain). The ratios this tree / REF are what the issues' "within 10% of
today's" targets read.

Usage (from the repository root; needs the git history):
    .venv/bin/python bench/bench_regression.py --jobs 20000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import common  # noqa: E402 - after the path fix-up

FIRST_RELEASE = "3d2e02c"  # 0.1.0: one drain, one job at a time, one claim index for every queue
METRICS = ("enqueue_single", "enqueue_batch", "drain_1", "drain_4")


def measure(tree: Path, database: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
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
        str(args.single_jobs),
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
    common.add_db_args(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="jobqueue-ref-") as scratch:
        ref_tree = Path(scratch) / "ref"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(ref_tree), args.ref], cwd=ROOT, check=True)
        try:
            samples: dict[str, dict[str, list[float]]] = {"ref": {m: [] for m in METRICS}, "this": {}}
            samples["this"] = {m: [] for m in METRICS}
            for round_no in range(1, args.runs + 1):
                common.warn_if_busy()
                for name, tree in (("ref", ref_tree), ("this", ROOT)):
                    common.progress(f"round {round_no}/{args.runs}: {name}")
                    medians = measure(tree, f"jobqueue_bench_{name}", args, Path(scratch) / f"{name}.json")
                    for metric in METRICS:
                        if medians.get(metric) is not None:
                            samples[name][metric].append(medians[metric])
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT, check=False)

    med = {name: {m: common.median(v) for m, v in per.items()} for name, per in samples.items()}
    rows = [(f"{args.ref} (ref)", [med["ref"][m] for m in METRICS]), ("this tree", [med["this"][m] for m in METRICS])]
    ratios = []
    for metric in METRICS:
        ref, this = med["ref"][metric], med["this"][metric]
        target = 0.9 if metric == "drain_1" else None
        ratios.append((f"{metric}: this / ref", None if not ref or this is None else this / ref, target))
    common.print_table(
        f"no-op jobs/s, median of {args.runs} alternating rounds, {args.jobs} jobs per measurement",
        ["enq 1-by-1", "enq x1000", "drain 1w", "drain 4w"],
        rows,
        ratios,
        common.reproduce_command(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
