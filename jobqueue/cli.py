"""The command line: ``python -m jobqueue COMMAND`` (``__main__`` only calls ``main``).

``serve`` runs the local stack; the other commands work on the configured
database (DB_* as for the function; without DB_HOST, the embedded server of
``serve``). Results are JSON on stdout, so scripts can pipe them to jq; an
expected failure is one line on stderr and an exit code that says which kind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .actions.table import Call, perform
from .config import Settings
from .errors import ConfigError, DatabaseUnavailable, JobNotFound, JobQueueError, ValidationError
from .local.aws_events import INVOCATION_TIMEOUT
from .local.database import database, uses_embedded
from .local.serve import interrupt_on_sigterm, serve
from .store.connection import missing_schema
from .tasks.loading import load_modules

EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (ValidationError, 2),
    (JobNotFound, 3),
    (DatabaseUnavailable, 4),
    (ConfigError, 5),
]
EPILOG = """\
Database: DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD (or DB_SECRET_ARN), as
for the deployed function. Without DB_HOST, the embedded PostgreSQL in
.jobqueue/pgdata is used (started for the command if `serve` is not running).

Exit codes: 0 ok, 1 other error, 2 invalid input, 3 no such job,
4 database unavailable, 5 invalid configuration, 130 interrupted.
"""

Command = Callable[[argparse.Namespace, Call], dict[str, Any]]


# --- the commands: each asks for an action of the table the HTTP API and direct
# invocations use, so the bodies are the same -------------------------------------------


def do_migrate(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    return perform("migrate", {}, call)


def do_submit(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    fields = {
        "task": args.task,
        "payload": _json_object(args.payload, "payload"),
        "queue": args.queue,
        "priority": args.priority,
        "delay_seconds": args.delay,
        "run_at": args.run_at,
        "max_attempts": args.max_attempts,
        "timeout_seconds": args.timeout,
        "idempotency_key": args.idempotency_key,
    }
    return perform("submit", _given(fields), call)


def do_status(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    return perform("status", {"job_id": args.job_id}, call)


def do_process(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    call.budget_seconds = args.budget
    return perform("process", _given({"queues": args.queue, "max_jobs": args.max_jobs}), call)


def do_stats(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    return perform("stats", {}, call)


def do_queues(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    return perform("queues", {}, call)


def do_pause(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    return perform("configure_queue", {"name": args.name, "paused": True}, call)


def do_resume(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    return perform("configure_queue", {"name": args.name, "paused": False}, call)


def do_limit(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.concurrency is not None or args.no_concurrency:
        changes["concurrency"] = args.concurrency
    if args.rate is not None or args.no_rate:
        changes["rate"] = args.rate
    if not changes:
        raise ValidationError("say what to limit: --concurrency N, --no-concurrency, --rate N/S or --no-rate")
    return perform("configure_queue", {"name": args.name, **changes}, call)


def do_schedules(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    return perform("schedules", {}, call)


def do_prune(args: argparse.Namespace, call: Call) -> dict[str, Any]:
    return perform("prune", {"older_than_days": args.older_than_days}, call)


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _json_object(text: str | None, field: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{field} is not valid JSON: {exc}", field=field) from None


# --- running them ------------------------------------------------------------------------


def run_command(command: Command, args: argparse.Namespace) -> int:
    """Reach the database (embedded if need be), run one command, print its JSON."""
    migrate_schema = False if command is do_migrate else None
    local = uses_embedded()
    with database(migrate_schema=migrate_schema):
        settings = Settings.from_env(_local_defaults(os.environ) if local else None)
        load_modules(settings.task_modules, builtin=settings.builtin_tasks)
        body = command(args, Call(settings=settings))
    print(json.dumps(body, indent=2, default=str, ensure_ascii=False))
    return 0


def _local_defaults(env: Mapping[str, str]) -> Mapping[str, str]:
    """On the local stack's own database (the embedded one) the commands take its
    defaults: the built-in tasks on, as in ``serve``'s containers (a job
    submitted here is run there), unless JOBQUEUE_BUILTIN_TASKS says otherwise."""
    if "JOBQUEUE_BUILTIN_TASKS" in env:
        return env
    return {**env, "JOBQUEUE_BUILTIN_TASKS": "on"}


def run_serve(args: argparse.Namespace) -> int:
    return serve(
        args.host,
        args.port,
        args.drain_every,
        timeout_seconds=args.timeout,
        concurrency=args.concurrency,
        timers=not args.no_timers,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with interrupt_on_sigterm():
            if args.command == "serve":
                return run_serve(args)
            return run_command(args.command_function, args)
    except KeyboardInterrupt:
        return 130
    except JobQueueError as exc:
        return _fail(exc)
    except Exception as exc:
        if missing_schema(exc):
            return _fail(ConfigError("the jobs table does not exist yet: run `python -m jobqueue migrate` first"))
        raise


def _fail(exc: JobQueueError) -> int:
    message = " ".join(str(exc).split())
    field = getattr(exc, "field", None)
    if field and field not in message:
        message += f" (field {field})"
    print(f"jobqueue: error: {message}", file=sys.stderr)
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), 1)


# --- the parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobqueue",
        description="A background-job queue for AWS Lambda on PostgreSQL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add(commands, "migrate", do_migrate, "apply the schema migrations not yet applied (safe to rerun)")
    _add_submit(commands)
    status = _add(commands, "status", do_status, "show one job")
    status.add_argument("job_id", metavar="JOB_ID")
    _add_process(commands)
    _add(commands, "stats", do_stats, "counts per queue and state, age of the oldest due job")
    _add_queue_commands(commands)
    _add(commands, "schedules", do_schedules, "periodic jobs with their last and next run")
    prune = _add(commands, "prune", do_prune, "delete finished jobs older than the retention")
    prune.add_argument(
        "--older-than-days",
        type=_non_negative(float),
        metavar="D",
        help="retention in days (default: JOBQUEUE_RETENTION_DAYS, 7)",
    )
    return parser


def _add(commands: Any, name: str, command: Command, help_text: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(command_function=command)
    return parser


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the API locally, with a scheduled drain (embedded PostgreSQL without DB_HOST)",
        description="Run app.lambda_handler behind a local HTTP server and Lambda's Invoke API, in up to "
        "--concurrency warm containers (worker processes, one invocation at a time each), and fire the "
        "scheduled drain every few seconds. Ctrl-C stops it.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on, 0 for any (default: %(default)s)")
    serve.add_argument(
        "--drain-every",
        type=_non_negative(float),
        default=2.0,
        metavar="S",
        help="seconds between scheduled drains, 0 for none (default: %(default)s)",
    )
    serve.add_argument(
        "--timeout",
        type=_positive(float),
        default=INVOCATION_TIMEOUT,
        metavar="S",
        help="time budget of each invocation, like the function's timeout (default: %(default)s)",
    )
    serve.add_argument(
        "--concurrency",
        type=_positive(int),
        default=4,
        metavar="N",
        help="containers (worker processes) running invocations at once, like a reserved concurrency "
        "(default: %(default)s); drains may use all but one unless JOBQUEUE_MAX_DRAINS is set",
    )
    serve.add_argument(
        "--no-timers",
        action="store_true",
        help="no timer queue: delayed jobs and retries wait for a drain (by default the port answers SQS's "
        "SendMessage and the containers' JOBQUEUE_TIMER_QUEUE_URL points here)",
    )


def _add_submit(commands: Any) -> None:
    submit = _add(commands, "submit", do_submit, "submit one job and print it")
    submit.add_argument("task", metavar="TASK", help="registered task name, e.g. echo")
    submit.add_argument("--payload", metavar="JSON", help="the task's keyword arguments, e.g. '{\"x\": 1}'")
    submit.add_argument("--queue", metavar="Q", help="queue (default: the task's)")
    submit.add_argument("--priority", type=int, metavar="N", help="lower runs first (default: the task's)")
    when = submit.add_mutually_exclusive_group()
    when.add_argument("--delay", type=float, metavar="S", help="run no sooner than S seconds from now")
    when.add_argument("--run-at", metavar="ISO", help="run no sooner than this ISO 8601 time (UTC if no offset)")
    submit.add_argument("--max-attempts", type=int, metavar="N", help="attempts before the job fails")
    submit.add_argument("--timeout", type=float, metavar="S", help="seconds one attempt may take")
    submit.add_argument("--idempotency-key", metavar="K", help="a second submit with this key returns the first job")


def _add_process(commands: Any) -> None:
    process = _add(commands, "process", do_process, "run due jobs now, until none is due")
    process.add_argument("--budget", type=_positive(float), metavar="S", help="stop after about S seconds")
    process.add_argument(
        "--queue", action="extend", nargs="+", metavar="Q", help="only these queues (repeatable; default: all)"
    )
    process.add_argument("--max-jobs", type=_positive(int), metavar="N", help="stop after N jobs")


def _add_queue_commands(commands: Any) -> None:
    _add(commands, "queues", do_queues, "every queue: its settings (paused, limits) and counts")
    pause = _add(commands, "pause", do_pause, "stop drains from starting a queue's jobs (submits are kept)")
    pause.add_argument("name", metavar="NAME", help="the queue (it need not have jobs yet)")
    resume = _add(commands, "resume", do_resume, "let drains start a paused queue's jobs again")
    resume.add_argument("name", metavar="NAME", help="the queue")
    limit = _add(
        commands, "limit", do_limit, "limit a queue's jobs running at once and starts per window, across all drains"
    )
    limit.add_argument("name", metavar="NAME", help="the queue (it need not have jobs yet)")
    concurrency = limit.add_mutually_exclusive_group()
    concurrency.add_argument(
        "--concurrency", type=int, metavar="N", help="at most N of its jobs running at once (0: none start)"
    )
    concurrency.add_argument("--no-concurrency", action="store_true", help="drop the concurrency limit")
    rate = limit.add_mutually_exclusive_group()
    rate.add_argument(
        "--rate", type=_rate, metavar="N/S", help="at most N starts in any S seconds, e.g. 100/60 for 100 a minute"
    )
    rate.add_argument("--no-rate", action="store_true", help="drop the rate limit")


def _rate(text: str) -> dict[str, Any]:
    """LIMIT/SECONDS; the ranges are checked where the API checks them."""
    limit, slash, seconds = text.partition("/")
    try:
        if not slash:
            raise ValueError(text)
        return {"limit": int(limit), "per_seconds": float(seconds)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LIMIT/SECONDS such as 100/60, got {text!r}") from None


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0 to 65535)")
    return value


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _non_negative(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse
