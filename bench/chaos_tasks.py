"""The tasks of bench/bench_chaos.py: jobs that leave a trace of every run.

``chaos.work`` is the ordinary job; ``chaos.segv`` the poison one, which
kills its own process once it has left its trace. Each run appends one
line, ``"<key> <pid>\\n"``, to the file its payload names, so that
afterwards the benchmark can count how many times each job really ran (and
in which process) against what the jobs table says. A task receives only
its payload, so the job is known by the ``key`` the benchmark put there
rather than by its id.

The drains the benchmark starts load this module through
JOBQUEUE_TASK_MODULES=chaos_tasks with bench/ on PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import time

from jobqueue import task


@task(name="chaos.work")
def work(path: str, key: int, seconds: float = 0.02) -> None:
    """Record this run of job ``key`` in ``path``, then take ``seconds``.
    A process killed after the write has left its line behind."""
    _trace(path, key)
    time.sleep(seconds)


@task(name="chaos.segv")
def segv(path: str, key: int) -> None:
    """Record this run of job ``key`` in ``path``, then kill this process with
    SIGSEGV, as an out-of-memory kill or a crash in native code takes a
    Lambda container: no exception, no outcome, the whole process gone.

    The line is written first (as chaos.work writes it), so each line of a
    poison job's key is one death it caused.
    """
    _trace(path, key)
    os.kill(os.getpid(), signal.SIGSEGV)


def _trace(path: str, key: int) -> None:
    """Append ``"<key> <pid>\\n"`` to ``path``: one os.write on a file opened
    with O_APPEND, which the kernel appends whole, so lines of processes
    writing at once never interleave."""
    line = f"{int(key)} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
