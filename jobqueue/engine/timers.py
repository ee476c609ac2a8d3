"""Waking on time with no drain running: one SQS message, sent with
DelaySeconds, per earliest wake (issue: delayed jobs, retries and sleeps
started up to a minute late, on the next scheduled tick).

Whatever makes a job's next start later than now arms a wake for it, unless
an earlier one is armed: a delayed submit at once, and a drain as it ends,
for the earliest start it leaves behind (retries, snoozes, sleeps, wait
timeouts, parked jobs, a rate window that reopens). The message comes back
to this function as an SQS event and drains what is due; that drain arms
the next. SQS delays a message by whole seconds, up to 900; a wake further
away is armed by the scheduled tick once it comes within range. A lost or
duplicate message costs at most one idle drain, never a job: the schedule
stays the safety net.

Off unless JOBQUEUE_TIMER_QUEUE_URL names the queue; then a plain job due
now never reaches this module.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

from .. import log
from ..config import Settings
from ..store import timers
from ..store.connection import Database, Runner

MAX_DELAY = 900  # SQS's ceiling for DelaySeconds
ATTRIBUTE = "jobqueue"  # the message attribute that marks a timer message
MARK = "timer"

_client: Any = None


def is_timer(record: Any) -> bool:
    """An SQS record this function sent itself as a timer."""
    attributes = record.get("messageAttributes") if isinstance(record, dict) else None
    mark = attributes.get(ATTRIBUTE) if isinstance(attributes, dict) else None
    return isinstance(mark, dict) and mark.get("stringValue") == MARK


def after_submit(db: Database | Runner, settings: Settings | None, run_ats: list[str]) -> None:
    """Jobs just submitted that start later (ISO 8601 run_at): arm the earliest
    that is within SQS's reach. Never raises: the submit succeeded."""
    if settings is None or settings.timer_queue_url is None or not run_ats:
        return
    earliest = min(run_ats)
    moment = datetime.fromisoformat(earliest.replace("Z", "+00:00"))
    seconds = (moment - datetime.now(timezone.utc)).total_seconds()
    if 0 < seconds <= MAX_DELAY:
        _arm(db, settings, moment)


def fired(db: Database | Runner, records: list[Any]) -> None:
    """Timer messages came: the wakes they were armed for have fired (each may
    come up to a second before the whole second it is remembered by), so the
    drain that follows arms the next one. A stale message (a wake since
    replaced by an earlier one) clears nothing."""
    for record in records:
        try:
            due = json.loads(record.get("body") or "{}").get("due")
            if isinstance(due, str):
                timers.fired(db, due)
        except Exception as exc:  # noqa: BLE001 - then the armed time passes and the next arm replaces it
            log.warning("timer_not_cleared", error=f"{type(exc).__name__}: {exc}"[:300])


def after_drain(db: Database | Runner, settings: Settings | None, reopens_in: float | None = None) -> None:
    """A drain ends: arm a wake for the earliest start it leaves behind (and
    for the rate window it stopped at, ``reopens_in`` seconds away). One read
    of the promotion index's first entry; never raises."""
    if settings is None or settings.timer_queue_url is None:
        return
    now = datetime.now(timezone.utc)
    try:
        found = timers.next_start(db)
    except Exception as exc:  # noqa: BLE001 - the schedule still wakes it
        log.warning("timer_not_armed", error=f"{type(exc).__name__}: {exc}"[:300])
        return
    starts = [] if found is None else [datetime.fromisoformat(found[0].replace("Z", "+00:00"))]
    if reopens_in is not None:
        starts.append(now + timedelta(seconds=max(0.0, reopens_in)))
    if not starts or (min(starts) - now).total_seconds() > MAX_DELAY:
        return
    # A second from now at the soonest: a start that came due as this drain
    # ended waits that long, and a chain of drains each woken for the next
    # start sends at most one message a second.
    _arm(db, settings, max(min(starts), now + timedelta(seconds=1)))


def _arm(db: Database | Runner, settings: Settings, moment: datetime) -> None:
    # SQS delays by whole seconds: the message comes within a second after
    # the start. The wake is remembered by when it comes, so a later start
    # arms another only when that would come sooner.
    now = datetime.now(timezone.utc)
    delay = min(MAX_DELAY, max(0, math.ceil((moment - now).total_seconds())))
    at_text = (now + timedelta(seconds=delay)).isoformat()
    try:
        if timers.arm(db, at_text) is None:
            return  # a wake that comes as soon is armed
        _send(settings.timer_queue_url or "", at_text, delay)
        log.debug("timer_armed", due=at_text, delay_seconds=delay)
    except Exception as exc:  # noqa: BLE001 - the schedule still wakes it
        log.warning("timer_not_armed", due=at_text, error=f"{type(exc).__name__}: {exc}"[:300])
        try:
            timers.disarm(db, at_text)
        except Exception:  # noqa: BLE001 - then the armed time passes and the next arm replaces it
            pass


def _send(queue_url: str, due: str, delay: int) -> None:
    global _client
    if _client is None:
        import boto3  # in the Lambda runtime; imported only once a timer is armed

        _client = boto3.client("sqs")
    _client.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"jobqueue": MARK, "due": due}),
        DelaySeconds=delay,
        MessageAttributes={ATTRIBUTE: {"DataType": "String", "StringValue": MARK}},
    )


def reset() -> None:
    """Forget the SQS client (tests that change endpoints)."""
    global _client
    _client = None
