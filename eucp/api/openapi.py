"""The OpenAPI document (`/v1/openapi.json`) says what the server does: platforms generate
their clients from it, and `tests/test_api_contract.py` holds the server to it (schemathesis).

FastAPI writes it from the routes and their models; `Api` puts right there what FastAPI cannot
say: that a discriminated union needs its tag. The refusals every route may answer are
declared on the router (`errors.REFUSALS`), the bearer token by the `caller` dependency.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

REF_PREFIX = "#/components/schemas/"


class Api(FastAPI):
    """FastAPI whose OpenAPI document is made exact once written (and again when routes
    change, as FastAPI writes it again)."""

    def openapi(self) -> dict[str, Any]:
        document = super().openapi()
        require_discriminators(document)
        return document


def _subschemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _subschemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _subschemas(value)


def require_discriminators(document: dict[str, Any]) -> None:
    """Each variant of a discriminated union requires its tag (OpenAPI 3.1, 4.8.25: the
    discriminator's property MUST be required). pydantic leaves a tag with a default optional,
    so `{"value": ...}` would read as a URL identifier, which the server refuses ("Unable to
    extract tag using discriminator 'kind'"). Idempotent."""
    components: dict[str, Any] = document.get("components", {}).get("schemas", {})
    for node in list(_subschemas(document)):
        discriminator = node.get("discriminator")
        if not isinstance(discriminator, dict):
            continue
        tag = discriminator["propertyName"]
        refs = set(discriminator.get("mapping", {}).values())
        refs |= {v["$ref"] for v in node.get("oneOf", []) if isinstance(v, dict) and "$ref" in v}
        for ref in sorted(refs):
            variant = components.get(ref.removeprefix(REF_PREFIX), {})
            if tag in variant.get("properties", {}) and tag not in variant.get("required", []):
                variant["required"] = [tag, *variant.get("required", [])]
