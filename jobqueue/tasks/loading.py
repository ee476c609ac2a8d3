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
    """Raises ConfigError naming the variable or the schedule at fault."""
    from . import builtin  # noqa: F401 - registers the built-ins (on the first call, not on import)

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"JOBQUEUE_TASK_MODULES names {module!r}, which cannot be imported: {exc}") from exc
    periodic = sys.modules.get(f"{__package__}.periodic")
    if periodic is not None:  # imported exactly where some schedule was declared
        tasks = registry.registered()
        for schedule in periodic.registered().values():
            if schedule.task not in tasks:
                raise ConfigError(
                    f"{schedule.describe()}: task {schedule.task!r} is not registered"
                    " (is the module that defines it in JOBQUEUE_TASK_MODULES?)"
                )
