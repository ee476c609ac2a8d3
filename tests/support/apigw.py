"""Events as API Gateway sends them, built from the real samples in samples/,
and the handler's answer as a test reads it."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

import app  # the cold start happens here, before any test sets its own settings

from .aws import make_context, sample

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"  # 32 characters at least, as every token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


_V1 = sample("apigw-rest-v1.json")
_V2 = sample("apigw-http-v2.json")


def _body(body: Any, b64: bool) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    text = body if isinstance(body, str | bytes) else json.dumps(body)
    if b64:
        raw = text if isinstance(text, bytes) else text.encode()
        return base64.b64encode(raw).decode(), True
    return (text.decode() if isinstance(text, bytes) else text), False


def v1(
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str | list[str]] | None = None,
    *,
    b64: bool = False,
    stage: str = "$default",
) -> dict[str, Any]:
    """A REST API (payload 1.0) proxy event: path without the stage, headers as sent."""
    event = copy.deepcopy(_V1)
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    event["resource"] = "/{proxy+}"
    event["requestContext"]["stage"] = stage
    event["requestContext"]["path"] = path if stage == "$default" else f"/{stage}{path}"
    all_headers = dict(headers or {})
    event["headers"] = all_headers or None
    event["multiValueHeaders"] = {k: [v] for k, v in all_headers.items()} or None
    multi = {k: v if isinstance(v, list) else [v] for k, v in (query or {}).items()}
    event["queryStringParameters"] = {k: v[-1] for k, v in multi.items()} or None
    event["multiValueQueryStringParameters"] = multi or None
    event["body"], event["isBase64Encoded"] = _body(body, b64)
    event["pathParameters"] = None
    return event


def v2(
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str | list[str]] | None = None,
    *,
    b64: bool = False,
    stage: str = "$default",
    domain: str | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event: lower-case headers, a non-default stage in rawPath."""
    event = copy.deepcopy(_V2)
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event["rawPath"] = raw_path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = raw_path
    event["requestContext"]["stage"] = stage
    if domain:
        event["requestContext"]["domainName"] = domain
    event["headers"] = {k.lower(): v for k, v in (headers or {}).items()}
    event.pop("cookies", None)
    multi = {k: v if isinstance(v, list) else [v] for k, v in (query or {}).items()}
    event["queryStringParameters"] = {k: ",".join(v) for k, v in multi.items()} or None
    event["rawQueryString"] = "&".join(f"{k}={x}" for k, v in multi.items() for x in v)
    event["body"], event["isBase64Encoded"] = _body(body, b64)
    event.pop("pathParameters", None)
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    return event


def function_url(method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Lambda Function URL event: payload 2.0 on a lambda-url domain."""
    return v2(method, path, body, headers, domain="abcdefghij.lambda-url.us-east-1.on.aws")


def call(event: dict[str, Any], context: Any = None) -> tuple[int, dict[str, str], Any]:
    """Invoke app.lambda_handler; returns (status, headers, decoded body or None).

    A JSON body is decoded; any other (a dashboard file) comes back as its text.
    """
    response = app.lambda_handler(event, context or make_context())
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["isBase64Encoded"] is False
    text, headers = response["body"], response["headers"]
    if text and headers.get("Content-Type") != "application/json":
        return response["statusCode"], headers, text
    return response["statusCode"], headers, (json.loads(text) if text else None)


def assert_error(body: Any, *, field: str | None = None) -> None:
    """The standard error shape, naming ``field`` when given."""
    assert isinstance(body, dict) and set(body) == {"status", "message", "details"}, body
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    if field is not None:
        assert body["details"].get("field") == field, body
