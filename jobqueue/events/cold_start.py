"""What a Lambda container reads once, at cold start: its settings (from the
environment, and the API tokens from Secrets Manager when
JOBQUEUE_API_TOKEN_SECRET_ARN names a secret) and the task modules they name.

A configuration error is logged then, naming the variable, and every
invocation after it fails with the same message rather than half-working.
One exception: a secret that could not be read (AWS refused or did not
answer) is asked for again, at most every RETRY_SECONDS, so a blip in Secrets
Manager at cold start does not break a container for the rest of its life.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import log
from ..actions.table import Call
from ..config import Settings
from ..engine.invocation import remaining_seconds
from ..errors import ConfigError, SecretUnavailable
from ..tasks.loading import load_modules

RETRY_SECONDS = 10.0


class Container:
    """The container's settings, or the configuration error every invocation reports.

    A plain class rather than a dataclass: creating a dataclass costs import
    time, and ``import app`` is every cold start.
    """

    __slots__ = ("env", "error", "retry_at", "settings")

    def __init__(
        self,
        settings: Settings | None = None,
        error: str | None = None,
        *,
        retry_at: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.error = error
        self.retry_at = retry_at  # when to read the configuration again (a secret was unavailable)
        self.env = env  # what it was read from (None: the process environment)

    def call(self, context: Any) -> Call:
        """What an action needs from this container and invocation: the settings,
        and the invocation's time left (a drain's budget; not capped at API
        Gateway's 30 s, so a drain that outlives the request still finishes)."""
        if self.error is not None:
            raise ConfigError(self.error)
        return Call(budget_seconds=remaining_seconds(context), settings=self.settings)


_current: Container | None = None


def configure(env: Mapping[str, str] | None = None) -> Container:
    """Read settings (from ``env`` or the process environment) and load task modules.

    Runs at cold start; tests and the local stack call it again to change settings.
    """
    global _current
    error = None
    retry_at = None
    try:
        settings = Settings.from_env(env)
        log.set_level(settings.log_level)
        settings = _with_secret_tokens(settings)
        load_modules(settings.task_modules, builtin=settings.builtin_tasks)
    except ConfigError as exc:
        settings, error = Settings(), str(exc)
        retry = {}
        if isinstance(exc, SecretUnavailable):
            retry_at = time.monotonic() + RETRY_SECONDS
            retry["retry_in_seconds"] = RETRY_SECONDS
        log.error("config_error", error=error, **retry)
    if error is None and settings.auth == "token" and not settings.api_tokens:
        log.warning(
            "auth_not_configured",
            message="JOBQUEUE_API_TOKEN is empty and JOBQUEUE_AUTH is not 'none': "
            "every route but GET /health answers 401",
        )
    _current = Container(settings, error, retry_at=retry_at, env=env)
    return _current


def _with_secret_tokens(settings: Settings) -> Settings:
    """The settings with the tokens of JOBQUEUE_API_TOKEN_SECRET_ARN's secret
    added to JOBQUEUE_API_TOKEN's (either or both may hold some). Read only
    when tokens are checked at all (JOBQUEUE_AUTH=token)."""
    arn = settings.api_token_secret_arn
    if not arn or settings.auth != "token":
        return settings
    import dataclasses

    from ..store.secrets import api_tokens  # boto3 with it: only deployments that name a secret load it

    tokens = settings.api_tokens + tuple(t for t in api_tokens(arn) if t not in settings.api_tokens)
    return dataclasses.replace(settings, api_tokens=tokens)


def current() -> Container:
    """This container's configuration, read now if nothing has read it yet, and
    read again once a secret that was unavailable is due another try."""
    container = _current
    if container is None:
        return configure()
    if container.retry_at is not None and time.monotonic() >= container.retry_at:
        return configure(container.env)
    return container
