"""Backups in the Django admin: read-only (changes go through the page, API, commands)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from backups.models import Backup


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    """A read-only view of backup rows for support staff."""

    list_display = ["name", "status", "size", "created_at", "verified_at", "hold"]
    list_filter = ["status", "engine"]
    search_fields = ["name", "reason", "hold"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
