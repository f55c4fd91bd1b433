"""Admin for the shared models: the audit log is read-only."""

from django.contrib import admin
from django.http import HttpRequest

from clms_updates.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Browse the audit log; nobody edits or deletes history."""

    list_display = ("created_at", "username", "action", "target", "address")
    list_filter = ("action",)
    search_fields = ("username", "action", "target")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
