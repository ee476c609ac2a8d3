"""The API document is the contract: Schemathesis, every check it has, holds the
running API to the document it serves.

``python -m jobqueue serve`` runs on the test database in a subprocess, exactly
as a user starts it, and Schemathesis reads its ``/openapi.json`` and tests
every operation in it (examples, coverage, fuzzing, and the stateful phase,
which follows the document's links from a submitted job to the routes that
take its id). Routes added to the document are covered without touching this
file. Any failure fails the test, with Schemathesis's report and the command to
reproduce it.

What a JSON Schema cannot say, a hook makes true of the requests Schemathesis
means to be valid (its positive cases): that depends_on names jobs that exist,
and that a batch's keys are printable and unique and its after names keys of the same batch
without a circle. Schemathesis's own documented way (a ``map_case`` hook);
its negative cases are left as they are.

Each invocation gets five seconds and a drain keeps four back, so ``POST
/process`` never runs a job longer than a second: a fuzzed ``sleep`` job cannot
hold the one-at-a-time container for long.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.localstack import Stack, call, stack_env

pytest.importorskip("schemathesis")


TOKEN = "contract-test-token-0123456789abcdef"
# Examples per operation in the fuzzing and stateful phases: enough to find what
# the coverage phase's boundary values miss, few enough for about a minute here.
MAX_EXAMPLES = os.environ.get("JOBQUEUE_SCHEMATHESIS_EXAMPLES", "25")
HOOKS_MODULE = "jobqueue_contract_hooks"
HOOKS = """
import os

import schemathesis

PARENT = os.environ["JOBQUEUE_CONTRACT_PARENT"]  # a job that exists


def _fix_batch(jobs):
    \"\"\"Keys made unique and printable; after names keys of earlier jobs only (known, no circle).\"\"\"
    taken = {job.get("key") for job in jobs if isinstance(job, dict)}
    seen = []
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            continue
        if isinstance(job.get("depends_on"), list):
            job["depends_on"] = [PARENT]
        if isinstance(job.get("after"), list):
            job["after"] = seen[: len(job["after"])] or None
        key = job.get("key")
        if isinstance(key, str):
            if key in seen or not key.isprintable():  # the server's rule, which a pattern cannot spell
                key = f"k{i}"
                while key in taken:
                    key += "+"
                taken.add(key)
                job["key"] = key
            seen.append(key)


@schemathesis.hook
def map_case(context, case):
    meta, body = case.meta, case.body
    if meta is None or not meta.generation.mode.is_positive or not isinstance(body, dict):
        return case
    if case.method.upper() != "POST":
        return case
    if case.path == "/jobs" and isinstance(body.get("depends_on"), list):
        body["depends_on"] = [PARENT]
    elif case.path == "/jobs/batch" and isinstance(body.get("jobs"), list):
        _fix_batch(body["jobs"])
    return case
"""


def schemathesis_command(url: str, report: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--max-examples",
        MAX_EXAMPLES,
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    seed = os.environ.get("JOBQUEUE_SCHEMATHESIS_SEED")  # to replay a failed run
    return command + (["--seed", seed] if seed else [])


def test_the_api_keeps_to_its_document(
    server_env: dict[str, str], database: Any, tmp_path: Path, stacks: list[Stack]
) -> None:
    env = stack_env(**server_env, JOBQUEUE_API_TOKEN=TOKEN, JOBQUEUE_SAFETY_MS="4000", JOBQUEUE_LOG_LEVEL="WARNING")
    stack = Stack(env, tmp_path, 0, ("--drain-every", "0", "--timeout", "5"))
    stacks.append(stack)
    url = stack.wait_ready()
    status, parent = call("POST", f"{url}/jobs", {"task": "noop"}, TOKEN)
    assert status == 202, parent
    (tmp_path / f"{HOOKS_MODULE}.py").write_text(HOOKS)
    hooks = {"SCHEMATHESIS_HOOKS": HOOKS_MODULE, "JOBQUEUE_CONTRACT_PARENT": parent["job"]["id"]}
    report = tmp_path / "schemathesis.json"
    started = time.monotonic()
    done = subprocess.run(
        schemathesis_command(url, report),
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **hooks},
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    assert report.exists(), f"schemathesis did not run:\n{done.stdout}\n{done.stderr}"
    run = json.loads(report.read_text())
    # The figures, shown with -rA or -s, and in any failure.
    phases = ", ".join(f"{name} {phase['status']}" for name, phase in run["phases"].items())
    summary = (
        f"schemathesis {run['schemathesis_version']}: {run['operations']['tested']} operations, "
        f"{run['test_cases']['generated']} test cases, {run['test_cases']['unique_failures']} unique failures, "
        f"{len(run['errors'])} errors; phases: {phases}; {seconds:.1f} s; seed {run['seed']}"
    )
    print(summary)
    assert done.returncode == 0 and run["exit_code"] == 0, f"{summary}\n{done.stdout[-20000:]}\n{done.stderr[-5000:]}"
    assert run["complete"] and run["failures"] == [] and run["errors"] == [], summary
    assert run["operations"]["tested"] == run["operations"]["total"] >= 9, summary
    assert run["phases"]["stateful"]["status"] == "success", summary
    warnings = {kind: found for kind, found in run["warnings"].items() if found}
    assert warnings == {}, f"{summary}\n{warnings}\n{done.stdout[-20000:]}"
    assert stack.proc.poll() is None, stack.logs()
    assert stack.interrupt() == 0
    # Jobs a fuzzed submit made fail log at ERROR by design; nothing else may.
    records = [json.loads(line) for line in stack.logs().splitlines() if line.startswith("{")]
    errors = [record for record in records if record["level"] == "ERROR" and record["event"] != "job"]
    assert errors == [], errors[:20]
