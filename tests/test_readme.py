"""The README's curl commands work as typed, against a real ``serve``.

The quick start once told readers to POST JSON with a bare ``curl -d``, which
sends a form Content-Type and got 415. Here every curl of every ```sh block
(the rule is in tests/support/readme.py) goes to a local stack started for the
test, and must answer 2xx, or the status the README's next line says, so the
README and the server cannot drift apart again.
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import ROOT
from tests.support.localstack import Stack, free_port, stack_env
from tests.support.readme import (
    Command,
    CurlRequest,
    CurlRunner,
    Runner,
    UrllibRunner,
    curl_commands,
    placeholders_filled,
    shell_commands,
    unknown_variables,
)

README = ROOT / "README.md"
MIN_CURLS = 9  # the README's curls today; fewer means the reading broke (or curls went: lower it then)
RUNNERS: dict[str, Runner] = {"curl": CurlRunner(), "urllib": UrllibRunner()}


@pytest.fixture
def local_stack(server_env: dict[str, str], database: Any, tmp_path: Path, stacks: list[Stack]) -> Iterator[Stack]:
    """``serve`` on the test database, on a free port, with the token it makes
    itself in ``.jobqueue/token`` (no token from the environment) and its own
    default for the built-in tasks the README submits, as a reader has."""
    env = stack_env(**server_env, JOBQUEUE_LOG_LEVEL="WARNING")
    env.pop("JOBQUEUE_BUILTIN_TASKS", None)
    stack = Stack(env, tmp_path, free_port())
    stacks.append(stack)
    stack.wait_ready()
    yield stack
    assert stack.interrupt() == 0


def test_the_readme_has_curl_commands_to_check() -> None:
    commands = curl_commands(README.read_text())
    assert len(commands) >= MIN_CURLS, [command.text for command in commands]
    skipped = [command.text.split()[0] for command in shell_commands(README.read_text()) if not command.is_curl]
    assert {"aws", "st", "./build.sh"} <= set(skipped)  # other blocks were read, and left alone


@pytest.mark.parametrize("runner_name", list(RUNNERS))
def test_readme_curl_commands_answer_as_the_readme_says(local_stack: Stack, tmp_path: Path, runner_name: str) -> None:
    if runner_name == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed; the urllib run sends the same requests")
    runner = RUNNERS[runner_name]
    url = local_stack.wait_ready()  # read already: the URL it printed
    token = (tmp_path / ".jobqueue" / "token").read_text().strip()
    assert local_stack.printed("token") == token
    variables = {"TOKEN": token, "API": url}

    ran: list[Command] = []
    job_id: str | None = None
    for command in curl_commands(README.read_text()):
        text = placeholders_filled(command, url, job_id)
        assert not unknown_variables(text, variables), f"README line {command.line}: {command.text}"
        answer = runner(text, variables, tmp_path)
        where = f"README line {command.line}: {command.text}\n-> {answer.status} {answer.body[:500]}"
        if command.expected is None:
            assert 200 <= answer.status < 300, where
        else:
            assert answer.status == command.expected, where
        body = answer.json()
        if isinstance(body, dict) and isinstance(body.get("job"), dict) and "id" in body["job"]:
            job_id = body["job"]["id"]  # what the README's next JOB_ID or 0190… stands for
        ran.append(command)
    assert len(ran) >= MIN_CURLS, "a check that runs nothing proves nothing"


# --- the urllib runner sends what curl sends ---------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200 to anything, and keeps what it was sent."""

    seen: list[tuple[str, str, str | None, bytes]] = []

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PATCH = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, str | None, bytes]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.seen
    server.shutdown()
    server.server_close()


SAMPLES = [
    """curl -s -H "Authorization: Bearer $TOKEN" -d '{"task": "echo"}' $API/jobs""",
    """curl -s -X POST "$API/jobs" -H 'Content-Type: application/json' -d '{"a": 1}'  # a comment""",
    """curl -s -X PATCH "$API/queues/q" -H "Authorization: Bearer $TOKEN" --data '{"paused": true}'""",
    'curl -s "$API/jobs?state=failed&limit=50" -H "Authorization: Bearer $TOKEN"',
]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed to compare with")
def test_urllib_runner_sends_what_curl_sends(recorder: Any, tmp_path: Path) -> None:
    url, seen = recorder
    variables = {"TOKEN": "t0k3n", "API": url}
    for sample in SAMPLES:
        del seen[:]
        CurlRunner()(sample, variables, tmp_path)
        UrllibRunner()(sample, variables, tmp_path)
        assert len(seen) == 2 and seen[0] == seen[1], (sample, seen)
    assert seen[0][2] is None  # a GET without a body has no Content-Type, either way


def test_a_bare_data_option_is_a_form_as_curl_sends_it() -> None:
    """Why the quick start got 415: curl -d says form, unless told it is JSON."""
    request = CurlRequest.parse("""curl -s -d '{"task": "echo"}' http://h/jobs""", {})
    assert (request.method, request.headers["Content-Type"]) == ("POST", "application/x-www-form-urlencoded")
    with pytest.raises(AssertionError, match="--json"):
        CurlRequest.parse("curl --json '{}' http://h/jobs", {})
