"""The benchmarks still run (tiny sizes, no PgQueuer): figures live in bench/,
but a benchmark that no longer runs would leave the README's figures unreproducible."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jobqueue.store import connection
from tests.support.aws import ROOT


def run_bench(server_env: dict[str, str], *args: str) -> str:
    env = {**os.environ, **server_env}
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    # 1 means "ran, but a ratio missed its target": tiny sizes are all noise.
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize(
    "script",
    [
        ("bench/bench_queue.py", "--jobs", "300", "--runs", "1", "--skip-pgqueuer", "--workers", "2"),
        ("bench/bench_queue.py", "--jobs", "300", "--runs", "1", "--skip-pgqueuer", "--done-by", "workers"),
        ("bench/bench_handler.py", "--rounds", "2", "--per-round", "20", "--cold-runs", "2"),
        ("bench/bench_flow.py", "--quick"),
        ("bench/bench_periodic.py", "--schedules", "20", "--calls", "20"),
        ("bench/bench_scale.py", "--quick"),
        ("bench/bench_chaos.py", "--mode", "processes", "--jobs", "500", "--chaos-seconds", "3"),
        ("bench/bench_chaos.py", "--mode", "poison", "--ordinary", "100", "--poison", "2"),
        ("bench/bench_durable.py", "--quick"),
        ("bench/bench_workflows.py", "--quick"),
        ("bench/bench_timers.py", "--quick"),
    ],
)
def test_benchmark_runs_and_prints_its_figures(server_env, db_settings, script):
    name = f"jobqueue_bench_{os.getpid()}"
    try:
        out = run_bench(server_env, *script, "--db-name", db_settings.name, "--database", name)
    finally:
        # The benchmark's database, or its databases named after it (bench_scale.py).
        admin = connection.connect(db_settings)
        made = admin.run(
            "SELECT datname FROM pg_database WHERE datname = :n OR starts_with(datname, :n || '_')", n=name
        )
        for (made_name,) in made:
            admin.run(f'DROP DATABASE IF EXISTS "{made_name}" WITH (FORCE)')
        admin.close()
    assert "reproduce:" in out and "ratio" in out
