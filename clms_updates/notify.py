"""The one notifier: every message to people goes through ``notify``.

A message is an *event* with a context; its subject and body are templates,
``notifications/<event>.subject.txt`` and ``notifications/<event>.txt``, in
the app that raises it. It goes by e-mail to ``ADMIN_EMAILS`` and, once per
occurrence (``key``), to every Apprise target subscribed to the event
(``clms_updates.notifications``, delivered by a worker). Delivery failures are
logged and reported as False, never raised: telling someone must not break
the work it reports on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from clms_updates import notifications

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
    key: str,
    recipients: Sequence[str] | None = None,
    email: bool = True,
) -> bool:
    """Send ``event`` by e-mail to ``recipients`` (default ``ADMIN_EMAILS``) and
    queue it for the subscribed targets, once per ``key`` (the occurrence).

    True when the e-mail was delivered or there is nobody to e-mail; False
    (logged) when it failed, so the caller may try again later (the targets
    still get the occurrence once). ``email=False``: the targets only (events
    admins did not get by e-mail before; a ``mailto://`` target brings them).
    """
    to = (
        list(settings.ADMIN_EMAILS if recipients is None else recipients)
        if email
        else []
    )
    try:
        targets = notifications.subscribed(event)
    except Exception:  # the database is away: the e-mail still goes
        logger.exception("Could not read the notification targets of %s", event)
        targets = []
    if not to and not targets:
        logger.info("Notification %s: nobody is configured to receive it", event)
        return True
    subject, body = render(event, context)
    if targets:
        try:
            notifications.queue(targets, event, subject, body, key)
        except Exception:
            logger.exception("Could not queue the notification %s", event)
    if not to:
        return True
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    except Exception:
        logger.exception("Could not deliver the notification %s", event)
        return False
    return True
