"""The local stack behind ``python -m jobqueue serve``: the deployed handler, run
the way AWS runs it, on a laptop.

One port serves the API as API Gateway would (http_server) and Lambda's Invoke
API (lambda_service), in front of ``--concurrency`` warm containers, each a
process running one invocation at a time in its main thread (so per-job
timeouts use the same signal-based alarm as in Lambda); a timer fires the
scheduled event that drains the queue, and drains start drains through the
Invoke API as they do on AWS, signing with AWS credentials made for the run.
The same port answers SQS's SendMessage for the function's timer queue
(sqs_service), so delayed jobs and retries start on time, as on AWS, unless
``--no-timers``.
Without DB_HOST an embedded PostgreSQL keeps its data in ``.jobqueue/pgdata``
between runs (database).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from .. import log
from ..config import MIN_TOKEN_CHARS, Settings
from ..errors import ConfigError
from .aws_events import INVOCATION_TIMEOUT, function_arn, region, scheduled_event
from .database import LOCAL_DIR, database
from .http_server import is_loopback, make_server
from .lambda_service import Closed, Credentials, Service
from .sqs_service import SqsService, queue_url

SHUTDOWN_GRACE = 10.0
FIXED_CREDENTIALS = "JOBQUEUE_LOCAL_CREDENTIALS"  # ACCESS_KEY_ID:SECRET, for scripts that call the Invoke API
TIMER_QUEUE_URL = "JOBQUEUE_TIMER_QUEUE_URL"


def ensure_token(settings: Settings, local_dir: Path = LOCAL_DIR) -> str | None:
    """Give the API a token that survives restarts, so scripts and shell history keep
    working; returns it when it came from ``.jobqueue/token`` (safe to show), None
    when the environment provides one or auth is off."""
    if settings.auth == "none" or settings.api_tokens:
        return None
    path = local_dir / "token"
    token = path.read_text().strip() if path.exists() else ""
    if token and len(token) < MIN_TOKEN_CHARS:  # edited by hand: the containers would refuse it
        raise ConfigError(
            f"{path} holds a token shorter than {MIN_TOKEN_CHARS} characters: delete the file and serve makes a new one"
        )
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


def run_credentials(env: Mapping[str, str] = os.environ) -> Credentials:
    """Fresh credentials for this run, or the fixed pair JOBQUEUE_LOCAL_CREDENTIALS names
    (ACCESS_KEY_ID:SECRET), so that a script of the developer's can call the Invoke API."""
    fixed = env.get(FIXED_CREDENTIALS, "")
    if not fixed:
        return Credentials.fresh()
    access_key, _, secret_key = fixed.partition(":")
    if not (access_key.strip() and secret_key.strip()):
        raise ConfigError(f"{FIXED_CREDENTIALS} must be ACCESS_KEY_ID:SECRET_ACCESS_KEY")
    log.info("local.fixed_credentials", access_key=access_key.strip(), source=FIXED_CREDENTIALS)
    return Credentials(access_key.strip(), secret_key.strip())


def container_env(
    url: str,
    concurrency: int,
    credentials: Credentials,
    env: Mapping[str, str] = os.environ,
    *,
    timers: bool = True,
) -> dict[str, str]:
    """The environment of each container: the configured one, plus what lets the
    handler's boto3 client reach this stack's Invoke API, signing with this run's
    credentials (the only ones it accepts; the developer's own stay out of the
    containers, which reach no real AWS service). One container is left for
    requests when every drain runs, unless JOBQUEUE_MAX_DRAINS says otherwise,
    and the built-in tasks (echo, noop, sleep, fail) are on, for trying things
    out, unless JOBQUEUE_BUILTIN_TASKS says otherwise. With ``timers``, the
    function's timer queue is this stack's (boto3's SQS endpoint here), unless
    JOBQUEUE_TIMER_QUEUE_URL names another; without, timers are off."""
    container = {key: value for key, value in env.items() if key not in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")}
    container.pop(FIXED_CREDENTIALS, None)
    container["AWS_ENDPOINT_URL_LAMBDA"] = url
    container.setdefault("AWS_REGION", region())
    container.setdefault("AWS_DEFAULT_REGION", container["AWS_REGION"])
    container.update(AWS_ACCESS_KEY_ID=credentials.access_key, AWS_SECRET_ACCESS_KEY=credentials.secret_key)
    container.setdefault("JOBQUEUE_MAX_DRAINS", str(max(1, concurrency - 1)))
    container.setdefault("JOBQUEUE_BUILTIN_TASKS", "on")
    if not timers:
        container.pop(TIMER_QUEUE_URL, None)
    elif container.get(TIMER_QUEUE_URL):  # the developer's own queue: their endpoint, if they named one
        container.setdefault("AWS_ENDPOINT_URL_SQS", url)
    else:
        container.update({TIMER_QUEUE_URL: queue_url(url), "AWS_ENDPOINT_URL_SQS": url})
    return container


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    drain_every: float = 2.0,
    *,
    timeout_seconds: float = INVOCATION_TIMEOUT,
    concurrency: int = 4,
    timers: bool = True,
    local_dir: Path = LOCAL_DIR,
    out: TextIO = sys.stdout,
) -> int:
    """Run the local stack until SIGINT or SIGTERM; returns the exit code."""
    token = ensure_token(Settings.from_env(), local_dir)
    if importlib.util.find_spec("app") is None:
        raise ConfigError("cannot import app.py: run this from the project root (or put it on PYTHONPATH)")
    credentials = run_credentials()
    with interrupt_on_sigterm(), database(local_dir, migrate_schema=True) as where:
        service = Service(concurrency, timeout_seconds, function_arn(), credentials=credentials)
        sqs = SqsService(service) if timers else None
        httpd = make_server(host, port, service, sqs)
        url = _url(host, httpd.server_address[1])
        service.env = container_env(url, concurrency, credentials, timers=timers)
        if not is_loopback(host):
            _warn_exposed(host)
        stop = threading.Event()
        threads = [threading.Thread(target=httpd.serve_forever, name="http", daemon=True)]
        if drain_every > 0:
            schedule = (service, drain_every, stop)
            threads.append(threading.Thread(target=drain_on_schedule, args=schedule, name="schedule", daemon=True))
        service.start()
        if sqs is not None:
            sqs.start()
        try:
            for thread in threads:
                thread.start()
            timer_queue = service.env.get(TIMER_QUEUE_URL)
            log.info(
                "local.listening",
                url=url,
                database=where,
                drain_every=drain_every,
                containers=concurrency,
                timer_queue=timer_queue,
            )
            _announce(out, url, token, local_dir / "token", where, drain_every, timer_queue)
            with _stop_on_signals(stop):
                while not stop.wait(0.5):
                    pass
        finally:
            log.info("local.stopping")
            stop.set()
            httpd.shutdown()
            httpd.server_close()
            if sqs is not None:
                sqs.close()  # messages still held are dropped, and counted in the log
            service.close(SHUTDOWN_GRACE)
            for thread in threads:
                thread.join(SHUTDOWN_GRACE)
    log.info("local.stopped")
    return 0


def _warn_exposed(host: str) -> None:
    """Loudly, in the log and in plain words: ``--host`` put the stack on the network."""
    where = host or "every address"
    log.warning(
        "local.exposed",
        host=host,
        message="listening beyond loopback: other machines can reach the API; "
        "the Invoke API still answers only requests signed with this run's credentials",
    )
    sys.stderr.write(
        f"WARNING: serve listens on {where}, not on loopback alone: other machines on the network can reach "
        "the API, and only its token stands in their way. Use --host 127.0.0.1 unless that is what you want.\n"
    )
    sys.stderr.flush()


def _url(host: str, port: int) -> str:
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def _announce(
    out: TextIO,
    url: str,
    token: str | None,
    token_file: Path,
    where: str,
    drain_every: float,
    timer_queue: str | None = None,
) -> None:
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
        f"  dashboard {url}/ui",
        f"  drain     {schedule}",
        f"  timers    {timer_queue or 'off (delayed jobs and retries wait for a drain)'}",
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
