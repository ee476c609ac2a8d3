"""Signals to durable jobs: from POST /jobs/{id}/signals/{name}, a direct
invocation ``{"action": "signal", ...}``, or an SQS message of the same
fields (how another AWS service resumes a job).

A signal is kept until the job's ``wait_for`` of that name takes it; one for
a job that waits for it makes the job due at once and wakes a drain, as a
submit does. A finished job takes no signal (409): what it would have
resumed has ended.
"""

from __future__ import annotations

import json
from typing import Any

from .. import rules
from ..config import Settings
from ..engine import wake
from ..errors import ValidationError
from ..store import durable
from ..store.connection import Database, Runner

Body = dict[str, Any]
SIGNAL_FIELDS = frozenset({"job_id", "name", "value"})
MAX_NAME = 200


def signal(db: Database | Runner, job_id: Any, name: Any, value: Any, settings: Settings | None = None) -> Body:
    """Deliver ``value`` (any JSON) as the signal ``name`` of job ``job_id``."""
    if not isinstance(job_id, str) or not job_id:
        raise ValidationError("job_id must be a job's id (a UUID)", field="job_id")
    job_id = rules.uuid_text(job_id, "id")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME or not name.isprintable():
        raise ValidationError(f"a signal's name must be 1 to {MAX_NAME} printable characters", field="name")
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        raise ValidationError("a signal's value must be JSON", field="value") from None
    if not rules.json_storable(text):
        raise ValidationError("a signal's value cannot hold a NUL character or an unpaired surrogate", field="value")
    limit = (settings or Settings()).max_body_bytes
    if len(text.encode()) > limit:
        raise ValidationError(
            f"a signal's value is {len(text.encode()):,} bytes of JSON, over the limit of {limit:,} "
            "(JOBQUEUE_MAX_BODY_BYTES); it is refused, not truncated",
            field="value",
        )
    job = durable.signal(db, job_id, name, text)
    if job["state"] == "pending":
        wake.wake(db)  # it may have waited for this signal: it is due now, as a submit's job is
    return {"status": "ok", "job": job}


def signal_fields(args: Any, db: Database | Runner, settings: Settings | None = None) -> Body:
    """``{"job_id", "name", "value"}``: a direct invocation's or an SQS message's signal."""
    if not isinstance(args, dict):
        raise ValidationError("a signal must be a JSON object", field="body")
    rules.only(args, SIGNAL_FIELDS)
    for field in ("job_id", "name"):
        if field not in args:
            raise ValidationError(f"{field} is required", field=field)
    return signal(db, args["job_id"], args["name"], args.get("value"), settings)
