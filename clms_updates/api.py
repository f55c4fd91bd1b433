"""API-wide pieces: the exception handler that keeps every error JSON and explained."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a JSON 500 with a next step instead of a traceback page."""
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
