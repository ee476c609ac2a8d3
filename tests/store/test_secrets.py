"""jobqueue.secrets against a mocked Secrets Manager (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobqueue.errors import ConfigError, SecretUnavailable
from jobqueue.store import secrets
from tests.support.aws import count_calls, fake_account

REGION = "eu-west-1"
PASSWORD = "s3cr3t-Pa55word-never-shown"
RDS_SECRET = {
    "engine": "postgres",
    "host": "db.cluster-abc.eu-west-1.rds.amazonaws.com",
    "port": 5432,
    "dbname": "jobs",
    "username": "jobqueue",
    "password": PASSWORD,
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A mocked account; no real credentials or network are ever used."""
    fake_account(monkeypatch, "us-east-1")  # not the secret's region, on purpose
    secrets.clear_cache()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)
    secrets.clear_cache()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the Secrets Manager API calls that jobqueue.secrets makes."""
    return count_calls(monkeypatch, "secrets-manager")


def _create(client: Any, name: str, value: str) -> str:
    return client.create_secret(Name=name, SecretString=value)["ARN"]


def test_reads_an_rds_format_secret(aws: Any) -> None:
    arn = _create(aws, "jobqueue/db", json.dumps(RDS_SECRET))
    assert secrets.db_secret(arn) == RDS_SECRET


def test_second_call_is_served_from_the_cache(aws: Any, calls: list[str]) -> None:
    arn = _create(aws, "jobqueue/db", json.dumps(RDS_SECRET))
    first = secrets.db_secret(arn)
    second = secrets.db_secret(arn)
    assert first == second == RDS_SECRET
    assert calls == ["GetSecretValue"]


def test_cached_value_cannot_be_changed_by_a_caller(aws: Any) -> None:
    arn = _create(aws, "jobqueue/db", json.dumps(RDS_SECRET))
    secrets.db_secret(arn)["password"] = "tampered"
    assert secrets.db_secret(arn)["password"] == PASSWORD


def test_refresh_picks_up_a_rotated_password(aws: Any, calls: list[str]) -> None:
    arn = _create(aws, "jobqueue/db", json.dumps(RDS_SECRET))
    assert secrets.db_secret(arn)["password"] == PASSWORD
    aws.put_secret_value(SecretId=arn, SecretString=json.dumps({**RDS_SECRET, "password": "rotated"}))

    assert secrets.db_secret(arn)["password"] == PASSWORD  # still cached
    assert secrets.db_secret(arn, refresh=True)["password"] == "rotated"
    assert secrets.db_secret(arn)["password"] == "rotated"  # the refreshed value is cached
    assert calls == ["GetSecretValue", "GetSecretValue"]


def test_port_given_as_text_becomes_a_number(aws: Any) -> None:
    arn = _create(aws, "jobqueue/db", json.dumps({**RDS_SECRET, "port": "6543"}))
    assert secrets.db_secret(arn)["port"] == 6543


def test_rds_managed_secret_with_only_credentials_is_enough(aws: Any) -> None:
    # RDS-managed master-user secrets hold only these; DB_HOST / DB_NAME supply the rest.
    arn = _create(aws, "rds!db-1234", json.dumps({"username": "postgres", "password": PASSWORD}))
    assert secrets.db_secret(arn) == {"username": "postgres", "password": PASSWORD}


def test_missing_secret_names_db_secret_arn(aws: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:absent-AbCdEf"
    with pytest.raises(ConfigError, match="DB_SECRET_ARN") as caught:
        secrets.db_secret(arn)
    assert "ResourceNotFoundException" in str(caught.value)
    assert arn in str(caught.value)


def test_empty_arn_names_db_secret_arn() -> None:
    with pytest.raises(ConfigError, match="DB_SECRET_ARN"):
        secrets.db_secret("")


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (f'{{"username": "jobqueue", "password": "{PASSWORD}"', "not JSON"),
        (f'"{PASSWORD}"', "JSON object"),
        (json.dumps({**RDS_SECRET, "username": ""}), "lacks username"),
        (json.dumps({k: v for k, v in RDS_SECRET.items() if k != "password"}), "lacks password"),
        (json.dumps({"host": "db", "port": 5432}), "lacks username, password"),
        (json.dumps({**RDS_SECRET, "port": f"x{PASSWORD}"}), "port is not a number"),
    ],
    ids=["truncated-json", "not-an-object", "empty-username", "no-password", "no-credentials", "bad-port"],
)
def test_bad_secret_is_a_config_error_that_never_shows_the_password(aws: Any, value: str, complaint: str) -> None:
    arn = _create(aws, "jobqueue/bad", value)
    with pytest.raises(ConfigError) as caught:
        secrets.db_secret(arn)
    error = caught.value
    assert "DB_SECRET_ARN" in str(error)
    assert complaint in str(error)
    # Neither the message nor anything chained to it may carry the secret.
    seen = error
    while seen is not None:
        assert PASSWORD not in str(seen) and PASSWORD not in repr(seen.args)
        seen = seen.__cause__ or seen.__context__


def test_failed_fetch_does_not_poison_the_cache(aws: Any) -> None:
    arn = _create(aws, "jobqueue/db", "not json")
    with pytest.raises(ConfigError):
        secrets.db_secret(arn)
    aws.put_secret_value(SecretId=arn, SecretString=json.dumps(RDS_SECRET))
    assert secrets.db_secret(arn) == RDS_SECRET


# --- the API's bearer tokens (JOBQUEUE_API_TOKEN_SECRET_ARN) -------------------------------

TOKEN_A = "token-a-0123456789abcdefghijklmnopqrstuv"
TOKEN_B = "token-b-0123456789abcdefghijklmnopqrstuv"


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        (TOKEN_A, (TOKEN_A,)),
        (f" {TOKEN_A}\n", (TOKEN_A,)),
        (f"{TOKEN_A}, {TOKEN_B},", (TOKEN_A, TOKEN_B)),  # rotating: old and new
        (json.dumps({"token": TOKEN_A}), (TOKEN_A,)),
        (json.dumps({"tokens": [TOKEN_A, TOKEN_B]}), (TOKEN_A, TOKEN_B)),
        (json.dumps({"token": TOKEN_A, "tokens": [TOKEN_B], "note": "rotated in May"}), (TOKEN_A, TOKEN_B)),
    ],
    ids=["plain", "plain-with-whitespace", "comma-separated", "json-token", "json-tokens", "json-both"],
)
def test_reads_api_tokens_as_text_or_json(aws: Any, value: str, tokens: tuple[str, ...]) -> None:
    arn = _create(aws, "jobqueue/tokens", value)
    assert secrets.api_tokens(arn) == tokens


def test_api_tokens_are_fetched_once(aws: Any, calls: list[str]) -> None:
    arn = _create(aws, "jobqueue/tokens", TOKEN_A)
    assert secrets.api_tokens(arn) == secrets.api_tokens(arn) == (TOKEN_A,)
    assert calls == ["GetSecretValue"]


SHORT_TOKEN = "sh0rt-s3cr3t-token"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (SHORT_TOKEN, "shorter than 32 characters"),
        (f"{TOKEN_A},{SHORT_TOKEN}", "entry 2 of 2 is shorter than 32 characters"),
        (json.dumps({"tokens": [TOKEN_A, SHORT_TOKEN]}), "entry 2 of 2 is shorter"),
        (json.dumps({"token": SHORT_TOKEN}), "shorter than 32 characters"),
        (" , ,", "holds no token"),
        (json.dumps({"tokens": []}), "holds no token"),
        (json.dumps({SHORT_TOKEN: True}), 'neither field of {"token"'),
        (json.dumps({"tokens": SHORT_TOKEN}), '"tokens" must be a list'),
        (json.dumps({"tokens": [SHORT_TOKEN, 3]}), "must hold strings"),
        (json.dumps([SHORT_TOKEN]), "neither plain text nor a JSON object"),
        ('{"token": "' + SHORT_TOKEN, "neither plain text nor a JSON object"),
    ],
    ids=[
        "short",
        "one-short-of-two",
        "json-short",
        "json-token-short",
        "empty",
        "json-empty",
        "json-no-field",
        "json-tokens-not-a-list",
        "json-not-strings",
        "json-array",
        "truncated-json",
    ],
)
def test_bad_token_secret_is_a_config_error_naming_the_arn_never_the_value(
    aws: Any, value: str, complaint: str
) -> None:
    arn = _create(aws, "jobqueue/tokens", value)
    with pytest.raises(ConfigError) as caught:
        secrets.api_tokens(arn)
    error = caught.value
    assert not isinstance(error, SecretUnavailable)  # read, and wrong: asking again would not help
    assert str(error).startswith(f"JOBQUEUE_API_TOKEN_SECRET_ARN {arn}: ")
    assert complaint in str(error)
    seen: BaseException | None = error
    while seen is not None:
        for secret in (SHORT_TOKEN, TOKEN_A):
            assert secret not in str(seen) and secret not in repr(seen.args)
        seen = seen.__cause__ or seen.__context__


def test_unreadable_token_secret_names_the_variable_and_may_pass(aws: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:absent-AbCdEf"
    with pytest.raises(SecretUnavailable) as caught:
        secrets.api_tokens(arn)
    assert str(caught.value).startswith(f"JOBQUEUE_API_TOKEN_SECRET_ARN {arn}: cannot read the secret")
    assert "ResourceNotFoundException" in str(caught.value)
    aws.create_secret(Name="absent", SecretString=TOKEN_A)  # a later try, once it exists, is not poisoned
    assert secrets.api_tokens(aws.describe_secret(SecretId="absent")["ARN"]) == (TOKEN_A,)


def test_binary_token_secret_is_refused(aws: Any) -> None:
    arn = aws.create_secret(Name="jobqueue/binary", SecretBinary=b"\x00\x01")["ARN"]
    with pytest.raises(ConfigError, match="JOBQUEUE_API_TOKEN_SECRET_ARN .*no SecretString"):
        secrets.api_tokens(arn)
