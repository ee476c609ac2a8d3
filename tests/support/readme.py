"""The README's curl commands, read from its ```sh blocks and sent to a local stack.

The rule for what runs, kept simple so that a reader can predict it:

- Only fenced blocks marked ``sh`` are read (markdown-it-py finds them, also
  inside list items); a line ending in ``\\`` goes on with the next line.
- A command runs when its first word is ``curl``. Everything else (builds,
  deploys, benchmarks, ``aws``, ``st``, ``python``, variable assignments) is
  not an API call and is skipped.
- ``$TOKEN`` is the token ``serve`` made (what ``TOKEN=$(cat .jobqueue/token)``
  reads), ``$API`` and ``http://127.0.0.1:8000`` are the stack's URL (the
  examples name a deployed API), and a job id placeholder (``JOB_ID``, or an id
  cut short with an ellipsis such as ``0190…``) is the id of the last job a
  command submitted. Any other ``$variable`` fails the test: it would be empty.
- A command must answer 2xx, or the status that the comment line right after
  it starts with (``# 202 {...}``).

Two runners send them: the real curl, through bash, exactly as typed
(``CurlRunner``, the truth, where curl is installed), and urllib from the
command's words (``UrllibRunner``, always), which understands curl's -s, -X,
-H, -d and the URL, refuses any other option, and sends what curl sends, its
default form Content-Type for -d included (a test compares the two).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from markdown_it import MarkdownIt

README_URL = "http://127.0.0.1:8000"
JOB_ID_PLACEHOLDER = re.compile(r"\bJOB_ID\b|\b[0-9a-f]{2,}…")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
EXPECTED = re.compile(r"#\s*([1-5]\d\d)\b")
TIMEOUT = 30


@dataclass(frozen=True)
class Command:
    """One shell command of the README, continuation lines joined."""

    text: str
    line: int  # where it starts in the README, from 1
    expected: int | None  # the status its next line's comment names; None: any 2xx

    @property
    def is_curl(self) -> bool:
        return self.text.split()[0] == "curl"


def shell_commands(markdown: str) -> list[Command]:
    """Every command of every ```sh block, in order."""
    commands = []
    for token in MarkdownIt("commonmark").parse(markdown):
        if token.type != "fence" or token.info.strip() != "sh" or token.map is None:
            continue
        first = token.map[0] + 2  # the fence's own line, counted from 1, then the next
        lines = token.content.splitlines()
        index = 0
        while index < len(lines):
            start, parts = index, [lines[index]]
            while parts[-1].rstrip().endswith("\\") and index + 1 < len(lines):
                parts[-1] = parts[-1].rstrip()[:-1]
                index += 1
                parts.append(lines[index])
            index += 1
            text = " ".join(part.strip() for part in parts).strip()
            if not text or text.startswith("#"):
                continue
            after = lines[index].strip() if index < len(lines) else ""
            match = EXPECTED.match(after)
            commands.append(Command(text, first + start, int(match.group(1)) if match else None))
    return commands


def curl_commands(markdown: str) -> list[Command]:
    return [command for command in shell_commands(markdown) if command.is_curl]


def placeholders_filled(command: Command, url: str, job_id: str | None) -> str:
    """The command with the README's URL and job id placeholders made real."""
    text = command.text.replace(README_URL, url)
    if JOB_ID_PLACEHOLDER.search(text):
        assert job_id, f"README line {command.line} names a job before any command submitted one: {command.text}"
        text = JOB_ID_PLACEHOLDER.sub(job_id, text)
    return text


def unknown_variables(text: str, variables: Mapping[str, str]) -> set[str]:
    return {a or b for a, b in VARIABLE.findall(text)} - set(variables)


@dataclass(frozen=True)
class Answer:
    status: int
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Runner(Protocol):
    def __call__(self, text: str, variables: Mapping[str, str], cwd: Path) -> Answer: ...


class CurlRunner:
    """The real curl, through bash, as a reader would paste the line; a wrapper
    function adds only what the test reads (the status) and a time limit."""

    WRAPPER = f"curl() {{ command curl -q --max-time {TIMEOUT} --write-out '\\n%{{http_code}}' \"$@\"; }}\n"

    def __call__(self, text: str, variables: Mapping[str, str], cwd: Path) -> Answer:
        done = subprocess.run(
            ["bash", "-c", self.WRAPPER + text],
            cwd=cwd,
            env={**os.environ, **variables},
            capture_output=True,
            text=True,
            timeout=TIMEOUT + 10,
        )
        body, _, status = done.stdout.rpartition("\n")
        assert done.returncode == 0 and status.isdigit(), f"curl failed ({done.returncode}): {done.stderr}"
        return Answer(int(status), body)


@dataclass
class CurlRequest:
    """What curl would send for a command's words, for the options the README uses."""

    method: str
    url: str
    headers: dict[str, str]
    data: bytes | None

    @classmethod
    def parse(cls, text: str, variables: Mapping[str, str]) -> CurlRequest:
        # Variables are expanded before splitting, in single quotes too: none of the
        # README's quoted JSON holds a `$`, and an unknown name has failed already.
        expanded = VARIABLE.sub(lambda m: variables[m.group(1) or m.group(2)], text)
        words = shlex.split(expanded, comments=True)
        assert words[0] == "curl", words
        method, url, headers, data = None, None, {}, []
        rest = iter(words[1:])
        for word in rest:
            if word in ("-s", "--silent"):
                continue
            if word in ("-X", "--request"):
                method = next(rest)
            elif word in ("-H", "--header"):
                name, _, value = next(rest).partition(":")
                headers[name.strip()] = value.strip()
            elif word in ("-d", "--data", "--data-raw"):
                data.append(next(rest))
            elif word.startswith("-"):
                raise AssertionError(f"{word} is not understood here: teach CurlRequest.parse what curl does with it")
            else:
                assert url is None, f"two URLs: {url}, {word}"
                url = word
        assert url, f"no URL in {text}"
        if data and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"  # curl's default for -d
        headers.setdefault("Accept", "*/*")
        body = "&".join(data).encode() if data else None  # curl joins several -d with &
        return cls(method or ("POST" if data else "GET"), url, headers, body)


class UrllibRunner:
    """The command's words sent with urllib, the way curl would send them."""

    def __call__(self, text: str, variables: Mapping[str, str], cwd: Path) -> Answer:
        request = CurlRequest.parse(text, variables)
        outgoing = urllib.request.Request(request.url, data=request.data, method=request.method)
        for name, value in request.headers.items():
            outgoing.add_header(name, value)
        try:
            with urllib.request.urlopen(outgoing, timeout=TIMEOUT) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode())
