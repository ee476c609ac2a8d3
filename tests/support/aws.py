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
