"""The API document's schemas as validators of real bodies."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from jobqueue.events.http.openapi import document


def schema_validator(name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<name>`` of the served document."""
    doc = document()
    registry = Registry().with_resource("urn:jobqueue-openapi", DRAFT202012.create_resource(doc))
    schema = {"$ref": f"urn:jobqueue-openapi#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry)
