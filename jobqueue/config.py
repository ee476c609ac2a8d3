"""Settings from the environment, validated once at cold start.

Every problem names the variable at fault, so a misconfigured deployment fails
on its first invocation with a message an operator can act on.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import ConfigError
from .rules import MAX_RESULT_BYTES

SSL_MODES = ("disable", "require", "verify-full")
# A bearer token is the API's only lock when JOBQUEUE_AUTH=token: 32 characters
# (openssl rand -hex 32 makes 64) put guessing out of reach, as the template's
# ApiToken pattern already demands of a deployment made with it.
MIN_TOKEN_CHARS = 32


@dataclass(frozen=True)
class DatabaseSettings:
    host: str | None = None
    port: int = 5432
    name: str = "postgres"
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    secret_arn: str | None = None
    sslmode: str = "disable"
    sslrootcert: str | None = None
    connect_timeout: float = 5.0
    statement_timeout_ms: int = 30_000

    @property
    def read_timeout(self) -> float | None:
        """How long to wait for an answer once connected: longer than any
        statement may run (the server cancels those itself), so a slow
        statement is never mistaken for a lost connection. None: no limit."""
        if self.statement_timeout_ms == 0:
            return None
        return self.statement_timeout_ms / 1000 + max(5.0, self.connect_timeout)

    @property
    def unix_socket(self) -> str | None:
        """A host that is a directory means a Unix socket, as in libpq."""
        if self.host and self.host.startswith("/"):
            return f"{self.host.rstrip('/')}/.s.PGSQL.{self.port}"
        return None


@dataclass(frozen=True)
class Settings:
    db: DatabaseSettings = field(default_factory=DatabaseSettings)
    task_modules: tuple[str, ...] = ()
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    api_token_secret_arn: str | None = None
    auth: str = "token"
    builtin_tasks: bool = False
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 256 * 1024
    max_result_bytes: int = 256 * 1024
    lease_grace_seconds: float = 10.0
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 3600.0
    retention_days: float = 7.0
    drain_batch_size: int = 500
    drain_safety_ms: int = 2000
    log_level: str = "INFO"
    concurrency: int = 8
    max_drains: int = 4
    fanout: bool = True
    metrics_namespace: str = "jobqueue"
    timer_queue_url: str | None = None  # SQS queue whose delayed messages wake drains on time

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        host = env.get("DB_HOST") or None
        # A password goes encrypted to a server on another machine unless told
        # otherwise (a secret's host is such a server: an RDS secret names it).
        elsewhere = not _local_host(host) if host else bool(env.get("DB_SECRET_ARN"))
        secret = bool(env.get("DB_PASSWORD") or env.get("DB_SECRET_ARN"))
        default_ssl = "require" if secret and elsewhere else "disable"
        sslmode = _choice(env, "DB_SSLMODE", SSL_MODES, default_ssl, aliases={"off": "disable"})
        db = DatabaseSettings(
            host=host,
            port=_int(env, "DB_PORT", 5432, 1, 65535),
            name=env.get("DB_NAME") or "postgres",
            user=env.get("DB_USER") or "postgres",
            password=env.get("DB_PASSWORD") or None,
            secret_arn=env.get("DB_SECRET_ARN") or None,
            sslmode=sslmode,
            sslrootcert=env.get("DB_SSLROOTCERT") or None,
            connect_timeout=_float(env, "DB_CONNECT_TIMEOUT", 5.0, 0.1, 300),
            statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 30_000, 0, 3_600_000),
        )
        auth = _choice(env, "JOBQUEUE_AUTH", ("token", "none"), "token")
        return cls(
            db=db,
            task_modules=_list(env, "JOBQUEUE_TASK_MODULES"),
            api_tokens=checked_tokens(_list(env, "JOBQUEUE_API_TOKEN"), "JOBQUEUE_API_TOKEN"),
            api_token_secret_arn=env.get("JOBQUEUE_API_TOKEN_SECRET_ARN", "").strip() or None,
            auth=auth,
            builtin_tasks=builtin_tasks_on(env),
            cors_origins=_list(env, "JOBQUEUE_CORS_ORIGINS"),
            max_body_bytes=_int(env, "JOBQUEUE_MAX_BODY_BYTES", 256 * 1024, 1024, 6 * 1024 * 1024),
            max_result_bytes=_int(env, "JOBQUEUE_MAX_RESULT_BYTES", 256 * 1024, 1024, MAX_RESULT_BYTES),
            lease_grace_seconds=_float(env, "JOBQUEUE_LEASE_GRACE_SECONDS", 10.0, 0, 3600),
            retry_base_seconds=_float(env, "JOBQUEUE_RETRY_BASE_SECONDS", 2.0, 0, 86_400),
            retry_max_seconds=_float(env, "JOBQUEUE_RETRY_MAX_SECONDS", 3600.0, 0, 7 * 86_400),
            retention_days=_float(env, "JOBQUEUE_RETENTION_DAYS", 7.0, 0, 3650),
            drain_batch_size=_int(env, "JOBQUEUE_BATCH_SIZE", 500, 1, 5000),
            drain_safety_ms=_int(env, "JOBQUEUE_SAFETY_MS", 2000, 0, 600_000),
            log_level=_choice(env, "JOBQUEUE_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True),
            concurrency=_int(env, "JOBQUEUE_CONCURRENCY", 8, 1, 256),
            max_drains=_int(env, "JOBQUEUE_MAX_DRAINS", 4, 1, 1000),
            fanout=_choice(env, "JOBQUEUE_FANOUT", ("on", "off"), "on", aliases=_SWITCH) == "on",
            metrics_namespace=_namespace(env),
            timer_queue_url=_queue_url(env, "JOBQUEUE_TIMER_QUEUE_URL"),
        )


_SWITCH = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}


def checked_tokens(tokens: Iterable[str], source: str) -> tuple[str, ...]:
    """``tokens`` when each is long enough; else a ConfigError naming ``source``
    (a variable, or a variable and the secret it names) and the rule, and which
    entry broke it, but never a token: the message goes to logs."""
    tokens = tuple(tokens)
    for position, token in enumerate(tokens, 1):
        if len(token) < MIN_TOKEN_CHARS:
            which = f"entry {position} of {len(tokens)}" if len(tokens) > 1 else "the token"
            raise ConfigError(
                f"{source}: {which} is shorter than {MIN_TOKEN_CHARS} characters; each bearer token must have "
                f"at least {MIN_TOKEN_CHARS} (make one with: openssl rand -hex 32)"
            )
    return tokens


def builtin_tasks_on(env: Mapping[str, str]) -> bool:
    """JOBQUEUE_BUILTIN_TASKS: whether the demo tasks (echo, noop, sleep, fail) are
    registered. Off unless asked for, so a deployment accepts only its own tasks."""
    return _choice(env, "JOBQUEUE_BUILTIN_TASKS", ("on", "off"), "off", aliases=_SWITCH) == "on"


def _namespace(env: Mapping[str, str]) -> str:
    """A CloudWatch namespace: 1 to 255 of the characters CloudWatch allows, not starting with "AWS/"."""
    raw = env.get("JOBQUEUE_METRICS_NAMESPACE", "").strip()
    if not raw:
        return "jobqueue"
    if len(raw) > 255 or not all(c.isalnum() or c in ".-_/#:" for c in raw) or raw.startswith("AWS/"):
        raise ConfigError(
            "JOBQUEUE_METRICS_NAMESPACE must be 1 to 255 letters, digits and . - _ / # : and not start with AWS/, "
            f"got {raw[:300]!r}"
        )
    return raw


def _queue_url(env: Mapping[str, str], name: str) -> str | None:
    """An SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>, or a local endpoint's)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.startswith(("https://", "http://")) or len(raw) > 2048 or raw.count("/") < 4:
        raise ConfigError(f"{name} must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)")
    return raw


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _local_host(host: str) -> bool:
    """Whether a password sent to ``host`` stays on this machine: a Unix socket
    or a loopback address. Only then may DB_SSLMODE default to disable; to any
    other host a password goes encrypted unless DB_SSLMODE=disable says so."""
    if host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _choice(
    env: Mapping[str, str],
    name: str,
    allowed: tuple[str, ...],
    default: str,
    *,
    aliases: Mapping[str, str] | None = None,
    upper: bool = False,
) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = raw.upper() if upper else raw.lower()
    value = (aliases or {}).get(value, value)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return value
