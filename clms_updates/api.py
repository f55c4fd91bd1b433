"""API-wide pieces: the exception handler that keeps every error JSON and explained."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from clms_updates.actions import ActionRefused

logger = logging.getLogger(__name__)


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
