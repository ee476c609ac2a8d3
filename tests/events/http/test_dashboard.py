"""GET /ui and its files through app.lambda_handler: public, strict CSP, relative
URLs that work behind a stage, caching by ETag and content hash, and no file
outside the dashboard's own ever served. (The page in a real browser:
test_dashboard_browser.py.)"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from jobqueue.events.http import dashboard
from jobqueue.events.http.openapi import document
from tests.support.apigw import AUTH, assert_error, call, v1, v2

pytestmark = pytest.mark.usefixtures("database", "settings_env")


DOMAIN = "https://id.execute-api.us-east-1.amazonaws.com"
UI_DIR = Path(dashboard.__file__).with_name("ui")
SIZE_BUDGET = 64 * 1024  # bytes, all files together, uncompressed


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data: list[tuple[str | None, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags and data.strip():
            self.data.append((self.tags[-1][0], data))


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def references(html: str) -> list[str]:
    return [
        attrs.get("src") or attrs.get("href") or ""
        for tag, attrs in parse(html).tags
        if tag in ("script", "link", "img") and (attrs.get("src") or attrs.get("href"))
    ]


def directives(policy: str) -> dict[str, str]:
    return {part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2] for part in policy.split(";")}


def event_for(make: Any, url: str, stage: str, method: str = "GET", **kwargs: Any) -> dict[str, Any]:
    """The event API Gateway sends for ``url``: v2 puts the stage in rawPath (the
    helper adds it), v1 gives the path without it."""
    path = urlsplit(url).path
    query = dict(part.split("=", 1) for part in urlsplit(url).query.split("&") if part)
    if stage != "$default":
        assert path.startswith(f"/{stage}/"), f"{url} left the stage"
        path = path[len(stage) + 1 :]
    return make(method, path, query=query or None, stage=stage, **kwargs)


# --- the page ------------------------------------------------------------------------


def test_page_is_public_html_with_a_strict_policy() -> None:
    status, headers, html = call(v2("GET", "/ui"))  # no token
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    policy = directives(headers["Content-Security-Policy"])
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"  # nothing inline, no eval
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'"  # innerHTML with a string throws
    assert "unsafe" not in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"]

    tags = parse(html)
    for tag, attrs in tags.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("src", "href", "action"):
            url = attrs.get(name)
            if url is not None and not url.startswith("#"):
                assert not url.startswith(("/", "http:", "https:", "//", "data:")), url  # relative to the page
        if tag == "script":
            assert attrs.get("src"), "inline script"
    assert "style" not in [tag for tag, _ in tags.tags]
    assert not [text for tag, text in tags.data if tag == "script"]


def test_the_script_calls_the_api_relative_to_the_page() -> None:
    script = (UI_DIR / "app.js").read_text()
    calls = re.findall(r"api\('(GET|POST|PATCH)', [`'\"]([^`'\"]*)", script)
    assert {path.split("?")[0].split("/")[0].split("$")[0] for _, path in calls} == {"queues", "stats", "jobs"}
    assert not [path for _, path in calls if path.startswith("/")]
    # No HTML from strings anywhere (the browser test shows Trusted Types would refuse it anyway).
    html_sinks = r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function"
    assert not re.search(html_sinks, script)


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
@pytest.mark.parametrize("stage", ["$default", "prod"])
def test_files_and_data_resolve_beside_the_page_behind_a_stage(make: Any, stage: str) -> None:
    page_url = f"{DOMAIN}/ui" if stage == "$default" else f"{DOMAIN}/{stage}/ui"
    status, headers, html = call(event_for(make, page_url, stage))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    refs = references(html)
    assert {"script", "link"} <= {tag for tag, attrs in parse(html).tags if attrs.get("src") or attrs.get("href")}
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    for ref in refs:
        url = urljoin(page_url, ref)
        assert urlsplit(url).path.startswith(urlsplit(page_url).path + "/"), url
        status, headers, body = call(event_for(make, url, stage))
        assert status == 200, (url, body)
        assert headers["Content-Type"] == types[Path(urlsplit(url).path).suffix]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"  # the page names its version
        assert body == (UI_DIR / Path(urlsplit(url).path).name).read_text()

    # What the script fetches ("queues", "jobs", and "stats" where no /queues is
    # deployed) and changes ("queues/<name>") is the API beside the page.
    for method, relative, data in [
        ("GET", "queues", None),
        ("GET", "stats", None),
        ("GET", "jobs?limit=5", None),
        ("PATCH", "queues/staged", {"paused": True}),
    ]:
        event = event_for(make, urljoin(page_url, relative), stage, method, body=data, headers=AUTH)
        status, _, body = call(event)
        assert (status, body["status"]) == (200, "ok"), body
        status, _, body = call(event_for(make, urljoin(page_url, relative), stage, method, body=data))
        assert status == 401  # the page is public; the data is not
        assert_error(body)
    status, _, body = call(event_for(make, urljoin(page_url, "queues"), stage, headers=AUTH))
    assert [(q["name"], q["paused"]) for q in body["queues"]] == [("staged", True)]


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
def test_a_trailing_slash_redirects_to_the_page_so_relative_urls_hold(make: Any) -> None:
    event = make("GET", "/ui/", stage="prod")
    status, headers, body = call(event)
    assert (status, body) == (308, None)
    assert urljoin(f"{DOMAIN}/prod/ui/", headers["Location"]) == f"{DOMAIN}/prod/ui"


def test_openapi_documents_the_page_as_html_and_public() -> None:
    paths = document()["paths"]
    page = paths["/ui"]["get"]
    assert page["security"] == [] and "text/html" in page["responses"]["200"]["content"]
    asset = paths["/ui/{asset}"]["get"]
    assert asset["security"] == []
    names = next(p for p in asset["parameters"] if p["name"] == "asset")["schema"]["enum"]
    assert names == dashboard.asset_names() and {"app.js", "style.css"} <= set(names)
    assert "404" in asset["responses"]


# --- the files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "index.html",  # the page lives at /ui only
        "nope.js",
        "APP.JS",
        "app.js.map",
        "..%2Fhttp.py",
        "%2e%2e%2fdashboard.py",
        "..%2F..%2Fapp.py",
        "%2E%2E%5Chttp.py",
        "app.js%00",
        "__init__.py",
        ".",
        "..",
    ],
)
def test_only_the_dashboards_own_files_are_served(name: str) -> None:
    status, headers, body = call(v2("GET", f"/ui/{name}"))
    assert status == 404, (name, body)
    assert headers["Content-Type"] == "application/json"
    assert_error(body)


def test_deeper_paths_are_not_found() -> None:
    for path in ("/ui/app.js/x", "/ui/../jobqueue/http.py", "/ui/x/app.js"):
        status, _, body = call(v2("GET", path))
        assert status == 404, path
        assert_error(body)


def test_wrong_method_is_the_json_405() -> None:
    status, headers, body = call(v2("POST", "/ui", {"x": 1}, AUTH))
    assert status == 405 and "GET" in headers["Allow"]
    assert_error(body)
    status, _, body = call(v2("DELETE", "/ui/app.js", headers=AUTH))
    assert status == 405
    assert_error(body)


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
def test_etags_make_revalidation_a_304(make: Any) -> None:
    for path in ("/ui", "/ui/app.js"):
        status, headers, body = call(make("GET", path))
        assert status == 200
        etag = headers["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
        for match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            status, again, body = call(make("GET", path, headers={"If-None-Match": match}))
            assert (status, body) == (304, None), match
            assert again["ETag"] == etag and "Content-Type" not in again
            assert again["Cache-Control"] == headers["Cache-Control"]
        status, _, body = call(make("GET", path, headers={"If-None-Match": '"stale"'}))
        assert status == 200 and body


def test_only_the_current_version_is_cached_for_good() -> None:
    version = dashboard.assets()["app.js"].version
    assert call(v2("GET", "/ui/app.js", query={"v": version}))[1]["Cache-Control"].endswith("immutable")
    for query in (None, {"v": "0000000000000000"}, {"v": ""}):
        assert call(v2("GET", "/ui/app.js", query=query))[1]["Cache-Control"] == "no-cache", query


def test_head_gives_the_headers_without_the_body() -> None:
    status, headers, body = call(v2("HEAD", "/ui"))
    assert (status, body) == (200, None)
    assert headers["Content-Type"].startswith("text/html") and headers["Content-Security-Policy"]


def test_files_are_read_once_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    dashboard.assets.cache_clear()
    assert call(v2("GET", "/ui/style.css"))[0] == 200

    def no_reading(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("a dashboard file was read again")

    monkeypatch.setattr(Path, "read_text", no_reading)
    monkeypatch.setattr(Path, "read_bytes", no_reading)
    for path in ("/ui", "/ui/app.js", "/ui/style.css", "/ui/icon.svg"):
        assert call(v2("GET", path))[0] == 200, path


def test_the_dashboard_is_small_and_self_contained() -> None:
    files = [path for path in UI_DIR.iterdir() if path.is_file()]
    assert {path.name for path in files} == {"index.html", *dashboard.asset_names()}
    assert sum(path.stat().st_size for path in files) < SIZE_BUDGET
    for path in files:
        text = path.read_text()
        # Nothing fetched from elsewhere (a function in a VPC has no internet).
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I) or path.suffix == ".svg", path
        assert "@import" not in text and "url(" not in text, path
