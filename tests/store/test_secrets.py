"""jobqueue.secrets against a mocked Secrets Manager (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobqueue.errors import ConfigError
from jobqueue.store import secrets

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
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # not the secret's region, on purpose
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    secrets.clear_cache()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)
    secrets.clear_cache()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the Secrets Manager API calls that jobqueue.secrets makes."""
    made: list[str] = []
    real_client = boto3.client

    def counting_client(*args: Any, **kwargs: Any) -> Any:
        client = real_client(*args, **kwargs)
        client.meta.events.register("before-call.secrets-manager.*", lambda model, **_: made.append(model.name))
        return client

    monkeypatch.setattr(boto3, "client", counting_client)
    return made


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
