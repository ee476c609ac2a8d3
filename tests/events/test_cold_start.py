"""The cold start's API tokens from Secrets Manager (JOBQUEUE_API_TOKEN_SECRET_ARN),
against a mocked Secrets Manager (moto) and the real handler and database: read
once per container, accepted beside JOBQUEUE_API_TOKEN's, and a secret that
cannot be read fails the container without telling HTTP callers why."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import app
from jobqueue.errors import ConfigError
from jobqueue.events import cold_start
from jobqueue.store import secrets
from tests.support.apigw import TOKEN, call, v2
from tests.support.aws import count_calls, fake_account, make_context

pytestmark = pytest.mark.usefixtures("database", "settings_env")

REGION = "eu-west-1"
SECRET_TOKEN = "from-the-secret-0123456789abcdefghijkl"
MISSING_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:jobqueue/tokens-AbCdEf"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A mocked account; no real credentials or network are ever used."""
    fake_account(monkeypatch, REGION)
    secrets.clear_cache()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)
    secrets.clear_cache()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the Secrets Manager API calls made."""
    return count_calls(monkeypatch, "secrets-manager")


def status_with(token: str) -> int:
    return call(v2("GET", "/stats", headers={"Authorization": f"Bearer {token}"}))[0]


def test_tokens_from_the_secret_and_the_variable_are_both_accepted(
    aws: Any, calls: list[str], settings_env: Any
) -> None:
    arn = aws.create_secret(Name="jobqueue/tokens", SecretString=json.dumps({"tokens": [SECRET_TOKEN]}))["ARN"]
    settings_env(JOBQUEUE_API_TOKEN_SECRET_ARN=arn)  # and JOBQUEUE_API_TOKEN=TOKEN, as every test has
    assert calls == ["GetSecretValue"]  # at cold start
    for _ in range(3):
        assert status_with(SECRET_TOKEN) == 200
        assert status_with(TOKEN) == 200
        assert status_with(SECRET_TOKEN[:-1] + "x") == 401
    assert calls == ["GetSecretValue"]  # and never again in this container
    assert status_with(SECRET_TOKEN) == 200


def test_the_secret_alone_is_enough(aws: Any, settings_env: Any) -> None:
    arn = aws.create_secret(Name="jobqueue/tokens", SecretString=SECRET_TOKEN)["ARN"]
    settings_env(JOBQUEUE_API_TOKEN="", JOBQUEUE_API_TOKEN_SECRET_ARN=arn)
    assert cold_start.current().settings.api_tokens == (SECRET_TOKEN,)
    assert status_with(SECRET_TOKEN) == 200
    assert status_with(TOKEN) == 401


def test_no_secret_is_read_when_auth_is_off(aws: Any, calls: list[str], settings_env: Any) -> None:
    settings_env(JOBQUEUE_AUTH="none", JOBQUEUE_API_TOKEN="", JOBQUEUE_API_TOKEN_SECRET_ARN=MISSING_ARN)
    assert cold_start.current().error is None
    assert calls == []
    assert call(v2("GET", "/stats"))[0] == 200


def test_an_unreadable_secret_fails_the_container_and_only_the_log_and_direct_callers_say_why(
    aws: Any, settings_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    settings_env(JOBQUEUE_API_TOKEN_SECRET_ARN=MISSING_ARN)
    for event in (v2("GET", "/health"), v2("GET", "/stats", headers={"Authorization": f"Bearer {TOKEN}"})):
        status, _, body = call(event, make_context(request_id="req-cold"))
        assert status == 500
        assert body["message"] == "the service is misconfigured; its log has the detail"
        assert body["details"] == {"request_id": "req-cold"}
        text = json.dumps(body)
        assert "arn:" not in text and "ResourceNotFound" not in text and "JOBQUEUE_" not in text
    with pytest.raises(ConfigError) as caught:  # a direct invocation is signed with IAM: it is told
        app.lambda_handler({"action": "stats"}, make_context())
    assert MISSING_ARN in str(caught.value) and "ResourceNotFoundException" in str(caught.value)
    assert "JOBQUEUE_API_TOKEN_SECRET_ARN" in str(caught.value)
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    errors = [line for line in logged if line["event"] == "config_error"]
    assert errors[0]["retry_in_seconds"] == cold_start.RETRY_SECONDS  # the cold start's own line
    assert all(MISSING_ARN in line["error"] and "ResourceNotFoundException" in line["error"] for line in errors)
    assert any(line.get("request_id") == "req-cold" for line in errors)


def test_a_container_whose_secret_was_unavailable_tries_again_later(
    aws: Any, calls: list[str], settings_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cold_start, "RETRY_SECONDS", 0.3)
    # A name rather than an ARN (Secrets Manager takes both), so the test can create it afterwards.
    settings_env(JOBQUEUE_API_TOKEN="", JOBQUEUE_API_TOKEN_SECRET_ARN="jobqueue/later")
    assert cold_start.current().retry_at is not None
    aws.create_secret(Name="jobqueue/later", SecretString=SECRET_TOKEN)  # AWS answers again
    assert status_with(SECRET_TOKEN) == 500  # within the pause: no new GetSecretValue
    assert calls == ["GetSecretValue"]
    time.sleep(0.35)
    assert status_with(SECRET_TOKEN) == 200
    assert calls == ["GetSecretValue", "GetSecretValue"]
    assert cold_start.current().retry_at is None  # healed: read once, for good
    assert status_with(SECRET_TOKEN) == 200
    assert calls == ["GetSecretValue", "GetSecretValue"]


def test_a_wrong_secret_is_not_asked_for_again(aws: Any, calls: list[str], settings_env: Any) -> None:
    arn = aws.create_secret(Name="jobqueue/tokens", SecretString="too-short")["ARN"]
    settings_env(JOBQUEUE_API_TOKEN_SECRET_ARN=arn)
    container = cold_start.current()
    assert container.error is not None and "shorter than 32 characters" in container.error
    assert "too-short" not in container.error
    assert container.retry_at is None  # read and wrong: a new deployment fixes it, not time
    assert status_with(TOKEN) == 500
    assert calls == ["GetSecretValue"]
