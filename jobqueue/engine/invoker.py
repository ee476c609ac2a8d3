"""How a drain or a submit starts more drains: an asynchronous Invoke of this
function (InvocationType=Event), through boto3, which the Lambda runtime has.

Best effort: a failed invoke is logged and never fails a submit or a drain (the
schedule still drains what is due). A function refused permission to invoke
itself stops trying for a while, saying so once.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .. import log
from ..config import Settings

INVOKE_COOLDOWN = 300.0  # after the function was refused permission to invoke itself

_client: Any = None
_client_for: str | None = None
_refused_until = 0.0


def enabled(settings: Settings | None, function: str | None) -> bool:
    return bool(settings is not None and settings.fanout and function)


def invoke(function: str, event: dict[str, Any]) -> bool:
    """Start an invocation of ``function`` with ``event``, asynchronously
    (InvocationType=Event: queued by Lambda, answered with 202). Never raises."""
    global _client, _client_for, _refused_until
    if time.monotonic() < _refused_until:
        return False
    try:
        if _client is None or _client_for != function:
            import boto3  # present in the Lambda runtime; only a drain or a wake needs it
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
            _client, _client_for = boto3.client("lambda", config=config), function
        _client.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode())
    except Exception as exc:  # noqa: BLE001 - never fail a submit or a drain over this
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        if code in ("AccessDeniedException", "AccessDenied"):
            _refused_until = time.monotonic() + INVOKE_COOLDOWN
            log.warning(
                "fanout_not_permitted",
                message="this function may not invoke itself (lambda:InvokeFunction); drains run only on schedule "
                "until it may",
                retry_in_seconds=INVOKE_COOLDOWN,
            )
        else:
            log.warning("invoke_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return False
    return True
