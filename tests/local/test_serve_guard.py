"""``python -m jobqueue serve`` under attack and under load: its containers sign
their Invoke requests with credentials made for the run, which nobody else has;
a ``--host`` beyond loopback is said out loud; and 64 clients at once each get
an answer (served, or 503 with Retry-After), none a reset connection.
"""

from __future__ import annotations

import http.client
import json
import secrets
import threading
from pathlib import Path
from typing import Any

import pytest

from jobqueue.config import Settings
from jobqueue.errors import ConfigError
from jobqueue.local.lambda_service import Credentials
from jobqueue.local.serve import container_env, ensure_token, run_credentials
from tests.support.localstack import Stack, assert_json_logs, call, free_port, invoke_request, stack_env
from tests.support.waiting import wait_until

TOKEN = "guard-test-token-0123456789abcdef"


def start(server_env: dict[str, str], tmp_path: Path, stacks: list[Stack], *args: str, **env: str) -> Stack:
    settings = stack_env(**server_env, JOBQUEUE_API_TOKEN=TOKEN, JOBQUEUE_TASK_MODULES="tests.support.tasks", **env)
    if "JOBQUEUE_LOCAL_CREDENTIALS" not in env:
        settings.pop("JOBQUEUE_LOCAL_CREDENTIALS")  # serve's default: fresh credentials, known to no one here
    stack = Stack(settings, tmp_path, free_port(), args or ("--drain-every", "0"))
    stacks.append(stack)
    stack.wait_ready()
    return stack


def test_the_containers_sign_with_fresh_credentials_that_nobody_else_has(server_env, database, tmp_path, stacks):
    stack = start(server_env, tmp_path, stacks)
    url = f"http://127.0.0.1:{stack.port}"
    # With no schedule, only a drain its container invoked through the Invoke API runs the job.
    status, body = call("POST", f"{url}/jobs", {"task": "echo", "payload": {"n": 1}}, TOKEN)
    assert status == 202, body
    wait_until(
        lambda: call("GET", f"{url}/jobs/{body['job']['id']}", token=TOKEN)[1]["job"]["state"] == "succeeded",
        timeout=30,
        what="the drain a container started to run the job",
    )
    assert '"reason":"drain (hop 1)"' in stack.logs()

    event = json.dumps({"action": "configure_queue", "name": "default", "paused": True}).encode()
    refusals = [
        invoke_request(stack.port, event, headers={"Content-Type": "text/plain", "Origin": "https://attacker.example"}),
        invoke_request(stack.port, event, headers={"Content-Type": "text/plain"}),
        invoke_request(stack.port, event, credentials=("local", "local")),  # the pair containers used to get
        invoke_request(stack.port, event, credentials=("local", "local"), host=f"attacker.example:{stack.port}"),
    ]
    assert [status for status, _, _ in refusals] == [403, 403, 403, 403]
    status, queues = call("GET", f"{url}/queues", token=TOKEN)
    assert status == 200 and not any(queue["paused"] for queue in queues["queues"])
    logs = stack.logs()
    assert logs.count('"event":"local.invoke_refused"') == 4  # the four above; the containers' own, never
    assert stack.interrupt() == 0
    assert_json_logs(stack)


def test_fixed_credentials_let_a_script_invoke_and_a_deep_body_is_a_400(server_env, database, tmp_path, stacks):
    keys = (secrets.token_hex(10), secrets.token_hex(32))
    stack = start(server_env, tmp_path, stacks, JOBQUEUE_LOCAL_CREDENTIALS=":".join(keys))
    assert keys[1] not in stack.logs()
    deep = b"[" * 100_000 + b"]" * 100_000
    status, headers, body = invoke_request(stack.port, deep, credentials=keys)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "InvalidRequestContentException"), body
    status, _, body = invoke_request(stack.port, json.dumps({"action": "process"}).encode(), credentials=keys)
    assert status == 200 and "drain" in json.loads(body), body  # and the server still answers
    status, _, _ = invoke_request(stack.port, credentials=(keys[0], "not-the-secret"))
    assert status == 403


def test_a_host_beyond_loopback_is_warned_about(server_env, database, tmp_path, stacks):
    stack = start(server_env, tmp_path, stacks, "--host", "0.0.0.0", "--drain-every", "0")
    lines = stack.logs().splitlines()
    warning = next(json.loads(line) for line in lines if '"event":"local.exposed"' in line)
    assert (warning["level"], warning["host"]) == ("WARNING", "0.0.0.0")
    assert any(line.startswith("WARNING: serve listens on 0.0.0.0") for line in lines)
    status, _ = call("GET", f"http://127.0.0.1:{stack.port}/health")
    assert status == 200


def test_on_loopback_nothing_is_warned_about(server_env, database, tmp_path, stacks):
    stack = start(server_env, tmp_path, stacks)
    assert '"event":"local.exposed"' not in stack.logs() and "WARNING: serve listens" not in stack.logs()


def one_request(port: int, gate: threading.Barrier, answers: list[Any], index: int) -> None:
    """A submit on a connection of its own, sent when every client is ready."""
    body = json.dumps({"task": "echo", "payload": {"i": index}}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        gate.wait()
        conn.request("POST", "/jobs", body, {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        response = conn.getresponse()
        answers[index] = (response.status, response.getheader("Retry-After"), response.read())
    except OSError as exc:  # a reset, a refused or dropped connection
        answers[index] = exc
    finally:
        conn.close()


def test_64_clients_at_once_each_get_an_answer(server_env, database, tmp_path, stacks):
    stack = start(server_env, tmp_path, stacks)  # four containers, the default
    clients = 64
    for attempt in range(3):  # three bursts: a reset is the exception a small backlog makes
        gate = threading.Barrier(clients)
        answers: list[Any] = [None] * clients
        threads = [threading.Thread(target=one_request, args=(stack.port, gate, answers, i)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        failed = [answer for answer in answers if not isinstance(answer, tuple)]
        assert not failed, f"burst {attempt}: {len(failed)} of {clients} got no answer: {failed[:3]}"
        for status, retry_after, body in answers:
            assert status == 202 or (status == 503 and retry_after), (status, retry_after, body)
    assert '"event":"local.invoke_refused"' not in stack.logs()  # the wakes of every submit were let in


def test_run_credentials_are_fresh_unless_fixed() -> None:
    assert run_credentials({}) != run_credentials({})
    assert run_credentials({"JOBQUEUE_LOCAL_CREDENTIALS": "AKID:s3cr:et"}) == Credentials("AKID", "s3cr:et")
    for bad in ("no-colon", ":secret", "key:"):
        with pytest.raises(ConfigError):
            run_credentials({"JOBQUEUE_LOCAL_CREDENTIALS": bad})


def test_containers_get_the_runs_credentials_and_not_the_developers() -> None:
    credentials = Credentials.fresh()
    developer = {
        "AWS_ACCESS_KEY_ID": "AKIAREALKEY",
        "AWS_SECRET_ACCESS_KEY": "real-secret",
        "AWS_SESSION_TOKEN": "real-token",
        "JOBQUEUE_LOCAL_CREDENTIALS": "a:b",
        "PATH": "/bin",
    }
    env = container_env("http://127.0.0.1:8000", 4, credentials, developer)
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (credentials.access_key, credentials.secret_key)
    assert "AWS_SESSION_TOKEN" not in env and "JOBQUEUE_LOCAL_CREDENTIALS" not in env
    assert (env["AWS_ENDPOINT_URL_LAMBDA"], env["PATH"], env["JOBQUEUE_MAX_DRAINS"]) == (
        "http://127.0.0.1:8000",
        "/bin",
        "3",
    )


def test_containers_get_the_builtin_tasks_unless_the_developer_said_otherwise() -> None:
    """serve is for trying things out: echo, noop, sleep and fail are there, unless
    JOBQUEUE_BUILTIN_TASKS says otherwise (a deployment has them off)."""
    credentials = Credentials.fresh()
    assert container_env("http://127.0.0.1:8000", 4, credentials, {})["JOBQUEUE_BUILTIN_TASKS"] == "on"
    for said in ("off", "on", ""):
        env = container_env("http://127.0.0.1:8000", 4, credentials, {"JOBQUEUE_BUILTIN_TASKS": said})
        assert env["JOBQUEUE_BUILTIN_TASKS"] == said


def test_a_token_file_edited_too_short_stops_serve_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBQUEUE_API_TOKEN", raising=False)  # ensure_token sets it: undone after the test
    (tmp_path / "token").write_text("short-token\n")
    with pytest.raises(ConfigError, match="shorter than 32 characters") as caught:
        ensure_token(Settings.from_env({}), tmp_path)
    assert str(tmp_path / "token") in str(caught.value) and "short-token" not in str(caught.value)
    (tmp_path / "token").unlink()
    made = ensure_token(Settings.from_env({}), tmp_path)
    assert made is not None and len(made) >= 32
    assert (tmp_path / "token").read_text().strip() == made
