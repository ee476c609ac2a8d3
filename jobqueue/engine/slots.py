"""A drain's slots as the database knows them: the jobs it may be running.

A drain writes them down before it starts a job that is not among them, in
the same statement as its outcomes, so when its process dies the rescue
can tell the claimed jobs that never started (put back, uncounted) from
those that were running (suspects, run alone next). Writing per job would
cost a round trip per job; instead each write names the jobs about to
start in the slots that are free, plus, for jobs known to be short, as many
as fit in outcomes.rerun_seconds() of run time, so short jobs share a write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import pace
from .claimed import ClaimedJob

# A window of more jobs than this, when it is every job the drain holds, is
# written as "every job held" rather than as their ids.
LISTED_MAX = 64


class Slots:
    """What the database holds as this drain's slots, and what they should hold next."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.written: set[Any] = set()  # the ids the database holds for this drain
        self.abandoned: set[Any] = set()  # jobs past their timeout whose threads still run
        self.ever = False  # whether this drain has written any (an idle drain never does)

    def window(
        self, running: Iterable[Any], waiting: Iterable[ClaimedJob], lost: set[Any], budget: float
    ) -> tuple[list[Any], bool]:
        """The ids to write down: every job running (or abandoned and still
        running), then waiting jobs in the order they start: one per free
        slot, then more while their known run times fit ``budget`` seconds.
        And whether they are many and every job this drain holds (a batch of
        short jobs), so that "every job held" can be written instead."""
        ids = list(running)
        free = max(1, self.size - len(ids))
        ids.extend(self.abandoned)
        spent = 0.0
        taken = 0
        seconds_of = pace.task_seconds
        whole = True
        for job in waiting:
            if job.id in lost:
                continue
            seconds = seconds_of(job.name)
            if taken >= free and (seconds is None or spent + seconds > budget):
                whole = False
                break
            ids.append(job.id)
            taken += 1
            spent += seconds or 0.0
        return ids, whole and not self.abandoned and len(ids) > LISTED_MAX

    def wrote(self, ids: list[Any]) -> None:
        self.written = set(ids)
        self.ever = True
