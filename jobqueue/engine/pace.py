"""How long jobs take here, learnt as they run: what sizes a drain's claims,
decides which jobs run inline, and lets the fan-out estimate a backlog's time.

Measured on the jobs alone, never on the claims, so a slow database cannot
shrink the batches; carried across invocations of a warm container.
"""

from __future__ import annotations

# How much work one claim takes, in seconds of expected run time per slot.
# Claimed jobs wait their turn in this drain while other drains (other
# Lambdas) could run them, so batches shrink as jobs get slower.
BATCH_SECONDS = 0.25
FIRST_BATCH = 20
# A plain function faster than this runs in the drain's thread: a thread
# hand-over would cost more than the job, and overlapping it gains nothing.
INLINE_SECONDS = 0.002

_mean_job_seconds: float | None = None
_task_seconds: dict[str, float] = {}


def batch_limit(ceiling: int, slots: int = 1) -> int:
    """Claim size for the next batch from the mean job time seen so far."""
    if _mean_job_seconds is None:  # nothing known yet: a small batch, to learn soon
        return min(FIRST_BATCH, 2 * slots, ceiling)
    return max(1, min(ceiling, round(slots * BATCH_SECONDS / max(_mean_job_seconds, 1e-6))))


def observe(name: str, seconds: float) -> None:
    """One job of task ``name`` ran ``seconds``."""
    global _mean_job_seconds
    mean = _mean_job_seconds
    _mean_job_seconds = seconds if mean is None else mean + 0.1 * (seconds - mean)
    own = _task_seconds.get(name)
    _task_seconds[name] = seconds if own is None else own + 0.2 * (seconds - own)


def mean_job_seconds() -> float | None:
    """The mean run time of a job here, None before the first one ran."""
    return _mean_job_seconds


def task_seconds(name: str) -> float | None:
    """The mean run time of task ``name`` here, None before one of its jobs finished."""
    return _task_seconds.get(name)


def runs_inline(name: str) -> bool:
    """Whether task ``name`` is known to be fast enough to run in the drain's thread."""
    mean = _task_seconds.get(name)
    return mean is not None and mean < INLINE_SECONDS
