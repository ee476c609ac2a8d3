"""A drain in a process of its own, as a Lambda container runs one: what the
tests of concurrency, limits and crashes start several of at once."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from .aws import ROOT

DRAIN = """
import json, sys
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.store import connection
from jobqueue.tasks.loading import load_modules
load_modules(["tests.support.tasks"])
grace, concurrency, budget, batch = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
settings = Settings(lease_grace_seconds=grace, concurrency=concurrency, drain_safety_ms=0)
report = drain.run(connection.default(), settings=settings, budget_seconds=budget or None, batch_size=batch or None)
print(json.dumps(report.as_dict()))
"""


def start_drain(
    env: dict[str, str], *, grace: float = 10.0, concurrency: int = 8, budget: float = 0.0, batch: int = 0
) -> Any:
    """``drain.run`` in a subprocess on the database ``env`` names; its report is printed as JSON.
    A budget of 0 means none; a batch of 0, the settings' claim size."""
    return subprocess.Popen(
        [sys.executable, "-c", DRAIN, str(grace), str(concurrency), str(budget), str(batch)],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT), "JOBQUEUE_LOG_LEVEL": "ERROR"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
