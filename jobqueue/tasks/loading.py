"""Cold start's part in tasks: register the built-ins (when
JOBQUEUE_BUILTIN_TASKS says so), import the modules named in
JOBQUEUE_TASK_MODULES, then check the periodic schedules they declared.

A missing module fails cold start naming the variable, and so does a schedule
that is invalid or names no registered task.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable

from ..config import builtin_tasks_on
from ..errors import ConfigError
from . import registry


def load_modules(modules: Iterable[str], *, builtin: bool | None = None) -> None:
    """Raises ConfigError naming the variable or the schedule at fault.

    ``builtin``: whether to register the built-in tasks; None reads
    JOBQUEUE_BUILTIN_TASKS from the process environment (what scripts that
    load tasks without a cold start, benchmarks say, go by). Once registered
    they stay for the life of the process: turning them off takes a new one,
    as a new deployment makes new Lambda containers.
    """
    if builtin is None:
        builtin = builtin_tasks_on(os.environ)
    if builtin:
        from . import builtin as builtins  # only then: a deployment's cold start never imports them

        builtins.register()
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
