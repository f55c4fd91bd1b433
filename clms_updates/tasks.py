"""Core tasks."""

from __future__ import annotations

import socket

from celery import shared_task
from django.conf import settings

from clms_updates import notifications


@shared_task(name="core.deliver_notifications", ignore_result=True)
def deliver_notifications() -> int:
    """Send the notifications that are due (``clms_updates.notifications``)."""
    return notifications.deliver_due()


@shared_task(name="core.ping")
def ping(nonce: str) -> dict[str, str]:
    """A round trip through the broker and a worker; ``/healthz?deep=1`` and the
    agent's self-update (which version answered) use it."""
    return {
        "nonce": nonce,
        "worker": socket.gethostname(),
        "version": settings.AGENT_VERSION,
    }
