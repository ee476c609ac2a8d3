"""Secrets from AWS Secrets Manager, fetched once per container: the database
credentials (DB_SECRET_ARN) and the API's bearer tokens
(JOBQUEUE_API_TOKEN_SECRET_ARN).

A GetSecretValue call costs tens of milliseconds and an API request; a warm
Lambda container reuses the same credentials until the database rejects them.
Then the caller asks again with ``refresh=True``, which is how a password
rotated by Secrets Manager is picked up without a redeploy. Tokens are read
at cold start only: a new token reaches the function with its next containers
(so rotate by adding the new one beside the old, as in JOBQUEUE_API_TOKEN).

boto3 is imported inside the function: it ships with the Lambda runtime (so it
is not bundled in the ZIP) and deployments that set ``DB_PASSWORD`` directly
never pay for importing it.

No message raised here contains the secret's value: only its ARN, which is not
sensitive, and the names of fields. A secret that cannot be read at all is a
SecretUnavailable (a ConfigError that may pass); one that reads but is wrong
is a plain ConfigError.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import checked_tokens
from ..errors import ConfigError, SecretUnavailable

# Secrets Manager's RDS format also carries host, port, dbname and engine, but
# RDS-managed master secrets hold only these two; the rest can come from DB_*.
REQUIRED_FIELDS = ("username", "password")

DB_VARIABLE = "DB_SECRET_ARN"
TOKEN_VARIABLE = "JOBQUEUE_API_TOKEN_SECRET_ARN"

_INVALID = object()
_cache: dict[str, dict[str, Any]] = {}
_token_cache: dict[str, tuple[str, ...]] = {}
_clients: dict[str | None, Any] = {}


def db_secret(arn: str, *, refresh: bool = False) -> dict[str, Any]:
    """Return the RDS-format secret at ``arn`` (username, password, host, port, dbname...).

    The result is cached for the life of the process; ``refresh=True`` fetches
    it again (after an authentication failure). ``port``, when present, is an int.
    """
    if not arn:
        raise ConfigError(f"{DB_VARIABLE} is empty")
    if refresh or arn not in _cache:
        _cache[arn] = _parse(arn, _secret_string(arn, DB_VARIABLE))
    return dict(_cache[arn])


def api_tokens(arn: str) -> tuple[str, ...]:
    """The bearer tokens held by the secret at ``arn``, each at least
    config.MIN_TOKEN_CHARS long, read once per process (cold start).

    The secret is plain text (one token, or several comma-separated, to
    rotate) or JSON: ``{"token": "..."}`` or ``{"tokens": ["...", ...]}``.
    """
    if not arn:
        raise ConfigError(f"{TOKEN_VARIABLE} is empty")
    if arn not in _token_cache:
        _token_cache[arn] = _parse_tokens(arn, _secret_string(arn, TOKEN_VARIABLE))
    return _token_cache[arn]


def clear_cache() -> None:
    """Forget cached secrets and clients (tests, or a process that changes account)."""
    _cache.clear()
    _token_cache.clear()
    _clients.clear()


def _secret_string(arn: str, variable: str) -> str:
    """The secret's text. Errors name ``variable`` and the ARN; AWS's error code
    goes with them (for the log and direct callers: HTTP callers never see a
    configuration error's detail)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ConfigError(
            f"{variable} is set but boto3 is not installed (it is part of the Lambda runtime; "
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
        raise SecretUnavailable(f"{variable} {arn}: cannot read the secret ({code})") from exc
    except BotoCoreError as exc:
        raise SecretUnavailable(f"{variable} {arn}: cannot read the secret ({type(exc).__name__}: {exc})") from exc
    text = response.get("SecretString")
    if text is None:
        raise ConfigError(f"{variable} {arn}: the secret has no SecretString (binary secrets are not supported)")
    return text


def _region_of(arn: str) -> str | None:
    """The region inside a full ARN, so a secret in another region still resolves.

    A bare secret name has none; boto3 then uses AWS_REGION as usual.
    """
    parts = arn.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


def _parse(arn: str, text: str) -> dict[str, Any]:
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


def _parse_tokens(arn: str, text: str) -> tuple[str, ...]:
    where = f"{TOKEN_VARIABLE} {arn}"
    if not text.lstrip().startswith(("{", "[", '"')):
        tokens = [part.strip() for part in text.split(",")]
    else:
        # As in _parse: the JSONDecodeError holds the text, so it is not chained.
        try:
            data = json.loads(text)
        except ValueError:
            data = _INVALID
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: the secret is neither plain text nor a JSON object {_TOKEN_FIELDS}")
        tokens = _json_tokens(where, data)
    tokens = [token for token in tokens if token]
    if not tokens:
        raise ConfigError(f"{where}: the secret holds no token")
    return checked_tokens(tokens, where)


_TOKEN_FIELDS = '{"token": "..."} or {"tokens": ["...", ...]}'


def _json_tokens(where: str, data: dict[str, Any]) -> list[str]:
    """``token`` and ``tokens`` of a JSON secret (either or both; other fields
    are left alone, and never named: a key could be a pasted token)."""
    if "token" not in data and "tokens" not in data:
        raise ConfigError(f"{where}: the secret's JSON has neither field of {_TOKEN_FIELDS}")
    tokens = [data["token"]] if "token" in data else []
    listed = data.get("tokens", [])
    if not isinstance(listed, list):
        raise ConfigError(f'{where}: the secret\'s "tokens" must be a list of strings')
    tokens += listed
    if not all(isinstance(token, str) for token in tokens):
        raise ConfigError(f'{where}: the secret\'s "token" and "tokens" must hold strings')
    return [token.strip() for token in tokens]
