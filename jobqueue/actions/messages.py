"""Submissions that arrive as queued messages (SQS): each enqueued at most once,
and each that cannot be enqueued reported, so the queue retries it and finally
moves it to its dead-letter queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import log, rules
from ..engine import invocation, timers, wake
from ..errors import DatabaseUnavailable, InvalidTransition, JobNotFound, ValidationError
from ..store import jobs
from ..store.connection import Database, Runner
from ..tasks.spec import JobSpec
from . import signals, workflows
from .jobs import json_object


class Submitted:
    """What became of a batch of messages: how many jobs it holds now, and which messages failed."""

    __slots__ = ("due", "enqueued", "failed", "later")

    def __init__(self) -> None:
        self.enqueued = 0
        self.failed: list[str] = []
        self.due = False  # some job it enqueued is due now
        self.later: list[str] = []  # when the jobs it enqueued for later start (ISO 8601)


def submit_messages(db: Database | Runner, messages: Sequence[tuple[str, Any]]) -> Submitted:
    """Enqueue queued submissions (message id, decoded body), each at most once;
    a body that could not be decoded comes as the ValidationError saying why.

    A body's own idempotency_key wins: it says which submissions the producer
    considers the same job, even across messages. Without one the message id
    is the key, so a redelivered message finds its job instead of adding one.
    A bad message fails alone; the rest go in one statement per thousand.
    """
    result = Submitted()
    good: list[tuple[str, JobSpec]] = []
    for message_id, data in messages:
        if isinstance(data, ValidationError):
            rejected(result, message_id, data)
            continue
        if isinstance(data, dict) and data.get("action") == "signal":
            _signal(db, result, message_id, data)
            continue
        try:
            data = json_object(data, "a message body")
            if data.get("idempotency_key") is None:
                data = {**data, "idempotency_key": f"sqs:{message_id}"}
            if workflows.wants_flow(data):
                _submit_flow(db, result, message_id, data)
                continue
            good.append((message_id, JobSpec.from_dict(data)))
        except ValidationError as exc:
            rejected(result, message_id, exc)
    for start in range(0, len(good), rules.MAX_BATCH):
        chunk = good[start : start + rules.MAX_BATCH]
        try:
            enqueued = jobs.enqueue_many(db, [spec for _, spec in chunk])
            result.enqueued += len(chunk)
            result.due = result.due or any(rules.due_now(job) for job in enqueued)
            result.later += [job["run_at"] for job in enqueued if not rules.due_now(job)]
        except DatabaseUnavailable as exc:  # the rest would fail the same way: leave them to SQS
            log.error("sqs_database_unavailable", error=str(exc), messages=len(good) - start)
            result.failed.extend(message_id for message_id, _ in good[start:])
            break
        except Exception:  # noqa: BLE001 - find the one message the batch statement choked on
            for message_id, spec in chunk:
                try:
                    job, _ = jobs.enqueue(db, spec)
                    result.enqueued += 1
                    result.due = result.due or rules.due_now(job)
                except ValidationError as exc:
                    rejected(result, message_id, exc)
                except Exception as exc:  # noqa: BLE001 - reported, so SQS redelivers it
                    log.error("sqs_enqueue_failed", message_id=message_id, error=f"{type(exc).__name__}: {exc}"[:500])
                    result.failed.append(message_id)
    if result.due:
        wake.wake(db)
    if result.later:
        timers.after_submit(db, invocation.settings(), result.later)
    return result


def _submit_flow(db: Database | Runner, result: Submitted, message_id: str, data: Any) -> None:
    """A message whose job depends on others: enqueued alone, in its own transaction."""
    try:
        body, _ = workflows.submit(db, data)
        result.enqueued += 1
        result.due = result.due or (body["job"]["state"] == "pending" and rules.due_now(body["job"]))
    except ValidationError as exc:
        rejected(result, message_id, exc)
    except Exception as exc:  # noqa: BLE001 - reported, so SQS redelivers it
        log.error("sqs_enqueue_failed", message_id=message_id, error=f"{type(exc).__name__}: {exc}"[:500])
        result.failed.append(message_id)


def _signal(db: Database | Runner, result: Submitted, message_id: str, data: dict[str, Any]) -> None:
    """A message ``{"action": "signal", "job_id", "name", "value"}``: delivered
    (a redelivery delivers the same value again, which a wait takes once). A
    signal for no job or a finished one goes to the dead-letter queue."""
    try:
        signals.signal_fields({k: v for k, v in data.items() if k != "action"}, db, invocation.settings())
    except (ValidationError, JobNotFound, InvalidTransition) as exc:
        rejected(result, message_id, exc)
    except Exception as exc:  # noqa: BLE001 - reported, so SQS redelivers it
        log.error("sqs_signal_failed", message_id=message_id, error=f"{type(exc).__name__}: {exc}"[:500])
        result.failed.append(message_id)


def rejected(result: Submitted, message_id: str, exc: ValidationError | JobNotFound | InvalidTransition) -> None:
    """A message no retry can fix: logged once, and reported for the dead-letter queue."""
    log.warning("sqs_rejected", message_id=message_id, error=str(exc)[:500], field=getattr(exc, "field", None))
    result.failed.append(message_id)
