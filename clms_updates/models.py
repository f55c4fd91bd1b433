"""Models shared by both roles."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One admin action, kept for good: who did what to which object, when, from where.

    Written through ``clms_updates.audit.record`` by every action (``<app>.actions``)
    that changes the installation or the fleet (check, schedule, cancel, rollback,
    override, restore, publish, pause, …).
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept even if the user is deleted later.
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    # The entry point: page, api, command, admin, schedule or system.
    via = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.username or 'system'} {self.action}"


class DeclaredSchedule(models.Model):
    """The schedule ``clms_updates.periodic`` last wrote for one beat entry.

    A beat entry whose schedule still reads this was not edited by an admin,
    so it follows the environment; one that reads otherwise keeps the edit.
    """

    name = models.CharField(max_length=200, unique=True)
    schedule = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"{self.name}: {self.schedule}"


class NotificationTarget(models.Model):
    """Somewhere events are sent besides e-mail: one Apprise URL and the events it wants.

    The URL holds the channel's secret (a webhook token, a bot key), so it is
    only ever shown with its secrets masked (``clms_updates.notify.masked``).
    """

    name = models.CharField(max_length=100)
    url = models.TextField(
        help_text="An Apprise URL, e.g. ntfy://…, tgram://…, json://…"
    )
    events = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class NotificationDelivery(models.Model):
    """One event for one target: sent once per occurrence (``key``), retried until sent."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # gave up after the last attempt

    target = models.ForeignKey(
        NotificationTarget, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=64)
    key = models.CharField(max_length=200)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "event", "key"], name="one_delivery_per_occurrence"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.target} ({self.status})"
