"""Screenshots of the dashboard for the README.

Starts the local stack on a fresh embedded PostgreSQL in a temporary folder
(your own ``.jobqueue/`` and any DB_* settings are left alone), seeds jobs in
three queues (succeeded, failed with errors, cancelled, pending; one queue
limited, one paused), and writes
``docs/dashboard-queues.png`` and ``docs/dashboard-job.png`` at 1200 px wide::

    .venv/bin/python docs/screenshots.py

Needs Chromium (e.g. the distribution's ``chromium`` package; ``CHROMIUM``
names another binary) and Playwright for Python from requirements-dev.txt.

Imported by the stack it starts (``JOBQUEUE_TASK_MODULES=screenshots``), this
module registers the demo tasks below.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from jobqueue import Permanent, task  # noqa: E402
from tests import chromium  # noqa: E402

WIDTH, HEIGHT = 1200, 800

# --- demo tasks (registered in the stack's process) ------------------------------------


@task(name="emails.send", queue="emails", max_attempts=3)
def send_email(to: str, subject: str, **_: Any) -> dict[str, Any]:
    if to.endswith("@example.invalid"):
        raise ConnectionError(f"SMTP server refused {to}: 550 mailbox unavailable")
    return {"message_id": f"<{zlib.crc32(f'{to} {subject}'.encode())}@mail.example.com>"}


@task(name="reports.build", queue="reports", timeout=20)
def build_report(month: str, **_: Any) -> dict[str, Any]:
    if month > "2026-12":
        raise Permanent(f"no data for {month} yet")
    return {"rows": 1284, "url": f"s3://reports/{month}.csv"}


@task(name="images.resize", queue="images")
def resize(url: str, width: int = 800, **_: Any) -> dict[str, Any]:
    return {"url": url.replace(".jpg", f"-{width}.jpg"), "width": width}


# --- the stack ----------------------------------------------------------------------


def start_stack(folder: Path, token: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    env.update(
        JOBQUEUE_API_TOKEN=token,
        JOBQUEUE_TASK_MODULES="screenshots",
        JOBQUEUE_LOG_LEVEL="WARNING",
        JOBQUEUE_FANOUT="off",  # this script drains when it means to, leaving some jobs pending
        PYTHONPATH=os.pathsep.join([str(ROOT), str(DOCS)]),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobqueue", "serve", "--port", "0", "--drain-every", "0"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    first = None
    for line in proc.stdout:  # the banner, printed once the port is bound
        first = first or line.strip()
        if line.strip() == "Ctrl-C stops it.":
            return proc, first.rsplit(" ", 1)[-1]
    sys.exit(f"the local stack did not start (exit code {proc.wait()})")


def call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def seed(url: str, token: str) -> str:
    """Jobs in three queues, one limited and one paused; returns the id of a
    failed job with two attempts."""

    def submit(task_name: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return call(url, token, "POST", "/jobs", {"task": task_name, "payload": payload, **extra})["job"]

    for name in ("ann", "bo", "chen", "dee", "eli"):
        submit("emails.send", {"to": f"{name}@example.com", "subject": "Your order has shipped"})
    flaky = submit("emails.send", {"to": "gone@example.invalid", "subject": "Your order has shipped"}, max_attempts=2)
    for month in ("2026-09", "2026-10", "2026-11"):
        submit("reports.build", {"month": month})
    submit("reports.build", {"month": "2027-01"})
    for n in range(4):
        submit("images.resize", {"url": f"https://cdn.example.com/p/{1000 + n}.jpg", "width": 640})
    cancelled = submit("images.resize", {"url": "https://cdn.example.com/p/999.jpg"}, delay_seconds=3600)
    call(url, token, "POST", f"/jobs/{cancelled['id']}/cancel")
    call(url, token, "POST", "/process", {})

    deadline = time.monotonic() + 60  # the flaky job's retry is due within seconds
    while call(url, token, "GET", f"/jobs/{flaky['id']}")["job"]["state"] != "failed":
        if time.monotonic() > deadline:
            sys.exit("the failing job did not fail twice within 60 s")
        time.sleep(0.5)
        call(url, token, "POST", "/process", {"queues": ["emails"]})

    # Left pending: due now (no drain runs), and later ones.
    for name in ("fay", "gus"):
        submit("emails.send", {"to": f"{name}@example.com", "subject": "Welcome"})
    submit("reports.build", {"month": "2026-12"}, delay_seconds=1800)
    submit("images.resize", {"url": "https://cdn.example.com/p/2001.jpg", "width": 1280})

    # Settings, as the table shows them: limits on one queue, another paused.
    call(url, token, "PATCH", "/queues/emails", {"concurrency": 2, "rate": {"limit": 100, "per_seconds": 60}})
    call(url, token, "PATCH", "/queues/images", {"paused": True})
    return flaky["id"]


def shoot(url: str, token: str, failed_id: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    executable = chromium.find() or sys.exit(chromium.MISSING)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=chromium.LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.goto(f"{url}/ui")
        page.fill("#token", token)
        page.click("#signin button[type=submit]")
        page.wait_for_selector("#jobs tbody tr")
        page.wait_for_selector("#queues tbody tr .badge.paused")
        page.wait_for_timeout(300)  # let the fonts settle
        written.append(DOCS / "dashboard-queues.png")
        page.screenshot(path=written[-1])

        page.set_viewport_size({"width": WIDTH, "height": 1000})  # the whole job, errors included
        page.goto(f"{url}/ui#job={failed_id}")
        page.wait_for_selector("#detail-body .errors")  # tracebacks stay folded: they name local paths
        page.wait_for_timeout(300)
        written.append(DOCS / "dashboard-job.png")
        page.screenshot(path=written[-1])
        browser.close()
    return written


def main() -> int:
    token = secrets.token_urlsafe(32)  # 43 characters: tokens have 32 at least
    with tempfile.TemporaryDirectory(prefix="jobqueue-screenshots-") as folder:
        Path(folder).chmod(0o755)  # the embedded server's own user must reach its data folder
        proc, url = start_stack(Path(folder), token)
        try:
            failed_id = seed(url, token)
            for path in shoot(url, token, failed_id):
                print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
