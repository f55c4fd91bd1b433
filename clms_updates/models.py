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
