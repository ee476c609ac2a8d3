"""AWS's own shapes for the tests: the event samples in samples/ (as AWS sends
them) and the Lambda context, built with the Python runtime's own class."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from awslambdaric.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).resolve().parent / "samples"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def make_context(
    remaining_ms: int = 60_000, request_id: str = "test-request", function_arn: str | None = None
) -> LambdaContext:
    """The context Lambda passes: the Python runtime's own class (awslambdaric),
    built the way its bootstrap builds it, so a handler reading a method or an
    attribute Lambda does not have fails here as it would on AWS.

    No function ARN unless given: with one, a drain or a submit may invoke the
    function for more drains (fan-out), which a test must ask for.
    """
    deadline_ms = int(time.time() * 1000) + remaining_ms
    return LambdaContext(
        request_id,
        None,  # client context: only mobile SDK invocations carry one
        None,  # cognito identity: likewise
        deadline_ms,
        function_arn,
    )


def fake_account(monkeypatch: Any, region: str) -> None:
    """Credentials and a region for moto's mocked account; no real credentials,
    profile or endpoint of the machine can leak into a test."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def count_calls(monkeypatch: Any, service: str) -> list[str]:
    """Names of the API calls every boto3 client of ``service`` (botocore's
    event name, e.g. "secrets-manager") makes from now on."""
    import boto3

    made: list[str] = []
    real_client = boto3.client

    def counting_client(*args: Any, **kwargs: Any) -> Any:
        client = real_client(*args, **kwargs)
        client.meta.events.register(f"before-call.{service}.*", lambda model, **_: made.append(model.name))
        return client

    monkeypatch.setattr(boto3, "client", counting_client)
    return made
