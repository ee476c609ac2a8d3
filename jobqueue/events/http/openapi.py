"""The OpenAPI 3.1 document served at GET /openapi.json: the API's contract,
its paths (openapi_paths) and schemas (openapi_schemas) put together, with the
tasks this deployment registers. Imported only when the document is asked for.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ...tasks import registry
from ...version import VERSION
from .openapi_paths import PATHS
from .openapi_schemas import SCHEMAS


@cache
def _document(task_names: tuple[str, ...]) -> dict[str, Any]:
    schemas = dict(SCHEMAS)
    submission = schemas["JobSubmission"]
    task = {**submission["properties"]["task"], "enum": list(task_names)}
    schemas["JobSubmission"] = {**submission, "properties": {**submission["properties"], "task": task}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobqueue",
            "version": VERSION,
            "description": "Background jobs on AWS Lambda and PostgreSQL. Every error has the body "
            '{"status": "error", "message": ..., "details": {...}}. A method a path does not list '
            "is answered 405 with an Allow header; OPTIONS (CORS preflight) needs no token.",
        },
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of the tokens in JOBQUEUE_API_TOKEN (unless JOBQUEUE_AUTH=none).",
                }
            },
            "schemas": schemas,
        },
    }


def document(server_url: str | None = None) -> dict[str, Any]:
    """The document, its task names those registered in this deployment now, naming
    the server it was fetched from when that is known."""
    doc = _document(tuple(sorted(registry.registered())))
    if server_url is None:
        return doc
    return {**doc, "servers": [{"url": server_url}]}
