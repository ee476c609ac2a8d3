"""Typed errors raised deep down and turned into responses in exactly one place."""

from __future__ import annotations

from typing import Any


class JobQueueError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(JobQueueError):
    """Configuration is missing or invalid; the message names the variable."""


class SecretUnavailable(ConfigError):
    """A secret the configuration names could not be read (AWS refused or did
    not answer), as opposed to one that was read and is wrong: asking again
    later may succeed, so a container does not keep this error for life."""


class DatabaseUnavailable(JobQueueError):
    """The database cannot be reached (maps to 503, never leaks connection details)."""


class ConnectionLost(DatabaseUnavailable):
    """The connection broke during a statement that is not resent on its own."""


class ClaimLost(DatabaseUnavailable):
    """A claim's answer was lost and the database could not be asked what it took:
    the worker must read back what it holds before it claims again."""


class ValidationError(JobQueueError):
    """Input is malformed; ``field`` names what was wrong so a client can fix it."""

    def __init__(self, message: str, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class BadRequest(ValidationError):
    """The input is not JSON at all (400), as opposed to JSON with a wrong field (422).

    A ValidationError, so that SQS and direct callers treat it as the sender's fault.
    """


class UnknownTask(ValidationError):
    """The job names a task that is not registered in this deployment."""


class JobNotFound(JobQueueError):
    """No job has that id."""


class InvalidTransition(JobQueueError):
    """The job's current state does not allow the requested change (e.g. cancel a running job)."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.message = message
        self.state = state


class ResultTooLarge(JobQueueError):
    """A task returned more JSON than JOBQUEUE_MAX_RESULT_BYTES: its attempt fails
    for good (the same code would return the same), rather than store a result
    that would make the job too large to read back in one Lambda response."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the task's result is {size:,} bytes of JSON, over the limit of {limit:,} (JOBQUEUE_MAX_RESULT_BYTES)"
        )
        self.size = size
        self.limit = limit


class Permanent(Exception):
    """Raise from a task to fail the job at once, without further retries."""


class JobTimeout(BaseException):
    """A task ran past its timeout.

    A BaseException so that a task's own ``except Exception`` cannot swallow it.
    """


class Cancelled(Exception):
    """Raise from a task to end its job ``cancelled`` (not retried). ``job.step``
    raises it itself once a cancel was asked for while the job runs."""


class Snooze(Exception):
    """Raise ``Snooze(seconds)`` from a task to run it again after ``seconds``,
    without using one of its attempts."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"snoozed for {seconds} s")
        self.seconds = seconds


class WaitTimeout(Exception):
    """``job.wait_for`` reached its timeout before the signal arrived."""


class DurableError(Permanent):
    """A durable job's misuse of its handle (a step name used twice in one run,
    a checkpoint or signal value too large): the same code would do the same
    again, so the job fails at once."""


class Suspended(BaseException):
    """A durable job's run ended by ``job.sleep`` or ``job.wait_for``: the job
    waits, already written down. A BaseException so that the task's own
    ``except Exception`` lets it through."""


class LeaseLost(BaseException):
    """A durable job's run found that it no longer holds its job (its lease ran
    out and another drain took it): it stops, and writes nothing more."""
