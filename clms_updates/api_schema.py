"""The OpenAPI schema's shared error answers, documented on every operation.

Every route may answer 401/403 (credentials), 429 (throttled or locked out)
and 500 (nothing further changed); one with a body or query parameters 400
(and 415 for a body it cannot read); one that changes something 400 and
409 (an action's refusal); one with path parameters or pages 404. Each is the project's JSON error
(``{"detail", "code"}``, fields of a 400 as ``{"<field>": [message]}``).
A postprocessing hook of drf-spectacular adds those an operation does not
document itself, so the schema says what the routes really answer.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` says what happened and what to do; `code` is stable. "
    'A 400 may also name fields: `{"<field>": ["message"]}`.',
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "additionalProperties": True,
}

ALWAYS = {
    "401": "No credentials, or unknown ones",
    "403": "These credentials may not do this",
    "429": "Too many requests, or too many wrong secrets from this address",
    "500": "An unexpected error; nothing further was changed",
}
WITH_INPUT = {"400": "The input was refused; the answer names the field and why"}
WITH_BODY = {"415": "The body is not in a media type the route reads"}
CHANGES = {
    "400": "The input was refused; the answer names the field and why",
    "409": "Refused by the current state (another run active, ...); `detail` says why",
}
WITH_PATH = {"404": "No such object (or page)"}
METHODS = ("get", "put", "post", "patch", "delete")


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the shared error answers."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR_SCHEMA)
    reference = {"$ref": "#/components/schemas/Error"}
    for path, item in result.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = operation.get("parameters", []) + item.get("parameters", [])
            where = {p.get("in") for p in parameters}
            codes = dict(ALWAYS)
            if "requestBody" in operation or "query" in where:
                codes.update(WITH_INPUT)
            if "requestBody" in operation:
                codes.update(WITH_BODY)
            if method != "get":
                codes.update(CHANGES)
            if "path" in where or "{" in path or "query" in where:
                codes.update(WITH_PATH)
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
