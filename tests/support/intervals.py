"""Runs as tests.interval and tests.segv record them (a line as each run
starts and as it ends, appended to a file that processes share): what the
tests of limits and crashes read to see which runs overlapped or died."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobqueue import JobSpec


def spans(path: Path) -> dict[str, dict[str, float]]:
    """What the tests.interval tasks recorded: per tag, its start and (if it got there) end."""
    found: dict[str, dict[str, float]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            kind, tag, moment = line.split()
            found.setdefault(tag, {})[kind] = float(moment)
    return found


def most_at_once(runs: list[dict[str, float]]) -> int:
    """The largest number of runs in progress at one moment (an end before a start at the same instant)."""
    edges = sorted([(r["end"], -1) for r in runs] + [(r["start"], 1) for r in runs])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def span_jobs(path: Path, queue_name: str, count: int, seconds: float, **options: Any) -> list[JobSpec]:
    return [
        JobSpec("tests.interval", {"path": str(path), "tag": f"{queue_name}-{i}", "seconds": seconds}, queue=queue_name,
                **options)
        for i in range(count)
    ]  # fmt: skip


def starts(path: Path) -> dict[str, int]:
    """How many runs of each tag started (a run killed midway counts too)."""
    counts: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            kind, tag, _ = line.split()
            if kind == "start":
                counts[tag] = counts.get(tag, 0) + 1
    return counts
