"""The dashboard in a real browser: Chromium (the system's) driven by Playwright,
against the local stack (``python -m jobqueue serve``) in a subprocess on the
test database.

Every page fails its test on any console error, uncaught exception or
Content-Security-Policy violation, so the policy is proven to hold for the
page as it really runs, not only to be sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import chromium
from tests.support.localstack import Stack, call, free_port, stack_env

TOKEN = "browser-test-token-0123456789abcdef"
HOSTILE = {"x": '<img src=x onerror="window.__pwned=1">', "y": "<script>window.__pwned=2</script>"}
WAIT_MS = 20_000  # for what the page shows after a refresh (every 5 s) or a drain (every 0.5 s)

# Collect CSP violations the moment they happen, before the page's own script runs.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}`);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium.find()
    if executable is None:
        pytest.skip(chromium.MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=chromium.LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def stack(server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local stack for the module, on the test database, draining every 0.5 s,
    with the tests' tasks (durable ones among them); yields its URL."""
    env = stack_env(**server_env, JOBQUEUE_API_TOKEN=TOKEN, JOBQUEUE_TASK_MODULES="tests.support.tasks")
    started = Stack(env, tmp_path_factory.mktemp("ui"), free_port())
    try:
        url = started.wait_ready()
        assert started.printed("dashboard") == f"{url}/ui"  # serve says where the page is
        yield url
    finally:
        started.kill()


class Watched:
    """A page whose console errors, uncaught errors and CSP violations are kept."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        self.allowed: list[Callable[[Any], bool]] = []
        page.add_init_script(WATCH_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error" and not any(allow(message) for allow in self.allowed):
            self.problems.append(f"console: {message.text} ({message.location.get('url')})")

    def allow_failed_load(self, status: int, path: str) -> None:
        """Chromium logs every non-2xx fetch; allow one the test expects."""

        def allowed(message: Any) -> bool:
            url = urlsplit(message.location.get("url") or "")
            return f"status of {status}" in message.text and url.path.endswith(path)

        self.allowed.append(allowed)

    def check(self) -> None:
        violations = self.page.evaluate("window.__violations")
        assert violations == [], violations
        assert self.problems == [], self.problems


@pytest.fixture
def watched(browser: Any, stack: str) -> Iterator[Callable[..., Watched]]:
    """New pages in fresh contexts (their own sessionStorage); each is checked at the end."""
    pages: list[Watched] = []
    contexts: list[Any] = []

    def open_page(**options: Any) -> Watched:
        context = browser.new_context(**options)
        contexts.append(context)
        page = Watched(context.new_page())
        pages.append(page)
        return page

    yield open_page
    try:
        for page in pages:
            page.check()
    finally:
        for page in pages:
            # A test's route handler may still be fetching for a refresh when the
            # test ends; its error would otherwise surface in the next test.
            page.page.unroute_all(behavior="ignoreErrors")
        for context in contexts:
            context.close()


def api(url: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    status, answer = call(method, f"{url}{path}", body, TOKEN)
    assert 200 <= status < 300, answer
    return answer


def wait_for_job(stack: str, job_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        job = api(stack, "GET", f"/jobs/{job_id}")["job"]
        if check(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def sign_in(page: Any, url: str, token: str = TOKEN) -> Any:
    """Load the page, enter the token; returns the page's HTTP response."""
    response = page.goto(f"{url}/ui")
    page.locator("#token").fill(token)
    page.locator("#signin button[type=submit]").click()
    return response


def test_sign_in_see_retry_and_hostile_payloads_as_text(stack: str, watched: Any, database: Any) -> None:
    from playwright.sync_api import expect

    url = stack
    watch = watched()
    page = watch.page
    response = page.goto(f"{url}/ui")
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#app-view")).to_be_hidden()

    page.locator("#token").fill(TOKEN)
    page.locator("#signin button[type=submit]").click()
    expect(page.locator("#app-view")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('jobqueue.token')") == TOKEN

    # A job submitted through the API appears without touching the page: it refreshes itself.
    job = api(stack, "POST", "/jobs", {"task": "echo", "queue": "ui-demo", "payload": {"n": 1}})["job"]
    expect(page.locator(f'#jobs tr[data-id="{job["id"]}"]')).to_be_visible(timeout=WAIT_MS)
    expect(page.locator('#queues tr[data-queue="ui-demo"]')).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(f'#jobs tr[data-id="{job["id"]}"] .badge')).to_have_text("succeeded", timeout=WAIT_MS)

    # A failed job: found with the state filter, opened, retried.
    failing = api(stack, "POST", "/jobs", {"task": "fail", "payload": {"permanent": True, "message": "boom"}})["job"]
    wait_for_job(stack, failing["id"], lambda j: j["state"] == "failed")
    page.locator("#filters select[name=state]").select_option("failed")
    page.locator("#filters button[type=submit]").click()
    row = page.locator(f'#jobs tr[data-id="{failing["id"]}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    assert set(page.locator("#jobs tbody .badge").all_inner_texts()) == {"failed"}
    row.locator("td.task a").click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(detail.locator(".errors li")).to_have_count(1)
    expect(detail.locator(".errors li").first).to_contain_text("Permanent: boom")
    expect(detail.locator("#cancel")).to_be_disabled()
    detail.locator("#retry").click()
    expect(page.locator("#notice")).to_contain_text("is pending again")
    retried = wait_for_job(stack, failing["id"], lambda j: j["attempts"] == 2 and j["state"] == "failed")
    assert len(retried["errors"]) == 2
    expect(detail.locator(".errors li")).to_have_count(2, timeout=WAIT_MS)  # the open job refreshes too
    expect(detail.locator("dd").nth(2)).to_have_text(f"2 of {retried['max_attempts']}")

    # Hostile text in a payload, a result and an error message is shown, never run.
    page.locator("#filters button[type=reset]").click()
    hostile = api(stack, "POST", "/jobs", {"task": "echo", "payload": HOSTILE})["job"]
    wait_for_job(stack, hostile["id"], lambda j: j["state"] == "succeeded")
    page.goto(f"{url}/ui#job={hostile['id']}")  # signed in still: the token is in this tab's sessionStorage
    expect(detail.locator("pre").first).to_contain_text("__pwned=2", timeout=WAIT_MS)
    assert json.loads(detail.locator("pre").first.text_content()) == HOSTILE  # the payload, as text
    assert json.loads(detail.locator("pre").nth(1).text_content()) == HOSTILE  # the result, echoed
    evil = api(stack, "POST", "/jobs", {"task": "fail", "payload": {"permanent": True, "message": HOSTILE["x"]}})
    wait_for_job(stack, evil["job"]["id"], lambda j: j["state"] == "failed")
    page.goto(f"{url}/ui#job={evil['job']['id']}")
    expect(detail.locator(".errors li").first).to_contain_text(HOSTILE["x"], timeout=WAIT_MS)
    expect(page.locator(f'#jobs tr[data-id="{hostile["id"]}"]')).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("main img, main script").count() == 0

    # Signing out forgets the token and what was shown.
    page.locator("#signout").click()
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('jobqueue.token')") is None
    assert page.locator("#jobs tbody tr").count() == 0
    page.reload()
    expect(page.locator("#signin")).to_be_visible()


def test_a_refused_token_asks_again(stack: str, watched: Any, database: Any) -> None:
    from playwright.sync_api import expect

    watch = watched()
    watch.allow_failed_load(401, "/queues")
    watch.allow_failed_load(401, "/jobs")
    page = watch.page
    sign_in(page, stack, "not-the-token")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#notice")).to_contain_text("refused the token")
    assert page.evaluate("sessionStorage.getItem('jobqueue.token')") is None

    page.locator("#token").fill(TOKEN)
    page.locator("#signin button[type=submit]").click()
    expect(page.locator("#app-view")).to_be_visible()
    expect(page.locator("#updated")).to_contain_text("Updated", timeout=WAIT_MS)
    expect(page.locator("#notice")).to_be_hidden()


def test_a_job_that_crashed_its_process_shows_each_death_and_whether_it_counted(
    stack: str, watched: Any, database: Any
) -> None:
    from playwright.sync_api import expect

    from jobqueue.store import claims, upkeep

    api(stack, "PATCH", "/queues/crashy", {"paused": True})  # the stack's drains leave it to this test
    job = api(stack, "POST", "/jobs", {"task": "echo", "queue": "crashy", "max_attempts": 1})["job"]
    # Its drain dies while it runs beside another job; then, run alone, it dies again.
    # The slots go first: the stack's own drains rescue too, and one may come
    # between the two writes.
    for worker, beside in (("w1", ["00000000-0000-0000-0000-000000000000"]), ("w2", [])):
        claims.record(database, worker=worker, batch=None, slots=[job["id"], *beside])
        database.execute(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, worker_id = :worker, started_at = now(),"
            " lease_expires_at = now() - interval '1 second' WHERE id = CAST(:id AS uuid)",
            worker=worker,
            id=job["id"],
        )  # as a claim would, its lease since run out
        upkeep.rescue(database)
    assert api(stack, "GET", f"/jobs/{job['id']}")["job"]["error"]["type"] == "ProcessCrashed"

    page = watched().page
    sign_in(page, stack)
    page.goto(f"{stack}/ui#job={job['id']}")
    detail = page.locator("#detail")
    expect(detail.locator(".errors li")).to_have_count(2, timeout=WAIT_MS)
    newest, oldest = detail.locator(".errors li").first, detail.locator(".errors li").nth(1)
    expect(newest).to_contain_text("ProcessCrashed: the process running it alone died")
    expect(newest).not_to_contain_text("not counted")
    expect(oldest).to_contain_text("not counted: it ran beside other jobs")


def test_cancel_and_page_through_jobs(stack: str, watched: Any, database: Any) -> None:
    from playwright.sync_api import expect

    page = watched().page
    later = [{"task": "noop", "queue": "ui-pages", "delay_seconds": 3600, "payload": {"i": i}} for i in range(30)]
    jobs = api(stack, "POST", "/jobs/batch", {"jobs": later})["jobs"]
    newest_first = [job["id"] for job in reversed(jobs)]
    sign_in(page, stack)
    page.goto(f"{stack}/ui#queue=ui-pages")
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(25, timeout=WAIT_MS)
    assert [rows.nth(i).get_attribute("data-id") for i in range(25)] == newest_first[:25]
    expect(page.locator("#newer")).to_be_disabled()
    page.locator("#older").click()
    expect(rows).to_have_count(5)
    assert [rows.nth(i).get_attribute("data-id") for i in range(5)] == newest_first[25:]
    expect(page.locator("#older")).to_be_disabled()
    expect(page.locator("#page")).to_have_text("Page 2")
    page.locator("#newer").click()
    expect(rows).to_have_count(25)

    target = newest_first[3]
    page.locator(f'#jobs tr[data-id="{target}"] td.task a').click()
    expect(page.locator("#retry")).to_be_disabled()
    page.locator("#cancel").click()
    expect(page.locator("#notice")).to_contain_text("is cancelled")
    expect(page.locator(f'#jobs tr[data-id="{target}"] .badge')).to_have_text("cancelled", timeout=WAIT_MS)
    assert api(stack, "GET", f"/jobs/{target}")["job"]["state"] == "cancelled"
    expect(page.locator("#cancel")).to_be_disabled(timeout=WAIT_MS)


def test_refresh_never_piles_up_and_rests_while_hidden(stack: str, watched: Any, database: Any) -> None:
    """The API's answers are held back while a minute of the page's time passes:
    one refresh must be waiting then, not twelve. Hidden, a minute brings none."""
    from playwright.sync_api import expect

    page = watched().page
    page.add_init_script(
        """
        Object.defineProperty(Document.prototype, 'hidden', {get: () => window.__hidden === true});
        Object.defineProperty(Document.prototype, 'visibilityState',
          {get: () => (window.__hidden === true ? 'hidden' : 'visible')});
        """
    )
    page.clock.install()
    held: list[Any] = []
    holding = threading.Event()
    page.route(f"{stack}/**", lambda route: held.append(route) if holding.is_set() else route.continue_())
    sign_in(page, stack)
    expect(page.locator("#updated")).to_contain_text("Updated", timeout=WAIT_MS)

    started: list[str] = []
    finished: list[str] = []
    page.on("request", lambda request: started.append(request.url))
    page.on("requestfinished", lambda request: finished.append(request.url))

    def settle(expected: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 15
        while not expected():
            assert time.monotonic() < deadline, (what, started, finished)
            page.wait_for_timeout(50)

    # Hidden: a minute passes with no request at all.
    page.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")
    page.clock.run_for(60_000)
    page.wait_for_timeout(300)
    assert started == []
    # Visible again: it refreshes at once.
    page.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    settle(lambda: bool(started) and len(finished) == len(started), "a refresh on becoming visible")
    per_refresh = len(started)
    assert {urlsplit(url).path for url in started} == {"/queues", "/jobs"}, started

    # Answers held back: a minute of the page's time starts one refresh, which waits.
    holding.set()
    started.clear()
    finished.clear()
    page.clock.run_for(60_000)
    page.wait_for_timeout(500)
    assert len(started) == per_refresh, started
    assert len(held) == len(started)
    # Answered at last, the page goes on refreshing on its schedule.
    holding.clear()
    for route in held:
        route.continue_()
    settle(lambda: len(finished) == per_refresh, "the held refresh to finish")
    started.clear()
    deadline = time.monotonic() + 15
    while not started:
        assert time.monotonic() < deadline, "no refresh after the answers came"
        page.clock.run_for(1_000)
        page.wait_for_timeout(100)


def test_behind_a_stage_prefix_every_request_stays_under_it(stack: str, watched: Any, database: Any) -> None:
    """The browser loads /prod/ui; a stand-in for API Gateway strips the stage."""
    from playwright.sync_api import expect

    url = stack
    page = watched().page
    seen: list[tuple[str, str]] = []

    def gateway(route: Any) -> None:
        parts = urlsplit(route.request.url)
        seen.append((route.request.method, parts.path))
        if not parts.path.startswith("/prod/"):
            route.fulfill(status=404, body="outside the stage")
            return
        route.fulfill(response=route.fetch(url=parts._replace(path=parts.path[len("/prod") :]).geturl()))

    page.route(f"{url}/**", gateway)
    job = api(stack, "POST", "/jobs", {"task": "echo", "queue": "ui-stage", "payload": {"staged": True}})["job"]
    page.goto(f"{url}/prod/ui")
    page.locator("#token").fill(TOKEN)
    page.locator("#signin button[type=submit]").click()
    expect(page.locator(f'#jobs tr[data-id="{job["id"]}"]')).to_be_visible(timeout=WAIT_MS)
    page.locator(f'#jobs tr[data-id="{job["id"]}"] td.task a').click()
    expect(page.locator("#detail pre").first).to_contain_text('"staged": true', timeout=WAIT_MS)
    page.locator('#queues tr[data-queue="ui-stage"]').get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#notice")).to_contain_text("Queue ui-stage paused.")
    assert queue(stack, "ui-stage")["paused"] is True

    paths = {path for _, path in seen}
    assert {"/prod/ui", "/prod/ui/app.js", "/prod/ui/style.css", "/prod/queues", "/prod/jobs"} <= paths, seen
    assert f"/prod/jobs/{job['id']}" in paths
    assert ("PATCH", "/prod/queues/ui-stage") in seen
    assert "/prod/stats" not in paths  # /queues is deployed: the fallback is never asked
    assert all(path.startswith("/prod/") for path in paths), seen


def queue(stack: str, name: str) -> dict[str, Any]:
    """One queue as GET /queues lists it."""
    return next(entry for entry in api(stack, "GET", "/queues")["queues"] if entry["name"] == name)


def queue_cell(page: Any, name: str, column: str) -> Any:
    """The cell of the queue table in the column headed ``column`` (the page may
    leave columns out, so they are found by their heading)."""
    headings = page.locator("#queues thead th").all_text_contents()
    return page.locator(f'#queues tbody tr[data-queue="{name}"] td').nth(headings.index(column))


def test_pause_and_resume_a_queue_from_its_row(stack: str, watched: Any, database: Any) -> None:
    """Pause in the table holds the queue's jobs through a drain; Resume lets the next drain run them."""
    from playwright.sync_api import expect

    page = watched().page
    sign_in(page, stack)
    first = api(stack, "POST", "/jobs", {"task": "echo", "queue": "ui-pause", "payload": {"n": 0}})["job"]
    wait_for_job(stack, first["id"], lambda j: j["state"] == "succeeded")
    page.locator("#refresh").click()  # rather than wait up to 5 s for the page's own refresh
    row = page.locator('#queues tr[data-queue="ui-pause"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(queue_cell(page, "ui-pause", "Succeeded")).to_have_text("1", timeout=WAIT_MS)
    expect(queue_cell(page, "ui-pause", "Status")).to_have_text("active")

    row.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#notice")).to_contain_text("Queue ui-pause paused.")
    expect(queue_cell(page, "ui-pause", "Status")).to_have_text("paused", timeout=WAIT_MS)
    expect(row.get_by_role("button")).to_have_text("Resume")
    assert queue(stack, "ui-pause")["paused"] is True

    # Submitted while paused: kept pending, shown as such, and no drain runs them
    # (the stack's own drains every 0.5 s neither).
    batch = [{"task": "echo", "queue": "ui-pause", "payload": {"n": n}} for n in (1, 2, 3)]
    held = [job["id"] for job in api(stack, "POST", "/jobs/batch", {"jobs": batch})["jobs"]]
    page.locator("#refresh").click()
    expect(queue_cell(page, "ui-pause", "Pending")).to_have_text("3", timeout=WAIT_MS)
    drain = api(stack, "POST", "/process", {"queues": ["ui-pause"]})["drain"]
    assert (drain["processed"], drain["stopped"]) == (0, "idle"), drain
    for job_id in held:
        job = api(stack, "GET", f"/jobs/{job_id}")["job"]
        assert (job["state"], job["attempts"]) == ("pending", 0), job
    assert queue(stack, "ui-pause")["counts"]["pending"] == 3

    row.get_by_role("button", name="Resume", exact=True).click()
    expect(page.locator("#notice")).to_contain_text("Queue ui-pause resumed.")
    expect(queue_cell(page, "ui-pause", "Status")).to_have_text("active", timeout=WAIT_MS)
    expect(row.get_by_role("button")).to_have_text("Pause")
    assert queue(stack, "ui-pause")["paused"] is False
    api(stack, "POST", "/process", {"queues": ["ui-pause"]})
    for job_id in held:
        wait_for_job(stack, job_id, lambda j: j["state"] == "succeeded")
    page.locator("#refresh").click()
    expect(queue_cell(page, "ui-pause", "Pending")).to_have_text("0", timeout=WAIT_MS)
    expect(queue_cell(page, "ui-pause", "Succeeded")).to_have_text("4", timeout=WAIT_MS)


def test_the_queue_table_shows_limits_set_through_the_api(stack: str, watched: Any, database: Any) -> None:
    from playwright.sync_api import expect

    api(stack, "PATCH", "/queues/ui-limited", {"concurrency": 2, "rate": {"limit": 100, "per_seconds": 60}})
    api(stack, "POST", "/jobs", {"task": "echo", "queue": "ui-free", "payload": {}})
    page = watched().page
    sign_in(page, stack)
    # A queue with settings and no job yet is listed too.
    expect(page.locator('#queues tr[data-queue="ui-limited"]')).to_be_visible(timeout=WAIT_MS)
    expect(queue_cell(page, "ui-limited", "Concurrency")).to_have_text("2")
    expect(queue_cell(page, "ui-limited", "Rate")).to_have_text("100 per 60 s")
    expect(queue_cell(page, "ui-limited", "Pending")).to_have_text("0")
    expect(page.locator('#queues tr[data-queue="ui-free"]')).to_be_visible(timeout=WAIT_MS)
    expect(queue_cell(page, "ui-free", "Concurrency")).to_have_text("none")
    expect(queue_cell(page, "ui-free", "Rate")).to_have_text("none")

    # Changed while the page is open: the next refresh shows it.
    api(stack, "PATCH", "/queues/ui-limited", {"concurrency": None, "rate": {"limit": 5, "per_seconds": 0.5}})
    api(stack, "PATCH", "/queues/ui-free", {"concurrency": 0, "paused": True})
    expect(queue_cell(page, "ui-limited", "Rate")).to_have_text("5 per 0.5 s", timeout=WAIT_MS)
    expect(queue_cell(page, "ui-limited", "Concurrency")).to_have_text("none", timeout=WAIT_MS)
    expect(queue_cell(page, "ui-free", "Concurrency")).to_have_text("0", timeout=WAIT_MS)
    expect(queue_cell(page, "ui-free", "Status")).to_have_text("paused", timeout=WAIT_MS)
    expect(page.locator('#queues tr[data-queue="ui-free"]').get_by_role("button")).to_have_text("Resume")


def test_without_queue_settings_deployed_the_counts_come_from_stats(stack: str, watched: Any, database: Any) -> None:
    """An older deployment answers GET /queues with 404: the page asks once, then
    shows /stats's counts without the settings columns or buttons."""
    from playwright.sync_api import expect

    watch = watched()
    watch.allow_failed_load(404, "/queues")
    page = watch.page
    asked: list[str] = []

    def older(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(
            status=404,
            content_type="application/json",
            body=json.dumps({"status": "error", "message": "no route GET /queues", "details": {}}),
        )

    page.route(f"{stack}/queues", older)
    job = api(stack, "POST", "/jobs", {"task": "noop", "queue": "ui-old", "delay_seconds": 3600})["job"]
    sign_in(page, stack)
    expect(page.locator(f'#jobs tr[data-id="{job["id"]}"]')).to_be_visible(timeout=WAIT_MS)
    expect(page.locator('#queues tr[data-queue="ui-old"]')).to_be_visible(timeout=WAIT_MS)
    counts_only = [
        "Queue", "Pending", "Waiting", "Blocked", "Running", "Failed", "Succeeded", "Cancelled", "Oldest pending",
    ]  # fmt: skip
    assert page.locator("#queues thead th").all_text_contents() == counts_only
    expect(queue_cell(page, "ui-old", "Pending")).to_have_text("1")
    expect(page.locator("#queues button")).to_have_count(0)
    with page.expect_request(lambda request: urlsplit(request.url).path == "/stats"):
        page.locator("#refresh").click()
    expect(page.locator("#updated")).to_contain_text("Updated", timeout=WAIT_MS)
    assert len(asked) == 1, asked  # asked once, remembered


@pytest.mark.parametrize("width", [390, 1200])
def test_no_sideways_scrolling_on_a_phone_or_a_laptop(stack: str, watched: Any, database: Any, width: int) -> None:
    from playwright.sync_api import expect

    job = api(stack, "POST", "/jobs", {"task": "echo", "queue": "ui-width", "payload": {"w": "x" * 500}})["job"]
    page = watched(viewport={"width": width, "height": 800}).page
    sign_in(page, stack)
    expect(page.locator(f'#jobs tr[data-id="{job["id"]}"]')).to_be_visible(timeout=WAIT_MS)
    page.locator(f'#jobs tr[data-id="{job["id"]}"] td.task a').click()
    expect(page.locator("#detail pre").first).to_be_visible(timeout=WAIT_MS)
    # Whatever sticks out past the viewport, outside the tables' own scrolling boxes.
    outside = page.evaluate(
        """(width) => [...document.querySelectorAll('body *')]
            .filter((e) => !e.closest('.scroll') && e.getBoundingClientRect().right > width + 0.5)
            .map((e) => `${e.tagName}#${e.id}.${e.className} right=${e.getBoundingClientRect().right}`)""",
        width,
    )
    assert outside == [], outside
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = page.locator("#detail").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box


def test_a_waiting_durable_job_shows_its_steps_progress_and_what_it_waits_for(
    stack: str, watched: Any, database: Any
) -> None:
    from playwright.sync_api import expect

    job = api(
        stack, "POST", "/jobs", {"task": "tests.durable_wait", "queue": "ui-durable", "payload": {"timeout": 3600}}
    )
    job = wait_for_job(stack, job["job"]["id"], lambda j: j["state"] == "waiting")
    assert job["waiting_for"]["signal"] == "go"
    # A run reports progress and completes steps before it waits; this task does
    # neither, so its row gets them as such a run writes them.
    database.execute(
        "UPDATE jobs SET steps = steps || jsonb_build_object('charge', jsonb_build_object('r', 'ch_1', 'at',"
        " to_char((now() - interval '1 minute') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))),"
        " progress = jsonb_build_object('value', 0.4, 'message', 'card charged', 'at',"
        " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
        " WHERE id = CAST(:id AS uuid)",
        id=job["id"],
    )

    page = watched().page
    sign_in(page, stack)
    # Listed with the state filter, and what it waits for said in its row.
    page.locator("#filters select[name=state]").select_option("waiting")
    page.locator("#filters button[type=submit]").click()
    row = page.locator(f'#jobs tr[data-id="{job["id"]}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.locator(".badge")).to_have_text("waiting")
    expect(row).to_contain_text("waits for go")
    expect(queue_cell(page, "ui-durable", "Waiting")).to_have_text("1")
    assert set(page.locator("#filters select[name=state] option").all_inner_texts()) >= {"waiting", "blocked"}

    row.locator("td.task a").click()
    detail = page.locator("#detail")
    expect(detail.locator("#detail-title .badge")).to_have_text("waiting", timeout=WAIT_MS)
    reason = detail.locator("dt", has_text="Waiting for").locator("xpath=following-sibling::dd[1]")
    expect(reason).to_contain_text("the signal go, times out in 59 min")
    bar = detail.locator(".progress progress")
    expect(bar).to_have_attribute("value", "0.4")
    expect(detail.locator(".progress")).to_contain_text("40%")
    expect(detail.locator(".progress")).to_contain_text("card charged")
    steps = detail.locator("ol.steps li")
    expect(steps).to_have_count(2)
    assert steps.evaluate_all("items => items.map((li) => li.dataset.step)") == ["charge", "go"]
    expect(steps.first).to_contain_text("1 min ago")
    expect(steps.nth(1)).to_contain_text("wait, times out in 59 min")
    expect(detail.locator("#cancel")).to_be_enabled()
    expect(detail.locator("#cancel")).to_have_text("Cancel")

    # The signal resumes it: the wait becomes a step done, and the page says so on its next refresh.
    api(stack, "POST", f"/jobs/{job['id']}/signals/go", {"parcel": "1Z"})
    done = wait_for_job(stack, job["id"], lambda j: j["state"] == "succeeded")
    assert done["result"] == {"got": {"parcel": "1Z"}}
    page.locator("#filters button[type=reset]").click()
    expect(detail.locator("#detail-title .badge")).to_have_text("succeeded", timeout=WAIT_MS)
    expect(steps.nth(1)).not_to_contain_text("wait")
    expect(detail.locator("dt", has_text="Waiting for")).to_have_count(0)
    expect(detail.locator("#cancel")).to_be_disabled()


def test_a_running_job_is_asked_to_stop_and_ends_cancelled(
    stack: str, watched: Any, database: Any, tmp_path: Any
) -> None:
    from playwright.sync_api import expect

    log = tmp_path / "finished.log"
    payload = {"path": str(log), "seconds": 20}
    job = api(stack, "POST", "/jobs", {"task": "tests.durable_cancellable", "queue": "ui-stop", "payload": payload})
    job = wait_for_job(stack, job["job"]["id"], lambda j: j["state"] == "running")

    page = watched().page
    sign_in(page, stack)
    page.goto(f"{stack}/ui#job={job['id']}")
    cancel = page.locator("#detail #cancel")
    expect(cancel).to_have_text("Ask to stop", timeout=WAIT_MS)
    expect(cancel).to_be_enabled()
    cancel.click()
    expect(page.locator("#notice")).to_contain_text("was asked to stop")
    # Its drain learns of it within a second; the next step raises Cancelled.
    ended = wait_for_job(stack, job["id"], lambda j: j["state"] != "running")
    assert ended["state"] == "cancelled" and ended["cancel_requested"] is True
    expect(page.locator("#detail-title .badge")).to_have_text("cancelled", timeout=WAIT_MS)
    expect(page.locator("#detail")).to_contain_text("asked for while it ran")
    expect(cancel).to_be_disabled()
    expect(page.locator("#retry")).to_be_enabled()
    assert not log.exists()  # it never finished


def test_a_chain_shows_parents_and_children_as_links_and_blocked_jobs_what_they_wait_for(
    stack: str, watched: Any, database: Any
) -> None:
    """a -> b -> c, a held back for an hour: b and c are blocked."""
    from playwright.sync_api import expect

    chain = [
        {"task": "noop", "queue": "ui-flow", "key": "a", "delay_seconds": 3600},
        {"task": "echo", "queue": "ui-flow", "key": "b", "after": ["a"]},
        {"task": "echo", "queue": "ui-flow", "key": "c", "after": ["b"]},
    ]
    a, b, c = (job["id"] for job in api(stack, "POST", "/jobs/batch", {"jobs": chain})["jobs"])
    page = watched().page
    sign_in(page, stack)
    expect(queue_cell(page, "ui-flow", "Blocked")).to_have_text("2", timeout=WAIT_MS)

    # Listed as blocked, each saying what it waits for.
    page.locator("#filters select[name=state]").select_option("blocked")
    page.locator("#filters button[type=submit]").click()
    for job_id in (b, c):
        row = page.locator(f'#jobs tr[data-id="{job_id}"]')
        expect(row.locator(".badge")).to_have_text("blocked", timeout=WAIT_MS)
        expect(row).to_contain_text("waits for 1 parent", timeout=WAIT_MS)
    expect(page.locator("#jobs tbody tr")).to_have_count(2)

    # b: its parent a and its child c, each a link with its task and state.
    page.locator(f'#jobs tr[data-id="{b}"] td.task a').click()
    detail = page.locator("#detail")
    parents, children = detail.locator('[data-related="parents"] li'), detail.locator('[data-related="children"] li')
    expect(parents).to_have_count(1, timeout=WAIT_MS)
    expect(parents.first).to_have_attribute("data-job", a)
    expect(parents.first).to_contain_text("noop")
    expect(parents.first.locator(".badge")).to_have_text("pending")
    expect(children).to_have_count(1)
    expect(children.first).to_have_attribute("data-job", c)
    expect(children.first.locator(".badge")).to_have_text("blocked")
    reason = detail.locator("dt", has_text="Waiting for").locator("xpath=following-sibling::dd[1]")
    expect(reason).to_have_text("1 parent")
    expect(detail.locator("[data-more]")).to_have_count(0)

    # Clicking through: a (b is its child), back to b, on to c (b is its parent).
    parents.first.locator("a").click()
    expect(page).to_have_url(f"{stack}/ui#state=blocked&job={a}")
    expect(detail.locator("#detail-title .badge")).to_have_text("pending", timeout=WAIT_MS)
    expect(detail.locator('[data-related="parents"]')).to_have_count(0)
    expect(children).to_have_count(1)
    expect(children.first).to_have_attribute("data-job", b)
    children.first.locator("a").click()
    expect(parents.first).to_have_attribute("data-job", a, timeout=WAIT_MS)
    children.first.locator("a").click()
    expect(detail.locator("#detail-title")).to_contain_text("echo", timeout=WAIT_MS)
    expect(parents.first).to_have_attribute("data-job", b)
    expect(detail.locator('[data-related="children"]')).to_have_count(0)
    expect(detail.locator("#cancel")).to_be_enabled()  # a blocked job can be cancelled


def test_a_parent_failure_links_to_the_parent_and_many_children_are_counted(
    stack: str, watched: Any, database: Any
) -> None:
    from playwright.sync_api import expect

    parent = api(stack, "POST", "/jobs", {"task": "fail", "queue": "ui-flow", "payload": {"permanent": True}})["job"]
    child = api(stack, "POST", "/jobs", {"task": "echo", "queue": "ui-flow", "depends_on": [parent["id"]]})["job"]
    wait_for_job(stack, child["id"], lambda j: j["state"] == "cancelled")

    page = watched().page
    sign_in(page, stack)
    page.goto(f"{stack}/ui#job={child['id']}")
    detail = page.locator("#detail")
    error = detail.locator(".errors li").first
    expect(error).to_contain_text("ParentFailed", timeout=WAIT_MS)
    expect(error).to_contain_text(f"parent job {parent['id']} ended failed")
    error.locator("a.parent-link").click()
    expect(detail.locator("#detail-title")).to_contain_text("fail", timeout=WAIT_MS)
    expect(detail.locator("#detail-title .badge")).to_have_text("failed")
    expect(detail.locator('[data-related="children"] li')).to_have_count(1)

    # More children than the page lists: the rest are counted.
    many = api(stack, "POST", "/jobs", {"task": "noop", "queue": "ui-flow", "delay_seconds": 3600})["job"]
    api(stack, "POST", "/jobs/batch", {"jobs": [{"task": "noop", "depends_on": [many["id"]]} for _ in range(103)]})
    page.goto(f"{stack}/ui#job={many['id']}")
    expect(detail.locator("h3", has_text="Children")).to_have_text("Children (103)", timeout=WAIT_MS)
    expect(detail.locator('[data-related="children"] li')).to_have_count(100)
    expect(detail.locator('[data-more="children"]')).to_have_text("and 3 more")
