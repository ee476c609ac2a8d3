"""Cold start's part in tasks: register the built-ins, import the modules named
in JOBQUEUE_TASK_MODULES, then check the periodic schedules they declared.

A missing module fails cold start naming the variable, and so does a schedule
that is invalid or names no registered task.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

from ..errors import ConfigError
from . import registry


def load_modules(modules: Iterable[str]) -> None:
    """Import the task modules; a missing one fails cold start naming the variable,
    and so does a periodic schedule that is invalid or names no registered task."""
    from . import builtin  # noqa: F401 - registers the built-ins

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"JOBQUEUE_TASK_MODULES names {module!r}, which cannot be imported: {exc}") from exc
    periodic = sys.modules.get(f"{__package__}.periodic")
    if periodic is not None:  # imported exactly where some schedule was declared
        for schedule in periodic.registered().values():
            if schedule.task not in registry.registered():
                raise ConfigError(
                    f"{schedule.describe()}: task {schedule.task!r} is not registered"
                    " (is the module that defines it in JOBQUEUE_TASK_MODULES?)"
                )
