"""GET /openapi.json: the document matches the route table both ways, and real
responses validate against its schemas."""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from jobqueue.events.http.openapi import document
from jobqueue.events.http.routes import ROUTES
from jobqueue.tasks import registry
from tests.support.apigw import AUTH, call, v1, v2
from tests.support.openapi import schema_validator

pytestmark = pytest.mark.usefixtures("database", "settings_env")


METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    documented = operations(document())
    routes = {(route.method, route.path): route for route in ROUTES}
    assert set(documented) == set(routes)
    for key, route in routes.items():
        operation = documented[key]
        assert operation["operationId"] == route.name
        # Public (no token, or optionally one) exactly where the handler skips auth.
        security = operation.get("security")
        public = security == [] or (security is not None and {} in security)
        assert public == (not route.auth), key
        body = operation.get("requestBody")
        assert (body is not None) == (route.body != "none"), key
        if body is not None:
            assert body["required"] == (route.body == "required"), key
        for name in (p["name"] for p in operation.get("parameters", []) if p["in"] == "path"):
            assert "{" + name + "}" in route.path


def test_every_reference_resolves_and_every_error_uses_the_error_shape() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    for (method, path), operation in operations(doc).items():
        for code, response in operation["responses"].items():
            if code.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        if operation.get("security") != []:
            assert "401" in operation["responses"], (method, path)
    assert doc["openapi"].startswith("3.")
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)


def test_openapi_route_serves_the_document_with_its_server() -> None:
    status, headers, body = call(v2("GET", "/openapi.json", headers=AUTH, stage="prod"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["paths"] == document()["paths"]
    assert body["servers"] == [{"url": "https://id.execute-api.us-east-1.amazonaws.com/prod"}]
    _, _, body = call(v1("GET", "/openapi.json", headers=AUTH, stage="prod"))
    assert body["servers"] == [{"url": "https://id.execute-api.us-east-1.amazonaws.com/prod"}]
    _, _, body = call(v2("GET", "/openapi.json", headers=AUTH))
    assert body["servers"] == [{"url": "https://id.execute-api.us-east-1.amazonaws.com"}]
    assert call(v2("GET", "/openapi.json"))[0] == 401


def test_the_document_lists_the_registered_tasks() -> None:
    """Built when served, from the registry: a client (or Schemathesis) learns
    which task names this deployment accepts."""
    task = document()["components"]["schemas"]["JobSubmission"]["properties"]["task"]
    assert task["enum"] == sorted(registry.registered())
    assert {"echo", "noop", "sleep", "fail", "tests.record"} <= set(task["enum"])


def test_links_lead_from_a_submitted_job_to_every_route_taking_its_id() -> None:
    doc = document()
    by_id = {op["operationId"]: (path, op) for (_, path), op in operations(doc).items()}
    id_routes = {op["operationId"] for (_, path), op in operations(doc).items() if "{id}" in path}
    submit = by_id["submitJob"][1]
    for code in ("200", "202"):
        links = submit["responses"][code]["links"]
        assert {link["operationId"] for link in links.values()} == id_routes
    for _, operation in by_id.values():
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                path, _ = by_id[link["operationId"]]
                assert set(link["parameters"]) == set(re.findall(r"{(\w+)}", path))
                assert link["parameters"]["id"] in ("$response.body#/job/id",)


def test_the_local_stack_names_its_plain_http_server() -> None:
    """Behind API Gateway the API is HTTPS; the local stack says it is HTTP
    (X-Forwarded-Proto, which the gateway sets too)."""
    headers = {**AUTH, "X-Forwarded-Proto": "http"}
    _, _, body = call(v2("GET", "/openapi.json", headers=headers, domain="127.0.0.1:8000"))
    assert body["servers"] == [{"url": "http://127.0.0.1:8000"}]
    _, _, body = call(v2("GET", "/openapi.json", headers={**AUTH, "X-Forwarded-Proto": "https"}))
    assert body["servers"] == [{"url": "https://id.execute-api.us-east-1.amazonaws.com"}]


def _schema_for(method: str, path: str, code: int) -> str:
    operation = operations(document())[(method, path)]
    ref = operation["responses"][str(code)]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


def test_real_responses_match_the_documented_schemas(raw: Any) -> None:
    checked = set()

    def check(method: str, template: str, event: dict[str, Any]) -> dict[str, Any]:
        status, _, body = call(event)
        schema_validator(_schema_for(method, template, status)).validate(body)
        checked.add((method, template, status))
        return body

    job = check("POST", "/jobs", v2("POST", "/jobs", {"task": "echo", "payload": {"a": 1}}, AUTH))["job"]
    check("POST", "/jobs", v1("POST", "/jobs", {"task": "echo", "priority": "x"}, AUTH))
    check("POST", "/jobs", v2("POST", "/jobs", "{", AUTH))
    check("POST", "/jobs/batch", v2("POST", "/jobs/batch", {"jobs": [{"task": "noop"}, {"task": "fail"}]}, AUTH))
    check("GET", "/jobs", v2("GET", "/jobs", headers=AUTH, query={"limit": "1"}))
    check("GET", "/jobs/{id}", v2("GET", f"/jobs/{job['id']}", headers=AUTH))
    check("GET", "/jobs/{id}", v2("GET", "/jobs/01890000-0000-7000-8000-000000000000", headers=AUTH))
    check("POST", "/jobs/{id}/cancel", v2("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))
    check("POST", "/jobs/{id}/cancel", v2("POST", f"/jobs/{job['id']}/cancel", headers=AUTH))
    check("POST", "/process", v2("POST", "/process", {"max_jobs": 10}, AUTH))
    failed = raw.run("SELECT id FROM jobs WHERE task = 'fail'")[0][0]
    raw.run("UPDATE jobs SET state = 'failed' WHERE id = :id", id=failed)
    retried = check("POST", "/jobs/{id}/retry", v2("POST", f"/jobs/{failed}/retry", headers=AUTH))["job"]
    assert retried["error"]["type"] == "RuntimeError"  # the failed attempt's error, in the documented shape
    check("GET", "/stats", v2("GET", "/stats", headers=AUTH))
    assert check("GET", "/health", v2("GET", "/health"))["database"] == "unchecked"
    assert check("GET", "/health", v2("GET", "/health", headers=AUTH))["database"] == "ok"
    check("GET", "/health", v2("GET", "/health", headers={"Authorization": "Bearer nope"}))
    check("GET", "/stats", v2("GET", "/stats"))
    assert len(checked) == 15


def test_health_says_its_token_is_optional() -> None:
    """Schemathesis reads this: a token is not required (no ignored-auth failure for
    the shallow answer), and a wrong one is a documented 401."""
    operation = operations(document())[("GET", "/health")]
    assert operation["security"] == [{}, {"bearer": []}]
    assert {"200", "401", "500", "503"} == set(operation["responses"])
    variants = document()["components"]["schemas"]["HealthBody"]["oneOf"]
    assert {variant["properties"]["database"]["const"] for variant in variants} == {"ok", "unchecked"}
