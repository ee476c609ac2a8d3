"""What a Lambda container reads once, at cold start: its settings (from the
environment) and the task modules they name.

A configuration error is logged then, naming the variable, and every
invocation after it fails with the same message rather than half-working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import log
from ..actions.table import Call
from ..config import Settings
from ..engine.invocation import remaining_seconds
from ..errors import ConfigError
from ..tasks.loading import load_modules


class Container:
    """The container's settings, or the configuration error every invocation reports.

    A plain class rather than a dataclass: creating a dataclass costs import
    time, and ``import app`` is every cold start.
    """

    __slots__ = ("error", "settings")

    def __init__(self, settings: Settings | None = None, error: str | None = None) -> None:
        self.settings = settings or Settings()
        self.error = error

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
    try:
        settings = Settings.from_env(env)
        log.set_level(settings.log_level)
        load_modules(settings.task_modules)
    except ConfigError as exc:
        settings, error = Settings(), str(exc)
        log.error("config_error", error=error)
    if error is None and settings.auth == "token" and not settings.api_tokens:
        log.warning(
            "auth_not_configured",
            message="JOBQUEUE_API_TOKEN is empty and JOBQUEUE_AUTH is not 'none': "
            "every route but GET /health answers 401",
        )
    _current = Container(settings, error)
    return _current


def current() -> Container:
    """This container's configuration, read now if nothing has read it yet."""
    return _current or configure()
