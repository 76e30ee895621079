"""The pieces every OpenAPI fragment of ``/api/v1`` is made of (api/, approvals/, sightings/,
reports/ each describe their own paths and merge them into ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any


def error_response(description: str) -> dict[str, Any]:
    """A response whose body is the typed error (``{"error": {"code", "message"}}``)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def ok_response(schema: str, description: str = "OK") -> dict[str, Any]:
    """A response whose body is the named schema of ``components.schemas``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def integer_path_id(name: str) -> dict[str, Any]:
    """A numeric id in the path, ``/…/{name}``."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


__all__ = ["error_response", "integer_path_id", "ok_response"]
