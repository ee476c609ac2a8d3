"""The local stack in a subprocess, called over real HTTP the way curl calls it:
shared by the tests of the stack itself and of the API's contract."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest

from .aws import ROOT

DB_VARIABLES = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_SECRET_ARN")
# What tests that call a stack's Invoke API themselves sign with (serve makes fresh
# credentials each run otherwise); the tests of that default drop it.
FIXED_CREDENTIALS = ("local", "local")
INVOKE_PATH = "/2015-03-31/functions/{}/invocations"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in DB_VARIABLES}
    env.pop("JOBQUEUE_API_TOKEN", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env["JOBQUEUE_LOG_LEVEL"] = "INFO"
    env["JOBQUEUE_LOCAL_CREDENTIALS"] = ":".join(FIXED_CREDENTIALS)
    return {**env, **extra}


class Stack:
    """``python -m jobqueue serve`` in a subprocess, with what it printed."""

    def __init__(
        self, env: dict[str, str], cwd: Path, port: int, args: Sequence[str] = ("--drain-every", "0.5")
    ) -> None:
        self.port = port
        self.log = cwd / f"serve-{port}-{time.monotonic_ns()}.log"
        self._lines: Queue[str | None] = Queue()
        self.banner: list[str] = []
        with self.log.open("w") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobqueue", "serve", "--port", str(port), *args],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_ready(self, timeout: float = 30) -> str:
        """Read the banner (printed once the port is bound); returns the URL."""
        deadline = time.monotonic() + timeout
        while not self.banner or self.banner[-1] != "Ctrl-C stops it.":
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                pytest.fail(f"serve did not start in {timeout} s:\n{self.logs()}")
            if line is None:
                pytest.fail(f"serve exited with {self.proc.wait()}:\n{self.logs()}")
            self.banner.append(line)
        return self.banner[0].rsplit(" ", 1)[-1]

    def printed(self, label: str) -> str:
        return next(line.split()[1] for line in self.banner if line.strip().startswith(label))

    def interrupt(self, timeout: float = 10) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within {timeout} s of SIGINT:\n{self.logs()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        return self.log.read_text()


def call(method: str, url: str, body: Any = None, token: str | None = None, **headers: str) -> tuple[int, Any]:
    """One request the way curl makes it; returns the status and the decoded JSON body."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_state(url: str, token: str, job_id: str, state: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = call("GET", f"{url}/jobs/{job_id}", token=token)
        assert status == 200, body
        if body["job"]["state"] == state or time.monotonic() > deadline:
            return body["job"]
        time.sleep(0.1)


def assert_error_shape(body: Any) -> None:
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    assert "details" in body


def assert_json_logs(stack: Stack) -> list[dict[str, Any]]:
    lines = [line for line in stack.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert {"local.listening", "local.stopped"} <= {record["event"] for record in records}
    return records


def invoke_request(
    port: int,
    body: bytes = b"{}",
    *,
    credentials: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    host: str | None = None,
    sent_body: bytes | None = None,
    function: str = "jobqueue-local",
) -> tuple[int, dict[str, str], bytes]:
    """One POST to a local Invoke API on a connection of its own, signed by botocore's
    SigV4 signer when ``credentials`` (access key id, secret) are given, as boto3
    signs it. ``headers`` (and ``host``, the Host header) are there when it signs;
    ``sent_body`` replaces the body after signing. Returns status, headers, body."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    path = INVOKE_PATH.format(function)
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}{path}", data=body)
    request.headers["Host"] = host or f"127.0.0.1:{port}"
    for name, value in (headers or {}).items():
        request.headers[name] = value
    if credentials is not None:
        SigV4Auth(Credentials(*credentials), "lambda", "us-east-1").add_auth(request)
    payload = body if sent_body is None else sent_body
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(payload)))
        conn.endheaders(payload)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
