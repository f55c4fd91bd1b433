"""API-wide pieces: a JSON parser that bounds what it accepts, and the
exception handler that keeps every error JSON and explained."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from clms_updates.actions import ActionRefused

logger = logging.getLogger(__name__)


# What a JSON body from outside may hold: the database's whole numbers, text
# that is UTF-8, and no deeper nesting than any route needs.
MAX_JSON_DEPTH = 32
MAX_INTEGER = 2**63 - 1


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser; a body out of bounds is a 400 that says what, never a 500."""

    def parse(
        self, stream: Any, media_type: Any = None, parser_context: Any = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted."
            ) from None
        _check(data, "body", 0)
        return data


def _check(value: Any, where: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ParseError(
            f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted."
        )
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise ParseError(
                {where: [f"{str(value)[:24]}… is out of range (at most 2^63 - 1)."]}
            )
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(
                {
                    where: [
                        "Text with a lone surrogate (not valid Unicode) is not accepted."
                    ]
                }
            ) from None
    elif isinstance(value, list):
        for number, item in enumerate(value):
            _check(item, f"{where}[{number}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, where, depth + 1)
            _check(
                item,
                str(key)[:64] if depth == 0 else f"{where}.{str(key)[:64]}",
                depth + 1,
            )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler; an action's refusal as 400/403/409; a JSON 500 with a next step.

    ``ActionRefused`` answers ``{"detail", "code", "<field>": [message]}`` with
    409 for refusals caused by the installation's state, 400 for bad input.
    """
    if isinstance(exc, ActionRefused):
        return Response(exc.as_dict(), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    view = context.get("view")
    logger.exception("Unhandled error in %s", type(view).__name__ if view else "API")
    return Response(
        {
            "detail": "The server hit an unexpected error and changed nothing further. "
            "Try again; if it persists, see the agent's log (docs/troubleshooting.md).",
            "code": "internal_error",
        },
        status=500,
    )
