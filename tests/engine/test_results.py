"""What a job keeps of its runs is bounded, so that it can always be read back:
a result over JOBQUEUE_MAX_RESULT_BYTES fails its job with ResultTooLarge, and
an attempt's error message and traceback are cut, with a marker, however long
the task made them. Jobs are submitted, drained and read back through the
HTTP handler, which answers 500 for a job too large for one Lambda response."""

from __future__ import annotations

import re
from typing import Any

import pytest

from jobqueue.config import Settings
from jobqueue.engine import drain, failures
from jobqueue.errors import ConfigError
from jobqueue.rules import MAX_ATTEMPTS, MAX_ERROR_MESSAGE_BYTES, MAX_RESULT_BYTES, MAX_TRACEBACK_BYTES
from tests.support.apigw import AUTH, assert_error, call, v2
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("database", "settings_env")

LIMIT = 256 * 1024  # the default, as for a submit's body
MESSAGE_CUT = re.compile(r"(.*) … \[([\d,]+) more bytes cut\]", re.S)
FRAMES_CUT = re.compile(r"(.*)\[… ([\d,]+) bytes cut …\]\n(.*)", re.S)


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def number(text: str) -> int:
    return int(text.replace(",", ""))


def submit(task: str, max_attempts: int = 3, **payload: Any) -> str:
    status, _, body = call(v2("POST", "/jobs", {"task": task, "payload": payload, "max_attempts": max_attempts}, AUTH))
    assert status == 202, body
    return body["job"]["id"]


def process() -> dict[str, Any]:
    status, _, body = call(v2("POST", "/process", headers=AUTH))
    assert status == 200, body
    return body["drain"]


def read(job_id: str) -> dict[str, Any]:
    """The job as GET /jobs/{id} answers it: it must answer, whatever the job holds."""
    status, _, body = call(v2("GET", f"/jobs/{job_id}", headers=AUTH))
    assert status == 200, body
    return body["job"]


# --- results ---------------------------------------------------------------------------


def test_a_20_mb_result_fails_its_job_for_good_and_the_job_still_reads_back() -> None:
    size = 20 * 1024 * 1024
    job_id = submit("tests.big_result", times=size)
    drained = process()
    assert (drained["processed"], drained["failed"], drained["retried"]) == (1, 1, 0)  # final: no retry
    job = read(job_id)
    assert (job["state"], job["attempts"], job["result"]) == ("failed", 1, None)
    error = job["error"]
    assert error["type"] == "ResultTooLarge"
    assert f"{size + 2:,} bytes" in error["message"] and f"limit of {LIMIT:,}" in error["message"], error
    assert "JOBQUEUE_MAX_RESULT_BYTES" in error["message"]


@pytest.mark.parametrize(
    ("text", "times"),
    [
        ("x", LIMIT - 2),  # the JSON string's quotes make it exactly the limit
        ("x", LIMIT - 1),  # one byte over
        ("é", (LIMIT - 2) // 2),  # the limit in bytes, half of it in characters
        ("é", (LIMIT - 2) // 2 + 1),  # two bytes over, though far fewer characters than the limit
    ],
)
def test_a_result_up_to_the_limit_in_utf8_bytes_is_stored_whole_and_one_over_fails(text: str, times: int) -> None:
    size = 2 + times * utf8(text)
    job_id = submit("tests.big_result", text=text, times=times)
    process()
    job = read(job_id)
    if size <= LIMIT:
        assert (job["state"], job["result"], job["errors"]) == ("succeeded", text * times, [])
    else:
        assert (job["state"], job["attempts"], job["result"]) == ("failed", 1, None)
        assert job["error"]["type"] == "ResultTooLarge" and f"{size:,} bytes" in job["error"]["message"]


def test_jobqueue_max_result_bytes_sets_the_limit(settings_env: Any) -> None:
    settings_env(JOBQUEUE_MAX_RESULT_BYTES="2048")
    fits = submit("tests.big_result", times=2046)
    over = submit("tests.big_result", times=2047)
    drained = process()
    assert (drained["succeeded"], drained["failed"]) == (1, 1)
    assert read(fits)["result"] == "x" * 2046
    error = read(over)["error"]
    assert error["type"] == "ResultTooLarge"
    assert "2,049 bytes" in error["message"] and "limit of 2,048" in error["message"], error


def test_the_result_limit_defaults_to_the_body_limit_and_takes_its_bounds() -> None:
    default = Settings.from_env({})
    assert default.max_result_bytes == default.max_body_bytes == LIMIT == Settings().max_result_bytes
    for value in (1024, MAX_RESULT_BYTES):
        assert Settings.from_env({"JOBQUEUE_MAX_RESULT_BYTES": f" {value} "}).max_result_bytes == value


@pytest.mark.parametrize("value", ["lots", "1.5", "1023", str(MAX_RESULT_BYTES + 1), "-1"])
def test_a_bad_result_limit_fails_the_cold_start_naming_the_variable(settings_env: Any, value: str) -> None:
    with pytest.raises(ConfigError, match="JOBQUEUE_MAX_RESULT_BYTES"):
        Settings.from_env({"JOBQUEUE_MAX_RESULT_BYTES": value})
    settings_env(JOBQUEUE_MAX_RESULT_BYTES=value)
    for event in (v2("GET", "/health"), v2("POST", "/process", headers=AUTH)):
        status, _, body = call(event)
        assert status == 500
        assert_error(body)
        assert body["message"] == "the service is misconfigured; its log has the detail"  # the variable: in the log


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "times"), [("m", 10_000_000), ("é", 5_000_000)])
def test_a_huge_exception_message_is_stored_cut_with_a_marker(raw: Any, text: str, times: int) -> None:
    job_id = submit("tests.deep_failure", max_attempts=1, depth=0, text=text, times=times)
    assert process()["failed"] == 1
    error = read(job_id)["error"]
    assert error["type"] == "RuntimeError"
    message, traceback = error["message"], error["traceback"]
    assert utf8(message) <= MAX_ERROR_MESSAGE_BYTES
    kept, cut = MESSAGE_CUT.fullmatch(message).groups()
    assert kept == text * len(kept) and utf8(kept) > MAX_ERROR_MESSAGE_BYTES - 100
    assert utf8(kept) + number(cut) == times * utf8(text)  # the marker counts exactly what went
    # The traceback cuts the message on its own line, so its frames survive.
    assert utf8(traceback) <= MAX_TRACEBACK_BYTES
    assert traceback.startswith("Traceback (most recent call last):\n")
    assert 'File "tests/support/tasks.py"' in traceback and f"RuntimeError: {text * 100}" in traceback
    assert MESSAGE_CUT.search(traceback)
    stored = raw.run("SELECT octet_length(CAST(errors AS text)) FROM jobs WHERE id = CAST(:id AS uuid)", id=job_id)
    assert stored[0][0] < MAX_ERROR_MESSAGE_BYTES + MAX_TRACEBACK_BYTES


def test_the_traceback_of_a_deep_recursion_is_stored_cut_in_its_middle() -> None:
    job_id = submit("tests.deep_failure", max_attempts=1)
    process()
    error = read(job_id)["error"]
    assert error["type"] == "RecursionError"
    traceback = error["traceback"]
    assert utf8(traceback) <= MAX_TRACEBACK_BYTES
    start, cut, end = FRAMES_CUT.fullmatch(traceback).groups()
    assert number(cut) > MAX_TRACEBACK_BYTES  # most of the frames went
    # Where the run began, and where it failed, in whole frames.
    assert start.startswith('Traceback (most recent call last):\n  File "jobqueue/engine/')
    assert end.startswith('  File "tests/support/tasks.py"')
    assert re.search(r"\nRecursionError: maximum recursion depth exceeded[^\n]*\n\Z", end), end[-300:]


def test_a_job_that_fails_all_its_attempts_at_full_size_still_reads_back(database: Any, raw: Any) -> None:
    """The error history keeps one entry per attempt: with the most attempts a
    job may have, each failing with a message and a traceback both cut to their
    bounds, the job still fits in a response (2.6 MB of Lambda's 6 MB)."""
    job_id = submit("tests.deep_failure", max_attempts=MAX_ATTEMPTS, depth=300, text="m", times=1_000_000)
    settings = Settings(retry_base_seconds=0, retry_max_seconds=0)

    def failed() -> bool:
        drain.run(database, settings=settings)
        return raw.run("SELECT state FROM jobs WHERE id = CAST(:id AS uuid)", id=job_id)[0][0] == "failed"

    wait_until(failed, timeout=120, what=f"the job to use up its {MAX_ATTEMPTS} attempts")
    status, _, body = call(v2("GET", f"/jobs/{job_id}", headers=AUTH))
    assert status == 200, body
    errors = body["job"]["errors"]
    assert [e["attempt"] for e in errors] == list(range(1, MAX_ATTEMPTS + 1))
    for entry in errors:
        assert MAX_ERROR_MESSAGE_BYTES - 100 < utf8(entry["message"]) <= MAX_ERROR_MESSAGE_BYTES
        assert MAX_TRACEBACK_BYTES - 1000 < utf8(entry["traceback"]) <= MAX_TRACEBACK_BYTES


# --- the cut itself --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a" * 9000, "é" * 9000, "€" * 9000, "😀" * 9000, "a" + "😀" * 9000, "a\x00b" * 5000])
def test_a_cut_keeps_whole_characters_and_counts_what_went(text: str) -> None:
    stored = failures.clean(text)
    out = failures.bounded(text, MAX_ERROR_MESSAGE_BYTES)
    kept, cut = MESSAGE_CUT.fullmatch(out).groups()
    assert utf8(out) <= MAX_ERROR_MESSAGE_BYTES and stored.startswith(kept)
    assert utf8(kept) + number(cut) == utf8(stored)
    assert failures.bounded(text[:100], MAX_ERROR_MESSAGE_BYTES) == failures.clean(text[:100])
