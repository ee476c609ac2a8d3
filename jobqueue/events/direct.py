"""Direct invocations, ``{"action": ...}``: the HTTP API's bodies, unwrapped.

An EventBridge target with constant input arrives as exactly this event too.
Bad input gets the error body. Any other failure (database down,
configuration) raises: the synchronous caller sees a failed invocation naming
it, and an asynchronous one is retried and counted in Errors.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..actions import table
from .cold_start import Container
from .problems import problem
from .replies import INPUT_ERRORS, done, rejected, request_id_of


def handle(event: Mapping[str, Any], context: Any, container: Container) -> dict[str, Any]:
    started = time.perf_counter()
    request_id = request_id_of(event, context)
    action = str(event.get("action"))[:100]
    try:
        body = table.direct(event, container.call(context))
    except INPUT_ERRORS as exc:
        return rejected("invocation", exc, request_id, started, action=action)
    except Exception as exc:
        problem(exc, request_id)
        raise
    done("invocation", body, request_id, started, action=action)
    return body
