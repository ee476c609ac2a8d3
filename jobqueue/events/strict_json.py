"""JSON from untrusted text (a request body, an SQS message, a schedule's
input): no NaN or Infinity, bounded depth, and any failure a BadRequest
naming the field, never a crash."""

from __future__ import annotations

import json
from typing import Any

from ..errors import BadRequest
from ..rules import MAX_JSON_DEPTH


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def parse_json(raw: str | bytes, *, field: str = "body") -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except RecursionError:
        raise BadRequest(f"{field} is nested too deeply", field=field) from None
    except UnicodeDecodeError:
        raise BadRequest(f"{field} is not valid UTF-8", field=field) from None
    except ValueError as exc:
        raise BadRequest(f"{field} is not valid JSON: {exc}", field=field) from None
    except TypeError:
        raise BadRequest(f"{field} must be JSON text", field=field) from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise BadRequest(f"{field} is nested more than {MAX_JSON_DEPTH} levels deep", field=field)
    return value


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
