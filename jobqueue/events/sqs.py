"""SQS batches: each message's body is a POST /jobs submission (or a signal),
enqueued at most once; the messages that could not be are reported in
``batchItemFailures``, so SQS retries them and its redrive policy finally
moves them to the DLQ. A timer message (the function's own, from its timer
queue) is no job: it drains what came due."""

from __future__ import annotations

import time
from typing import Any

from .. import log
from ..actions.messages import submit_messages
from ..actions.table import perform
from ..engine import timers
from ..errors import ValidationError
from .cold_start import Container
from .replies import elapsed_ms, request_id_of
from .strict_json import parse_json


def handle(records: list[Any], context: Any, container: Container) -> dict[str, Any]:
    started = time.perf_counter()
    call = container.call(context)
    messages: list[tuple[str, Any]] = []
    unidentified = 0
    wakes = [record for record in records if timers.is_timer(record)]
    if wakes:  # the function's own timer: drain what came due (a duplicate finds nothing)
        records = [record for record in records if not timers.is_timer(record)]
        timers.fired(call.db, wakes)
        body = perform("process", {}, call)
        log.info("timer", request_id=request_id_of({}, context), messages=len(wakes),
                 processed=body["drain"]["processed"], latency_ms=elapsed_ms(started))  # fmt: skip
        if not records:
            return {"batchItemFailures": []}
    for record in records:
        message_id = record.get("messageId") if isinstance(record, dict) else None
        if not isinstance(message_id, str) or not message_id:
            # Without an id SQS cannot be told which one failed: an empty
            # identifier makes it treat the whole batch as failed, which is safe.
            unidentified += 1
            continue
        body = record.get("body")
        try:
            messages.append((message_id, parse_json(body if isinstance(body, str) else "", field="body")))
        except ValidationError as exc:
            messages.append((message_id, exc))  # reported, with the reason, by submit_messages
    result = submit_messages(call.db, messages)
    failed = [""] * unidentified + result.failed
    log.info(
        "sqs",
        request_id=request_id_of({}, context),
        records=len(records),
        enqueued=result.enqueued,
        failed=len(failed),
        latency_ms=elapsed_ms(started),
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
