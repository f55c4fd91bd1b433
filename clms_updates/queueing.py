"""Queue a task by its name once the transaction commits.

Actions queue their work with ``queue_on_commit("updates.execute_run", run.pk)``
instead of importing the ``tasks`` module that would import them back, so
imports point one way (entry points -> actions -> logic -> models). A broker
that is down is logged, never raised: every queued job also has a fallback
(a beat trigger, the worker start-up recovery) that picks it up later.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def send_now(task_name: str, *args: Any, countdown: float | None = None) -> bool:
    """Send ``task_name`` to the broker now; False (logged) when it is unreachable."""
    try:
        current_app.send_task(task_name, args=args, countdown=countdown)
    except Exception as e:  # the broker is down: the fallback picks it up
        logger.warning("Could not queue %s%s now: %s", task_name, args, e)
        return False
    return True


def queue_on_commit(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send ``task_name`` with ``args`` when the current transaction commits."""
    transaction.on_commit(lambda: send_now(task_name, *args, countdown=countdown))
