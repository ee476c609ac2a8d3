"""The route table's matching: fixed paths by dictionary, templated ones
(``/jobs/{id}``) by precompiled regex, and 404 or 405 (with Allow) for the rest."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..problems import HttpError
from .request import Request, Response


class Route:
    """One entry of the route table; ``path`` is a template like ``/jobs/{id}``."""

    __slots__ = ("auth", "body", "method", "name", "path", "respond", "summary")

    def __init__(
        self,
        method: str,
        path: str,
        name: str,
        respond: Callable[[Request], Response],
        summary: str,
        *,
        auth: bool = True,
        body: str = "none",  # none | optional | required
    ) -> None:
        self.method = method
        self.path = path
        self.name = name  # the API document's operationId
        self.respond = respond
        self.summary = summary
        self.auth = auth
        self.body = body

    def __repr__(self) -> str:
        return f"Route({self.method} {self.path})"


class Router:
    """Fixed paths by dictionary, templated ones by precompiled regex."""

    def __init__(self, routes: list[Route]) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        templated: dict[str, dict[str, Route]] = {}
        for route in routes:
            target = templated if "{" in route.path else self._static
            methods = target.setdefault(route.path, {})
            if route.method in methods:
                raise ValueError(f"route {route.method} {route.path} is declared twice")
            methods[route.method] = route
        self._templated = [(self._compile(path), methods) for path, methods in templated.items()]

    @staticmethod
    def _compile(template: str) -> re.Pattern[str]:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        return re.compile(pattern)

    def _candidates(self, path: str) -> list[tuple[dict[str, Route], dict[str, str]]]:
        """The route group living at ``path``, with its parameters. A fixed path
        is a resource of its own: it shadows any template it also matches, for
        every method (``GET /jobs/batch`` is a 405, not a job named "batch")."""
        static = self._static.get(path)
        if static is not None:
            return [(static, {})]
        for pattern, methods in self._templated:
            match = pattern.fullmatch(path)
            if match:
                return [(methods, {k: _unquote(v) for k, v in match.groupdict().items()})]
        return []

    def match(self, method: str, paths: tuple[str, ...]) -> tuple[Route, dict[str, str], str]:
        """The route for the method at the first path that has one; else 404 or 405."""
        lookup = "GET" if method == "HEAD" else method
        static = self._static.get(paths[0])
        if static is not None and lookup in static:  # the common case, without a regex
            return static[lookup], {}, paths[0]
        allowed: set[str] = set()
        for path in paths:
            for methods, params in self._candidates(path):
                route = methods.get(lookup)
                if route is not None:
                    return route, params, path
                allowed.update(methods)
        if allowed:
            allow = _allow_header(allowed)
            raise HttpError(
                405,
                f"method {method[:20]} is not allowed here; allowed: {allow}",
                {"allow": allow.split(", ")},
                headers={"Allow": allow},
            )
        raise HttpError(404, f"no route for {method[:20]} {paths[0][:200]}", {"path": paths[0][:200]})

    def allowed(self, paths: tuple[str, ...]) -> str | None:
        """The Allow header for a path, or None when nothing lives there."""
        methods: set[str] = set()
        for path in paths:
            for group, _ in self._candidates(path):
                methods.update(group)
        return _allow_header(methods) if methods else None


def _unquote(value: str) -> str:
    if "%" not in value:
        return value
    from urllib.parse import unquote

    return unquote(value)


def _allow_header(methods: set[str]) -> str:
    if "GET" in methods:
        methods = methods | {"HEAD"}
    return ", ".join(sorted(methods | {"OPTIONS"}))
