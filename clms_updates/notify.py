"""The one notifier: every message to people goes through ``notify``.

A message is an *event* with a context; its subject and body are templates,
``notifications/<event>.subject.txt`` and ``notifications/<event>.txt``, in
the app that raises it. Delivery failures are logged and reported as False,
never raised: telling someone must not break the work it reports on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def render(event: str, context: dict[str, Any]) -> tuple[str, str]:
    """The subject (one line) and body of ``event`` rendered with ``context``."""
    full = {"site_url": settings.SITE_URL, **context}
    subject = render_to_string(f"notifications/{event}.subject.txt", full)
    body = render_to_string(f"notifications/{event}.txt", full)
    return " ".join(subject.split()), body.strip() + "\n"


def notify(
    event: str,
    context: dict[str, Any],
    *,
    recipients: Sequence[str] | None = None,
) -> bool:
    """Send ``event`` to ``recipients`` (default ``ADMIN_EMAILS``).

    True when it was delivered or there is nobody to tell; False (logged)
    when delivery failed, so the caller may try again later.
    """
    to = list(settings.ADMIN_EMAILS if recipients is None else recipients)
    if not to:
        logger.info("Notification %s: nobody is configured to receive it", event)
        return True
    subject, body = render(event, context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    except Exception:
        logger.exception("Could not deliver the notification %s", event)
        return False
    return True
