"""jobqueue.config: the rules for bearer tokens and the built-in tasks' switch."""

from __future__ import annotations

import pytest

from jobqueue.config import MIN_TOKEN_CHARS, Settings, checked_tokens
from jobqueue.errors import ConfigError

LONG = "a" * MIN_TOKEN_CHARS
SHORT = "s3cr3t-" + "x" * (MIN_TOKEN_CHARS - 8)  # one character short


def test_tokens_of_32_characters_or_more_are_accepted() -> None:
    other = "b" * 64
    assert Settings.from_env({"JOBQUEUE_API_TOKEN": f"{LONG}, {other}"}).api_tokens == (LONG, other)
    assert Settings.from_env({"JOBQUEUE_API_TOKEN": ""}).api_tokens == ()  # none at all is not this rule's business


@pytest.mark.parametrize(
    ("value", "which"),
    [(SHORT, "the token"), (f"{LONG},{SHORT}", "entry 2 of 2"), (f"{SHORT}, {LONG}, {LONG}", "entry 1 of 3")],
)
def test_a_short_token_is_a_config_error_naming_the_variable_and_the_rule_never_the_token(
    value: str, which: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"JOBQUEUE_API_TOKEN": value})
    message = str(caught.value)
    assert message.startswith("JOBQUEUE_API_TOKEN: ")
    assert f"shorter than {MIN_TOKEN_CHARS} characters" in message and which in message
    assert SHORT not in message and LONG not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_checked_tokens_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^JOBQUEUE_API_TOKEN_SECRET_ARN arn:x: the token is shorter"):
        checked_tokens(["short"], "JOBQUEUE_API_TOKEN_SECRET_ARN arn:x")
    assert checked_tokens([LONG], "anywhere") == (LONG,)


def test_the_token_secret_arn_is_read_as_given() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobqueue/tokens-AbCdEf"
    assert Settings.from_env({"JOBQUEUE_API_TOKEN_SECRET_ARN": f" {arn} "}).api_token_secret_arn == arn
    assert Settings.from_env({}).api_token_secret_arn is None


@pytest.mark.parametrize(
    ("value", "on"),
    [(None, False), ("", False), ("off", False), ("on", True), ("ON", True), ("true", True), ("0", False)],
)
def test_builtin_tasks_are_off_unless_switched_on(value: str | None, on: bool) -> None:
    env = {} if value is None else {"JOBQUEUE_BUILTIN_TASKS": value}
    assert Settings.from_env(env).builtin_tasks is on


def test_a_bad_builtin_switch_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="JOBQUEUE_BUILTIN_TASKS"):
        Settings.from_env({"JOBQUEUE_BUILTIN_TASKS": "sometimes"})
