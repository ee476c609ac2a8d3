"""A drain in a process of its own, as a Lambda container runs one: what the
tests of concurrency, limits and crashes start several of at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

DRAIN = """
import json, sys
from jobqueue import db, tasks, worker
from jobqueue.config import Settings
tasks.load_modules(["tests.tasks"])
grace, concurrency, budget = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
settings = Settings(lease_grace_seconds=grace, concurrency=concurrency, drain_safety_ms=0)
report = worker.drain(db.default(), settings=settings, budget_seconds=budget or None)
print(json.dumps(report.as_dict()))
"""


def start_drain(env: dict[str, str], *, grace: float = 10.0, concurrency: int = 8, budget: float = 0.0) -> Any:
    """``worker.drain`` in a subprocess on the database ``env`` names; its report is printed as JSON.
    A budget of 0 means none."""
    return subprocess.Popen(
        [sys.executable, "-c", DRAIN, str(grace), str(concurrency), str(budget)],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT), "JOBQUEUE_LOG_LEVEL": "ERROR"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
