"""What a drain did, as its caller (the HTTP answer, the logs, the metrics) reads it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class QueueReport:
    """One queue's share of a drain, for metrics."""

    processed: int = 0
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    durations: list[float] = field(default_factory=list)  # seconds each job ran
    waits: list[float] = field(default_factory=list)  # seconds from due to started (submit-to-start latency)


@dataclass
class DrainReport:
    processed: int = 0
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    rescued: int = 0
    released: int = 0
    pruned: int = 0
    unfit: int = 0  # jobs set aside because their timeout exceeds any drain's budget
    abandoned: int = 0  # jobs on threads that outlived their timeout (recorded as timed out)
    alone: int = 0  # suspects (running when a drain died) this drain ran with nothing beside them
    suspended: int = 0  # durable jobs whose run ended in a sleep or a wait (the job waits)
    snoozed: int = 0  # jobs that raised Snooze (pending again later, the run not counted)
    cancelled: int = 0  # jobs that raised Cancelled, or that a cancel reached while they ran
    stopped: str = "idle"  # idle | budget | max_jobs | limited | max_drains
    seconds: float = 0.0
    queues: dict[str, QueueReport] = field(default_factory=dict)
    reopens_in: float | None = field(default=None, repr=False)  # a rate window's, when it stopped "limited"

    # The counts a fan-out adds up over the drains it ran.
    COUNTS = (
        "processed",
        "succeeded",
        "retried",
        "failed",
        "rescued",
        "released",
        "pruned",
        "unfit",
        "abandoned",
        "alone",
        "suspended",
        "snoozed",
        "cancelled",
    )

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        del body["queues"], body["reopens_in"]
        return body

    def of(self, name: str) -> QueueReport:
        entry = self.queues.get(name)
        if entry is None:
            entry = self.queues[name] = QueueReport()
        return entry
