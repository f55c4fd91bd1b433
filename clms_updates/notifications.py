"""Notification targets besides e-mail, through Apprise: who wants which events, delivery.

An admin adds a target by its Apprise URL (ntfy, Gotify, Telegram, Slack,
Teams, Discord, Matrix, Pushover, a JSON webhook, … see the Apprise wiki) and
picks events. ``clms_updates.notify.notify`` raises an event once per
occurrence (its ``key``: the run, the release, the deadline threshold); each
subscribed target gets one ``NotificationDelivery`` for it, so the same alert
never repeats every check cycle. Delivery happens in a worker
(``core.deliver_notifications``, queued on commit and run by beat every
``NOTIFICATION_RETRY_MINUTES``), never in the pipeline; a failed delivery is
retried with growing pauses and, after the last attempt, marked failed and
audited.

Actions (``add_target``, ``remove_target``, ``send_test``) are the one place
targets change; pages and the admin call them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import apprise
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from clms_updates import audit
from clms_updates.actions import ActionRefused, Actor
from clms_updates.models import NotificationDelivery, NotificationTarget
from clms_updates.queueing import queue_on_commit

logger = logging.getLogger(__name__)

DELIVER_TASK = "core.deliver_notifications"
# Pauses before attempts 2, 3, … (minutes); after the last one it is failed.
RETRY_MINUTES = (1, 5, 30, 120)


@dataclass(frozen=True)
class Event:
    name: str
    role: str  # "school" or "vendor"
    label: str


EVENTS = (
    Event("release_available", "school", "An update is available"),
    Event("deadline_warning", "school", "A critical update's deadline is near"),
    Event("needs_input", "school", "An update waits for settings"),
    Event("run_succeeded", "school", "An update succeeded"),
    Event("run_failed", "school", "An update failed or was rolled back"),
    Event("backup_failed", "school", "A backup failed"),
    Event("agent_offline", "school", "No update source answers (offline)"),
    Event("override_granted", "school", "A critical deadline was overridden"),
    Event("drift_found", "school", "The running stack was changed by hand"),
    Event("rollout_paused", "vendor", "A rollout was paused"),
    Event("critical_release_failing", "vendor", "A critical release is failing"),
    Event("schools_silent", "vendor", "Schools have not polled for days"),
)


def events_for_this_role() -> list[Event]:
    roles = set()
    if settings.SCHOOL_ROLE_ENABLED:
        roles.add("school")
    if settings.VENDOR_ROLE_ENABLED:
        roles.add("vendor")
    return [e for e in EVENTS if e.role in roles]


def masked(url: str) -> str:
    """The URL with its secrets (tokens, passwords) masked, for pages and the audit."""
    plugin = apprise.Apprise.instantiate(url)
    if not plugin:
        return url.split("://", 1)[0] + "://…"
    return str(plugin.url(privacy=True))


def send_to(url: str, title: str, body: str) -> tuple[bool, str]:
    """Send one message now; (delivered, what went wrong)."""
    sender = apprise.Apprise()
    if not sender.add(url):
        return False, "the URL is not one Apprise can send to"
    with apprise.LogCapture(level=logging.WARNING) as output:
        delivered = bool(sender.notify(title=title, body=body))
        problems = output.getvalue().strip()
    return delivered, (problems or "the service refused the message")[-500:]


# ---------------------------------------------------------------------------
# Raising and delivering
# ---------------------------------------------------------------------------


def subscribed(event: str) -> list[NotificationTarget]:
    """The enabled targets that want ``event``."""
    return [
        t for t in NotificationTarget.objects.filter(enabled=True) if event in t.events
    ]


def queue(
    targets: list[NotificationTarget], event: str, subject: str, body: str, key: str
) -> int:
    """One delivery per target for this occurrence; queue them. Returns how many."""
    created = 0
    for target in targets:
        try:
            with transaction.atomic():
                NotificationDelivery.objects.create(
                    target=target,
                    event=event,
                    key=key[:200],
                    subject=subject[:300],
                    body=body,
                )
        except IntegrityError:
            continue  # this occurrence was raised before: never twice
        created += 1
    if created:
        queue_on_commit(DELIVER_TASK)
    return created


def deliver_due(*, now: datetime | None = None, limit: int = 50) -> int:
    """Attempt every delivery that is due; returns how many were sent."""
    now = now or timezone.now()
    due = list(
        NotificationDelivery.objects.filter(status=NotificationDelivery.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(_attempt(pk, now) for pk in due)


def _attempt(pk: int, now: datetime) -> bool:
    with transaction.atomic():
        delivery = (
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .select_related("target")
            .filter(pk=pk, status=NotificationDelivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return False  # another worker has it, or it is done
        ok, problem = send_to(delivery.target.url, delivery.subject, delivery.body)
        delivery.attempts += 1
        if ok:
            delivery.status = NotificationDelivery.Status.SENT
            delivery.sent_at = now
            delivery.last_error = ""
        elif delivery.attempts > len(RETRY_MINUTES):
            delivery.status = NotificationDelivery.Status.FAILED
            delivery.last_error = problem
            audit.record(
                "notification.failed",
                target=delivery.target.name,
                event=delivery.event,
                attempts=delivery.attempts,
                error=problem,
            )
        else:
            delivery.last_error = problem
            delivery.next_attempt_at = now + timedelta(
                minutes=RETRY_MINUTES[delivery.attempts - 1]
            )
        delivery.save()
    if not ok:
        logger.warning(
            "Notification %s to %s not delivered (attempt %s): %s",
            delivery.event,
            delivery.target.name,
            delivery.attempts,
            problem,
        )
    return ok


# ---------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------


def add_target(
    name: str, url: str, events: list[str], *, actor: Actor
) -> NotificationTarget:
    """Add a target after checking Apprise knows its URL and every event exists here."""
    name, url = name.strip(), url.strip()
    if not name:
        raise ActionRefused("Give the target a name.", code="no_name", field="name")
    if not apprise.Apprise().add(url):
        raise ActionRefused(
            "Apprise cannot send to this URL: check its scheme (ntfy://, tgram://, "
            "slack://, json://, mailto://, …) and its parts against the Apprise wiki.",
            code="bad_url",
            field="url",
        )
    known = {e.name for e in events_for_this_role()}
    unknown = sorted(set(events) - known)
    if unknown:
        raise ActionRefused(
            f"Unknown event(s): {', '.join(unknown)}.",
            code="bad_events",
            field="events",
        )
    if not events:
        raise ActionRefused(
            "Pick at least one event to send.", code="no_events", field="events"
        )
    with transaction.atomic():
        target = NotificationTarget.objects.create(
            name=name,
            url=url,
            events=sorted(set(events)),
            created_by=getattr(actor.user, "username", "") or actor.via,
        )
        audit.record(
            "notification.target_added",
            actor=actor,
            target=name,
            url=masked(url),
            events=target.events,
        )
    return target


def remove_target(target_id: int, *, actor: Actor) -> str:
    with transaction.atomic():
        target = _target(target_id)
        name = target.name
        audit.record(
            "notification.target_removed",
            actor=actor,
            target=name,
            url=masked(target.url),
        )
        target.delete()
    return name


def send_test(target_id: int, *, actor: Actor) -> tuple[bool, str]:
    """Send a test message to one target now; (delivered, what went wrong)."""
    target = _target(target_id)
    ok, problem = send_to(
        target.url,
        "CLMS Updates: test notification",
        f"This is a test from {settings.SITE_URL}, sent to {target.name!r}. If you "
        "read it, notifications arrive here.",
    )
    audit.record(
        "notification.test_sent",
        actor=actor,
        target=target.name,
        delivered=ok,
        error="" if ok else problem,
    )
    return ok, ("" if ok else problem)


def _target(target_id: int) -> NotificationTarget:
    target = NotificationTarget.objects.filter(pk=target_id).first()
    if target is None:
        raise ActionRefused(
            f"There is no notification target {target_id} (removed already?).",
            code="not_found",
        )
    return target
