"""Database credentials from AWS Secrets Manager, fetched once per container.

A GetSecretValue call costs tens of milliseconds and an API request; a warm
Lambda container reuses the same credentials until the database rejects them.
Then the caller asks again with ``refresh=True``, which is how a password
rotated by Secrets Manager is picked up without a redeploy.

boto3 is imported inside the function: it ships with the Lambda runtime (so it
is not bundled in the ZIP) and deployments that set ``DB_PASSWORD`` directly
never pay for importing it.

No message raised here contains the secret's value: only its ARN, which is not
sensitive, and the names of fields.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigError

# Secrets Manager's RDS format also carries host, port, dbname and engine, but
# RDS-managed master secrets hold only these two; the rest can come from DB_*.
REQUIRED_FIELDS = ("username", "password")

_INVALID = object()
_cache: dict[str, dict[str, Any]] = {}
_clients: dict[str | None, Any] = {}


def db_secret(arn: str, *, refresh: bool = False) -> dict[str, Any]:
    """Return the RDS-format secret at ``arn`` (username, password, host, port, dbname...).

    The result is cached for the life of the process; ``refresh=True`` fetches
    it again (after an authentication failure). ``port``, when present, is an int.
    """
    if not arn:
        raise ConfigError("DB_SECRET_ARN is empty")
    if refresh or arn not in _cache:
        _cache[arn] = _fetch(arn)
    return dict(_cache[arn])


def clear_cache() -> None:
    """Forget cached secrets and clients (tests, or a process that changes account)."""
    _cache.clear()
    _clients.clear()


def _fetch(arn: str) -> dict[str, Any]:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ConfigError(
            "DB_SECRET_ARN is set but boto3 is not installed (it is part of the Lambda runtime; "
            "install it to run elsewhere)"
        ) from None

    region = _region_of(arn)
    try:
        client = _clients.get(region)
        if client is None:
            client = _clients[region] = boto3.client("secretsmanager", region_name=region)
        response = client.get_secret_value(SecretId=arn)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ConfigError(f"DB_SECRET_ARN {arn}: cannot read the secret ({code})") from exc
    except BotoCoreError as exc:
        raise ConfigError(f"DB_SECRET_ARN {arn}: cannot read the secret ({type(exc).__name__}: {exc})") from exc
    return _parse(arn, response.get("SecretString"))


def _region_of(arn: str) -> str | None:
    """The region inside a full ARN, so a secret in another region still resolves.

    A bare secret name has none; boto3 then uses AWS_REGION as usual.
    """
    parts = arn.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


def _parse(arn: str, text: str | None) -> dict[str, Any]:
    if text is None:
        raise ConfigError(f"DB_SECRET_ARN {arn}: the secret has no SecretString (binary secrets are not supported)")
    # Raised outside the ``except`` block so that the JSONDecodeError, which
    # holds the whole document, password included, is not chained onto it.
    try:
        data = json.loads(text)
    except ValueError:
        data = _INVALID
    if data is _INVALID:
        raise ConfigError(f"DB_SECRET_ARN {arn}: the secret is not JSON in the RDS format")
    if not isinstance(data, dict):
        raise ConfigError(f"DB_SECRET_ARN {arn}: the secret must be a JSON object in the RDS format")
    missing = [name for name in REQUIRED_FIELDS if not isinstance(data.get(name), str) or not data[name]]
    if missing:
        raise ConfigError(f"DB_SECRET_ARN {arn}: the secret lacks {', '.join(missing)}")
    port = data.get("port")
    if isinstance(port, str) and port.strip().isdigit():
        data["port"] = int(port)
    elif port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise ConfigError(f"DB_SECRET_ARN {arn}: the secret's port is not a number")
    return data
