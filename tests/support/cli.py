"""The command line as people run it: ``python -m jobqueue ...`` in a subprocess,
its JSON on stdout and its one-line errors on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .aws import ROOT


class CLI:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobqueue", *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> dict[str, Any]:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def fails(self, code: int, *args: str, **env: str) -> str:
        """Run, expect ``code``, and return the one-line error it printed."""
        done = self.run(*args, **env)
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
        assert done.stdout == ""
        assert "Traceback" not in done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("jobqueue: error:")]
        assert len(errors) == 1, done.stderr
        return errors[0]
