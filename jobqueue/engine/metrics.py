"""CloudWatch metrics, as Embedded Metric Format (EMF) lines on stdout.

Lambda sends what a function writes to CloudWatch Logs, which turns every line
in this format into metric data: no AWS API call, no extra permission, no
client library. AWS's EMF guide for Lambda says to write these lines to
standard output, so they go there; jobqueue's own logs stay on stderr.

Outside Lambda nothing is written: the command line's stdout is its JSON
answer, and the local stack's terminal is read by people.

Metrics writing never fails a drain: a problem is logged and the drain's
answer goes out as it would have.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import log
from ..config import Settings
from ..store import connection, queues

if TYPE_CHECKING:
    from ..store.connection import Database, Runner
    from .report import DrainReport

# The most values one metric may carry in one EMF document (the specification's limit).
MAX_VALUES = 100
QUEUE = "Queue"
# Each queue's metrics, and the same data points again without the queue, so
# one alarm or graph can cover every queue: the queue-less series' Sum is the
# total over queues, its Maximum the worst queue.
BY_QUEUE_AND_OVERALL: list[list[str]] = [[QUEUE], []]
OVERALL: list[list[str]] = [[]]

COUNT, MILLISECONDS, SECONDS = "Count", "Milliseconds", "Seconds"

# What a drain writes, per queue it ran jobs from.
DRAIN_COUNTS = (
    ("JobsProcessed", "processed"),
    ("JobsSucceeded", "succeeded"),
    ("JobsFailed", "failed"),
    ("JobsRetried", "retried"),
)
JOB_DURATION = "JobDuration"  # how long each job ran
JOB_START_LATENCY = "JobStartLatency"  # from the time a job was due until it started
JOBS_RESCUED = "JobsRescued"  # jobs whose lease ran out, put back or failed (per drain)

# What each scheduled tick writes, per queue and once overall.
PENDING, RUNNING, OLDEST_PENDING_AGE = "PendingJobs", "RunningJobs", "OldestPendingAge"


def enabled() -> bool:
    """Whether this process runs in Lambda (which sets this variable in every function)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def drain(report: DrainReport, settings: Settings | None = None) -> None:
    """Write a drain's metrics. A drain that did nothing writes nothing."""
    if not enabled():
        return
    try:
        namespace = (settings or Settings.from_env()).metrics_namespace
        _write(drain_lines(report, namespace, _now_ms()))
    except Exception as exc:  # noqa: BLE001 - metrics must never fail the drain they describe
        log.error("metrics_failed", what="drain", error=f"{type(exc).__name__}: {exc}"[:500])


def tick(settings: Settings, db: Database | Runner | None = None) -> None:
    """Write each queue's depth, running count and oldest pending age, and the
    same overall (a scheduled tick's gauges).

    Cheap at any table size: counts from the table the triggers keep, ages from
    one index probe per queue and priority (``store.queues.stats``).
    """
    if not enabled():
        return
    try:
        _write(tick_lines(queues.stats(db or connection.default()), settings.metrics_namespace, _now_ms()))
    except Exception as exc:  # noqa: BLE001 - metrics must never fail the drain that follows
        log.error("metrics_failed", what="tick", error=f"{type(exc).__name__}: {exc}"[:500])


# --- the lines --------------------------------------------------------------------------


def drain_lines(report: DrainReport, namespace: str, timestamp_ms: int) -> list[str]:
    """One line per queue the drain ran jobs from, carrying up to 100 durations
    and 100 start latencies; a queue with more continues on further lines, as
    EMF allows no more values per metric. Rescued jobs, which belong to no
    queue's drain, get a line of their own."""
    lines = []
    for name in sorted(report.queues):
        entry = report.queues[name]
        if not (entry.processed or entry.durations or entry.waits):
            continue
        durations = _milliseconds(entry.durations)
        latencies = _milliseconds(entry.waits)
        chunks = max(1, math.ceil(max(len(durations), len(latencies)) / MAX_VALUES))
        for i in range(chunks):
            values: dict[str, Any] = {}
            units: dict[str, str] = {}
            if i == 0:
                for metric, field in DRAIN_COUNTS:
                    values[metric], units[metric] = getattr(entry, field), COUNT
            for metric, samples in ((JOB_DURATION, durations), (JOB_START_LATENCY, latencies)):
                part = samples[i * MAX_VALUES : (i + 1) * MAX_VALUES]
                if part:
                    values[metric], units[metric] = part, MILLISECONDS
            lines.append(_document(namespace, timestamp_ms, BY_QUEUE_AND_OVERALL, {QUEUE: name}, values, units))
    if report.rescued:
        values, units = {JOBS_RESCUED: report.rescued}, {JOBS_RESCUED: COUNT}
        lines.append(_document(namespace, timestamp_ms, OVERALL, {}, values, units))
    return lines


def tick_lines(stats: Mapping[str, Any], namespace: str, timestamp_ms: int) -> list[str]:
    """One line per queue with jobs, and one overall line on every tick, even an
    idle one: its zeros tell "nothing is waiting" apart from "no tick ran", which
    the oldest-pending-age alarm treats as a failure."""
    units = {PENDING: COUNT, RUNNING: COUNT, OLDEST_PENDING_AGE: SECONDS}
    lines = []
    pending = running = 0
    oldest = 0.0
    for name in sorted(stats["queues"]):
        entry = stats["queues"][name]
        age = float(entry["oldest_pending_age_seconds"] or 0.0)
        counts = entry["counts"]
        values = {PENDING: counts["pending"], RUNNING: counts["running"], OLDEST_PENDING_AGE: round(age, 3)}
        lines.append(_document(namespace, timestamp_ms, [[QUEUE]], {QUEUE: name}, values, units))
        pending, running, oldest = pending + counts["pending"], running + counts["running"], max(oldest, age)
    values = {PENDING: pending, RUNNING: running, OLDEST_PENDING_AGE: round(oldest, 3)}
    lines.append(_document(namespace, timestamp_ms, OVERALL, {}, values, units))
    return lines


def _milliseconds(seconds: Iterable[float]) -> list[float]:
    """Seconds as milliseconds; never negative (clocks differ by a hair), never NaN."""
    return [round(max(0.0, s) * 1000, 3) for s in seconds if math.isfinite(s)]


def _document(
    namespace: str,
    timestamp_ms: int,
    dimensions: list[list[str]],
    members: Mapping[str, str],
    values: Mapping[str, Any],
    units: Mapping[str, str],
) -> str:
    """One EMF document: the metadata naming each metric and its unit, then the
    dimension values and the metric values as members of the root."""
    directive = {
        "Namespace": namespace,
        "Dimensions": dimensions,
        "Metrics": [{"Name": name, "Unit": units[name]} for name in values],
    }
    return log.dumps({"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]}, **members, **values})


def _now_ms() -> int:
    return int(time.time() * 1000)


def _write(lines: list[str]) -> None:
    """All lines in one write, each a whole line: Lambda's runtime flushes every write."""
    if lines:
        out = sys.stdout
        out.write("\n".join(lines) + "\n")
        out.flush()
