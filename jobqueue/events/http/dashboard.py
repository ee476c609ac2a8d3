"""The dashboard, served by the function itself: the page at GET /ui, its files at GET /ui/{asset}.

The files are plain HTML, CSS and JavaScript in ``ui/`` beside this module (no build
step, nothing fetched from elsewhere: a function in a VPC reaches no internet).
They are public; the data routes they call keep their bearer token. Every URL
in them is relative to the page, so a stage or base path in front of ``/ui``
just works.

Files are read once per container, on the first dashboard request, and kept
with their ETag. The page names each file with its content hash
(``ui/app.js?v=…``), so a file asked for by that name may be cached for good,
and a new deployment is picked up as soon as the page is. The page itself is
revalidated every time (its ETag makes that a 304).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from ..problems import HttpError
from .request import Request, Response

UI_DIR = Path(__file__).with_name("ui")
PAGE = "index.html"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

# No inline script or style, nothing from another origin, no framing, and
# Trusted Types required: the browser itself refuses any HTML string assigned
# to innerHTML and the like, so job data can only ever be shown as text.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_PAGE_HEADERS = {
    **_SECURITY_HEADERS,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
REVALIDATE = "no-cache"
FOREVER = "public, max-age=31536000, immutable"


class Asset:
    __slots__ = ("body", "content_type", "etag", "version")

    def __init__(self, body: str, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        self.version = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
        self.etag = f'"{self.version}"'


def asset_names() -> list[str]:
    """The files the page may ask for (its own ``index.html`` is served at /ui only)."""
    return sorted(
        path.name
        for path in UI_DIR.iterdir()
        if path.is_file() and path.suffix in TYPES and path.name != PAGE and not path.name.startswith(".")
    )


@cache
def assets() -> dict[str, Asset]:
    """Every file, read once; the page's references get their content hash."""
    found = {name: Asset((UI_DIR / name).read_text("utf-8"), TYPES[Path(name).suffix]) for name in asset_names()}
    page = (UI_DIR / PAGE).read_text("utf-8")
    for name, asset in found.items():
        page = page.replace(f'"ui/{name}"', f'"ui/{name}?v={asset.version}"')
    found[PAGE] = Asset(page, TYPES[".html"])
    return found


def page(request: Request) -> Response:
    """The dashboard page. At ``/ui/`` it redirects to ``../ui``, so that the
    relative URLs inside it resolve beside it rather than under it."""
    if _requested_path(request).endswith("/"):
        return Response(308, None, {"Location": "../ui", "Cache-Control": REVALIDATE})
    return _serve(request, assets()[PAGE], _PAGE_HEADERS, REVALIDATE)


def asset(request: Request) -> Response:
    """One of the page's files, by name; any name not among them is a 404."""
    name = request.params["asset"]
    found = assets().get(name) if name != PAGE else None
    if found is None:
        raise HttpError(404, "no such dashboard file", {"asset": name[:100]})
    caching = FOREVER if request.query.get("v") == found.version else REVALIDATE
    return _serve(request, found, _SECURITY_HEADERS, caching)


def _serve(request: Request, found: Asset, headers: dict[str, str], caching: str) -> Response:
    extra = {**headers, "Content-Type": found.content_type, "Cache-Control": caching, "ETag": found.etag}
    if _matches(request.headers.get("if-none-match"), found.etag):
        del extra["Content-Type"]
        return Response(304, None, extra)
    return Response(200, found.body, extra)


def _matches(header: str | None, etag: str) -> bool:
    """If-None-Match (RFC 9110: a list of tags, weak or strong, or *) against our tag."""
    if not header or not isinstance(header, str):
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


def _requested_path(request: Request) -> str:
    """The path as the client sent it (the route lookup drops a trailing slash)."""
    ctx = request.request_context
    http = ctx.get("http")
    path = http.get("path") if isinstance(http, dict) else ctx.get("path")
    return path if isinstance(path, str) else request.path
